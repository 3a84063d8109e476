/*
 * auth.c - the token comparison (auth.h).  Both tokens are hashed with
 * SHA-256 and the digests compared with CRYPTO_memcmp, so the time taken
 * says nothing about how much of a guess was right, nor about the
 * configured token's length.
 */
#include "auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>

bool vd_auth_token_ok(const char *want, const char *got, size_t gotlen)
{
	unsigned char a[EVP_MAX_MD_SIZE], b[EVP_MAX_MD_SIZE];
	unsigned int la = 0, lb = 0;
	if (!want[0])
		return false;
	if (EVP_Digest(want, strlen(want), a, &la, EVP_sha256(), NULL) != 1 ||
	    EVP_Digest(got, gotlen, b, &lb, EVP_sha256(), NULL) != 1 || la != lb)
		return false;
	return CRYPTO_memcmp(a, b, la) == 0;
}
