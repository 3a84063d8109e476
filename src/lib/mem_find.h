/*
 * mem_find.h - what mem.c shares with mem_find.c (leases, owner tags,
 * listing): the owner-tag check libvirgo applies before a tag goes into a
 * request line.
 */
#ifndef VIRGO_MEM_FIND_H
#define VIRGO_MEM_FIND_H

#include <stdbool.h>

/* 1..64 characters of A-Z a-z 0-9 . _ - : @ / (the node's rule too). */
bool vc_owner_ok(const char *owner);

#endif
