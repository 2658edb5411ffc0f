/*
 * source.c - the SFTP source: reads a byte stream once, sends it as DATA
 * packets at the pacer's rate within the window, keeps every packet until
 * an ACK says the sink holds it, and sends again what it judges lost.
 *
 * Every send, first or again, is a new transmission with the next number
 * (carried in DATA); ACKs name the newest transmission the sink received.
 * recovery.c judges from that what is lost (it joins the worried queue,
 * which goes before any new data) and when to probe an ACK-less path; ACKs
 * also carry the sink's delivered byte count, from which the pacer's
 * policy takes its delivery-rate samples. After retry_count consecutive
 * probe timeouts without a single packet newly acknowledged, the transfer
 * fails with RPC2_EDEAD.
 *
 * Waiting is not dying. When the reader has nothing yet (a quiet pipe) the
 * source answers the sink's probes with PROBE, so the sink keeps waiting.
 * When the sink holds everything sent but lets no more in (its writer is
 * stuck: window_end) or has not yet said COMPLETE, the source probes it with
 * PROBE ANSWER_ME at a doubling interval, and fails only when retry_count
 * probes in a row go unanswered. The LAST packet carries the checksum of
 * the whole stream when the reader computes one.
 *
 * `now` is the monotonic clock in microseconds that the link stamps into
 * each packet's ts (its low 32 bits), so now - ts_echo is a round trip.
 */
#include "machine.h"

#include <stdlib.h>
#include <string.h>

#include <rpc2/rpc2.h>

#include "ackmap.h"
#include "link.h"
#include "pacer.h"
#include "recovery.h"
#include "rtt.h"
#include "sentmap.h"
#include "wire.h"

#define NEVER UINT64_MAX
/* Packets a probe timeout may send beyond the in-flight limit. */
#define PROBE_PACKETS 2u

struct sftp_source {
    struct sftp_config cfg;
    struct sftp_link link;
    struct sftp_reader reader;
    int state;
    int started;
    int resumed; /* the sink's restart point was confirmed: DATA say SFTP_DATA_RESUMED */
    uint32_t window, packet_size; /* in force: the smaller of ours and the START's */
    uint32_t lent;                /* packets the context's memory cap lends us */

    struct sentmap sent;
    struct ackmap peer; /* what the sink's ACKs say it holds */
    struct pacer pacer;
    struct recovery rec;
    struct sftp_counters counters;

    uint32_t next_seq; /* the first seq never sent */
    uint32_t last_seq; /* the stream's last packet, 0 until read */
    int eof;           /* the reader has reported the end */
    int input_waiting; /* the reader said SFTP_IO_WAIT */
    uint64_t bytes_read, bytes_acked;
    uint8_t sum[SFTP_SUM_BYTES];
    int have_sum;
    struct namedsum_value named; /* the LAST packet's, when have_named */
    int have_named;

    /* What the sink's latest ACK lets in, and whether it said COMPLETE. */
    uint32_t peer_window_end;
    int peer_complete;
    uint64_t probe_due;       /* next PROBE while waiting on the sink */
    uint32_t probe_interval;  /* doubles per probe, up to retry_max */

    uint64_t transmissions; /* the latest transmission's number */
    uint32_t probe_credit;  /* packets a PTO lets out beyond the in-flight limit */

    /* The sink's latest ts (START or ACK) and when it came, to echo in DATA. */
    uint32_t echo_ts;
    uint64_t echo_arrival;
    uint32_t last_ack_seq;
    int have_ack_seq;

    /* Rate sampling (see pacer.h). */
    uint64_t delivered, delivered_time, first_sent_time;
    int app_limited;
    uint32_t newly_acked;

    unsigned timeouts_in_a_row;
    int failed_here;
    uint64_t timer_armed;
    struct sftp_wish last_wish; /* the sink's, as last applied */
};

/* ---- setup --------------------------------------------------------------- */

struct sftp_source *sftp_source_new(const struct sftp_config *cfg, const struct sftp_link *link,
                                    const struct sftp_reader *reader)
{
    struct sftp_source *s;

    if (cfg == NULL || link == NULL || reader == NULL)
        return NULL;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->cfg = *cfg;
    sftp_config_clamp(&s->cfg);
    s->link = *link;
    s->reader = *reader;
    s->state = SFTP_RUNNING;
    s->window = s->cfg.window;
    s->lent = UINT32_MAX;
    s->packet_size = s->cfg.packet_size;
    s->next_seq = 1;
    s->peer_window_end = s->window;
    s->timer_armed = NEVER;
    s->probe_due = NEVER;
    recovery_init(&s->rec, s->cfg.retry_initial_us, s->cfg.retry_min_us, s->cfg.retry_max_us);
    return s;
}

void sftp_source_free(struct sftp_source *s)
{
    if (s == NULL)
        return;
    sentmap_dispose(&s->sent);
    ackmap_dispose(&s->peer);
    free(s);
}

/* ---- sending ------------------------------------------------------------- */

static void send_probe(struct sftp_source *s, uint32_t flags)
{
    size_t cap, len;
    uint8_t *buf = s->link.begin(s->link.arg, &cap);

    if (buf != NULL && sftp_probe_encode(flags, buf, cap, &len) == PKT_OK) {
        s->link.commit(s->link.arg, PKT_SFTP_PROBE, 0, 0, 0, len);
        s->counters.probes_sent++;
    }
}

static void finish(struct sftp_source *s, int state)
{
    s->state = state;
    sentmap_trim(&s->sent);
    sftp_link_arm(&s->link, &s->timer_armed, NEVER);
}

static void fail(struct sftp_source *s, int error, int tell_peer)
{
    s->failed_here = tell_peer; /* not the peer's ABORT: this end's own failure */
    if (tell_peer)
        sftp_link_abort(&s->link, error);
    finish(s, error);
}

static uint32_t window_end(const struct sftp_source *s)
{
    uint32_t window = s->lent < s->window ? s->lent : s->window;
    uint32_t own = s->peer.got_them_all + window; /* <= SFTP_MAX_SEQ + window: no wrap */

    return s->peer_window_end < own ? s->peer_window_end : own;
}

static int new_data_allowed(const struct sftp_source *s, uint32_t seq)
{
    if (s->last_seq != 0 && seq > s->last_seq)
        return 0;
    return seq <= window_end(s);
}

static int cwnd_open(const struct sftp_source *s, uint32_t extra)
{
    return s->sent.flight.count + extra < pacer_cwnd(&s->pacer) || s->probe_credit > extra;
}

/* Reads one packet into seq's slot; its length tells whether it ends the stream. */
static struct sentmap_packet *read_packet(struct sftp_source *s, uint32_t seq)
{
    struct sentmap_packet *p = sentmap_take(&s->sent, seq);
    ssize_t n;

    if (p == NULL) {
        fail(s, RPC2_ENOMEM, 1);
        return NULL;
    }
    n = s->reader.read(s->reader.arg, p->data, s->packet_size);
    if (n == SFTP_IO_WAIT) {
        sentmap_release(&s->sent, p);
        s->input_waiting = 1;
        return NULL;
    }
    if (n < 0 || (size_t)n > s->packet_size) {
        sentmap_release(&s->sent, p);
        fail(s, n < 0 ? (int)n : RPC2_EIO, 1);
        return NULL;
    }
    p->len = (uint32_t)n;
    s->bytes_read += (uint64_t)n;
    if (p->len < s->packet_size) {
        p->last = 1;
        s->eof = 1;
        if (s->reader.digest) {
            s->reader.digest(s->reader.arg, s->sum);
            s->have_sum = 1;
        }
        int named = s->reader.named ? s->reader.named(s->reader.arg, &s->named) : 0;
        if (named < 0) { /* not the data it must be: the sink never gets the end */
            sentmap_release(&s->sent, p);
            fail(s, named, 1);
            return NULL;
        }
        s->have_named = named;
    }
    return p;
}

/*
 * The packet for seq, read if it has not been, and with the one after it
 * read ahead when needed to know whether seq is the last: a full packet
 * followed by the end of the stream is the last one. A reader that cannot
 * tell yet (a pipe, quiet for now) does not hold seq back: if the end
 * comes next, an empty LAST packet follows.
 */
static struct sentmap_packet *fetch_new(struct sftp_source *s, uint32_t seq)
{
    struct sentmap_packet *p = sentmap_at(&s->sent, seq);
    struct sentmap_packet *ahead;

    if (p->where == SENTMAP_FREE) {
        p = read_packet(s, seq);
        if (p == NULL)
            return NULL;
    }
    if (!p->last && !s->eof) {
        if (seq >= SFTP_MAX_SEQ) {
            fail(s, RPC2_ELIMIT, 1);
            return NULL;
        }
        ahead = read_packet(s, seq + 1);
        if (ahead == NULL)
            return s->state == SFTP_RUNNING ? p : NULL;
        if (ahead->len == 0) {
            sentmap_release(&s->sent, ahead);
            p->last = 1;
        }
    }
    if (p->last)
        s->last_seq = seq;
    return p;
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
    return fetch_new(s, s->next_seq);
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

static void put_on_wire(struct sftp_source *s, const struct sentmap_packet *p, int again,
                        uint64_t now)
{
    uint32_t flags = (p->last ? SFTP_DATA_LAST : 0) | (blocked_after(s, p) ? SFTP_DATA_ACKME : 0) |
                     (s->resumed ? SFTP_DATA_RESUMED : 0);
    uint32_t sum_len = 0;
    size_t cap;
    uint8_t *buf = s->link.begin(s->link.arg, &cap);
    uint8_t *data;

    /* No buffer, or too small a one: the packet is lost on the way, and
     * recovered like any other loss. */
    if (buf == NULL)
        return;
    if (p->last && s->have_sum) {
        flags |= SFTP_DATA_SUM;
        sum_len = SFTP_SUM_SIZE;
    }
    if (p->last && s->have_named)
        flags |= SFTP_DATA_NAMED;
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
static int waiting_on_sink(const struct sftp_source *s)
{
    return s->started && s->state == SFTP_RUNNING && s->sent.flight.count == 0 &&
           !s->input_waiting && !something_to_send(s);
}

static void plan_probe(struct sftp_source *s, uint64_t now)
{
    if (!waiting_on_sink(s)) {
        s->probe_due = NEVER;
        return;
    }
    if (s->probe_due != NEVER)
        return;
    if (s->probe_interval == 0)
        s->probe_interval = recovery_pto(&s->rec);
    s->probe_due = now + s->probe_interval;
}

static void rearm(struct sftp_source *s, uint64_t now)
{
    uint64_t deadline = recovery_deadline(&s->rec, &s->sent);

    if (something_to_send(s) && !s->input_waiting) {
        uint64_t release = pacer_next_release(&s->pacer, now);

        if (release < deadline)
            deadline = release;
    }
    plan_probe(s, now);
    if (s->probe_due < deadline)
        deadline = s->probe_due;
    sftp_link_arm(&s->link, &s->timer_armed, deadline);
}

/* Sends what the pacer allows now, at most one of its bursts. */
static void pump(struct sftp_source *s, uint64_t now)
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
    rearm(s, now);
}

/* ---- rate policy --------------------------------------------------------- */

static const struct pacer_ops *policy_ops(uint32_t policy)
{
    switch (policy) {
    case SFTP_POLICY_FIXED:
        return &pacer_fixed_ops;
    case SFTP_POLICY_BACKGROUND:
        return &pacer_background_ops;
    default:
        return &pacer_adaptive_ops;
    }
}

int sftp_source_set_rate(struct sftp_source *s, uint32_t policy, uint64_t rate_bps,
                         uint64_t min_rate_bps, uint64_t now)
{
    if (policy > SFTP_POLICY_MAX)
        return RPC2_EINVAL;
    if (policy != SFTP_POLICY_DEFAULT && s->cfg.policies_allowed != 0 &&
        !(s->cfg.policies_allowed & (1u << policy)))
        return RPC2_EINVAL;
    if (policy != SFTP_POLICY_DEFAULT)
        s->cfg.policy = policy;
    s->cfg.rate_bps = rate_bps;
    s->cfg.min_rate_bps = min_rate_bps;
    if (!s->started || s->state != SFTP_RUNNING)
        return 0; /* start applies the configuration */
    pacer_set_policy(&s->pacer, policy_ops(s->cfg.policy), now);
    pacer_set_rates(&s->pacer, rate_bps, min_rate_bps, now);
    rearm(s, now);
    return 0;
}

/* The sink's wish, once per change: what this end allows of it. */
static void apply_wish(struct sftp_source *s, const struct sftp_wish *w, uint64_t now)
{
    if (memcmp(w, &s->last_wish, sizeof(*w)) == 0)
        return;
    s->last_wish = *w;
    if (sftp_source_set_rate(s, w->policy, w->rate, w->min_rate, now) != 0)
        (void)sftp_source_set_rate(s, SFTP_POLICY_DEFAULT, w->rate, w->min_rate, now);
}

void sftp_source_rate_info(const struct sftp_source *s, struct sftp_rate_info *out)
{
    *out = (struct sftp_rate_info){
        .policy = policy_ops(s->cfg.policy)->name,
        .target_bps = s->cfg.rate_bps,
        .min_bps = s->cfg.min_rate_bps,
        .srtt_us = s->rec.rtt.srtt_us,
        .min_rtt_us = s->rec.min_rtt_us,
        .in_flight = s->sent.flight.count,
    };
    if (s->started && s->pacer.ops != NULL) {
        out->rate_bps = pacer_rate(&s->pacer);
        out->cwnd = pacer_cwnd(&s->pacer);
        out->burst = pacer_burst(&s->pacer);
    }
}

/* ---- starting ------------------------------------------------------------ */

void sftp_source_start(struct sftp_source *s, uint64_t now)
{
    struct pacer_params pp;

    if (s->started || s->state != SFTP_RUNNING)
        return;
    s->started = 1;
    s->cfg.send_ahead = sftp_clamp_u32(s->cfg.send_ahead, 1, s->window);
    /* One more than the window: the packet read ahead to spot the end. */
    if (sentmap_init(&s->sent, s->window + 1, s->packet_size) != 0 ||
        ackmap_init(&s->peer, s->window) != 0) {
        fail(s, RPC2_ENOMEM, 1);
        return;
    }
    if (s->lent < s->window)
        bufpool_keep(&s->sent.pool, s->lent + 1);
    pp = (struct pacer_params){
        .packet_size = s->packet_size,
        .send_ahead = s->cfg.send_ahead,
        .ack_point = s->cfg.ack_point,
        .window = s->window,
        .rate_max_bps = s->cfg.rate_max_bps,
        .initial_rtt_us = s->cfg.retry_initial_us,
    };
    pacer_init(&s->pacer, policy_ops(s->cfg.policy), &pp, now);
    pacer_set_rates(&s->pacer, s->cfg.rate_bps, s->cfg.min_rate_bps, now);
    s->delivered_time = s->first_sent_time = now;
    pump(s, now);
}

/* Waiting on the reader with nothing in flight, the sink hears nothing
 * from us and probes: tell it we are here. */
static void answer_if_idle(struct sftp_source *s)
{
    if (s->input_waiting && s->sent.flight.count == 0)
        send_probe(s, 0);
}

/* The sink offers a restart point: the reader confirms it against the
 * file's own bytes or the stream starts at 0 (resume.h). */
int sftp_source_offer(struct sftp_source *s, uint64_t offset, const uint8_t sum[SFTP_SUM_BYTES])
{
    int rc = s->started || !s->reader.confirm ? 0 : s->reader.confirm(s->reader.arg, offset, sum);

    if (rc < 0) {
        fail(s, rc, 1);
        return rc;
    }
    s->resumed = rc == 1;
    return rc;
}

static int confirm_restart(struct sftp_source *s, const struct sftp_start *st)
{
    return sftp_source_offer(s, st->restart, st->restart_sum) >= 0;
}

static void on_start(struct sftp_source *s, uint32_t ts, const uint8_t *body, size_t len,
                     uint64_t now)
{
    struct sftp_start st;

    if (sftp_start_decode(body, len, &st) != PKT_OK)
        return;
    if (s->started) { /* the sink asks again: it has not heard from us */
        answer_if_idle(s);
        return;
    }
    if (st.has_restart && !confirm_restart(s, &st))
        return;
    if (st.window < s->window)
        s->window = st.window;
    if (st.packet_size < s->packet_size)
        s->packet_size = st.packet_size;
    s->echo_ts = ts;
    s->echo_arrival = now;
    sftp_source_start(s, now);
}

/* ---- acknowledgements ---------------------------------------------------- */

static void on_newly_held(void *arg, uint32_t seq)
{
    struct sftp_source *s = arg;
    struct sentmap_packet *p = sentmap_at(&s->sent, seq);

    if (p->where == SENTMAP_FREE || p->seq != seq)
        return;
    s->bytes_acked += p->len;
    s->newly_acked++;
    sentmap_release(&s->sent, p);
}

/* An ACK that names a packet never sent is a broken or forged peer's. */
static int ack_believable(const struct sftp_source *s, const struct sftp_ack *a)
{
    return a->got_them_all < s->next_seq && sftp_ack_highest(a) < s->next_seq;
}

/* The ACK's largest_tx as a full transmission number; 0 when it names
 * none we sent, or one the ACK does not also report as held (a bitmap cut
 * short: what lies beyond it says nothing about what came before). */
static uint64_t acked_tx(const struct sftp_source *s, const struct sftp_ack *a,
                         const struct sentmap_tx **rec)
{
    uint64_t back = (uint32_t)((uint32_t)s->transmissions - a->largest_tx);
    uint64_t tx;

    *rec = NULL;
    if (back >= s->transmissions)
        return 0;
    tx = s->transmissions - back;
    *rec = sentmap_tx_find(&s->sent, tx);
    if (*rec == NULL || !ackmap_holds(&s->peer, (*rec)->seq))
        return *rec = NULL, 0;
    return tx;
}

/* The delivery-rate sample of this ACK, from the transmission it names
 * (rec: NULL when it names no new one: no rate sample). */
static void feed_pacer(struct sftp_source *s, const struct sentmap_tx *rec, uint32_t rtt_us,
                       uint64_t now)
{
    struct pacer_sample ps = {
        .total_delivered = s->delivered,
        .rtt_us = rtt_us,
        .min_rtt_us = s->rec.min_rtt_us,
        .srtt_us = s->rec.rtt.srtt_us,
        .newly_acked = s->newly_acked,
        .in_flight = s->sent.flight.count,
    };

    if (rec != NULL) {
        uint64_t send_elapsed = rec->sent_time - rec->first_sent_time;
        uint64_t ack_elapsed = now - rec->delivered_time;
        uint64_t interval = send_elapsed > ack_elapsed ? send_elapsed : ack_elapsed;

        s->first_sent_time = rec->sent_time;
        ps.prior_delivered = rec->delivered;
        ps.app_limited = rec->app_limited;
        ps.delivered = s->delivered > rec->delivered ? s->delivered - rec->delivered : 0;
        /* Shorter than a round trip: ACK compression, not the path's rate. */
        if (interval >= s->rec.min_rtt_us && interval > 0)
            ps.interval_us = interval;
    }
    pacer_on_ack(&s->pacer, &ps, now);
}

static void judge_losses(struct sftp_source *s, uint64_t now)
{
    struct recovery_verdict v = recovery_detect(&s->rec, &s->sent, now);

    if (v.lost > 0) {
        s->counters.data_lost += v.lost;
        pacer_on_loss(&s->pacer, v.lost, now);
    }
    if (v.timeout_confirmed) {
        s->counters.timeouts_confirmed++;
        pacer_on_timeout(&s->pacer, now);
    }
}

static void note_delivered(struct sftp_source *s, uint64_t delivered, uint64_t now)
{
    /* The sink cannot have more than we sent; a larger claim is capped. */
    if (delivered > s->bytes_read)
        delivered = s->bytes_read;
    if (delivered > s->delivered) {
        s->delivered = delivered;
        s->delivered_time = now;
    }
}

static void on_ack(struct sftp_source *s, uint32_t seq, uint32_t ts, const uint8_t *body,
                   size_t len, uint64_t now)
{
    struct sftp_ack a;
    const struct sentmap_tx *rec;
    uint32_t rtt_us = 0;
    uint32_t window_before;
    uint64_t tx;

    if (!s->started || sftp_ack_decode(body, len, &a) != PKT_OK)
        return;
    s->counters.acks_received++;
    if (waiting_on_sink(s)) /* an answer to our probe, or the sink's own word */
        s->timeouts_in_a_row = 0;
    /* Older than one already seen: everything in it is known. */
    if (s->have_ack_seq && (int32_t)(seq - s->last_ack_seq) <= 0)
        return;
    if (!ack_believable(s, &a))
        return;
    s->newly_acked = 0;
    window_before = window_end(s);
    if (ackmap_merge(&s->peer, a.got_them_all, a.bitmap, a.bitmap_len, on_newly_held, s) != 0)
        return;
    s->peer_window_end = a.window_end;
    if (a.flags & SFTP_ACK_COMPLETE)
        s->peer_complete = 1;
    if (a.flags & SFTP_ACK_WISH)
        apply_wish(s, &a.wish, now);
    if (window_end(s) != window_before || s->newly_acked > 0)
        s->probe_interval = 0; /* the sink moves: probe from scratch next time */
    s->last_ack_seq = seq;
    s->have_ack_seq = 1;
    s->echo_ts = ts;
    s->echo_arrival = now;
    tx = acked_tx(s, &a, &rec);
    if (tx != 0 && tx > s->rec.largest_acked_tx)
        rtt_us = recovery_on_largest(&s->rec, tx, rec->sent_time, a.ack_delay_us, now);
    else
        rec = NULL;
    note_delivered(s, a.delivered, now);
    if (s->newly_acked > 0) {
        s->timeouts_in_a_row = 0;
        s->probe_credit = 0;
        s->rec.last_ack_time = now;
        feed_pacer(s, rec, rtt_us, now);
    }
    judge_losses(s, now);
    if (s->last_seq != 0 && s->peer.got_them_all >= s->last_seq && s->peer_complete) {
        finish(s, SFTP_DONE);
        return;
    }
    if (s->newly_acked == 0)
        answer_if_idle(s);
    pump(s, now);
}

void sftp_source_receive(struct sftp_source *s, uint8_t type, uint32_t seq, uint32_t ts,
                         uint32_t ts_echo, const uint8_t *body, size_t len, uint64_t now)
{
    int32_t error;

    (void)ts_echo; /* RTT samples come from the transmission an ACK names */
    if (s->state != SFTP_RUNNING)
        return;
    switch (type) {
    case PKT_SFTP_START:
        on_start(s, ts, body, len, now);
        break;
    case PKT_SFTP_ACK:
        on_ack(s, seq, ts, body, len, now);
        break;
    case PKT_SFTP_ABORT:
        if (sftp_abort_decode(body, len, &error) == PKT_OK)
            fail(s, error, 0);
        break;
    case PKT_SFTP_PROBE: /* the sink's probes are ACKs and STARTs: not for us */
    default:
        break;
    }
}

/* ---- timers -------------------------------------------------------------- */

/*
 * No ACK for a probe timeout: nothing is judged lost, and the rate stays;
 * the oldest packet in flight goes again, and up to PROBE_PACKETS may go
 * beyond the in-flight limit, so the ACK they bring tells recovery.c what
 * happened (recovery.h).
 */
static void on_pto(struct sftp_source *s, uint64_t now)
{
    struct sentmap_packet *oldest = sentmap_head(&s->sent, &s->sent.flight);

    (void)now;
    s->counters.timeouts++;
    if (++s->timeouts_in_a_row > s->cfg.retry_count) {
        fail(s, RPC2_EDEAD, 1);
        return;
    }
    recovery_on_pto(&s->rec, s->transmissions + 1);
    if (oldest != NULL)
        sentmap_worry(&s->sent, oldest);
    s->probe_credit = PROBE_PACKETS;
}

/* Waiting on the sink: ask it, and count the probes it leaves unanswered. */
static void on_probe_due(struct sftp_source *s, uint64_t now)
{
    s->probe_due = NEVER;
    s->counters.timeouts++;
    if (++s->timeouts_in_a_row > s->cfg.retry_count) {
        fail(s, RPC2_EDEAD, 1);
        return;
    }
    send_probe(s, SFTP_PROBE_ANSWER_ME);
    s->probe_interval = s->probe_interval > s->cfg.retry_max_us / 2 ? s->cfg.retry_max_us
                                                                     : s->probe_interval * 2;
    plan_probe(s, now);
}

void sftp_source_on_timer(struct sftp_source *s, uint64_t now)
{
    if (s->state != SFTP_RUNNING || !s->started)
        return;
    s->timer_armed = NEVER; /* it fired */
    if (s->probe_due <= now) {
        on_probe_due(s, now);
        if (s->state != SFTP_RUNNING)
            return;
    }
    if (s->rec.loss_time <= now)
        judge_losses(s, now);
    else if (recovery_deadline(&s->rec, &s->sent) <= now) {
        on_pto(s, now);
        if (s->state != SFTP_RUNNING)
            return;
    }
    pump(s, now);
}

/* ---- the reader --------------------------------------------------------- */

int sftp_source_waiting_input(const struct sftp_source *s)
{
    return s->state == SFTP_RUNNING && s->input_waiting;
}

void sftp_source_resume(struct sftp_source *s, uint64_t now)
{
    if (s->state != SFTP_RUNNING || !s->started || !s->input_waiting)
        return;
    s->input_waiting = 0;
    pump(s, now);
}

/* ---- the rest of the API ------------------------------------------------- */

/* No new packet goes past the lent window; what is in flight beyond it
 * stays until acknowledged, and its buffers are freed then. A raised
 * limit lets more go at the next ACK (the sink answers probes even while
 * nothing else moves), so nothing needs sending here. */
void sftp_source_limit(struct sftp_source *s, uint32_t packets)
{
    s->lent = packets > 0 ? packets : 1;
    if (s->started && s->state == SFTP_RUNNING)
        bufpool_keep(&s->sent.pool, s->lent + 1);
}

void sftp_source_abort(struct sftp_source *s, int error, uint64_t now)
{
    (void)now;
    if (s->state < 0)
        return;
    fail(s, error < 0 ? error : RPC2_ECANCELED, 1);
}

int sftp_source_state(const struct sftp_source *s)
{
    return s->state;
}

uint64_t sftp_source_bytes(const struct sftp_source *s)
{
    return s->bytes_acked;
}

const struct sftp_counters *sftp_source_counters(const struct sftp_source *s)
{
    return &s->counters;
}

int sftp_source_failed_here(const struct sftp_source *s)
{
    return s->state < 0 && s->failed_here;
}

uint32_t sftp_source_srtt_us(const struct sftp_source *s)
{
    return s->rec.rtt.srtt_us;
}
