/*
 * filesum.c - a file's named sum (filesum.h): OpenSSL's EVP for md5, sha1
 * and sha256, libxxhash's XXH3-128 for xxh128, as the library's transfers
 * compute them, read in large blocks with pread so the file's offset is
 * not moved.
 */
#include "filesum.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <rpc2/se.h>
#include <xxhash.h>

#define BLOCK (1u << 20)

struct hasher {
    EVP_MD_CTX *md;
    XXH3_state_t *xxh;
};

static int hasher_init(struct hasher *h, int type)
{
    const EVP_MD *md = type == RPC2_SE_SUM_MD5      ? EVP_md5()
                       : type == RPC2_SE_SUM_SHA1   ? EVP_sha1()
                       : type == RPC2_SE_SUM_SHA256 ? EVP_sha256()
                                                    : NULL;

    memset(h, 0, sizeof *h);
    if (type == RPC2_SE_SUM_XXH128) {
        h->xxh = XXH3_createState();
        return h->xxh && XXH3_128bits_reset(h->xxh) == XXH_OK ? 0 : -ENOMEM;
    }
    if (!md)
        return -EINVAL;
    h->md = EVP_MD_CTX_new();
    return h->md && EVP_DigestInit_ex(h->md, md, NULL) == 1 ? 0 : -ENOMEM;
}

static void hasher_update(struct hasher *h, const void *p, size_t n)
{
    if (h->xxh)
        XXH3_128bits_update(h->xxh, p, n);
    else
        EVP_DigestUpdate(h->md, p, n);
}

static int hasher_final(struct hasher *h, unsigned char out[FILESUM_MAX], unsigned *len)
{
    if (h->xxh) {
        XXH128_canonical_t c;

        XXH128_canonicalFromHash(&c, XXH3_128bits_digest(h->xxh));
        memcpy(out, c.digest, sizeof c.digest);
        *len = sizeof c.digest;
        return 0;
    }
    return EVP_DigestFinal_ex(h->md, out, len) == 1 ? 0 : -ENOMEM;
}

static void hasher_dispose(struct hasher *h)
{
    EVP_MD_CTX_free(h->md);
    XXH3_freeState(h->xxh);
}

int filesum_fd(int fd, int type, uint64_t offset, int64_t length, unsigned char out[FILESUM_MAX],
               unsigned *len, uint64_t *bytes)
{
    struct hasher h;
    unsigned char *buf;
    uint64_t left = length < 0 ? UINT64_MAX : (uint64_t)length;
    int rc;

    *bytes = 0;
    *len = 0;
    if (offset > INT64_MAX || length < -1)
        return -EINVAL;
    rc = hasher_init(&h, type);
    buf = rc == 0 ? malloc(BLOCK) : NULL;
    if (rc == 0 && !buf)
        rc = -ENOMEM;
    while (rc == 0 && left > 0) {
        ssize_t n = pread(fd, buf, left < BLOCK ? (size_t)left : BLOCK, (off_t)(offset + *bytes));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = -errno;
        if (n <= 0)
            break;
        hasher_update(&h, buf, (size_t)n);
        *bytes += (uint64_t)n;
        left -= (uint64_t)n;
    }
    if (rc == 0)
        rc = hasher_final(&h, out, len);
    free(buf);
    hasher_dispose(&h);
    return rc;
}
