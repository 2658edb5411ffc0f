/*
 * fakelink.h - two or more protocol engines joined by an in-memory network
 * with a fake clock: datagrams are lost, duplicated, delayed, reordered and
 * damaged reproducibly from a seed, and time jumps straight to the next event. So a
 * thousand retransmissions or a 30-second dead-peer wait take milliseconds,
 * and every run of a seed is the same run.
 */
#ifndef RPC2_FAKELINK_H
#define RPC2_FAKELINK_H

#include <stdint.h>

#include "engine.h"

#define FAKELINK_NODES 4

struct fakelink_faults {
    double loss;       /* probability a datagram is dropped */
    double dup;        /* probability it is delivered twice */
    double reorder;    /* probability it is held back up to max_extra_us */
    uint32_t delay_us; /* one-way base delay */
    uint32_t max_extra_us;
    double corrupt;        /* probability it arrives with 1-3 bits flipped */
    unsigned corrupt_next; /* damage the next this many datagrams for sure */
};

struct fakelink_packet;

struct fakelink_node {
    struct engine *engine; /* NULL: packets to this node vanish (a dead host) */
    struct rpc2_addr addr;
    struct fakelink *link;
    int index;
};

struct fakelink {
    uint64_t now;
    uint64_t rng;
    struct fakelink_faults faults[FAKELINK_NODES]; /* applied to what node i sends */
    struct fakelink_node nodes[FAKELINK_NODES];
    int n_nodes;
    struct fakelink_packet *queue; /* sorted by delivery time, then send order */
    uint64_t sent, dropped, duplicated, delivered, corrupted;
    /* Datagrams at security none that an engine flushed with a check that
     * does not match: only a sender that changed a datagram it had lent
     * (rpc2/outq.h) before it went out makes one. */
    uint64_t sent_broken;
};

void fakelink_init(struct fakelink *l, uint64_t seed);
/* Frees packets in flight (not the engines). */
void fakelink_dispose(struct fakelink *l);
/* Adds a node with an engine made from cfg (the engine's flush feeds the
 * link); returns its index. */
int fakelink_add(struct fakelink *l, const struct engine_config *cfg,
                 const struct engine_hooks *hooks, void *env);
/* Replaces node i's engine with a fresh one (a restarted host), or with
 * none when cfg is NULL (a dead host). */
void fakelink_restart(struct fakelink *l, int i, const struct engine_config *cfg,
                      const struct engine_hooks *hooks, void *env);
struct engine *fakelink_engine(struct fakelink *l, int i);
const struct rpc2_addr *fakelink_addr(struct fakelink *l, int i);
/* Puts a raw datagram on the wire from node `from` to node `to`. */
void fakelink_inject(struct fakelink *l, int from, int to, const uint8_t *pkt, size_t len);
/* Runs events (deliveries, timers) until *done becomes nonzero or the fake
 * clock passes `until`; returns *done. done may be NULL (run to `until`). */
int fakelink_run(struct fakelink *l, const volatile int *done, uint64_t until);
/* Flushes every engine's outq into the link (after driving engines directly). */
void fakelink_flush(struct fakelink *l);
/* Binds node `client` to node `server` with a, running the link until the
 * bind has ended or within_us of fake time has passed: the bind's status
 * (0, or why it failed, engine_bind's own refusal too; RPC2_ETIMEDOUT when
 * it had not ended by then), the connection in *conn. No Check asserts
 * here: the fuzz targets link this file without Check. */
int fakelink_bind(struct fakelink *l, int client, int server, const struct engine_bind_args *a,
                  uint64_t within_us, rpc2_conn **conn);

#endif
