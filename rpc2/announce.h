/*
 * announce.h - connecting from the other side. A server whose firewall
 * lets only its own traffic out cannot be bound to; it announces itself
 * instead (ANNOUNCE, an empty packet outside any connection) to a client
 * that listens, at an interval. The announcement opens the firewall's way
 * back (a stateful firewall takes the client's bind as an answer to it),
 * and tells the client where to bind: the bind, the handshake, security
 * and rights are then those of any other connection.
 */
#ifndef RPC2_ANNOUNCE_H
#define RPC2_ANNOUNCE_H

#include <stdint.h>

#include <rpc2/rpc2.h>

#include "addr.h"
#include "packet.h"

struct engine;

/* Announcements to `to` now and every interval_us until the engine goes;
 * at most RPC2_MAX_ANNOUNCE targets. 0, RPC2_ELIMIT or RPC2_ENOMEM. */
int announce_add(struct engine *e, const struct rpc2_addr *to, uint64_t interval_us,
                 uint64_t now);
/* Who hears announcements (NULL: nobody; they are dropped and counted). */
void announce_listen(struct engine *e, rpc2_announce_fn heard, void *arg);
/* An ANNOUNCE arrived: its form checked, it is told to the listener. Never
 * answered, so it cannot be used to reflect traffic. */
void announce_receive(struct engine *e, const struct rpc2_addr *from, const struct pkt_hdr *h,
                      uint64_t now);
void announce_free(struct engine *e);

#endif
