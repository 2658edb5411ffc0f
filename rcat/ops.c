/*
 * ops.c - rcat's operations, on the public rpc2 API only: one context on a
 * libev loop rcat owns (so that a signal can cancel the call in flight),
 * one connection per server reused for every operand naming it, and the
 * judgement of each failure: which exit code it stands for, which file to
 * name, and whether the fault was here, on the server or in between.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strerrorname_np */
#endif
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <ev.h>
#include <rpc2/rpc2.h>
#include <rpc2/se.h>
#include <rpc2/sftp.h>

#include "rcat_proto.h"
#include "ops.h"
#include "report.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0"
#endif

#define SESSION_ID_LEN 36 /* a UUID in text */

/* One server: its connection, and whether it is lost for this run. */
struct slot {
    char host[URL_HOST_MAX + 1];
    unsigned port;
    rpc2_conn *conn;
    int lost; /* the error that ended it: later operands fail at once, not after a timeout */
    char session[SESSION_ID_LEN + 1];
};

struct ops {
    struct ops_config cfg;
    uint32_t dead_peer_us;
    struct ev_loop *loop;
    ev_signal sigs[3];
    size_t n_sigs; /* those not ignored */
    rpc2_ctx *ctx;
    struct slot *slots; /* cfg.servers of them, allocated at start */
    size_t n_slots;
    rpc2_conn *in_call; /* what a signal cancels */
    int signal;
    /* Above level none: the identity's secret, kept for the whole run (a
     * server that forgot the connection is bound again) and wiped at the end. */
    unsigned char secret[RPC2_SECRET_BYTES];
};

/* A failure, judged. */
struct verdict {
    int code;         /* rcat's exit code */
    const char *name; /* symbolic, for --json */
    const char *file; /* the name the message gives */
    char text[512];
};

/* ---- signals --------------------------------------------------------------- */

static void die_by_signal(int sig)
{
    sigset_t set;

    signal(sig, SIG_DFL);
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
    _exit(128 + sig);
}

/* Cancelling the call lets the library remove an atomic fetch's temporary
 * before rcat dies. A second signal does not wait for that. */
static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct ops *o = w->data;

    (void)loop;
    (void)revents;
    if (o->signal || !o->in_call) {
        report_done(128 + w->signum);
        die_by_signal(w->signum);
    }
    o->signal = w->signum;
    rpc2_cancel(o->in_call);
}

/* A signal ignored when rcat started (nohup's SIGHUP, SIGINT in a
 * background job) stays ignored. */
static void init_signals(struct ops *o)
{
    static const int which[] = {SIGINT, SIGTERM, SIGHUP};
    struct sigaction was;

    for (size_t i = 0; i < sizeof which / sizeof which[0]; i++) {
        if (sigaction(which[i], NULL, &was) == 0 && was.sa_handler == SIG_IGN)
            continue;
        ev_signal_init(&o->sigs[o->n_sigs], on_signal, which[i]);
        o->sigs[o->n_sigs++].data = o;
    }
}

/* Watched only while a call runs: outside one there is nothing to clean
 * up, and the default action also interrupts what blocks outside the loop
 * (opening a FIFO that has no reader yet). */
static void watch_signals(struct ops *o, int on)
{
    for (size_t i = 0; i < o->n_sigs; i++) {
        if (on)
            ev_signal_start(o->loop, &o->sigs[i]);
        else
            ev_signal_stop(o->loop, &o->sigs[i]);
    }
}

void ops_exit_if_interrupted(struct ops *o)
{
    int sig = o->signal;

    if (!sig)
        return;
    report_done(128 + sig);
    report_flush_stdout();
    ops_free(o);
    die_by_signal(sig);
}

/* ---- the context and connections -------------------------------------- */

static void on_log(enum rpc2_log_level level, const char *message, void *arg)
{
    (void)arg;
    report_library_log((int)level, message);
}

/* The key file's error names the file first ("FILE: why"): the file goes
 * to report_error's FILE, the rest is the text. The library never puts any
 * part of the secret in it. */
static int fail_key_file(const char *path, int rc, const char *err)
{
    size_t n = strlen(path);
    const char *why = err;

    if (!strncmp(err, path, n) && err[n] == ':' && err[n + 1] == ' ')
        why = err + n + 2;
    else if (!*err)
        why = rpc2_strerror(rc);
    report_error(RCAT_EXIT_LOCAL, rpc2_errname(rc), path, "unusable key file: %s", why);
    return RCAT_EXIT_LOCAL;
}

static int load_secret(struct ops *o)
{
    char err[512] = "";
    int rc;

    if (o->cfg.security == RPC2_SEC_NONE)
        return RCAT_EXIT_OK; /* an explicit --security none: the key is not needed */
    rc = rpc2_keys_load_secret(o->cfg.key_file, o->secret, err, sizeof err);
    return rc == 0 ? RCAT_EXIT_OK : fail_key_file(o->cfg.key_file, rc, err);
}

int ops_new(const struct ops_config *c, struct ops **out)
{
    struct ops *o = calloc(1, sizeof *o);
    struct rpc2_params p;
    int rc;

    *out = NULL;
    if (!o || !(o->loop = ev_default_loop(0))) {
        free(o);
        report_error(RCAT_EXIT_LOCAL, "RPC2_ENOMEM", NULL, "cannot start the event loop");
        return RCAT_EXIT_LOCAL;
    }
    o->cfg = *c;
    o->slots = calloc(c->servers ? c->servers : 1, sizeof *o->slots);
    if (!o->slots) {
        ops_free(o);
        report_error(RCAT_EXIT_LOCAL, "RPC2_ENOMEM", NULL, "out of memory");
        return RCAT_EXIT_LOCAL;
    }
    rc = load_secret(o);
    if (rc != RCAT_EXIT_OK) {
        ops_free(o);
        return rc;
    }
    rpc2_params_init(&p);
    p.loop = o->loop;
    if (c->dead_peer_us)
        p.dead_peer_us = c->dead_peer_us;
    o->dead_peer_us = p.dead_peer_us;
    if (c->verbose) {
        p.log = on_log;
        p.log_level = RPC2_LOG_DEBUG;
    }
    rc = rpc2_ctx_new(&p, &o->ctx);
    if (rc == 0)
        rc = rpc2_sftp_activate(o->ctx, NULL);
    if (rc != 0) {
        report_error(RCAT_EXIT_LOCAL, rpc2_errname(rc), NULL, "cannot set up rpc2: %s",
                     rpc2_strerror(rc));
        ops_free(o);
        return RCAT_EXIT_LOCAL;
    }
    init_signals(o);
    *out = o;
    return RCAT_EXIT_OK;
}

void ops_free(struct ops *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->n_slots; i++)
        rpc2_unbind(o->slots[i].conn);
    free(o->slots);
    rpc2_ctx_free(o->ctx);
    explicit_bzero(o->secret, sizeof o->secret);
    free(o);
}

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

static int bind_slot(struct ops *o, struct slot *s)
{
    char port[8];
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
    int rc;

    snprintf(port, sizeof port, "%u", s->port);
    report_info("connecting to %s port %u", s->host, s->port);
    rc = rpc2_bind(o->ctx, &b, &s->conn);
    if (rc != 0) {
        s->conn = NULL;
        s->lost = rc;
        return rc;
    }
    new_session_id(s->session);
    report_session(s->session, s->host, s->port);
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

/* The connection for u's server: bound on first use, reused after. Returns
 * 0 or the rpc2 error of the bind (now or earlier in the run). */
static int connect_slot(struct ops *o, const struct url *u, struct slot **out)
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

/* ---- judging failures -------------------------------------------------------- */

static int is_network(int rc)
{
    switch (rc) {
    case RPC2_EDEAD:
    case RPC2_EUNKNOWNCONN:
    case RPC2_EADDR:
    case RPC2_ETIMEDOUT:
    case RPC2_EVERSION:
    case RPC2_ECLOSED:
    case RPC2_ESEFAIL2:
    case RPC2_EBADPACKET:
    case RPC2_ESYSTEM:
        return 1;
    }
    return 0;
}

/* The server would not do it, for a reason that is not about the file. */
static int is_refusal(int rc)
{
    switch (rc) {
    case RPC2_ENOSUBSYS:
    case RPC2_ENOPROC:
    case RPC2_EREFUSED:
    case RPC2_ESECURITY:
    case RPC2_EAUTH:
    case RPC2_ESERVER:
    case RPC2_ELIMIT:
    case RPC2_EDECODE:
    case RPC2_EENCODE:
    case RPC2_ETOOBIG:
    case RPC2_ENOSETYPE:
        return 1;
    }
    return 0;
}

/* Errors only a writing end can have. A FETCH's server only reads, so when
 * one of these comes back the writer that failed was rcat's. */
static int is_sink_error(int err)
{
    return err == RPC2_ENOSPC || err == RPC2_EOVERFLOW || err == RPC2_EEXIST;
}

static const struct {
    int code;
    const char *local, *remote;
} file_errors[] = {
    {RPC2_ENOENT, "no such file or directory", "not found on server"},
    {RPC2_EACCES, "permission denied", "permission denied on server"},
    {RPC2_EIO, "input/output error", "I/O error on server"},
    {RPC2_ENOSPC, "no space left on device", "no space left on server"},
    {RPC2_EEXIST, "file exists", "already exists on server"},
    {RPC2_EISDIR, "is a directory", "is a directory on server"},
    {RPC2_EQUOTA, "more data than the byte range allows", "more data than the byte range allows"},
    {RPC2_EOVERFLOW, "more data than expected", "more data than expected"},
    {RPC2_ENOMEM, "out of memory", "out of memory on server"},
    {RPC2_EINVAL, "invalid argument", "invalid request (server)"},
};

static const char *file_error_text(int err, int local)
{
    for (size_t i = 0; i < sizeof file_errors / sizeof file_errors[0]; i++)
        if (file_errors[i].code == err)
            return local ? file_errors[i].local : file_errors[i].remote;
    return rpc2_strerror(err);
}

static const struct {
    int status;
    const char *name, *text;
} statuses[] = {
    {RCAT_READ_ONLY, "RCAT_READ_ONLY", "the server is read-only"},
    {RCAT_OUTSIDE_ROOT, "RCAT_OUTSIDE_ROOT", "outside the server's root"},
    {RCAT_NOT_FOUND, "RCAT_NOT_FOUND", "not found on server"},
    {RCAT_PERMISSION, "RCAT_PERMISSION", "permission denied on server"},
    {RCAT_IS_DIR, "RCAT_IS_DIR", "is a directory on server"},
    {RCAT_NOT_DIR, "RCAT_NOT_DIR", "not a directory on server"},
    {RCAT_EXISTS, "RCAT_EXISTS", "already exists on server"},
    {RCAT_BAD_PATH, "RCAT_BAD_PATH", "bad path (empty, too long, or with a NUL)"},
    {RCAT_IO, "RCAT_IO", "I/O error on server"},
    {RCAT_NO_SPACE, "RCAT_NO_SPACE", "no space left on server"},
};

static void judge_status(int st, struct verdict *v)
{
    v->code = RCAT_EXIT_REFUSED;
    v->name = "RCAT_REFUSED";
    snprintf(v->text, sizeof v->text, "refused by the server (status %d)", st);
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
        if (statuses[i].status == st) {
            v->name = statuses[i].name;
            snprintf(v->text, sizeof v->text, "%s", statuses[i].text);
        }
    }
}

static void seconds_text(char *out, size_t cap, uint32_t us)
{
    snprintf(out, cap, "%.3g s", us / 1e6);
}

static void judge_network(const struct ops *o, const struct slot *s, int rc, struct verdict *v)
{
    char t[32];

    v->code = RCAT_EXIT_NET;
    v->name = rpc2_errname(rc);
    seconds_text(t, sizeof t, o->dead_peer_us);
    if (rc == RPC2_EDEAD)
        snprintf(v->text, sizeof v->text, "no answer from %s port %u (silent for %s)", s->host,
                 s->port, t);
    else if (rc == RPC2_EUNKNOWNCONN)
        snprintf(v->text, sizeof v->text,
                 "%s port %u no longer knows this connection (server restarted?)", s->host,
                 s->port);
    else if (rc == RPC2_EADDR)
        snprintf(v->text, sizeof v->text, "cannot resolve or reach %s port %u", s->host, s->port);
    else if (rc == RPC2_EVERSION)
        snprintf(v->text, sizeof v->text, "%s port %u speaks another rpc2 protocol version",
                 s->host, s->port);
    else
        snprintf(v->text, sizeof v->text, "%s port %u: %s", s->host, s->port, rpc2_strerror(rc));
}

/* Which level a refused bind asked for, in --security's words. */
static const char *level_name(enum rpc2_security level)
{
    return level == RPC2_SEC_ENCRYPT ? "encrypt" : level == RPC2_SEC_AUTH ? "auth" : "none";
}

/* The server cannot say which of identity and secret was wrong (on
 * purpose: it would tell a prober which names exist), so neither does rcat. */
static void judge_refusal(const struct ops *o, const struct slot *s, int rc, struct verdict *v)
{
    v->code = RCAT_EXIT_REFUSED;
    v->name = rpc2_errname(rc);
    if (rc == RPC2_EAUTH)
        snprintf(v->text, sizeof v->text,
                 "%s port %u: authentication failed: unknown identity or wrong secret", s->host,
                 s->port);
    else if (rc == RPC2_ESECURITY)
        snprintf(v->text, sizeof v->text,
                 "%s port %u: security level refused by the server (rcat asked for %s)", s->host,
                 s->port, level_name(o->cfg.security));
    else if (rc == RPC2_ENOSUBSYS || rc == RPC2_ENOSETYPE)
        snprintf(v->text, sizeof v->text, "%s port %u does not serve rcat (%s)", s->host, s->port,
                 rpc2_strerror(rc));
    else
        snprintf(v->text, sizeof v->text, "refused by %s port %u: %s", s->host, s->port,
                 rpc2_strerror(rc));
}

/* Did the side effect fail at rcat's end? The descriptor says FAILURE for
 * this end whenever the transfer failed at all, so the evidence is what the
 * other end did and which kind of error it was. */
static int failed_here(int rc, int err, const struct rpc2_se_desc *d)
{
    if (d->remote_status == RPC2_SE_NOT_STARTED)
        return 1; /* refused before anything was sent: a local open */
    if (rc == RPC2_ESEFAIL1 && d->remote_status == RPC2_SE_SUCCESS)
        return 1;
    return d->direction == RPC2_SE_FETCH && is_sink_error(err);
}

/*
 * rc: the call's outcome; d: its side effect (NULL for none); remote and
 * local: the names a message gives for either end.
 */
static void judge(const struct ops *o, const struct slot *s, int rc, const struct rpc2_se_desc *d,
                  const char *remote, const char *local, struct verdict *v)
{
    static const struct slot unknown = {.host = "the server"};
    int fetch = d && d->direction == RPC2_SE_FETCH;
    int err = rc;
    int here;

    if (!s)
        s = &unknown;
    v->file = remote;
    if (rc > 0 && !(fetch && is_sink_error(d->error))) {
        judge_status(rc, v);
        return;
    }
    if (is_network(rc)) {
        judge_network(o, s, rc, v);
        return;
    }
    if (is_refusal(rc)) {
        judge_refusal(o, s, rc, v);
        return;
    }
    if (d && d->error < 0 && (rc > 0 || rc == RPC2_ESEFAIL1))
        err = d->error;
    if (err == RPC2_EINTEGRITY) { /* whichever end noticed, the bytes were wrong */
        v->code = RCAT_EXIT_INTEGRITY;
        v->name = rpc2_errname(err);
        snprintf(v->text, sizeof v->text, "data integrity check failed: the bytes received are "
                                          "not the bytes sent (nothing was kept)");
        return;
    }
    here = d && failed_here(rc, err, d);
    v->code = here ? RCAT_EXIT_LOCAL : RCAT_EXIT_REFUSED;
    v->name = rpc2_errname(err);
    v->file = here ? local : remote;
    snprintf(v->text, sizeof v->text, "%s", file_error_text(err, here));
    if (here && err == RPC2_EEXIST && o->cfg.no_clobber)
        snprintf(v->text, sizeof v->text, "file exists (--no-clobber)");
}

/* Reports a failed call; returns its exit code, and its name for STOP. */
static int fail(struct ops *o, const struct slot *s, int rc, const struct rpc2_se_desc *d,
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

/* A local system call failed on name: "what: error", in lower case like
 * the library's texts ("rcat: out.bin: no space left on device"). */
static int fail_local(const char *name, const char *what, int err, const char **result)
{
    const char *ename = strerrorname_np(err);
    char text[256];

    snprintf(text, sizeof text, "%s", strerror(err));
    if (text[0] && !(text[1] && isupper((unsigned char)text[1])))
        text[0] = (char)tolower((unsigned char)text[0]);
    *result = ename ? ename : "ESYSTEM";
    report_error(RCAT_EXIT_LOCAL, *result, name, "%s%s%s", what ? what : "", what ? ": " : "",
                 text);
    return RCAT_EXIT_LOCAL;
}

/* ---- calls ----------------------------------------------------------------- */

static int call_once(struct ops *o, struct slot *s, uint32_t proc, xdrproc_t enc, const void *args,
                     xdrproc_t dec, void *result, struct rpc2_se_desc *d)
{
    struct rpc2_call_opts opts = {.se = d};
    int rc;

    o->in_call = s->conn;
    watch_signals(o, 1);
    rc = rpc2_call(s->conn, proc, enc, args, dec, result, &opts);
    watch_signals(o, 0);
    o->in_call = NULL;
    return rc;
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
static int call(struct ops *o, struct slot *s, uint32_t proc, xdrproc_t enc, const void *args,
                xdrproc_t dec, void *result, struct rpc2_se_desc *d)
{
    int rc = call_once(o, s, proc, enc, args, dec, result, d);

    if (rc == RPC2_EUNKNOWNCONN && restartable(d) && !o->signal) {
        report_info("%s port %u forgot the connection; connecting again", s->host, s->port);
        rpc2_unbind(s->conn);
        s->conn = NULL;
        rc = bind_slot(o, s);
        if (rc == 0)
            rc = call_once(o, s, proc, enc, args, dec, result, d);
    }
    if (rc == RPC2_EDEAD || rc == RPC2_ECLOSED || rc == RPC2_ESEFAIL2)
        s->lost = rc;
    return rc;
}

static uint64_t call_retransmissions(const struct ops *o)
{
    struct rpc2_ctx_stats st;

    rpc2_ctx_stats(o->ctx, &st);
    return st.retransmissions;
}

/* One transfer's progress, from the library's loop during the call. */
struct xfer {
    struct ops *o;
    struct report_xfer rep;
    uint64_t retrans0; /* the context's count when the transfer began */
};

static void on_progress(uint64_t bytes, int64_t total, void *arg)
{
    struct xfer *x = arg;

    if (report_xfer_due(&x->rep))
        report_xfer_progress(&x->rep, bytes, total, call_retransmissions(x->o) - x->retrans0);
}

/* Every transfer operand gets its STOP, whatever stage it fails at; the
 * session is filled in once connected. */
static void xfer_begin(struct xfer *x, struct ops *o, int send, const char *file, const char *dest,
                       int64_t size, struct rpc2_se_desc *d)
{
    x->o = o;
    x->retrans0 = call_retransmissions(o);
    d->progress = on_progress;
    d->progress_arg = x;
    report_xfer_begin(&x->rep, NULL, send, file, dest, size);
}

static int xfer_connect(struct xfer *x, const struct url *u, struct slot **s, const char **result)
{
    int rc = connect_slot(x->o, u, s);

    if (rc != 0)
        return fail(x->o, *s, rc, NULL, u->path, NULL, result);
    x->rep.session = (*s)->session;
    return RCAT_EXIT_OK;
}

static void xfer_end(struct xfer *x, const struct rpc2_se_desc *d, int code, const char *result)
{
    uint64_t retrans = d->stats.retransmissions + call_retransmissions(x->o) - x->retrans0;

    const unsigned char *sum = code == RCAT_EXIT_OK && d->checksum_valid ? d->checksum : NULL;

    report_xfer_end(&x->rep, d->bytes_transferred, retrans, d->stats.duplicates, code, result, sum);
}

/* The bytes the range selects from a file of this size. */
static int64_t range_size(const struct ops *o, uint64_t size)
{
    uint64_t off = (uint64_t)o->cfg.offset;
    uint64_t left = size > off ? size - off : 0;

    if (o->cfg.length >= 0 && (uint64_t)o->cfg.length < left)
        left = (uint64_t)o->cfg.length;
    return left > INT64_MAX ? INT64_MAX : (int64_t)left;
}

static const char *remote_path(const struct url *u)
{
    return u->path[0] ? u->path : "."; /* the server's root */
}

static const char *shown_path(const struct url *u)
{
    return u->path[0] ? u->path : "/";
}

/* ---- fetch ------------------------------------------------------------------ */

/* Where fetched bytes go. */
struct sink {
    const char *path;  /* written atomically by name; NULL: into fd */
    const char *name;  /* for events: the -o name, or "-" */
    const char *shown; /* for messages */
    int fd;
    int own_fd;
    int replaced; /* a regular file had the name: the new one keeps its mode */
    mode_t old_mode;
};

/* Devices and FIFOs are written into as they are (-o /dev/null): only a
 * regular file can be replaced atomically. */
static int sink_open(const struct ops *o, const char *dest, struct sink *k, const char **result)
{
    struct stat st;

    memset(k, 0, sizeof *k);
    k->fd = STDOUT_FILENO;
    k->name = "-";
    k->shown = "standard output";
    if (!dest || !strcmp(dest, "-"))
        return RCAT_EXIT_OK;
    k->name = k->shown = dest;
    if (stat(dest, &st) < 0) {
        k->path = dest;
        return RCAT_EXIT_OK; /* creating it: the library says why if it cannot */
    }
    if (o->cfg.no_clobber) {
        *result = "RPC2_EEXIST";
        report_error(RCAT_EXIT_LOCAL, *result, dest, "file exists (--no-clobber)");
        return RCAT_EXIT_LOCAL;
    }
    if (S_ISDIR(st.st_mode))
        return fail_local(dest, NULL, EISDIR, result);
    if (!S_ISREG(st.st_mode)) {
        k->fd = open(dest, O_WRONLY | O_NOCTTY | O_CLOEXEC);
        k->own_fd = k->fd >= 0;
        return k->fd < 0 ? fail_local(dest, NULL, errno, result) : RCAT_EXIT_OK;
    }
    k->path = dest;
    k->replaced = 1;
    k->old_mode = st.st_mode & 0777; /* never set-id bits onto new content */
    return RCAT_EXIT_OK;
}

static void sink_close(struct sink *k)
{
    if (k->own_fd)
        close(k->fd);
}

static void sink_describe(const struct ops *o, const struct sink *k, struct rpc2_se_desc *d)
{
    if (!k->path) {
        d->file_kind = RPC2_SE_FILE_FD;
        d->file.fd.fd = k->fd;
        return;
    }
    d->file_kind = RPC2_SE_FILE_NAME;
    d->file.name.path = k->path;
    d->file.name.mode = k->replaced ? k->old_mode : 0666; /* under the umask, as cp */
    d->file.name.atomic = 1;
    d->file.name.no_clobber = o->cfg.no_clobber;
}

static int set_mtime(const char *path, int64_t sec, unsigned nsec)
{
    struct timespec ts[2] = {
        {.tv_sec = 0, .tv_nsec = UTIME_OMIT},
        {.tv_sec = (time_t)sec, .tv_nsec = nsec < 1000000000u ? (long)nsec : 0},
    };

    return utimensat(AT_FDCWD, path, ts, 0);
}

/* After a complete fetch: -p's mode and mtime, or the replaced file's mode
 * (the umask may have taken bits from it; never adds any it did not have). */
static int sink_finish(const struct ops *o, const struct sink *k, const file_info *info,
                       const char **result)
{
    if (!k->path)
        return RCAT_EXIT_OK;
    if (o->cfg.preserve) {
        if (chmod(k->path, info->mode & 0777) < 0 ||
            set_mtime(k->path, info->mtime_sec, info->mtime_nsec) < 0)
            return fail_local(k->path, "cannot keep mode and time", errno, result);
    } else if (k->replaced && chmod(k->path, k->old_mode) < 0) {
        report_info("%s: cannot restore mode %04o: %s", k->path, (unsigned)k->old_mode,
                    strerror(errno));
    }
    return RCAT_EXIT_OK;
}

/* The size the bar and events show, when they want one: a STAT first. */
static int probe_size(struct ops *o, struct slot *s, const struct url *src, int64_t *size,
                      const char **result)
{
    path_args a = {.path = (char *)src->path};
    file_info info;
    int rc;

    if (!report_wants_size())
        return RCAT_EXIT_OK;
    memset(&info, 0, sizeof info);
    rc = call(o, s, RCAT_STAT, (xdrproc_t)xdr_path_args, &a, (xdrproc_t)xdr_file_info, &info, NULL);
    if (rc != 0)
        return fail(o, s, rc, NULL, src->path, NULL, result);
    if (info.type == RCAT_REG)
        *size = range_size(o, info.size);
    return RCAT_EXIT_OK;
}

static int fetch_into(struct ops *o, struct slot *s, const struct url *src, const struct sink *k,
                      struct rpc2_se_desc *d, const char **result)
{
    fetch_args a = {
        .path = (char *)src->path, .offset = (u_quad_t)o->cfg.offset, .length = o->cfg.length};
    file_info info;
    int rc;

    memset(&info, 0, sizeof info);
    sink_describe(o, k, d);
    rc = call(o, s, RCAT_FETCH, (xdrproc_t)xdr_fetch_args, &a, (xdrproc_t)xdr_file_info, &info, d);
    if (rc != 0)
        return fail(o, s, rc, d, src->path, k->shown, result);
    return sink_finish(o, k, &info, result);
}

int ops_fetch(struct ops *o, const struct url *src, const char *dest)
{
    struct rpc2_se_desc d = {
        .type = RPC2_SE_SFTP,
        .direction = RPC2_SE_FETCH,
        .seek_offset = 0, /* the destination starts at its beginning */
        .quota = o->cfg.length,
    };
    const char *result = "OK";
    struct slot *s = NULL;
    struct sink k;
    struct xfer x;
    int code = sink_open(o, dest, &k, &result);

    xfer_begin(&x, o, 0, src->path, k.name, -1, &d);
    if (code == RCAT_EXIT_OK)
        code = xfer_connect(&x, src, &s, &result);
    if (code == RCAT_EXIT_OK)
        code = probe_size(o, s, src, &x.rep.size, &result);
    if (code == RCAT_EXIT_OK)
        code = fetch_into(o, s, src, &k, &d, &result);
    xfer_end(&x, &d, code, result);
    sink_close(&k);
    return code;
}

/* ---- store ------------------------------------------------------------------ */

struct source {
    const char *name;
    const char *shown;
    int fd;
    int own_fd;
    mode_t mode;
    int64_t mtime_sec;
    unsigned mtime_nsec;
    int64_t size; /* -1: a stream of unknown length */
};

static mode_t default_mode(void)
{
    mode_t mask = umask(0);

    umask(mask);
    return 0666 & ~mask; /* what a shell redirection would have created */
}

/* The local file is opened here rather than by the library: its mode and
 * mtime must be those of the very file whose bytes are sent. */
static int source_open(const struct ops *o, const char *local, struct source *src,
                       const char **result)
{
    struct stat st;

    memset(src, 0, sizeof *src);
    src->name = local;
    src->shown = "standard input";
    src->fd = STDIN_FILENO;
    src->size = -1;
    if (strcmp(local, "-") != 0) {
        src->shown = local;
        src->fd = open(local, O_RDONLY | O_NOCTTY | O_CLOEXEC);
        if (src->fd < 0)
            return fail_local(local, NULL, errno, result);
        src->own_fd = 1;
    }
    if (fstat(src->fd, &st) < 0)
        return fail_local(src->shown, NULL, errno, result);
    if (S_ISDIR(st.st_mode))
        return fail_local(src->shown, NULL, EISDIR, result);
    src->mode = S_ISREG(st.st_mode) ? st.st_mode & 0777 : default_mode();
    src->mtime_sec = st.st_mtim.tv_sec;
    src->mtime_nsec = (unsigned)st.st_mtim.tv_nsec;
    if (S_ISREG(st.st_mode) && st.st_size > 0)
        src->size = range_size(o, (uint64_t)st.st_size);
    return RCAT_EXIT_OK;
}

static void source_close(struct source *src)
{
    if (src->own_fd)
        close(src->fd);
}

static int store_from(struct ops *o, struct slot *s, const struct source *src,
                      const struct url *dst, struct rpc2_se_desc *d, const char **result)
{
    store_args a = {
        .path = (char *)dst->path,
        .mode = (u_int)src->mode,
        .keep_mtime = o->cfg.preserve,
        .mtime_sec = o->cfg.preserve ? src->mtime_sec : 0,
        .mtime_nsec = o->cfg.preserve ? src->mtime_nsec : 0,
        .no_clobber = o->cfg.no_clobber,
    };
    file_info info;
    int rc;

    memset(&info, 0, sizeof info);
    d->file_kind = RPC2_SE_FILE_FD;
    d->file.fd.fd = src->fd;
    rc = call(o, s, RCAT_STORE, (xdrproc_t)xdr_store_args, &a, (xdrproc_t)xdr_file_info, &info, d);
    return rc ? fail(o, s, rc, d, dst->path, src->shown, result) : RCAT_EXIT_OK;
}

int ops_store(struct ops *o, const char *local, const struct url *dst)
{
    struct rpc2_se_desc d = {
        .type = RPC2_SE_SFTP,
        .direction = RPC2_SE_STORE,
        .seek_offset = o->cfg.offset,
        .quota = o->cfg.length,
    };
    const char *result = "OK";
    struct slot *s = NULL;
    struct source src;
    struct xfer x;
    int code = source_open(o, local, &src, &result);

    xfer_begin(&x, o, 1, local, dst->path, src.size, &d);
    x.rep.label = src.shown;
    if (code == RCAT_EXIT_OK)
        code = xfer_connect(&x, dst, &s, &result);
    if (code == RCAT_EXIT_OK)
        code = store_from(o, s, &src, dst, &d, &result);
    xfer_end(&x, &d, code, result);
    source_close(&src);
    return code;
}

/* ---- stat and ls -------------------------------------------------------------- */

static void entry_of(const file_info *info, struct report_entry *e)
{
    switch (info->type) {
    case RCAT_REG:
        e->type = REPORT_FILE;
        break;
    case RCAT_DIR:
        e->type = REPORT_DIR;
        break;
    case RCAT_LNK:
        e->type = REPORT_LINK;
        break;
    default:
        e->type = REPORT_OTHER;
    }
    e->size = info->size;
    e->mode = info->mode & 07777;
    e->mtime_sec = info->mtime_sec;
    e->mtime_nsec = info->mtime_nsec;
}

int ops_stat(struct ops *o, const struct url *u)
{
    path_args a = {.path = (char *)remote_path(u)};
    file_info info;
    struct report_entry e;
    struct slot *s;
    const char *name;
    int rc;

    memset(&info, 0, sizeof info);
    rc = connect_slot(o, u, &s);
    if (rc == 0)
        rc = call(o, s, RCAT_STAT, (xdrproc_t)xdr_path_args, &a, (xdrproc_t)xdr_file_info, &info,
                  NULL);
    if (rc != 0)
        return fail(o, s, rc, NULL, shown_path(u), NULL, &name);
    entry_of(&info, &e);
    report_stat(shown_path(u), &e);
    return RCAT_EXIT_OK;
}

/* One page of the listing; *start moves past it, *more says if another
 * follows. */
static int list_page(struct ops *o, struct slot *s, const struct url *u, u_int *start, int *more)
{
    list_args a = {.path = (char *)remote_path(u), .start = *start};
    list_result r;
    struct report_entry e;
    int rc;

    memset(&r, 0, sizeof r);
    rc = call(o, s, RCAT_LIST, (xdrproc_t)xdr_list_args, &a, (xdrproc_t)xdr_list_result, &r, NULL);
    if (rc != 0)
        return rc;
    for (u_int i = 0; i < r.entries.entries_len; i++) {
        entry_of(&r.entries.entries_val[i].info, &e);
        report_list_entry(r.entries.entries_val[i].name, &e);
    }
    /* An empty page that claims more would loop forever. */
    *more = r.more && r.entries.entries_len > 0;
    *start += r.entries.entries_len;
    xdr_free((xdrproc_t)xdr_list_result, (char *)&r);
    return 0;
}

int ops_list(struct ops *o, const struct url *u)
{
    struct slot *s;
    const char *name;
    u_int start = 0;
    int more = 1;
    int rc = connect_slot(o, u, &s);

    while (rc == 0 && more)
        rc = list_page(o, s, u, &start, &more);
    if (rc != 0)
        return fail(o, s, rc, NULL, shown_path(u), NULL, &name);
    return RCAT_EXIT_OK;
}
