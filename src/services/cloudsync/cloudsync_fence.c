/*
 * cloudsync_fence.c - the fence table (cloudsync_fence.h): a chained hash
 * of lock name -> newest token under one mutex.  Fenced writes are rare
 * next to plain ones and short (a memcpy into an allocation), so one lock
 * held across check, write and update is simplest and makes the check and
 * the write one atomic step: two writers with tokens 5 and 6 can never
 * both pass the check and land in the order 6, 5.
 */
#include "cloudsync_fence.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cloudsync_proto.h"

#define FENCE_BUCKETS 4096

struct fence_entry {
	struct fence_entry *next;
	uint64_t newest;
	size_t len;
	char name[CS_NAME_MAX];
};

static pthread_mutex_t fence_mu = PTHREAD_MUTEX_INITIALIZER;
static struct fence_entry *fence_bucket[FENCE_BUCKETS];
static size_t fence_count;

static uint32_t fence_hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h;
}

static struct fence_entry *fence_find(const char *name, size_t len, bool create)
{
	struct fence_entry **b = &fence_bucket[fence_hash(name, len) % FENCE_BUCKETS];
	for (struct fence_entry *e = *b; e; e = e->next)
		if (e->len == len && memcmp(e->name, name, len) == 0)
			return e;
	if (!create || fence_count >= CS_FENCE_MAX || len > CS_NAME_MAX)
		return NULL;
	struct fence_entry *e = calloc(1, sizeof *e);
	if (!e)
		return NULL;
	memcpy(e->name, name, len);
	e->len = len;
	e->next = *b;
	*b = e;
	fence_count++;
	return e;
}

int cs_fence_write(const char *name, size_t len, uint64_t token, int (*write)(void *arg),
		   void *arg, uint64_t *newest)
{
	pthread_mutex_lock(&fence_mu);
	struct fence_entry *e = fence_find(name, len, true);
	int rc;
	if (!e) {
		rc = -ENOSPC;
	} else if (token < e->newest) {
		if (newest)
			*newest = e->newest;
		rc = -ESTALE;
	} else {
		e->newest = token;
		rc = write(arg);
	}
	pthread_mutex_unlock(&fence_mu);
	return rc;
}

void cs_fence_observe(const char *name, size_t len, uint64_t token)
{
	pthread_mutex_lock(&fence_mu);
	struct fence_entry *e = fence_find(name, len, false);
	if (e && token > e->newest)
		e->newest = token;
	pthread_mutex_unlock(&fence_mu);
}

uint64_t cs_fence_newest(const char *name, size_t len)
{
	pthread_mutex_lock(&fence_mu);
	struct fence_entry *e = fence_find(name, len, false);
	uint64_t v = e ? e->newest : 0;
	pthread_mutex_unlock(&fence_mu);
	return v;
}
