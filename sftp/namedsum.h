/*
 * namedsum.h - the checksum a user asked for by name (md5, sha1, sha256,
 * xxh128), computed over the bytes a transfer moves so that the result can
 * be compared with what md5sum, sha1sum, sha256sum or `xxhsum -H2` print
 * and with sums published beside a file.
 *
 * The transfer's own end-to-end check stays XXH3-128 (fileio.c); this is
 * an extra, chosen per descriptor (rpc2_se_desc.sum_type). md5, sha1 and
 * sha256 are OpenSSL's EVP digests; xxh128 is libxxhash's XXH3-128.
 *
 * A hasher is a small opaque struct fed with init/update/final, so a caller
 * can also feed it a prefix of a file read from disk (a resumed transfer
 * re-hashes what it already holds). The sizes below need no library, so the
 * wire codecs (seblock.c, wire.c) use them without linking OpenSSL.
 */
#ifndef RPC2_SFTP_NAMEDSUM_H
#define RPC2_SFTP_NAMEDSUM_H

#include <stddef.h>
#include <stdint.h>
#include <rpc2/se.h>

/* The longest named sum (sha256), and so the bound of its opaque on the wire. */
#define NAMEDSUM_MAX RPC2_SE_SUM_MAX

/* Bytes of a named sum of type; 0 for an unknown type (and for none). */
static inline size_t namedsum_len(uint32_t type)
{
    switch (type) {
    case RPC2_SE_SUM_MD5:
        return 16;
    case RPC2_SE_SUM_SHA1:
        return 20;
    case RPC2_SE_SUM_SHA256:
        return 32;
    case RPC2_SE_SUM_XXH128:
        return 16;
    }
    return 0;
}

struct namedsum;

/* A hasher of type, reset: NULL for an unknown type or out of memory. */
struct namedsum *namedsum_new(uint32_t type);
void namedsum_free(struct namedsum *h);
uint32_t namedsum_type(const struct namedsum *h);
/* Starts over (the hasher then holds nothing): 0 or RPC2_ENOMEM. */
int namedsum_init(struct namedsum *h);
void namedsum_update(struct namedsum *h, const void *data, size_t len);
/* The sum of every byte given since init, without ending it (more may
 * follow): writes namedsum_len(type) bytes to out and returns that count,
 * or RPC2_ENOMEM. */
int namedsum_final(const struct namedsum *h, uint8_t out[NAMEDSUM_MAX]);

/* The sum of a named type as the peer sent it (a packet's or a block's). */
struct namedsum_value {
    uint32_t type;
    uint32_t len;
    uint8_t bytes[NAMEDSUM_MAX];
};

/* Whether v is a sum of its type: its length is that type's. */
static inline int namedsum_value_valid(const struct namedsum_value *v)
{
    return v->len > 0 && v->len == namedsum_len(v->type);
}

/* A sum as a block carries it (type, then bytes and len; len 0: none)
 * copied into *out: out, or NULL when there is none. */
static inline const struct namedsum_value *namedsum_value_of(uint32_t type, const uint8_t *sum,
                                                             uint32_t len,
                                                             struct namedsum_value *out)
{
    if (len == 0 || len > NAMEDSUM_MAX)
        return NULL;
    out->type = type;
    out->len = len;
    for (uint32_t i = 0; i < len; i++)
        out->bytes[i] = sum[i];
    return out;
}

#endif
