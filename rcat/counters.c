/*
 * counters.c - the context's counters, logged and published. The log line
 * names every counter as struct rpc2_ctx_stats does (name=value), so that
 * scripts can pick what they need; the periodic line is left out while
 * nothing changed, so that an idle server does not fill its log.
 */
#include <inttypes.h>
#include <string.h>

#include "counters.h"

#define METRICS_PUBLISH_S 1.0 /* how stale the context's counters on /metrics may be */

void counters_log(struct counters *c, const char *why)
{
    struct rpc2_ctx_stats st;

    rpc2_ctx_stats(c->ctx, &st);
    logfile_printf(
        c->log,
        "rcatd: stats (%s) connections=%" PRIu64 " connections_half_open=%" PRIu64
        " requests_running=%" PRIu64 " saved_reply_bytes=%" PRIu64 " packets_received=%" PRIu64
        " bytes_received=%" PRIu64 " packets_sent=%" PRIu64 " bytes_sent=%" PRIu64
        " rx_dropped=%" PRIu64 " rejected_short=%" PRIu64 " rejected_version=%" PRIu64
        " rejected_type=%" PRIu64 " rejected_length=%" PRIu64 " rejected_flags=%" PRIu64
        " rejected_check=%" PRIu64 " rejected_unknown_conn=%" PRIu64 " rejected_other=%" PRIu64
        " binds_accepted=%" PRIu64 " binds_refused=%" PRIu64 " binds_refused_limit=%" PRIu64
        " binds_refused_address=%" PRIu64 " binds_cookie_missing=%" PRIu64
        " binds_cookie_bad=%" PRIu64 " binds_cookie_stale=%" PRIu64 " cookies_sent=%" PRIu64
        " unbinds=%" PRIu64 " connections_expired=%" PRIu64 " calls_executed=%" PRIu64
        " calls_deferred=%" PRIu64 " calls_deferred_identity=%" PRIu64
        " calls_deferred_address=%" PRIu64 " transfers_stalled=%" PRIu64
        " duplicate_requests=%" PRIu64 " replies_not_saved=%" PRIu64 " rejected_auth=%" PRIu64
        " rejected_replay=%" PRIu64 " binds_refused_auth=%" PRIu64 " list_names_read=%" PRIu64
        " announces_sent=%" PRIu64,
        why, st.connections, st.connections_half_open, st.requests_running, st.saved_reply_bytes,
        st.packets_received, st.bytes_received, st.packets_sent, st.bytes_sent, st.rx_dropped,
        st.rejected_short, st.rejected_version, st.rejected_type, st.rejected_length,
        st.rejected_flags, st.rejected_check, st.rejected_unknown_conn, st.rejected_other,
        st.binds_accepted, st.binds_refused, st.binds_refused_limit, st.binds_refused_address,
        st.binds_cookie_missing, st.binds_cookie_bad, st.binds_cookie_stale, st.cookies_sent,
        st.unbinds, st.connections_expired, st.calls_executed, st.calls_deferred,
        st.calls_deferred_identity, st.calls_deferred_address, st.transfers_stalled,
        st.duplicate_requests, st.replies_not_saved, st.rejected_auth, st.rejected_replay,
        st.binds_refused_auth, serve_list_names_read(c->serve), st.announces_sent);
    c->last_logged = st;
}

static void on_interval(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct counters *c = w->data;
    struct rpc2_ctx_stats st;

    (void)loop, (void)revents;
    rpc2_ctx_stats(c->ctx, &st);
    if (memcmp(&st, &c->last_logged, sizeof st) != 0)
        counters_log(c, "interval");
}

/* Copied from the loop thread, for the HTTP thread to read. */
static void on_publish(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct counters *c = w->data;
    struct rpc2_ctx_stats st;

    (void)loop, (void)revents;
    rpc2_ctx_stats(c->ctx, &st);
    metrics_set_ctx(c->metrics, &st);
}

void counters_start(struct counters *c, unsigned long interval_s)
{
    c->started = 1;
    ev_timer_init(&c->interval, on_interval, (double)interval_s, (double)interval_s);
    c->interval.data = c;
    if (interval_s > 0)
        ev_timer_start(c->loop, &c->interval);
    ev_timer_init(&c->publish, on_publish, 0., METRICS_PUBLISH_S);
    c->publish.data = c;
    if (!c->metrics)
        return;
    ev_timer_start(c->loop, &c->publish);
    logfile_printf(c->log, "rcatd: metrics on http://%s/metrics", metrics_where(c->metrics));
}

void counters_stop(struct counters *c)
{
    if (!c->started)
        return;
    ev_timer_stop(c->loop, &c->interval);
    ev_timer_stop(c->loop, &c->publish);
}
