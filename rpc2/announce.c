/*
 * announce.c - a server announcing itself to a client that listens, and a
 * client hearing it (announce.h says why). The packet is empty and at
 * level none: it proves nothing and asks for nothing. A client binds to
 * where it came from only if it expected that server (rcat checks the host
 * it was told), and the bind that follows authenticates as every bind does.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "announce.h"
#include "engine.h"

struct announce_target {
    struct engine_timer timer; /* first: the timer's owner is found from it */
    struct engine *engine;
    struct rpc2_addr to;
    uint64_t interval_us;
};

struct announce {
    struct announce_target targets[RPC2_MAX_ANNOUNCE];
    unsigned n;
    rpc2_announce_fn heard;
    void *heard_arg;
};

static struct announce *announce_of(struct engine *e)
{
    if (!e->announce)
        e->announce = calloc(1, sizeof *e->announce);
    return e->announce;
}

static void send_announce(struct announce_target *t, uint64_t now)
{
    struct engine *e = t->engine;
    engine_send_bare(e, &t->to, PKT_ANNOUNCE, 0, 0, 0, 0, 0, now);
    e->stats.announces_sent++;
    engine_timer_set(e, &t->timer, now + t->interval_us);
}

static void announce_due(struct engine_timer *et, uint64_t now)
{
    send_announce((struct announce_target *)et, now);
}

int announce_add(struct engine *e, const struct rpc2_addr *to, uint64_t interval_us,
                 uint64_t now)
{
    struct announce *a = announce_of(e);
    if (!a)
        return RPC2_ENOMEM;
    if (a->n == RPC2_MAX_ANNOUNCE)
        return RPC2_ELIMIT;
    struct announce_target *t = &a->targets[a->n++];
    t->engine = e;
    t->to = *to;
    t->interval_us = interval_us;
    engine_timer_init(&t->timer, announce_due);
    send_announce(t, now);
    return 0;
}

void announce_listen(struct engine *e, rpc2_announce_fn heard, void *arg)
{
    struct announce *a = announce_of(e);
    if (!a)
        return; /* with no memory nothing is heard: announcements are dropped */
    a->heard = heard;
    a->heard_arg = arg;
}

/* The sender's address as a host text and a port, IPv4 plainly (not as the
 * ::ffff: form a dual-stack socket sees). */
static int host_of(const struct rpc2_addr *from, char *host, size_t cap, unsigned *port)
{
    struct addr_norm n;
    if (addr_normalize(&from->ss, &n) != 0)
        return -1;
    *port = ntohs(n.port);
    if (addr_norm_is_v4(&n))
        return inet_ntop(AF_INET, n.addr + 12, host, (socklen_t)cap) ? 0 : -1;
    return inet_ntop(AF_INET6, n.addr, host, (socklen_t)cap) ? 0 : -1;
}

static int well_formed(const struct pkt_hdr *h)
{
    return h->security == RPC2_SEC_NONE && h->body_len == 0 && h->dst_conn == 0 &&
           h->src_conn == 0 && h->seq == 0 && h->transfer == 0;
}

void announce_receive(struct engine *e, const struct rpc2_addr *from, const struct pkt_hdr *h,
                      uint64_t now)
{
    (void)now;
    struct announce *a = e->announce;
    char host[INET6_ADDRSTRLEN];
    unsigned port;
    if (!well_formed(h)) {
        e->stats.rejected_other++;
        return;
    }
    if (!a || !a->heard || host_of(from, host, sizeof host, &port) != 0) {
        e->stats.announces_ignored++;
        return;
    }
    e->stats.announces_heard++;
    a->heard(host, port, a->heard_arg);
}

void announce_free(struct engine *e)
{
    free(e->announce); /* its timers go with the engine's heap */
    e->announce = NULL;
}
