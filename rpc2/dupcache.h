/*
 * dupcache.h - at-most-once execution on one server connection: decides
 * whether an arriving request is new, still running, already answered, or
 * stale, and keeps the one saved reply until the client moves on.
 *
 * Sequence numbers compare with serial-number arithmetic, so they wrap.
 */
#ifndef RPC2_DUPCACHE_H
#define RPC2_DUPCACHE_H

#include <stddef.h>
#include <stdint.h>

enum dup_verdict {
    DUP_NEW,     /* run it */
    DUP_RUNNING, /* a retransmission of the call being run: answer BUSY */
    DUP_WAIT,    /* a newer call while the previous still runs: answer BUSY, do not run */
    DUP_RESEND,  /* already answered: send the saved reply again */
    DUP_LOST,    /* already answered, reply not saved (over the bound): refuse */
    DUP_STALE,   /* older than the last call: drop */
};

struct dupcache {
    uint32_t last_seq; /* 0: no call yet */
    int running;
    uint8_t *reply;    /* saved reply datagram, NULL if none */
    size_t reply_len;
    uint64_t *saved_total; /* bytes saved by all of a server's connections; NULL: not counted */
};

void dupcache_init(struct dupcache *d);
/* Counts this connection's saved reply in *total (shared by the server's
 * connections, so their sum can be bounded). Call before the first finish. */
void dupcache_count_in(struct dupcache *d, uint64_t *total);
void dupcache_dispose(struct dupcache *d);
enum dup_verdict dupcache_check(const struct dupcache *d, uint32_t seq);
/* A new call starts: the previous reply is released (the client moved on). */
void dupcache_start(struct dupcache *d, uint32_t seq);
/* The call finished: keeps a copy of its reply if len <= max_saved and the
 * shared total (if counted) stays at most max_total. Returns 0 (d->reply
 * says whether it was kept), or RPC2_ENOMEM (the reply is then not saved). */
int dupcache_finish(struct dupcache *d, const uint8_t *reply, size_t len, size_t max_saved,
                    uint64_t max_total);
/* Serial-number comparison: is a after b? */
int seq_after(uint32_t a, uint32_t b);

#endif
