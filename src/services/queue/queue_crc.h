/*
 * queue_crc.h - CRC32C (Castagnoli), the checksum of every queue log
 * record.  Pure and thread-safe: the SSE4.2 instruction where the CPU has
 * it, else a table built once.
 */
#ifndef VIRGO_QUEUE_CRC_H
#define VIRGO_QUEUE_CRC_H

#include <stddef.h>
#include <stdint.h>

/* Continues crc (start with 0) over buf[0..n). */
uint32_t qcrc32c(uint32_t crc, const void *buf, size_t n);
/* The table version alone (tests compare the two); call qcrc32c_init (or
 * qcrc32c) once first. */
uint32_t qcrc32c_sw(uint32_t crc, const void *buf, size_t n);
void qcrc32c_init(void);

#endif
