/*
 * dupcache.c - at-most-once execution for one server connection.
 *
 * A client retransmits a request until it hears a reply, so the server sees
 * the same call many times; this decides, from the sequence number alone,
 * whether to run it, answer BUSY, send the saved reply again, or drop it.
 * One call is in flight per connection, so one saved reply is enough: the
 * next call proves the client has the previous reply.
 *
 * Sequence number 0 means "no call yet" (last_seq), so clients must never
 * send it, not even after 0xFFFFFFFF wraps: a finished call 0 would look new.
 */
#include <stdlib.h>
#include <string.h>

#include <rpc2/rpc2.h>

#include "dupcache.h"

void dupcache_init(struct dupcache *d)
{
    d->last_seq = 0;
    d->running = 0;
    d->reply = NULL;
    d->reply_len = 0;
    d->saved_total = NULL;
}

void dupcache_count_in(struct dupcache *d, uint64_t *total)
{
    d->saved_total = total;
}

static void release(struct dupcache *d)
{
    if (d->reply != NULL && d->saved_total != NULL)
        *d->saved_total -= d->reply_len;
    free(d->reply);
    d->reply = NULL;
    d->reply_len = 0;
}

void dupcache_dispose(struct dupcache *d)
{
    release(d);
    dupcache_init(d);
}

/* RFC 1982 style: a is after b when it is less than half the space ahead.
 * Unsigned arithmetic only, so no implementation-defined conversion. */
int seq_after(uint32_t a, uint32_t b)
{
    uint32_t d = a - b;

    return d != 0 && d < 0x80000000u;
}

enum dup_verdict dupcache_check(const struct dupcache *d, uint32_t seq)
{
    if (d->last_seq == 0 && !d->running)
        return DUP_NEW;
    if (seq == d->last_seq) {
        if (d->running)
            return DUP_RUNNING;
        return d->reply != NULL ? DUP_RESEND : DUP_LOST;
    }
    if (seq_after(seq, d->last_seq))
        return d->running ? DUP_WAIT : DUP_NEW;
    return DUP_STALE;
}

void dupcache_start(struct dupcache *d, uint32_t seq)
{
    release(d);
    d->last_seq = seq;
    d->running = 1;
}

/* Whether len more bytes keep the shared total within max_total. */
static int fits_total(const struct dupcache *d, size_t len, uint64_t max_total)
{
    return d->saved_total == NULL ||
           (*d->saved_total <= max_total && len <= max_total - *d->saved_total);
}

int dupcache_finish(struct dupcache *d, const uint8_t *reply, size_t len, size_t max_saved,
                    uint64_t max_total)
{
    d->running = 0;
    release(d);
    if (len > max_saved || !fits_total(d, len, max_total))
        return 0;
    /* malloc(0) may return NULL; an empty reply is still a saved reply. */
    d->reply = malloc(len ? len : 1);
    if (d->reply == NULL)
        return RPC2_ENOMEM;
    if (len)
        memcpy(d->reply, reply, len);
    d->reply_len = len;
    if (d->saved_total != NULL)
        *d->saved_total += len;
    return 0;
}
