/*
 * metrics.c - rcatd's counters in the Prometheus text exposition format
 * (version 0.0.4), served at /metrics by libmicrohttpd on its own thread.
 *
 * What a scrape sees comes from two places: the calls serve.c reports as
 * they start and end (counted here, under the lock, from worker threads),
 * and a copy of rpc2_ctx_stats that the loop thread publishes once a second
 * (the context's counters are loop-thread state: read anywhere else they
 * could tear). The HTTP thread only renders, under the same lock.
 *
 * Label values are bounded: procedures and statuses are a small fixed set;
 * identities are the clients' to choose at security level none, so past
 * IDENTITY_MAX distinct ones the rest are counted as "_other" (a flood of
 * names must not grow the page or the memory without bound).
 *
 * Rate and duration are per call; the round trip is per streamed transfer,
 * as its STOP event (rpc2/event.h) gives it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <microhttpd.h>

#define CALL_KEYS_MAX 256  /* (proc, status) pairs; more are "other" */
#define IDENTITY_MAX 1024  /* distinct identities with totals of their own */
#define LABEL_MAX 96       /* bytes of a label value kept */
#define HTTP_CONNECTIONS 8 /* scrapers at once */
#define HTTP_TIMEOUT_S 10

static const double rate_bounds[] = {1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10}; /* bytes/s */
static const double duration_bounds[] = {0.001, 0.01, 0.1, 1, 10, 60, 600}; /* s */
static const double rtt_bounds[] = {0.0001, 0.001, 0.005, 0.02, 0.1, 0.5, 2}; /* s */
#define RATE_BUCKETS (sizeof rate_bounds / sizeof rate_bounds[0])
#define DURATION_BUCKETS (sizeof duration_bounds / sizeof duration_bounds[0])
#define RTT_BUCKETS (sizeof rtt_bounds / sizeof rtt_bounds[0])
_Static_assert(RATE_BUCKETS < 8 && DURATION_BUCKETS < 8 && RTT_BUCKETS < 8,
               "struct histogram has 8 buckets");

struct call_key {
    char proc[16], status[40];
    uint64_t count;
};

struct identity {
    char name[LABEL_MAX];
    uint64_t calls, bytes;
};

struct histogram {
    uint64_t bucket[8]; /* per bucket (summed when rendered); the last is +Inf */
    uint64_t count;
    double sum;
};

struct metrics {
    struct MHD_Daemon *http;
    char where[80];

    pthread_mutex_t lock;
    struct call_key calls[CALL_KEYS_MAX];
    size_t n_calls;
    struct identity *ids;
    size_t n_ids;
    struct identity id_other;
    uint64_t calls_running, transfers_running;
    uint64_t bytes_out, bytes_in; /* file bytes: FETCH out, STORE in */
    struct histogram rate, duration, rtt;
    struct rpc2_ctx_stats ctx;
    int have_ctx;
};

/* ---- counting ---------------------------------------------------------------- */

static int is_transfer(const char *proc)
{
    return !strcmp(proc, "FETCH") || !strcmp(proc, "FETCH_BATCH") || !strcmp(proc, "STORE");
}

/* A label value as the format allows and a reader can use: printable
 * ASCII, with \ and " escaped at render time; any other byte becomes '?'. */
static void label_of(const char *in, char *out, size_t cap)
{
    size_t o = 0;

    if (!in || !*in)
        in = "(none)";
    for (; *in && o + 1 < cap; in++)
        out[o++] = *in >= 0x20 && *in < 0x7f ? *in : '?';
    out[o] = '\0';
}

static void count_call(struct metrics *m, const char *proc, const char *status)
{
    char p[sizeof m->calls[0].proc], s[sizeof m->calls[0].status];
    size_t i;

    label_of(proc, p, sizeof p);
    label_of(status, s, sizeof s);
    for (i = 0; i < m->n_calls; i++)
        if (!strcmp(m->calls[i].proc, p) && !strcmp(m->calls[i].status, s))
            break;
    if (i == m->n_calls) {
        if (m->n_calls == CALL_KEYS_MAX) {
            i = CALL_KEYS_MAX - 1; /* the last slot takes the rest */
            snprintf(m->calls[i].status, sizeof m->calls[i].status, "other");
        } else {
            m->n_calls++;
            memcpy(m->calls[i].proc, p, sizeof p);
            memcpy(m->calls[i].status, s, sizeof s);
        }
    }
    m->calls[i].count++;
}

static struct identity *identity_slot(struct metrics *m, const char *identity)
{
    char name[LABEL_MAX];

    label_of(identity, name, sizeof name);
    for (size_t i = 0; i < m->n_ids; i++)
        if (!strcmp(m->ids[i].name, name))
            return &m->ids[i];
    if (m->n_ids == IDENTITY_MAX)
        return &m->id_other;
    struct identity *id = &m->ids[m->n_ids++];
    memcpy(id->name, name, sizeof name);
    return id;
}

static void observe(struct histogram *h, const double *bounds, size_t n, double v)
{
    size_t i = 0;

    while (i < n && v > bounds[i])
        i++;
    h->bucket[i]++;
    h->count++;
    h->sum += v;
}

void metrics_call_begin(struct metrics *m, const char *proc)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    m->calls_running++;
    if (is_transfer(proc))
        m->transfers_running++;
    pthread_mutex_unlock(&m->lock);
}

void metrics_call_end(struct metrics *m, const struct metrics_call *c)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    m->calls_running--;
    count_call(m, c->proc, c->status);
    struct identity *id = identity_slot(m, c->identity);
    id->calls++;
    id->bytes += c->bytes;
    observe(&m->duration, duration_bounds, DURATION_BUCKETS, c->seconds);
    if (is_transfer(c->proc)) {
        m->transfers_running--;
        if (strcmp(c->proc, "STORE") != 0) /* FETCH, FETCH_BATCH */
            m->bytes_out += c->bytes;
        else
            m->bytes_in += c->bytes;
        if (c->bytes > 0 && c->seconds > 0)
            observe(&m->rate, rate_bounds, RATE_BUCKETS, (double)c->bytes / c->seconds);
        if (c->rtt_seconds > 0)
            observe(&m->rtt, rtt_bounds, RTT_BUCKETS, c->rtt_seconds);
    }
    pthread_mutex_unlock(&m->lock);
}

void metrics_set_ctx(struct metrics *m, const struct rpc2_ctx_stats *st)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    m->ctx = *st;
    m->have_ctx = 1;
    pthread_mutex_unlock(&m->lock);
}

/* ---- rendering ----------------------------------------------------------------- */

struct page {
    char *buf;
    size_t len, cap;
    int failed;
};

static void put(struct page *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct page *p, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (p->failed)
        return;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(p->buf + p->len, p->cap - p->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            p->failed = 1;
            return;
        }
        if ((size_t)n < p->cap - p->len) {
            p->len += (size_t)n;
            return;
        }
        size_t cap = p->cap * 2 + (size_t)n;
        char *b = realloc(p->buf, cap);
        if (!b) {
            p->failed = 1;
            return;
        }
        p->buf = b;
        p->cap = cap;
    }
}

/* A label value with \ and " escaped (label_of left nothing else to). */
static void put_label(struct page *p, const char *v)
{
    for (; *v; v++)
        put(p, *v == '\\' || *v == '"' ? "\\%c" : "%c", *v);
}

static void head(struct page *p, const char *name, const char *type, const char *help)
{
    put(p, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void scalar(struct page *p, const char *name, const char *type, const char *help,
                   uint64_t v)
{
    head(p, name, type, help);
    put(p, "%s %" PRIu64 "\n", name, v);
}

/* One metric with one label, from (value, count) pairs. */
struct labelled {
    const char *label;
    uint64_t v;
};

static void by_label(struct page *p, const char *name, const char *help, const char *label,
                     const struct labelled *rows, size_t n)
{
    head(p, name, "counter", help);
    for (size_t i = 0; i < n; i++)
        put(p, "%s{%s=\"%s\"} %" PRIu64 "\n", name, label, rows[i].label, rows[i].v);
}

static void histogram(struct page *p, const char *name, const char *help,
                      const struct histogram *h, const double *bounds, size_t n)
{
    uint64_t cum = 0;

    head(p, name, "histogram", help);
    for (size_t i = 0; i < n; i++) {
        cum += h->bucket[i];
        put(p, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, bounds[i], cum);
    }
    put(p, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, h->count);
    put(p, "%s_sum %.17g\n%s_count %" PRIu64 "\n", name, h->sum, name, h->count);
}

static void render_calls(struct metrics *m, struct page *p)
{
    head(p, "rcatd_calls_total", "counter", "Calls served, by procedure and outcome.");
    for (size_t i = 0; i < m->n_calls; i++) {
        put(p, "rcatd_calls_total{proc=\"");
        put_label(p, m->calls[i].proc);
        put(p, "\",status=\"");
        put_label(p, m->calls[i].status);
        put(p, "\"} %" PRIu64 "\n", m->calls[i].count);
    }
    scalar(p, "rcatd_calls_running", "gauge", "Calls inside a handler now.", m->calls_running);
    scalar(p, "rcatd_transfers_running", "gauge", "FETCH and STORE calls inside a handler now.",
           m->transfers_running);
    const struct labelled bytes[] = {{"out", m->bytes_out}, {"in", m->bytes_in}};
    by_label(p, "rcatd_transfer_bytes_total",
             "File bytes moved by finished calls: out by FETCH, in by STORE.", "direction", bytes,
             2);
    histogram(p, "rcatd_transfer_rate_bytes_per_second",
              "Per FETCH or STORE that moved bytes: bytes over the call's duration.", &m->rate,
              rate_bounds, RATE_BUCKETS);
    histogram(p, "rcatd_call_duration_seconds", "Per call: time inside the handler.",
              &m->duration, duration_bounds, DURATION_BUCKETS);
    histogram(p, "rcatd_transfer_rtt_seconds",
              "Per streamed FETCH or STORE: the smoothed round trip it ended with.", &m->rtt,
              rtt_bounds, RTT_BUCKETS);
}

static void render_identity(struct page *p, const char *metric, const struct identity *id,
                            uint64_t v)
{
    put(p, "%s{identity=\"", metric);
    put_label(p, id->name);
    put(p, "\"} %" PRIu64 "\n", v);
}

static void render_identities(struct metrics *m, struct page *p)
{
    int other = m->id_other.calls > 0;

    head(p, "rcatd_identity_calls_total", "counter",
         "Calls by client identity (claimed, not proved, at security level none).");
    for (size_t i = 0; i < m->n_ids; i++)
        render_identity(p, "rcatd_identity_calls_total", &m->ids[i], m->ids[i].calls);
    if (other)
        render_identity(p, "rcatd_identity_calls_total", &m->id_other, m->id_other.calls);
    head(p, "rcatd_identity_bytes_total", "counter", "File bytes moved, by client identity.");
    for (size_t i = 0; i < m->n_ids; i++)
        render_identity(p, "rcatd_identity_bytes_total", &m->ids[i], m->ids[i].bytes);
    if (other)
        render_identity(p, "rcatd_identity_bytes_total", &m->id_other, m->id_other.bytes);
}

static void render_ctx(const struct rpc2_ctx_stats *st, struct page *p)
{
    const struct labelled rejected[] = {
        {"short", st->rejected_short},     {"version", st->rejected_version},
        {"type", st->rejected_type},       {"length", st->rejected_length},
        {"flags", st->rejected_flags},     {"check", st->rejected_check},
        {"auth", st->rejected_auth},       {"replay", st->rejected_replay},
        {"unknown_conn", st->rejected_unknown_conn}, {"other", st->rejected_other},
    };
    const struct labelled refused[] = {
        {"max_connections", st->binds_refused_limit},
        {"max_per_address", st->binds_refused_address},
        {"auth", st->binds_refused_auth},
    };
    const struct labelled cookies[] = {
        {"missing", st->binds_cookie_missing},
        {"bad", st->binds_cookie_bad},
        {"stale", st->binds_cookie_stale},
    };

    scalar(p, "rcatd_network_received_bytes_total", "counter", "UDP payload bytes received.",
           st->bytes_received);
    scalar(p, "rcatd_network_sent_bytes_total", "counter", "UDP payload bytes sent.",
           st->bytes_sent);
    scalar(p, "rcatd_packets_received_total", "counter", "Datagrams received.",
           st->packets_received);
    scalar(p, "rcatd_packets_sent_total", "counter", "Datagrams sent.", st->packets_sent);
    scalar(p, "rcatd_packets_dropped_total", "counter",
           "Datagrams the kernel dropped on the sockets (receive buffer full).", st->rx_dropped);
    by_label(p, "rcatd_packets_rejected_total", "Datagrams refused, by reason.", "reason",
             rejected, sizeof rejected / sizeof rejected[0]);
    scalar(p, "rcatd_binds_accepted_total", "counter", "Connections accepted.",
           st->binds_accepted);
    scalar(p, "rcatd_binds_refused_total", "counter", "Binds refused, for any reason.",
           st->binds_refused);
    by_label(p, "rcatd_binds_refused_reason_total",
             "Binds refused for a limit or for authentication.", "reason", refused,
             sizeof refused / sizeof refused[0]);
    by_label(p, "rcatd_binds_cookie_challenged_total",
             "Binds answered with a cookie to prove their address, by what was wrong.", "reason",
             cookies, sizeof cookies / sizeof cookies[0]);
    scalar(p, "rcatd_connections", "gauge", "Connections held now.", st->connections);
    scalar(p, "rcatd_connections_half_open", "gauge", "Connections not yet confirmed.",
           st->connections_half_open);
    scalar(p, "rcatd_connections_expired_total", "counter", "Connections dropped as idle.",
           st->connections_expired);
    scalar(p, "rcatd_calls_deferred_total", "counter",
           "Calls kept waiting (BUSY) because --max-running calls ran.", st->calls_deferred);
    scalar(p, "rcatd_duplicate_requests_total", "counter",
           "Retransmitted requests answered from the saved reply.", st->duplicate_requests);
}

char *metrics_render(struct metrics *m, size_t *len)
{
    struct page p = {.cap = 8192};

    p.buf = malloc(p.cap);
    if (!p.buf)
        return NULL;
    p.buf[0] = '\0';
    pthread_mutex_lock(&m->lock);
    render_calls(m, &p);
    render_identities(m, &p);
    if (m->have_ctx)
        render_ctx(&m->ctx, &p);
    pthread_mutex_unlock(&m->lock);
    if (p.failed) {
        free(p.buf);
        return NULL;
    }
    *len = p.len;
    return p.buf;
}

/* ---- HTTP ------------------------------------------------------------------------ */

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned code, const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    enum MHD_Result rc = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct metrics *m = cls;
    size_t len;

    (void)version, (void)upload_data, (void)con_cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
        return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "GET /metrics\n");
    if (*upload_data_size)
        return MHD_NO; /* a GET with a body: not ours */
    if (strcmp(url, "/metrics"))
        return reply_text(c, MHD_HTTP_NOT_FOUND, "rcatd serves /metrics only\n");
    char *page = metrics_render(m, &len);
    if (!page)
        return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    struct MHD_Response *r = MHD_create_response_from_buffer(len, page, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(page);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8");
    enum MHD_Result rc = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return rc;
}

/* "PORT", "HOST:PORT", "[V6]:PORT", ":PORT" into host (NULL: every
 * address) and port. */
static int split_addr(const char *addr, char *host, size_t hcap, const char **port)
{
    const char *colon = strrchr(addr, ':');
    size_t n;

    if (!colon) {
        snprintf(host, hcap, "%s", METRICS_DEFAULT_HOST);
        *port = addr;
        return 0;
    }
    *port = colon + 1;
    n = (size_t)(colon - addr);
    if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']')
        addr++, n -= 2;
    if (n >= hcap)
        return -1;
    memcpy(host, addr, n);
    host[n] = '\0';
    return 0;
}

static int parse_port(const char *s)
{
    char *end;
    long v;

    if (*s < '0' || *s > '9')
        return -1;
    v = strtol(s, &end, 10);
    return *end || v > 65535 ? -1 : (int)v;
}

static int resolve(const char *addr, struct sockaddr_storage *ss, char *err, size_t errlen)
{
    char host[256];
    const char *port_s;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *res;
    int port, rc;

    if (split_addr(addr, host, sizeof host, &port_s) != 0 || (port = parse_port(port_s)) < 0) {
        snprintf(err, errlen, "--metrics wants PORT, ADDR:PORT or [ADDR]:PORT, not '%s'", addr);
        return -1;
    }
    if (!host[0]) { /* ":PORT": every address, IPv4 and IPv6 */
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        memset(ss, 0, sizeof *ss);
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_any;
        a->sin6_port = htons((uint16_t)port);
        return 0;
    }
    rc = getaddrinfo(host, port_s, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "--metrics %s: %s", addr, gai_strerror(rc));
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

static void describe(const struct sockaddr_storage *ss, int port, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";

    if (ss->ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, host, sizeof host);
        snprintf(out, cap, "[%s]:%d", host, port);
    } else {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, host, sizeof host);
        snprintf(out, cap, "%s:%d", host, port);
    }
}

int metrics_new(const char *addr, struct metrics **out, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    struct metrics *m;
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD;

    *out = NULL;
    if (resolve(addr, &ss, err, errlen) != 0)
        return -1;
    m = calloc(1, sizeof *m);
    if (m)
        m->ids = calloc(IDENTITY_MAX, sizeof *m->ids);
    if (!m || !m->ids) {
        free(m);
        snprintf(err, errlen, "--metrics: out of memory");
        return -1;
    }
    snprintf(m->id_other.name, sizeof m->id_other.name, "_other");
    pthread_mutex_init(&m->lock, NULL);
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_DUAL_STACK;
    m->http = MHD_start_daemon(flags, 0, NULL, NULL, on_request, m, MHD_OPTION_SOCK_ADDR, &ss,
                               MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_CONNECTIONS,
                               MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_TIMEOUT_S,
                               MHD_OPTION_END);
    if (!m->http) {
        snprintf(err, errlen, "--metrics %s: cannot serve HTTP there (address in use?)", addr);
        metrics_free(m);
        return -1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(m->http, MHD_DAEMON_INFO_BIND_PORT);
    describe(&ss, info ? info->port : 0, m->where, sizeof m->where);
    *out = m;
    return 0;
}

const char *metrics_where(const struct metrics *m)
{
    return m->where;
}

void metrics_free(struct metrics *m)
{
    if (!m)
        return;
    if (m->http)
        MHD_stop_daemon(m->http);
    pthread_mutex_destroy(&m->lock);
    free(m->ids);
    free(m);
}
