/*
 * conntable.h - the connection table: finds a connection by our id (every
 * packet after the bind) and, on a server, by (peer address, peer's id) so a
 * retransmitted BIND_REQ finds the connection it already made.
 *
 * Intrusive: each connection embeds a conn_link. Ids are unpredictable
 * (a keyed PRF over a counter), nonzero and unique in the table, so a
 * restarted peer's old ids miss and nobody can work out the next one.
 *
 * It is also where a server admits connections: the limits in all and per
 * peer address, the count of half-open connections (made without proof that
 * the peer receives at its address), and the stateless cookies that are
 * that proof.
 */
#ifndef RPC2_CONNTABLE_H
#define RPC2_CONNTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"

struct addr_slot;

struct conn_link {
    uint32_t id;      /* ours, assigned by conntable_insert */
    uint32_t peer_id; /* the peer's */
    struct rpc2_addr peer;
    struct conn_link *next_by_id, *next_by_peer;
    int by_peer;                 /* also indexed by (peer, peer_id) */
    int half_open;               /* the peer has not yet shown it hears us */
    struct addr_slot *addr_slot; /* its address's count, when by_peer */
};

/*
 * A server's limits on what peers can make it hold (rpc2_params). They live
 * here, in the one per-context structure of the server side that every bind
 * goes through; max_running and max_saved_bytes are checked by server.c.
 * conntable_init sets each to "none" (and cookies to "never required").
 */
struct conntable_limits {
    size_t max_per_addr;      /* server connections from one IPv4 address or IPv6 /64 */
    size_t cookie_threshold;  /* half-open connections from which binds need a cookie; 0: always */
    size_t max_running;       /* calls running at once */
    uint64_t max_saved_bytes; /* saved replies of all connections together */
};

#define CONNTABLE_KEY_SIZE 16 /* a SipHash-2-4 key (libsodium's crypto_shorthash) */

struct conntable {
    struct conn_link **by_id, **by_peer;
    struct addr_slot **by_addr;
    size_t nbuckets; /* power of two, grows with count */
    size_t count, max;
    size_t half_open; /* entries inserted CONNTABLE_HALF_OPEN and not yet proven */
    uint64_t ids_drawn; /* the id PRF's counter */
    struct conntable_limits limits;
    /* Random per table, three keys for three uses: ids, cookies, and the
     * bucket a peer's entries land in. */
    uint8_t id_key[CONNTABLE_KEY_SIZE], cookie_key[CONNTABLE_KEY_SIZE];
    uint8_t index_key[CONNTABLE_KEY_SIZE];
};

/* max: most entries ever held. seed 0: the keys come from getrandom();
 * any other seed derives them from it, so ids and cookies repeat (tests). */
int conntable_init(struct conntable *t, size_t max, uint64_t seed);
void conntable_dispose(struct conntable *t);
void conntable_set_limits(struct conntable *t, const struct conntable_limits *limits);

enum {
    CONNTABLE_BY_PEER = 1,   /* also index by (peer, peer_id); counts per address */
    CONNTABLE_HALF_OPEN = 2, /* counts as half-open until conntable_proven */
};
/* Whether one more CONNTABLE_BY_PEER entry from peer fits. */
enum conntable_admit { CONNTABLE_OK, CONNTABLE_FULL, CONNTABLE_ADDR_FULL };
enum conntable_admit conntable_admit(const struct conntable *t, const struct rpc2_addr *peer);
/* Assigns l->id and inserts, with CONNTABLE_* flags. Returns 0, RPC2_ELIMIT
 * when the table or the peer's address is full, or RPC2_ENOMEM. */
int conntable_insert(struct conntable *t, struct conn_link *l, int flags);
struct conn_link *conntable_find(const struct conntable *t, uint32_t id);
struct conn_link *conntable_find_peer(const struct conntable *t, const struct rpc2_addr *peer,
                                      uint32_t peer_id);
void conntable_remove(struct conntable *t, struct conn_link *l);
/* Calls fn on every entry; fn may remove the entry it is given. */
void conntable_foreach(struct conntable *t, void (*fn)(struct conn_link *l, void *arg), void *arg);
/* Entries from peer's address (IPv4 address or IPv6 /64), by_peer ones only. */
size_t conntable_addr_count(const struct conntable *t, const struct rpc2_addr *peer);
/* The peer of a half-open entry has shown it receives our packets. */
void conntable_proven(struct conntable *t, struct conn_link *l);

/* ---- stateless cookies ---- */

#define CONNTABLE_COOKIE_LEN 12
/* Cookies are made in time slots of this many microseconds; one is
 * accepted in the slot it was made and the next. */
#define CONNTABLE_COOKIE_SLOT_US (1ull << 24) /* about 16.8 s */

/* Whether a new bind must carry a valid cookie now. */
int conntable_cookie_required(const struct conntable *t);
/* The cookie for a bind from peer with the peer's id, made at now. */
void conntable_cookie_make(const struct conntable *t, const struct rpc2_addr *peer,
                           uint32_t peer_id, uint64_t now, uint8_t out[CONNTABLE_COOKIE_LEN]);
enum conntable_cookie { COOKIE_OK, COOKIE_BAD, COOKIE_STALE };
/* COOKIE_OK for one conntable_cookie_make gave for this peer and id in this
 * or the previous slot; COOKIE_STALE for one it gave earlier (or later);
 * COOKIE_BAD for anything else. */
enum conntable_cookie conntable_cookie_check(const struct conntable *t,
                                             const struct rpc2_addr *peer, uint32_t peer_id,
                                             uint64_t now, const uint8_t *cookie, size_t len);

#endif
