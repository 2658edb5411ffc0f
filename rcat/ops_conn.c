/*
 * ops_conn.c - rcat's connections: one per server, bound on first use and
 * reused for every operand naming it, given up for the run once the server
 * is lost, and bound again once when a restarted server forgot it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netdb.h>
#include <sys/random.h>

#include "ops_impl.h"
#include "report.h"
#include "verdict.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0"
#endif

static void new_session_id(char *out)
{
    unsigned char b[16];

    if (getrandom(b, sizeof b, GRND_NONBLOCK) != (ssize_t)sizeof b) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        for (size_t i = 0; i < sizeof b; i++)
            b[i] = (unsigned char)((uint64_t)ts.tv_nsec >> (i % 4 * 8) ^ (unsigned)getpid() >> i ^
                                   (uint64_t)ts.tv_sec >> (i % 8 * 8));
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* the RFC 4122 variant */
    snprintf(out, SESSION_ID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

/* A bind rcat may stop waiting for (--max-time): abandoned, it lives on
 * until the library ends it, and then frees itself. */
struct pending_bind {
    int done, status, abandoned;
    rpc2_conn *conn;
};

static void on_bound(int status, rpc2_conn *conn, void *arg)
{
    struct pending_bind *b = arg;

    if (b->abandoned) {
        if (status == 0)
            rpc2_unbind(conn);
        free(b);
        return;
    }
    b->done = 1;
    b->status = status;
    b->conn = conn;
}

static int bind_within_time(struct ops *o, const struct rpc2_bind_params *bp, rpc2_conn **out)
{
    struct pending_bind *b = calloc(1, sizeof *b);
    int rc;

    *out = NULL;
    if (!b)
        return RPC2_ENOMEM;
    rc = rpc2_bind_async(o->ctx, bp, on_bound, b);
    if (rc != 0) {
        free(b);
        return rc;
    }
    while (!b->done && !o->timed_out)
        ev_run(o->loop, EVRUN_ONCE);
    if (!b->done) {
        b->abandoned = 1;
        return RPC2_ETIMEDOUT;
    }
    rc = b->status;
    *out = b->conn;
    free(b);
    return rc;
}

/* --listen: the server named by an operand announces itself (rcatd
 * --connect) from its address; rcat binds to the port it came from. An
 * announcement from any other host proves nothing and is passed over. */
struct announced {
    struct addrinfo *addrs; /* the operand's host */
    int heard;
    unsigned port;
};

static int is_the_host(const struct addrinfo *addrs, const char *host)
{
    char text[NI_MAXHOST];

    for (const struct addrinfo *ai = addrs; ai; ai = ai->ai_next)
        if (getnameinfo(ai->ai_addr, ai->ai_addrlen, text, sizeof text, NULL, 0,
                        NI_NUMERICHOST) == 0 &&
            !strcmp(text, host))
            return 1;
    return 0;
}

void ops_on_announce(const char *host, unsigned port, void *arg)
{
    struct ops *o = arg;
    struct announced *a = o->awaited;

    if (!a || a->heard)
        return; /* nobody waits: rcat binds on its own schedule */
    if (!is_the_host(a->addrs, host)) {
        report_info("an announcement from %s port %u passed over: not the server named", host,
                    port);
        return;
    }
    a->heard = 1;
    a->port = port;
}

/* Waits for s's host to announce itself, at most --timeout; s->port
 * becomes the port it announced from. */
static int await_announcement(struct ops *o, struct slot *s)
{
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM};
    struct announced a = {0};

    if (getaddrinfo(s->host, NULL, &hints, &a.addrs) != 0)
        return RPC2_EADDR;
    report_info("waiting on %s for %s to announce itself", o->cfg.listen, s->host);
    o->awaited = &a;
    ops_wait(o, (double)o->dead_peer_us / 1e6, &a.heard);
    o->awaited = NULL;
    freeaddrinfo(a.addrs);
    if (!a.heard)
        return o->signal ? RPC2_ECANCELED : RPC2_ETIMEDOUT;
    s->port = a.port;
    return 0;
}

static void bind_params(struct ops *o, const struct slot *s, char port[8],
                        struct rpc2_bind_params *out)
{
    struct rpc2_bind_params b = {
        .host = s->host,
        .port = port,
        .subsystem = RCAT_SUBSYS,
        .se_type = RPC2_SE_SFTP,
        .security = o->cfg.security,
        /* without one, the name tells the server's log what connected */
        .identity = o->cfg.identity ? o->cfg.identity : "rcat/" PACKAGE_VERSION,
        .secret = o->cfg.security != RPC2_SEC_NONE ? o->secret : NULL,
    };

    snprintf(port, 8, "%u", s->port);
    *out = b;
}

void ops_slot_bound(struct slot *s, rpc2_conn *conn)
{
    s->conn = conn;
    new_session_id(s->session);
    report_session(s->session, s->host, s->port);
}

int ops_bind_async(struct ops *o, const struct slot *s, rpc2_bind_cb cb, void *arg)
{
    char port[8];
    struct rpc2_bind_params b;

    bind_params(o, s, port, &b);
    return rpc2_bind_async(o->ctx, &b, cb, arg);
}

int ops_conn_lost(int rc)
{
    return rc == RPC2_EDEAD || rc == RPC2_ECLOSED || rc == RPC2_ESEFAIL2;
}

static int bind_slot(struct ops *o, struct slot *s)
{
    char port[8];
    struct rpc2_bind_params b;
    int rc;

    rc = o->cfg.listen && !o->timed_out ? await_announcement(o, s) : 0;
    bind_params(o, s, port, &b); /* the port announced, if any */
    if (rc == 0)
        report_info("connecting to %s port %u", s->host, s->port);
    if (rc == 0)
        rc = o->timed_out ? RPC2_ETIMEDOUT : bind_within_time(o, &b, &s->conn);
    if (rc != 0) {
        s->conn = NULL;
        s->lost = rc;
        return rc;
    }
    ops_slot_bound(s, s->conn);
    return 0;
}

static struct slot *find_slot(struct ops *o, const struct url *u)
{
    for (size_t i = 0; i < o->n_slots; i++)
        if (o->slots[i].port == u->port && !strcmp(o->slots[i].host, u->host))
            return &o->slots[i];
    return NULL;
}

static struct slot *add_slot(struct ops *o, const struct url *u)
{
    struct slot *s;

    if (o->n_slots == (o->cfg.servers ? o->cfg.servers : 1))
        return NULL;
    s = &o->slots[o->n_slots++];
    memcpy(s->host, u->host, sizeof s->host);
    s->port = u->port;
    return s;
}

int ops_connect(struct ops *o, const struct url *u, struct slot **out)
{
    struct slot *s = find_slot(o, u);

    if (!s)
        s = add_slot(o, u);
    *out = s;
    if (!s)
        return RPC2_ELIMIT; /* more servers than ops_config said */
    if (s->lost)
        return s->lost;
    return s->conn ? 0 : bind_slot(o, s);
}

static void judge(struct ops *o, const struct slot *s, int rc, const struct rpc2_se_desc *d,
                  const char *remote, const char *local, struct verdict *v)
{
    struct verdict_peer peer = {.host = s ? s->host : "the server",
                                .port = s ? s->port : 0,
                                .dead_peer_us = o->dead_peer_us,
                                .max_time_us = o->cfg.max_time_us,
                                .security = o->cfg.security,
                                .no_clobber = o->cfg.no_clobber,
                                .listen = o->cfg.listen};

    if (rc == RPC2_ECANCELED && o->timed_out)
        rc = RPC2_ETIMEDOUT;
    o->last_error = rc < 0 ? rc : 0;
    verdict_judge(&peer, rc, d, remote, local, v);
}

int ops_fail(struct ops *o, const struct slot *s, int rc, const struct rpc2_se_desc *d,
             const char *remote, const char *local, const char **name)
{
    struct verdict v;

    if (rc == RPC2_ECANCELED && o->signal) {
        *name = "INTERRUPTED";
        return 128 + o->signal;
    }
    judge(o, s, rc, d, remote, local, &v);
    report_error(v.code, v.name, v.file, "%s", v.text);
    *name = v.name;
    return v.code;
}

int ops_fail_lane(struct ops *o, struct slot *s, int rc, const struct rpc2_se_desc *d,
                  const char *remote, const char *local, const char **name)
{
    if (ops_conn_lost(rc))
        s->lost = rc;
    return ops_fail(o, s, rc, d, remote, local, name);
}

int ops_fail_file(struct ops *o, const struct slot *s, int rc, const char *remote,
                  const char *local)
{
    struct verdict v;

    judge(o, s, rc, NULL, remote, local, &v);
    report_file_error(v.code, v.name, v.file, "%s", v.text);
    return v.code;
}

/* Doing it again must not repeat bytes already written, nor lose bytes
 * already read: a store's source may be a pipe, and even a file's position
 * has moved, so only fetches are done again. */
static int restartable(const struct rpc2_se_desc *d)
{
    if (!d)
        return 1;
    return d->direction == RPC2_SE_FETCH &&
           (d->file_kind == RPC2_SE_FILE_NAME || d->bytes_transferred == 0);
}

/* A server that forgot the connection (restarted, or expired it) is bound
 * again once; a server that stopped answering is given up for the run. */
int ops_call(struct ops *o, struct slot *s, uint32_t proc, xdrproc_t enc, const void *args,
             xdrproc_t dec, void *result, struct rpc2_se_desc *d)
{
    int rc = ops_call_once(o, s, proc, enc, args, dec, result, d);

    if (rc == RPC2_EUNKNOWNCONN && restartable(d) && !o->signal) {
        report_info("%s port %u forgot the connection; connecting again", s->host, s->port);
        rpc2_unbind(s->conn);
        s->conn = NULL;
        rc = bind_slot(o, s);
        if (rc == 0)
            rc = ops_call_once(o, s, proc, enc, args, dec, result, d);
    }
    if (ops_conn_lost(rc))
        s->lost = rc;
    return rc;
}

void ops_begin_attempt(struct ops *o, const struct url *u, int again)
{
    struct slot *s = find_slot(o, u);

    o->last_error = 0;
    if (!s || !again)
        return;
    rpc2_unbind(s->conn);
    s->conn = NULL;
    s->lost = 0;
}
