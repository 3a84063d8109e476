/*
 * queue_crc.c - CRC32C with a slicing-by-8 table (queue_crc.h).  The
 * tables are computed on first use under pthread_once.
 */
#include "queue_crc.h"

#include <pthread.h>

static uint32_t qcrc_tab[8][256];
static pthread_once_t qcrc_once = PTHREAD_ONCE_INIT;

static void qcrc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		qcrc_tab[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			qcrc_tab[t][i] = (qcrc_tab[t - 1][i] >> 8) ^ qcrc_tab[0][qcrc_tab[t - 1][i] & 0xff];
}

uint32_t qcrc32c(uint32_t crc, const void *buf, size_t n)
{
	pthread_once(&qcrc_once, qcrc_init);
	const uint8_t *p = buf;
	crc = ~crc;
	while (n >= 8) {
		uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
				     (uint32_t)p[3] << 24);
		crc = qcrc_tab[7][lo & 0xff] ^ qcrc_tab[6][(lo >> 8) & 0xff] ^
		      qcrc_tab[5][(lo >> 16) & 0xff] ^ qcrc_tab[4][lo >> 24] ^ qcrc_tab[3][p[4]] ^
		      qcrc_tab[2][p[5]] ^ qcrc_tab[1][p[6]] ^ qcrc_tab[0][p[7]];
		p += 8;
		n -= 8;
	}
	while (n--)
		crc = (crc >> 8) ^ qcrc_tab[0][(crc ^ *p++) & 0xff];
	return ~crc;
}
