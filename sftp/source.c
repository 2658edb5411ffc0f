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
 * This file owns the source's life: creating it, starting it, the packets
 * it receives, failing and finishing. The rest is split by concern
 * (source_impl.h): reading, sending, ACKs and timers, the rate policy.
 */
#include "source_impl.h"

#include <stdlib.h>

#include <rpc2/rpc2.h>

#include "link.h"
#include "wire.h"

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
    s->timer_armed = SOURCE_NEVER;
    s->probe_due = SOURCE_NEVER;
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

/* ---- ending -------------------------------------------------------------- */

void source_send_probe(struct sftp_source *s, uint32_t flags)
{
    size_t cap, len;
    uint8_t *buf = s->link.begin(s->link.arg, &cap);

    if (buf != NULL && sftp_probe_encode(flags, buf, cap, &len) == PKT_OK) {
        s->link.commit(s->link.arg, PKT_SFTP_PROBE, 0, 0, 0, len);
        s->counters.probes_sent++;
    }
}

void source_finish(struct sftp_source *s, int state)
{
    s->state = state;
    sentmap_trim(&s->sent);
    sftp_link_arm(&s->link, &s->timer_armed, SOURCE_NEVER);
}

void source_fail(struct sftp_source *s, int error, int tell_peer)
{
    s->failed_here = tell_peer; /* not the peer's ABORT: this end's own failure */
    if (tell_peer)
        sftp_link_abort(&s->link, error);
    source_finish(s, error);
}

/* ---- starting ------------------------------------------------------------ */

void sftp_source_start(struct sftp_source *s, uint64_t now)
{
    struct pacer_params pp;

    if (s->started || s->state != SFTP_RUNNING)
        return;
    s->started = 1;
    s->cfg.send_ahead = sftp_clamp_u32(s->cfg.send_ahead, 1, s->window);
    /* One more than the window: the packet read ahead to spot the end.
     * With a link that takes lent bodies, each buffer has room for the
     * datagram around its data (source_send.c). */
    if (sentmap_init(&s->sent, s->window + 1, s->packet_size, s->link.lend ? SOURCE_HEADROOM : 0,
                     s->link.lend ? SFTP_LEND_TAILROOM : 0) != 0 ||
        ackmap_init(&s->peer, s->window) != 0) {
        source_fail(s, RPC2_ENOMEM, 1);
        return;
    }
    s->sent.lender = (struct sentmap_lender){s->link.unpin, s->link.arg};
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
    pacer_init(&s->pacer, source_policy_ops(s->cfg.policy), &pp, now);
    pacer_set_rates(&s->pacer, s->cfg.rate_bps, s->cfg.min_rate_bps, now);
    s->delivered_time = s->first_sent_time = now;
    source_pump(s, now);
}

/* Waiting on the reader with nothing in flight, the sink hears nothing
 * from us and probes: tell it we are here. */
void source_answer_if_idle(struct sftp_source *s)
{
    if (s->input_waiting && s->sent.flight.count == 0)
        source_send_probe(s, 0);
}

/* The sink offers a restart point: the reader confirms it against the
 * file's own bytes or the stream starts at 0 (resume.h). */
int sftp_source_offer(struct sftp_source *s, uint64_t offset, const uint8_t sum[SFTP_SUM_BYTES])
{
    int rc = s->started || !s->reader.confirm ? 0 : s->reader.confirm(s->reader.arg, offset, sum);

    if (rc < 0) {
        source_fail(s, rc, 1);
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
        source_answer_if_idle(s);
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

/* ---- what arrives -------------------------------------------------------- */

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
        source_on_ack(s, seq, ts, body, len, now);
        break;
    case PKT_SFTP_ABORT:
        if (sftp_abort_decode(body, len, &error) == PKT_OK)
            source_fail(s, error, 0);
        break;
    case PKT_SFTP_PROBE: /* the sink's probes are ACKs and STARTs: not for us */
    default:
        break;
    }
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
    source_pump(s, now);
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
    source_fail(s, error < 0 ? error : RPC2_ECANCELED, 1);
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
