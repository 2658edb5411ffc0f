/*
 * ccsim.c - the in-memory network of ccsim.h.
 */
#include "ccsim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include <rpc2/rpc2.h>
#include <rpc2/sftp.h>

#include "params.h"
#include "wire.h"

#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #cond);                                  \
    } while (0)

static struct dgram *dgram_new(struct sim *s)
{
    struct dgram *d = s->free_list;

    if (d != NULL) {
        s->free_list = d->next_free;
        return d;
    }
    d = malloc(sizeof(*d));
    REQUIRE(d != NULL);
    return d;
}

static void dgram_free(struct sim *s, struct dgram *d)
{
    d->next_free = s->free_list;
    s->free_list = d;
}

size_t bucket_of(const struct sim *s, uint64_t t)
{
    size_t b = (size_t)((t - START_TIME) / BUCKET_US);

    return b < s->buckets ? b : s->buckets - 1;
}

/* ---- what the machines see ------------------------------------------------- */

static ssize_t reader_read(void *arg, uint8_t *buf, size_t len)
{
    (void)arg;
    memset(buf, 0x5a, len < 16 ? len : 16); /* the bytes are not what is tested */
    return (ssize_t)len;
}

static int writer_write(void *arg, uint64_t pos, const uint8_t *data, size_t len)
{
    struct flow *f = arg;

    (void)pos;
    (void)data;
    f->written += len;
    f->written_by_bucket[bucket_of(f->sim, f->sim->now)] += len;
    return 0;
}

static uint8_t *link_begin(void *arg, size_t *cap)
{
    struct endpoint *ep = arg;

    if (ep->pending == NULL)
        ep->pending = dgram_new(ep->flow->sim);
    *cap = BODY_ROOM;
    return ep->pending->body;
}

/*
 * The loop's timers as libev's epoll backend gives them: a deadline already
 * passed fires at once, any other sleeps whole milliseconds, at least one
 * (a pacing release due in 12 us comes a millisecond later). Exact timers
 * would hide a pacer whose bursts are too small for the rate.
 */
static void link_set_timer(void *arg, uint64_t deadline)
{
    struct endpoint *ep = arg;
    uint64_t now = ep->flow->sim->now;

    if (deadline != NEVER && deadline > now)
        deadline = now + (deadline - now + MS - 1) / MS * MS;
    ep->timer = deadline;
}

static void link_commit(void *arg, uint8_t type, uint8_t flags, uint32_t seq, uint32_t ts_echo,
                        size_t len)
{
    struct endpoint *ep = arg;
    struct flow *f = ep->flow;
    struct sim *s = f->sim;
    struct dgram *d = ep->pending;
    uint64_t at, full_before;

    REQUIRE(d != NULL && len <= BODY_ROOM);
    ep->pending = NULL;
    /* The body is already written: only the header fields are set here. */
    d->flow = f;
    d->to_sink = ep->is_source;
    d->type = type;
    d->flags = flags;
    d->seq = seq;
    d->ts = (uint32_t)s->now != 0 ? (uint32_t)s->now : 1;
    d->ts_echo = ts_echo;
    d->len = len;
    if (type == PKT_SFTP_DATA) {
        f->data_bytes_sent += len - SFTP_DATA_HEAD;
        f->sent_by_bucket[bucket_of(s, s->now)] += len - SFTP_DATA_HEAD;
    }
    if (ep->is_source) {
        size_t b = bucket_of(s, s->now);
        uint64_t wait = bn_link_queue_delay(&s->fwd, s->now);

        if (wait > s->queue_us_by_bucket[b])
            s->queue_us_by_bucket[b] = wait;
    }
    full_before = s->fwd.dropped_full;
    at = bn_link_send(ep->is_source ? &s->fwd : &s->rev, s->now, (uint32_t)len + BN_OVERHEAD);
    if (s->fwd.dropped_full > full_before)
        s->drops_by_bucket[bucket_of(s, s->now)]++;
    if (at == BN_NEVER) {
        dgram_free(s, d);
        return;
    }
    d->arrival.at = at;
    d->arrival.order = s->order++;
    arrivals_push(&s->arrivals, &d->arrival);
}

/* ---- running --------------------------------------------------------------- */

struct sftp_config sim_config(void)
{
    struct rpc2_sftp_params p;

    rpc2_sftp_params_init(&p);
    return sftp_config_of(&p, PACKET, sftp_choose_window(&p, PACKET));
}

void sim_init(struct sim *s, const struct profile *pr, uint64_t seed)
{
    memset(s, 0, sizeof(*s));
    s->now = START_TIME;
    s->end = START_TIME + pr->run_us;
    s->buckets = (size_t)(pr->run_us / BUCKET_US) + 2;
    s->queue_us_by_bucket = calloc(s->buckets, sizeof(uint64_t));
    s->drops_by_bucket = calloc(s->buckets, sizeof(uint64_t));
    REQUIRE(s->queue_us_by_bucket != NULL && s->drops_by_bucket != NULL);
    /* The queue holds one bandwidth-delay product, as in the WAN bench. */
    bn_link_init(&s->fwd, pr->rate, pr->rtt_us / 2,
                 pr->rate * pr->rtt_us / SEC > 64000 ? pr->rate * pr->rtt_us / SEC : 64000,
                 pr->loss, seed);
    bn_link_init(&s->rev, 0, pr->rtt_us / 2, 0, pr->loss, seed * 7 + 3);
}

struct flow *flow_add(struct sim *s, const struct sftp_config *cfg, uint64_t start_at)
{
    struct flow *f = &s->flows[s->nflows++];
    struct sftp_link src_link = {
        .begin = link_begin, .commit = link_commit, .set_timer = link_set_timer, .arg = &f->src_ep};
    struct sftp_link snk_link = {
        .begin = link_begin, .commit = link_commit, .set_timer = link_set_timer, .arg = &f->snk_ep};
    struct sftp_reader reader = {.read = reader_read, .arg = f};
    struct sftp_writer writer = {.write = writer_write, .arg = f};

    f->sim = s;
    f->src_ep = (struct endpoint){f, 1, NEVER, NULL};
    f->snk_ep = (struct endpoint){f, 0, NEVER, NULL};
    f->started_at = start_at;
    f->written_by_bucket = calloc(s->buckets, sizeof(uint64_t));
    f->sent_by_bucket = calloc(s->buckets, sizeof(uint64_t));
    f->src = sftp_source_new(cfg, &src_link, &reader);
    f->snk = sftp_sink_new(cfg, &snk_link, &writer);
    REQUIRE(f->src && f->snk && f->written_by_bucket && f->sent_by_bucket);
    f->src_ep.timer = start_at; /* the first timer starts it */
    return f;
}

void sim_free(struct sim *s)
{
    struct dgram *d;
    int i;

    while (s->arrivals.len > 0)
        dgram_free(s, (struct dgram *)arrivals_pop(&s->arrivals));
    for (i = 0; i < s->nflows; i++) {
        struct flow *f = &s->flows[i];

        free(f->src_ep.pending);
        free(f->snk_ep.pending);
        sftp_source_free(f->src);
        sftp_sink_free(f->snk);
        free(f->written_by_bucket);
        free(f->sent_by_bucket);
    }
    while ((d = s->free_list) != NULL) {
        s->free_list = d->next_free;
        free(d);
    }
    arrivals_dispose(&s->arrivals);
    free(s->queue_us_by_bucket);
    free(s->drops_by_bucket);
    bn_link_dispose(&s->fwd);
    bn_link_dispose(&s->rev);
    if (s->reno_used)
        bn_reno_dispose(&s->reno);
}

/* A probe timeout counts against us when an ACK came within the last
 * smoothed RTT: ACKs were arriving. */
static void check_timeouts(struct flow *f)
{
    uint64_t t = sftp_source_counters(f->src)->timeouts;

    if (t > f->timeouts_seen && f->last_ack_at != 0 &&
        f->sim->now - f->last_ack_at < sftp_source_srtt_us(f->src))
        f->timeouts_with_acks += t - f->timeouts_seen;
    f->timeouts_seen = t;
}

static void source_timer(struct flow *f)
{
    struct sim *s = f->sim;

    f->src_ep.timer = NEVER;
    if (s->now == f->started_at && sftp_source_state(f->src) == SFTP_RUNNING &&
        sftp_source_counters(f->src)->data_sent == 0) {
        sftp_sink_start(f->snk, 0, s->now);
        sftp_source_start(f->src, s->now);
        return;
    }
    sftp_source_on_timer(f->src, s->now);
    check_timeouts(f);
}

static void deliver(struct sim *s, struct dgram *d)
{
    struct flow *f = d->flow;

    if (d->to_sink) {
        sftp_sink_receive(f->snk, d->type, d->flags, d->seq, d->ts, d->ts_echo, d->body, d->len,
                          s->now);
    } else {
        if (d->type == PKT_SFTP_ACK)
            f->last_ack_at = s->now;
        sftp_source_receive(f->src, d->type, d->seq, d->ts, d->ts_echo, d->body, d->len, s->now);
    }
    dgram_free(s, d);
}

/* One event; 0 when the clock passed until. */
static int step(struct sim *s, uint64_t until)
{
    uint64_t t = arrivals_next_at(&s->arrivals);
    uint64_t reno = s->reno_used ? bn_reno_next(&s->reno) : NEVER;
    struct endpoint *ep = NULL;
    int i;

    if (s->reno_used && !s->reno.running && s->reno_start < reno)
        reno = s->reno_start;
    for (i = 0; i < s->nflows; i++) {
        if (s->flows[i].src_ep.timer < t && s->flows[i].src_ep.timer <= reno)
            t = s->flows[i].src_ep.timer, ep = &s->flows[i].src_ep;
        if (s->flows[i].snk_ep.timer < t && s->flows[i].snk_ep.timer <= reno)
            t = s->flows[i].snk_ep.timer, ep = &s->flows[i].snk_ep;
    }
    if (reno < t)
        t = reno, ep = NULL;
    if (t > until || t == NEVER)
        return 0;
    if (t > s->now)
        s->now = t;
    if (ep != NULL && ep->is_source) {
        source_timer(ep->flow);
    } else if (ep != NULL) {
        ep->timer = NEVER;
        sftp_sink_on_timer(ep->flow->snk, s->now);
    } else if (reno == t && arrivals_next_at(&s->arrivals) > t) {
        if (!s->reno.running)
            bn_reno_start(&s->reno, s->now);
        else
            bn_reno_run(&s->reno, s->now);
    } else {
        deliver(s, (struct dgram *)arrivals_pop(&s->arrivals));
    }
    return 1;
}

void run_until(struct sim *s, uint64_t until)
{
    while (step(s, until))
        ;
    s->now = until;
}

/* Bytes per second written by the sink (or sent by the source) in [t0, t1). */
double rate_of(const struct sim *s, const uint64_t *buckets, uint64_t t0, uint64_t t1)
{
    size_t b0 = bucket_of(s, t0), b1 = bucket_of(s, t1), i;
    uint64_t sum = 0;

    for (i = b0; i < b1; i++)
        sum += buckets[i];
    return b1 > b0 ? (double)sum * SEC / (double)((b1 - b0) * BUCKET_US) : 0;
}

/* When the goodput over a sliding span first reached share of rate. */
uint64_t reached_at(const struct sim *s, const struct flow *f, double rate, uint64_t span)
{
    uint64_t t;

    for (t = START_TIME + span; t <= s->end; t += BUCKET_US)
        if (rate_of(s, f->written_by_bucket, t - span, t) >= rate)
            return t;
    return NEVER;
}

int tracing(void)
{
    return getenv("SFTP_TEST_TRACE") != NULL;
}
