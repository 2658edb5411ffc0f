/*
 * filesum.c - the named sum of one side's byte stream (namedsum.h): what
 * this end computed, as the descriptor and the peer are told it, and the
 * verdict on the sum the peer sent. fileio.c feeds the hasher with the
 * same bytes as the end-to-end XXH3-128; this file only reads it out.
 */
#include <string.h>
#include <rpc2/rpc2.h>

#include "fileio.h"
#include "fileio_impl.h"

static int own_sum(const struct fileio *f, struct namedsum_value *out)
{
    int len;

    if (!f || !f->named || f->hash_gap)
        return 0;
    len = namedsum_final(f->named, out->bytes);
    if (len <= 0)
        return 0;
    out->type = namedsum_type(f->named);
    out->len = (uint32_t)len;
    return 1;
}

int fileio_named_sum_value(const struct fileio *f, struct namedsum_value *out)
{
    return own_sum(f, out);
}

int fileio_named_sum(struct fileio *f, struct namedsum_value *out)
{
    const struct rpc2_se_desc *d = f ? f->d : NULL;
    int have = own_sum(f, out);

    if (have && d->expect_sum_len &&
        (d->expect_sum_len != out->len || memcmp(d->expect_sum, out->bytes, out->len) != 0))
        return fail(f, "the named checksum of the data is not the one expected", RPC2_EINTEGRITY);
    return have;
}

/* A sum asked for and not sent is refused like one that differs: the
 * sink never vouches for bytes it could not check. */
int fileio_check_named(struct fileio *f, const struct namedsum_value *peer)
{
    struct namedsum_value own;

    if (!f->named)
        return peer ? fail(f, "the peer sent a named checksum that was not asked for",
                           RPC2_EINTEGRITY)
                    : 0;
    if (!peer)
        return fail(f, "the peer did not send the named checksum asked for", RPC2_EINTEGRITY);
    if (peer->type != namedsum_type(f->named))
        return fail(f, "the peer sent a named checksum of another type", RPC2_EINTEGRITY);
    int have = fileio_named_sum(f, &own);
    if (have < 0)
        return have;
    if (!have)
        return fail(f, "the named checksum of the bytes received could not be computed",
                    RPC2_EINTEGRITY);
    if (own.len != peer->len || memcmp(own.bytes, peer->bytes, own.len) != 0)
        return fail(f, "the named checksum of the bytes received differs from the source's",
                    RPC2_EINTEGRITY);
    return 0;
}

void fileio_fill_named(const struct fileio *f, struct rpc2_se_desc *d)
{
    struct namedsum_value v;

    d->sum_len = 0;
    if (!own_sum(f, &v))
        return;
    d->sum_type = (int)v.type;
    memcpy(d->sum, v.bytes, v.len);
    d->sum_len = v.len;
}
