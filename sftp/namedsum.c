/*
 * namedsum.c - the named checksums of namedsum.h, and the public names and
 * hex form of se.h. OpenSSL's EVP does md5, sha1 and sha256 (a maintained
 * implementation, never one of our own); libxxhash does xxh128, in the
 * canonical big-endian form `xxhsum -H2` prints.
 */
#include "namedsum.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <rpc2/rpc2.h>

#include "fileio.h"
#include "hash.h"

#define SUM_READ_BLOCK (1u << 20)

struct namedsum {
    uint32_t type;
    EVP_MD_CTX *md;    /* md5, sha1, sha256 */
    XXH3_state_t *xxh; /* xxh128 */
};

static const char *const names[] = {
    [RPC2_SE_SUM_MD5] = "md5",
    [RPC2_SE_SUM_SHA1] = "sha1",
    [RPC2_SE_SUM_SHA256] = "sha256",
    [RPC2_SE_SUM_XXH128] = "xxh128",
};

static const EVP_MD *evp_of(uint32_t type)
{
    switch (type) {
    case RPC2_SE_SUM_MD5:
        return EVP_md5();
    case RPC2_SE_SUM_SHA1:
        return EVP_sha1();
    case RPC2_SE_SUM_SHA256:
        return EVP_sha256();
    }
    return NULL;
}

struct namedsum *namedsum_new(uint32_t type)
{
    struct namedsum *h;

    if (namedsum_len(type) == 0)
        return NULL;
    h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->type = type;
    if (type == RPC2_SE_SUM_XXH128)
        h->xxh = XXH3_createState();
    else
        h->md = EVP_MD_CTX_new();
    if ((!h->xxh && !h->md) || namedsum_init(h) != 0) {
        namedsum_free(h);
        return NULL;
    }
    return h;
}

void namedsum_free(struct namedsum *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free(h->md);
    XXH3_freeState(h->xxh);
    free(h);
}

uint32_t namedsum_type(const struct namedsum *h)
{
    return h->type;
}

int namedsum_init(struct namedsum *h)
{
    if (h->xxh)
        return XXH3_128bits_reset(h->xxh) == XXH_OK ? 0 : RPC2_ENOMEM;
    return EVP_DigestInit_ex(h->md, evp_of(h->type), NULL) == 1 ? 0 : RPC2_ENOMEM;
}

void namedsum_update(struct namedsum *h, const void *data, size_t len)
{
    if (len == 0)
        return;
    if (h->xxh)
        XXH3_128bits_update(h->xxh, data, len);
    else
        EVP_DigestUpdate(h->md, data, len);
}

/* EVP's final ends its context, so the sum so far is taken from a copy. */
int namedsum_final(const struct namedsum *h, uint8_t out[NAMEDSUM_MAX])
{
    if (h->xxh) {
        XXH128_canonical_t c;

        XXH128_canonicalFromHash(&c, XXH3_128bits_digest(h->xxh));
        memcpy(out, c.digest, sizeof(c.digest));
        return (int)sizeof(c.digest);
    }
    EVP_MD_CTX *copy = EVP_MD_CTX_new();
    unsigned len = 0;
    int ok = copy && EVP_MD_CTX_copy_ex(copy, h->md) == 1 &&
             EVP_DigestFinal_ex(copy, out, &len) == 1;

    EVP_MD_CTX_free(copy);
    return ok ? (int)len : RPC2_ENOMEM;
}

/* ---- the public names (se.h) ------------------------------------------- */

const char *rpc2_se_sum_name(int type)
{
    return type > 0 && namedsum_len((uint32_t)type) ? names[type] : NULL;
}

unsigned rpc2_se_sum_len(int type)
{
    return type > 0 ? (unsigned)namedsum_len((uint32_t)type) : 0;
}

int rpc2_se_sum_parse(const char *name)
{
    for (size_t t = 1; name && t < sizeof(names) / sizeof(names[0]); t++)
        if (strcasecmp(name, names[t]) == 0)
            return (int)t;
    return RPC2_EINVAL;
}

int rpc2_se_sum_hex(const struct rpc2_se_desc *d, char *out, size_t cap)
{
    static const char digits[] = "0123456789abcdef";

    if (!d || !out || d->sum_len == 0 || d->sum_len > RPC2_SE_SUM_MAX ||
        cap < 2 * (size_t)d->sum_len + 1)
        return RPC2_EINVAL;
    for (unsigned i = 0; i < d->sum_len; i++) {
        out[2 * i] = digits[d->sum[i] >> 4];
        out[2 * i + 1] = digits[d->sum[i] & 15];
    }
    out[2 * d->sum_len] = '\0';
    return (int)(2 * d->sum_len);
}

/* Reads into buf until length bytes are summed or the file ends. */
static int sum_reads(struct namedsum *h, int fd, uint64_t offset, uint64_t left, uint8_t *buf,
                     uint64_t *bytes)
{
    while (left > 0) {
        size_t want = left < SUM_READ_BLOCK ? (size_t)left : SUM_READ_BLOCK;
        ssize_t n = pread(fd, buf, want, (off_t)(offset + *bytes));

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fileio_errno_code(errno);
        if (n == 0)
            return 0;
        namedsum_update(h, buf, (size_t)n);
        *bytes += (uint64_t)n;
        left -= (uint64_t)n;
    }
    return 0;
}

int rpc2_se_sum_fd(int fd, int type, uint64_t offset, int64_t length,
                   unsigned char out[RPC2_SE_SUM_MAX], unsigned *len, uint64_t *bytes)
{
    struct namedsum *h;
    uint8_t *buf;
    int rc, read_errno;

    *bytes = 0;
    *len = 0;
    if (rpc2_se_sum_len(type) == 0 || offset > INT64_MAX || length < -1)
        return RPC2_EINVAL;
    h = namedsum_new((uint32_t)type);
    buf = malloc(SUM_READ_BLOCK);
    rc = RPC2_ENOMEM;
    if (h && buf)
        rc = sum_reads(h, fd, offset, length < 0 ? UINT64_MAX : (uint64_t)length, buf, bytes);
    read_errno = errno; /* what the caller is promised, whatever freeing does */
    if (rc == 0) {
        rc = namedsum_final(h, out);
        if (rc > 0)
            *len = (unsigned)rc;
        rc = rc > 0 ? 0 : RPC2_ENOMEM;
    }
    free(buf);
    namedsum_free(h);
    errno = read_errno;
    return rc;
}
