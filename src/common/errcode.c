/*
 * errcode.c - table of errno values that may cross the wire (errcode.h).
 */
#include "errcode.h"

#include <errno.h>
#include <string.h>

static const struct {
	int err;
	const char *name;
} ec_table[] = {
	{ENOENT, "ENOENT"},   {ENOMEM, "ENOMEM"},	{EINVAL, "EINVAL"},
	{ERANGE, "ERANGE"},   {E2BIG, "E2BIG"},		{EBUSY, "EBUSY"},
	{EPROTO, "EPROTO"},   {EACCES, "EACCES"},	{EEXIST, "EEXIST"},
	{ENOSPC, "ENOSPC"},   {ETIMEDOUT, "ETIMEDOUT"}, {ENOSYS, "ENOSYS"},
	{EMSGSIZE, "EMSGSIZE"}, {EIO, "EIO"},		{EPERM, "EPERM"},
	{ECANCELED, "ECANCELED"}, {EAGAIN, "EAGAIN"},	{EBADF, "EBADF"},
	{ELOOP, "ELOOP"}, /* eventnet: an edge that would make a cycle */
};

const char *ec_name(int err)
{
	for (size_t i = 0; i < sizeof ec_table / sizeof ec_table[0]; i++)
		if (ec_table[i].err == err)
			return ec_table[i].name;
	return "EIO";
}

int ec_from_name(const char *s, size_t n)
{
	for (size_t i = 0; i < sizeof ec_table / sizeof ec_table[0]; i++)
		if (strlen(ec_table[i].name) == n && memcmp(ec_table[i].name, s, n) == 0)
			return ec_table[i].err;
	return EPROTO;
}
