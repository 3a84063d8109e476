/*
 * queue_crc.h - CRC32C (Castagnoli), the checksum of every queue log
 * record.  Table-driven, pure, thread-safe (the table is built once).
 */
#ifndef VIRGO_QUEUE_CRC_H
#define VIRGO_QUEUE_CRC_H

#include <stddef.h>
#include <stdint.h>

/* Continues crc (start with 0) over buf[0..n). */
uint32_t qcrc32c(uint32_t crc, const void *buf, size_t n);

#endif
