/*
 * conntable.h - the connection table: finds a connection by our id (every
 * packet after the bind) and, on a server, by (peer address, peer's id) so a
 * retransmitted BIND_REQ finds the connection it already made.
 *
 * Intrusive: each connection embeds a conn_link. Ids are random, nonzero
 * and unique in the table, so a restarted peer's old ids miss.
 */
#ifndef RPC2_CONNTABLE_H
#define RPC2_CONNTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"

struct conn_link {
    uint32_t id;      /* ours, assigned by conntable_insert */
    uint32_t peer_id; /* the peer's */
    struct rpc2_addr peer;
    struct conn_link *next_by_id, *next_by_peer;
    int by_peer; /* also indexed by (peer, peer_id) */
};

struct conntable {
    struct conn_link **by_id, **by_peer;
    size_t nbuckets; /* power of two, grows with count */
    size_t count, max;
    uint64_t rng;    /* id generator state */
};

/* max: most entries ever held. seed 0: seed ids from getrandom(). */
int conntable_init(struct conntable *t, size_t max, uint64_t seed);
void conntable_dispose(struct conntable *t);
/* Assigns l->id and inserts; indexes by (l->peer, l->peer_id) when by_peer.
 * Returns 0, RPC2_ELIMIT when full, or RPC2_ENOMEM. */
int conntable_insert(struct conntable *t, struct conn_link *l, int by_peer);
struct conn_link *conntable_find(const struct conntable *t, uint32_t id);
struct conn_link *conntable_find_peer(const struct conntable *t, const struct rpc2_addr *peer,
                                      uint32_t peer_id);
void conntable_remove(struct conntable *t, struct conn_link *l);
/* Calls fn on every entry; fn may remove the entry it is given. */
void conntable_foreach(struct conntable *t, void (*fn)(struct conn_link *l, void *arg), void *arg);

#endif
