/*
 * source_ack.c - what the SFTP source learns of the path: from each ACK,
 * what the sink holds (freed here), an RTT from the transmission it names,
 * the delivery-rate sample the pacer's policy feeds on, and what
 * recovery.c judges lost; from the absence of ACKs, probe timeouts, and
 * the probes of a sink that lets nothing move.
 */
#include "source_impl.h"

#include <rpc2/rpc2.h>

#include "link.h"
#include "wire.h"

/* Packets a probe timeout may send beyond the in-flight limit. */
#define PROBE_PACKETS 2u

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

void source_on_ack(struct sftp_source *s, uint32_t seq, uint32_t ts, const uint8_t *body,
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
    if (source_waiting_on_sink(s)) /* an answer to our probe, or the sink's own word */
        s->timeouts_in_a_row = 0;
    /* Older than one already seen: everything in it is known. */
    if (s->have_ack_seq && (int32_t)(seq - s->last_ack_seq) <= 0)
        return;
    if (!ack_believable(s, &a))
        return;
    s->newly_acked = 0;
    window_before = source_window_end(s);
    if (ackmap_merge(&s->peer, a.got_them_all, a.bitmap, a.bitmap_len, on_newly_held, s) != 0)
        return;
    s->peer_window_end = a.window_end;
    if (a.flags & SFTP_ACK_COMPLETE)
        s->peer_complete = 1;
    if (a.flags & SFTP_ACK_WISH)
        source_apply_wish(s, &a.wish, now);
    if (source_window_end(s) != window_before || s->newly_acked > 0)
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
        source_finish(s, SFTP_DONE);
        return;
    }
    if (s->newly_acked == 0)
        source_answer_if_idle(s);
    source_pump(s, now);
}

/* ---- timers -------------------------------------------------------------- */

/*
 * No ACK for a probe timeout: nothing is judged lost, and the rate stays;
 * the oldest packet in flight goes again, and up to PROBE_PACKETS may go
 * beyond the in-flight limit, so the ACK they bring tells recovery.c what
 * happened (recovery.h).
 */
static void on_pto(struct sftp_source *s)
{
    struct sentmap_packet *oldest = sentmap_head(&s->sent, &s->sent.flight);

    s->counters.timeouts++;
    if (++s->timeouts_in_a_row > s->cfg.retry_count) {
        source_fail(s, RPC2_EDEAD, 1);
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
    s->probe_due = SOURCE_NEVER;
    s->counters.timeouts++;
    if (++s->timeouts_in_a_row > s->cfg.retry_count) {
        source_fail(s, RPC2_EDEAD, 1);
        return;
    }
    source_send_probe(s, SFTP_PROBE_ANSWER_ME);
    s->probe_interval =
        s->probe_interval > s->cfg.retry_max_us / 2 ? s->cfg.retry_max_us : s->probe_interval * 2;
    source_plan_probe(s, now);
}

void sftp_source_on_timer(struct sftp_source *s, uint64_t now)
{
    if (s->state != SFTP_RUNNING || !s->started)
        return;
    s->timer_armed = SOURCE_NEVER; /* it fired */
    if (s->probe_due <= now) {
        on_probe_due(s, now);
        if (s->state != SFTP_RUNNING)
            return;
    }
    if (s->rec.loss_time <= now)
        judge_losses(s, now);
    else if (recovery_deadline(&s->rec, &s->sent) <= now) {
        on_pto(s);
        if (s->state != SFTP_RUNNING)
            return;
    }
    source_pump(s, now);
}
