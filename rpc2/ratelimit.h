/*
 * ratelimit.h - how many answers a context sends to each source prefix
 * that has not shown it receives at its address: the stateless answers
 * (UNKNOWN_CONN, VERSION_ERR, BIND_COOKIE, BIND_ERR, the UNBIND_ACK of an
 * unknown connection) go to whatever source address a datagram claims, so
 * without a limit anyone who forges the address of a victim makes the
 * server send the victim one answer per forged datagram: a reflector.
 *
 * One token bucket per prefix (IPv4 /24, IPv6 /64: a victim is a network,
 * and spreading forged sources over one's own /24 or /64 must not multiply
 * the budget), in a fixed table embedded in its owner: no allocation, ever,
 * and bounded memory whatever the number of sources. The table is
 * set-associative under a random SipHash key, so nobody can aim prefixes
 * at one set; a full set forgets the entry with the most tokens left (an
 * idle one), never the one being flooded.
 */
#ifndef RPC2_RATELIMIT_H
#define RPC2_RATELIMIT_H

#include <stdint.h>

#include "addr.h"

#define RATELIMIT_WAYS 4
#define RATELIMIT_SETS 512 /* 2048 prefixes, 24 bytes each */

/* Defaults: a bucket of 64 answers refilled at 64 a second; a prefix seen
 * for the first time (or again after its entry was forgotten) starts with 8,
 * so sources sprayed over many prefixes get little each. Over the limit,
 * one cookie in RATELIMIT_COOKIE_SLIP is sent anyway: a client that shares
 * its prefix with a forger still gets a cookie within a few retries. */
#define RATELIMIT_RATE 64
#define RATELIMIT_BURST 64
#define RATELIMIT_START 8
#define RATELIMIT_COOKIE_SLIP 2

struct ratelimit_entry {
    uint64_t tag;  /* the prefix's hash; 0: free */
    uint64_t tat;  /* when the bucket is full again (GCRA's theoretical arrival time) */
    uint32_t over; /* answers refused since the bucket emptied, for the slip */
};

struct ratelimit {
    struct ratelimit_entry e[RATELIMIT_SETS * RATELIMIT_WAYS];
    uint8_t key[16];
    int keyed;
    /* A zeroed struct uses the defaults above; tests change them. */
    uint32_t rate, burst, start;
};

/* Keys the table from a 16-byte secret of its owner's (under a label of its
 * own), so a seeded owner repeats its runs; a table never keyed this way
 * keys itself from the system's generator at first use. */
void ratelimit_key(struct ratelimit *r, const uint8_t secret[16]);

/* Whether one more answer may go to `to` at now (microseconds, any
 * monotonic origin): 1, and the answer is charged; or 0. slip N > 1: past
 * the limit, every Nth refused answer of the prefix is allowed anyway
 * (0 or 1: none). */
int ratelimit_allow(struct ratelimit *r, const struct rpc2_addr *to, uint64_t now, unsigned slip);

#endif
