/*
 * refused.c - what an ICMP "port unreachable" about a datagram a client
 * sent may end. Without it a bind to a server that is down waits out the
 * whole dead-peer silence (30 s by default) although the peer's kernel said
 * at once that nothing listens there.
 *
 * Anyone on the path, and anyone off it who guesses the client's address
 * and port, can forge an ICMP error, so one is believed only where a
 * forgery could do no more than an honest one, and never against a peer
 * that has shown it is alive:
 *
 * - The error must quote the start of our datagram (the ICMP carries it):
 *   our connection id, the peer's id, and the clock reading we sent. It then
 *   ends a bind still waiting for its answer, or the call in flight when the
 *   quoted datagram is that call's CALL. A datagram sent before the peer
 *   last spoke is old news (the port was open after it), and a quote of a
 *   transfer's packets or of anything else ends nothing.
 * - An error that quotes too little to tell (a router may quote only the
 *   UDP header) ends only binds to that address that have heard nothing at
 *   all yet.
 *
 * Everything else is counted (icmp_ignored) and dropped; the dead-peer
 * silence still ends what a real silence leaves.
 */
#include <errno.h>
#include <string.h>

#include "bytes.h"
#include "engine.h"

/* The header fields a quote must reach: up to and including ts. */
#define QUOTE_NEEDED 28

/* Unanswered binds ended by one short quote: a client rarely binds to one
 * address many times at once, and what is left here times out as before. */
#define SHORT_QUOTE_MAX 16

struct quoted {
    uint8_t type;
    uint32_t dst_conn, src_conn, seq, ts;
};

static int parse_quote(const uint8_t *q, size_t len, struct quoted *out)
{
    if (len < QUOTE_NEEDED || q[0] != PKT_VERSION)
        return -1;
    out->type = q[1];
    out->dst_conn = load_u32(q + 8);
    out->src_conn = load_u32(q + 12);
    out->seq = load_u32(q + 16);
    out->ts = load_u32(q + 24);
    return 0;
}

/* Whether the peer spoke after the quoted datagram left (wire clocks are
 * 32 bits of microseconds: compared modulo 2^32). last_heard starts at the
 * connection's birth, before anything was sent. */
static int heard_since(const rpc2_conn *c, uint32_t sent_ts)
{
    return (int32_t)((uint32_t)c->last_heard - sent_ts) > 0;
}

/* Nothing at all came from the peer yet (no cookie either). */
static int unanswered(const rpc2_conn *c)
{
    return c->peer_ts == 0;
}

static int waiting_bind(const rpc2_conn *c)
{
    return c->role == ROLE_CLIENT && c->state == CS_BINDING && c->bind;
}

/* The quote names a datagram of c that c is still waiting on. */
static int ends(const rpc2_conn *c, const struct quoted *q)
{
    if (heard_since(c, q->ts))
        return 0;
    if (waiting_bind(c))
        return q->type == PKT_BIND_REQ && q->dst_conn == 0;
    return c->role == ROLE_CLIENT && c->state == CS_BOUND && c->call && q->type == PKT_CALL &&
           q->dst_conn == c->link.peer_id && q->seq == c->call->seq;
}

static void judge_quote(struct engine *e, const struct rpc2_addr *to, const struct quoted *q,
                        uint64_t now)
{
    struct conn_link *l = conntable_find(&e->conns, q->src_conn);
    rpc2_conn *c = (rpc2_conn *)l;

    if (!c || !addr_equal(&c->link.peer, to) || !ends(c, q)) {
        e->stats.icmp_ignored++;
        return;
    }
    e->stats.icmp_refused++;
    client_refused(c, now);
}

struct unanswered {
    const struct rpc2_addr *to;
    uint32_t ids[SHORT_QUOTE_MAX];
    unsigned n;
};

static void collect_unanswered(struct conn_link *l, void *arg)
{
    struct unanswered *u = arg;
    rpc2_conn *c = (rpc2_conn *)l;

    if (u->n < SHORT_QUOTE_MAX && waiting_bind(c) && unanswered(c) &&
        addr_equal(&c->link.peer, u->to))
        u->ids[u->n++] = c->link.id;
}

/* The binds are found first and ended after: a bind's callback may bind or
 * unbind others, which the table's walk must not meet. */
static void end_unanswered_binds(struct engine *e, const struct rpc2_addr *to, uint64_t now)
{
    struct unanswered u = {.to = to};

    conntable_foreach(&e->conns, collect_unanswered, &u);
    if (u.n == 0)
        e->stats.icmp_ignored++;
    for (unsigned i = 0; i < u.n; i++) {
        rpc2_conn *c = (rpc2_conn *)conntable_find(&e->conns, u.ids[i]);

        if (c && waiting_bind(c) && unanswered(c)) {
            e->stats.icmp_refused++;
            client_refused(c, now);
        }
    }
}

void engine_peer_error(struct engine *e, const struct rpc2_addr *to, int err, const uint8_t *quoted,
                       size_t quoted_len, uint64_t now)
{
    struct quoted q;

    e->now = now;
    /* Host or network unreachable may be a route that comes back: only a
     * peer's own "nothing listens here" is final. */
    if (err != ECONNREFUSED) {
        e->stats.icmp_ignored++;
        return;
    }
    if (parse_quote(quoted, quoted_len, &q) == 0)
        judge_quote(e, to, &q, now);
    else if (quoted_len < QUOTE_NEEDED)
        end_unanswered_binds(e, to, now);
    else
        e->stats.icmp_ignored++; /* long enough, and not our version: not ours */
}
