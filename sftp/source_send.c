/*
 * source_send.c - what the SFTP source sends next, and when: the worried
 * (judged lost) before new data, within the sink's window, the policy's
 * in-flight limit and the pacer's release; each send a new transmission
 * whose record feeds the rate sampler (pacer.h). It also keeps the one
 * timer armed for the earliest of the next release, the loss and probe
 * deadlines of recovery.c, and the probe of a sink that lets nothing move.
 */
#include "source_impl.h"

#include <string.h>

#include <rpc2/rpc2.h>

#include "link.h"
#include "wire.h"

uint32_t source_window_end(const struct sftp_source *s)
{
    uint32_t window = s->lent < s->window ? s->lent : s->window;
    uint32_t own = s->peer.got_them_all + window; /* <= SFTP_MAX_SEQ + window: no wrap */

    return s->peer_window_end < own ? s->peer_window_end : own;
}

static int new_data_allowed(const struct sftp_source *s, uint32_t seq)
{
    if (s->last_seq != 0 && seq > s->last_seq)
        return 0;
    return seq <= source_window_end(s);
}

static int cwnd_open(const struct sftp_source *s, uint32_t extra)
{
    return s->sent.flight.count + extra < pacer_cwnd(&s->pacer) || s->probe_credit > extra;
}

/* The next packet to send: the worried first, then new data. NULL when the
 * window, the policy's in-flight limit or the stream's end says wait. */
static struct sentmap_packet *next_packet(struct sftp_source *s)
{
    if (!cwnd_open(s, 0))
        return NULL;
    if (s->sent.worried.count > 0)
        return sentmap_head(&s->sent, &s->sent.worried);
    if (s->input_waiting || !new_data_allowed(s, s->next_seq))
        return NULL; /* the reader has nothing yet; resume comes when it has */
    return source_fetch_new(s, s->next_seq);
}

/* Whether, once p is sent, nothing else may go before an ACK comes: then p
 * asks the sink to ack at once rather than after ack_point packets. */
static int blocked_after(const struct sftp_source *s, const struct sentmap_packet *p)
{
    uint32_t worried_left = s->sent.worried.count - (p->where == SENTMAP_WORRIED ? 1 : 0);
    uint32_t next = p->seq == s->next_seq ? s->next_seq + 1 : s->next_seq;

    if (!cwnd_open(s, 1))
        return 1;
    return worried_left == 0 && !new_data_allowed(s, next);
}

/* The DATA header goes into the buffer's room just before the data, and
 * the link builds the datagram around them there: the data are not copied.
 * Rewriting the header of a packet still queued from an earlier send would
 * change that send, so the link lets go of it first. */
static void lend_on_wire(struct sftp_source *s, struct sentmap_packet *p, uint32_t flags, int again,
                         uint64_t now)
{
    uint8_t *body = p->data - SFTP_DATA_HEAD;

    sentmap_unpin(&s->sent, p);
    if (sftp_data_encode(body, SFTP_DATA_HEAD + p->len, flags, (uint32_t)s->transmissions,
                         p->len) != p->data)
        return;
    p->pin =
        s->link.lend(s->link.arg, PKT_SFTP_DATA, again ? PKT_F_RETRANSMIT : 0, p->seq,
                     sftp_echo(s->echo_ts, s->echo_arrival, now), body, SFTP_DATA_HEAD + p->len);
}

static void put_on_wire(struct sftp_source *s, struct sentmap_packet *p, int again, uint64_t now)
{
    uint32_t flags = (p->last ? SFTP_DATA_LAST : 0) | (blocked_after(s, p) ? SFTP_DATA_ACKME : 0) |
                     (s->resumed ? SFTP_DATA_RESUMED : 0);
    uint32_t sum_len = 0;
    size_t cap;
    uint8_t *buf, *data;

    if (p->last && s->have_sum) {
        flags |= SFTP_DATA_SUM;
        sum_len = SFTP_SUM_SIZE;
    }
    if (p->last && s->have_named)
        flags |= SFTP_DATA_NAMED;
    /* The last packet may carry sums after its data: it is copied. */
    if (s->link.lend && sum_len == 0 && !(flags & SFTP_DATA_NAMED)) {
        lend_on_wire(s, p, flags, again, now);
        return;
    }
    /* No buffer, or too small a one: the packet is lost on the way, and
     * recovered like any other loss. */
    buf = s->link.begin(s->link.arg, &cap);
    if (buf == NULL)
        return;
    data = sftp_data_encode_named(buf, cap, flags, (uint32_t)s->transmissions, p->len,
                                  (flags & SFTP_DATA_NAMED) ? &s->named : NULL);
    if (data == NULL)
        return;
    if (p->len > 0)
        memcpy(data, p->data, p->len);
    if (sum_len)
        memcpy(data + p->len, s->sum, sum_len);
    s->link.commit(s->link.arg, PKT_SFTP_DATA, again ? PKT_F_RETRANSMIT : 0, p->seq,
                   sftp_echo(s->echo_ts, s->echo_arrival, now),
                   (size_t)(data - buf) + p->len + sum_len);
}

static void transmit(struct sftp_source *s, struct sentmap_packet *p, uint64_t now)
{
    int again = p->transmissions > 0;
    struct sentmap_tx *t;

    /* The DATA carries its transmission number: taken before it is written. */
    s->transmissions++;
    put_on_wire(s, p, again, now);
    /* The rate sampler's snapshot (pacer.h): an idle pipe restarts the clocks. */
    if (s->sent.flight.count == 0)
        s->first_sent_time = s->delivered_time = now;
    if (p->seq == s->next_seq)
        s->next_seq++;
    t = sentmap_sent(&s->sent, p, now, s->transmissions);
    t->delivered = s->delivered;
    t->delivered_time = s->delivered_time;
    t->first_sent_time = s->first_sent_time;
    t->app_limited = (uint8_t)s->app_limited;
    if (s->probe_credit > 0)
        s->probe_credit--;
    pacer_sent(&s->pacer, p->len > 0 ? p->len : 1, now);
    s->counters.data_sent++;
    s->counters.bytes_sent += p->len;
    if (again) {
        s->counters.data_retransmitted++;
        s->counters.bytes_retransmitted += p->len;
    }
}

static int something_to_send(const struct sftp_source *s)
{
    if (!cwnd_open(s, 0))
        return 0;
    return s->sent.worried.count > 0 || new_data_allowed(s, s->next_seq);
}

/* Nothing in flight, nothing it may send, not waiting on its reader: only
 * the sink can move things on (open its window, or say COMPLETE). */
int source_waiting_on_sink(const struct sftp_source *s)
{
    return s->started && s->state == SFTP_RUNNING && s->sent.flight.count == 0 &&
           !s->input_waiting && !something_to_send(s);
}

void source_plan_probe(struct sftp_source *s, uint64_t now)
{
    if (!source_waiting_on_sink(s)) {
        s->probe_due = SOURCE_NEVER;
        return;
    }
    if (s->probe_due != SOURCE_NEVER)
        return;
    if (s->probe_interval == 0)
        s->probe_interval = recovery_pto(&s->rec);
    s->probe_due = now + s->probe_interval;
}

void source_rearm(struct sftp_source *s, uint64_t now)
{
    uint64_t deadline = recovery_deadline(&s->rec, &s->sent);

    if (something_to_send(s) && !s->input_waiting) {
        uint64_t release = pacer_next_release(&s->pacer, now);

        if (release < deadline)
            deadline = release;
    }
    source_plan_probe(s, now);
    if (s->probe_due < deadline)
        deadline = s->probe_due;
    sftp_link_arm(&s->link, &s->timer_armed, deadline);
}

/* Sends what the pacer allows now, at most one of its bursts. */
void source_pump(struct sftp_source *s, uint64_t now)
{
    uint32_t burst, most = pacer_burst(&s->pacer);

    /* Late wake-ups (a busy host) send less than the rate: samples of
     * such sends measure us, not the path. */
    int behind = pacer_fell_behind(&s->pacer);

    for (burst = 0; burst < most; burst++) {
        struct sentmap_packet *p;

        if (!pacer_may_send(&s->pacer, now)) {
            s->app_limited = behind;
            break;
        }
        p = next_packet(s);
        if (s->state != SFTP_RUNNING)
            return;
        if (p == NULL) {
            /* Out of data or window, not of rate: the next samples measure us. */
            s->app_limited = cwnd_open(s, 0);
            break;
        }
        transmit(s, p, now);
    }
    if (burst == most) /* a full burst, and more was due: we are behind */
        s->app_limited = behind || pacer_may_send(&s->pacer, now);
    source_rearm(s, now);
}
