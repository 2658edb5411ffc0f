/*
 * vmbuf.c - a memory sink's room. A fixed buffer holds max bytes and more
 * is RPC2_EOVERFLOW; a growing one (vm.grow) is realloc'ed by doubling, so
 * a fetch into memory costs O(n) copying whatever its size, up to max (0:
 * up to what memory allows). Grown bytes are zeroed, so a seek offset or an
 * out-of-order write never exposes old heap contents. Kept apart from
 * fileio.c, which only asks for room.
 */
#include <stdlib.h>
#include <string.h>

#include <rpc2/rpc2.h>

#include "vmbuf.h"

#define VMBUF_FIRST (64 * 1024) /* the first allocation: most small fetches fit */

static uint64_t limit_of(const struct rpc2_se_desc *d)
{
    if (!d->file.vm.grow || d->file.vm.max)
        return d->file.vm.max;
    return SIZE_MAX;
}

static int grow(struct rpc2_se_desc *d, uint64_t need, uint64_t limit)
{
    uint64_t cap = d->file.vm.cap ? d->file.vm.cap : VMBUF_FIRST;
    void *p;

    while (cap < need)
        cap = cap > limit / 2 ? limit : cap * 2;
    if (cap > limit)
        cap = limit;
    p = realloc(d->file.vm.buf, (size_t)cap);
    if (!p)
        return RPC2_ENOMEM;
    memset((uint8_t *)p + d->file.vm.cap, 0, (size_t)cap - d->file.vm.cap);
    d->file.vm.buf = p;
    d->file.vm.cap = (size_t)cap;
    return 0;
}

int vmbuf_room(struct rpc2_se_desc *d, uint64_t end)
{
    uint64_t seek = (uint64_t)d->seek_offset;
    uint64_t limit = limit_of(d);

    if (end > limit || seek > limit - end)
        return RPC2_EOVERFLOW;
    if (!d->file.vm.grow || seek + end <= d->file.vm.cap)
        return 0;
    return grow(d, seek + end, limit);
}

int vmbuf_open(const struct rpc2_se_desc *d, const char **why)
{
    uint64_t seek = (uint64_t)d->seek_offset;
    uint64_t limit = limit_of(d);

    *why = "seek offset beyond the buffer";
    if (seek > limit)
        return RPC2_EINVAL;
    *why = "a memory sink with no room";
    if (seek == limit && d->quota != 0)
        return RPC2_EINVAL;
    return 0;
}
