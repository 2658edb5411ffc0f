/*
 * verdict.c - rcat's judgement of a failure: which exit code it stands
 * for, which name to print, which file the message names, and whether the
 * fault was here, on the server or in between. Kept apart from the
 * operations so the rules can be read (and changed) in one place.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strerrorname_np */
#endif
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <rpc2/rpc2.h>
#include <rpc2/se.h>

#include "duration.h"
#include "level.h"
#include "rcat_proto.h"
#include "report.h"
#include "verdict.h"

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
    case RPC2_ECONNREFUSED:
    case RPC2_ESHUTDOWN: /* the server is going away: as lost as a dead one */
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
    return err == RPC2_ENOSPC || err == RPC2_EOVERFLOW || err == RPC2_EEXIST || err == RPC2_EBUSY;
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
    /* -C while an earlier attempt's end still writes the partial (a killed
     * rcat's server end runs on until it finds the client gone) */
    {RPC2_EBUSY, "busy: another transfer is still writing this file; try again once it has ended",
     "busy on server: another transfer of this file is still running there (an earlier attempt "
     "the server has not yet found gone); try again later, or use --retries"},
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
    {RCAT_NOT_EMPTY, "RCAT_NOT_EMPTY", "directory not empty on server (-r removes it whole)"},
    {RCAT_NOT_LINK, "RCAT_NOT_LINK", "not a symlink on server"},
    {RCAT_HOOK_FAILED, "RCAT_HOOK_FAILED",
     "the server's post-store command failed (the file was stored; the server's log says why)"},
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

static void judge_network(const struct verdict_peer *s, int rc, struct verdict *v)
{
    char t[32];

    v->code = RCAT_EXIT_NET;
    v->name = rpc2_errname(rc);
    duration_format(s->dead_peer_us, t, sizeof t);
    if (rc == RPC2_EDEAD)
        snprintf(v->text, sizeof v->text, "no answer from %s port %u (silent for %s)", s->host,
                 s->port, t);
    else if (rc == RPC2_EUNKNOWNCONN)
        snprintf(v->text, sizeof v->text,
                 "%s port %u no longer knows this connection (server restarted?)", s->host,
                 s->port);
    else if (rc == RPC2_ETIMEDOUT && s->max_time_us) {
        duration_format(s->max_time_us, t, sizeof t);
        snprintf(v->text, sizeof v->text,
                 "time limit reached (--max-time %s): %s port %u did not finish in time", t,
                 s->host, s->port);
    } else if (rc == RPC2_ETIMEDOUT && s->listen) {
        snprintf(v->text, sizeof v->text,
                 "%s did not announce itself on %s within %s (is its rcatd --connect pointed "
                 "here?)",
                 s->host, s->listen, t);
    } else if (rc == RPC2_ECONNREFUSED)
        snprintf(v->text, sizeof v->text,
                 "connection refused by %s port %u: nothing listens there (is rcatd running?)",
                 s->host, s->port);
    else if (rc == RPC2_EADDR)
        snprintf(v->text, sizeof v->text, "cannot resolve or reach %s port %u", s->host, s->port);
    else if (rc == RPC2_EVERSION)
        snprintf(v->text, sizeof v->text, "%s port %u speaks another rpc2 protocol version",
                 s->host, s->port);
    else
        snprintf(v->text, sizeof v->text, "%s port %u: %s", s->host, s->port, rpc2_strerror(rc));
}

/* The server cannot say which of identity and secret was wrong (on
 * purpose: it would tell a prober which names exist), so neither does rcat. */
static void judge_refusal(const struct verdict_peer *s, int rc, struct verdict *v)
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
                 s->port, level_name(s->security));
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

/* A fetch whose own writing failed (a full disk, a reader gone): the
 * server's status then only says that the transfer ended under it. */
static int sink_failed_here(const struct rpc2_se_desc *d)
{
    return d && d->direction == RPC2_SE_FETCH && d->local_status == RPC2_SE_FAILURE &&
           d->remote_status != RPC2_SE_FAILURE && d->error < 0 && !is_network(d->error) &&
           d->error != RPC2_ECANCELED && d->error != RPC2_ESEFAIL1 && d->error != RPC2_ESEFAIL2;
}

void verdict_judge(const struct verdict_peer *s, int rc, const struct rpc2_se_desc *d,
                   const char *remote, const char *local, struct verdict *v)
{
    int fetch = d && d->direction == RPC2_SE_FETCH;
    int err = rc;
    int here;

    v->file = remote;
    if (rc > 0 && !(fetch && is_sink_error(d->error)) && !sink_failed_here(d)) {
        judge_status(rc, v);
        return;
    }
    if (rc == RPC2_EBADPACKET && d && d->sum_type) { /* an older server's answer to it */
        v->code = RCAT_EXIT_NET;
        v->name = rpc2_errname(rc);
        snprintf(v->text, sizeof v->text,
                 "the server refused the call as malformed: a server older than --checksum "
                 "does not know named checksums");
        return;
    }
    if (is_network(rc)) {
        judge_network(s, rc, v);
        return;
    }
    if (is_refusal(rc)) {
        judge_refusal(s, rc, v);
        return;
    }
    if (d && d->error < 0 && (rc > 0 || rc == RPC2_ESEFAIL1))
        err = d->error;
    if (err == RPC2_EINTEGRITY && d && d->expect_sum_len && d->sum_len == d->expect_sum_len &&
        memcmp(d->sum, d->expect_sum, d->sum_len) != 0) {
        char hex[2 * RPC2_SE_SUM_MAX + 1];
        v->code = RCAT_EXIT_INTEGRITY;
        v->name = "CHECKSUM_MISMATCH";
        rpc2_se_sum_hex(d, hex, sizeof hex);
        snprintf(v->text, sizeof v->text, "the %s of the data is %s, not the sum given with --check (%s)",
                 rpc2_se_sum_name(d->sum_type), hex,
                 !fetch || d->file_kind == RPC2_SE_FILE_NAME ? "nothing was kept"
                                                             : "the bytes written are not the file");
        return;
    }
    if (err == RPC2_EINTEGRITY) { /* whichever end noticed, the bytes were wrong */
        v->code = RCAT_EXIT_INTEGRITY;
        v->name = rpc2_errname(err);
        snprintf(v->text, sizeof v->text, "data integrity check failed: the bytes received are "
                                          "not the bytes sent (nothing was kept)");
        return;
    }
    if (err == RPC2_ECHANGED) { /* the sending end's file: the server's for a fetch */
        v->code = RCAT_EXIT_CHANGED;
        v->name = rpc2_errname(err);
        v->file = fetch ? remote : local;
        snprintf(v->text, sizeof v->text,
                 "the file changed while it was being sent (truncated, extended or rewritten): "
                 "%s; try again once it is stable",
                 !fetch                                ? "the server kept nothing"
                 : d->file_kind == RPC2_SE_FILE_NAME ? "nothing was kept"
                                                       : "the bytes written so far are not the file");
        return;
    }
    here = d && (failed_here(rc, err, d) || sink_failed_here(d));
    v->code = here ? RCAT_EXIT_LOCAL : RCAT_EXIT_REFUSED;
    v->name = rpc2_errname(err);
    v->file = here ? local : remote;
    snprintf(v->text, sizeof v->text, "%s", file_error_text(err, here));
    if (here && err == RPC2_EEXIST && s->no_clobber)
        snprintf(v->text, sizeof v->text, "file exists (--no-clobber)");
}

/* A local system call failed on name: "what: error", in lower case like
 * the library's texts ("rcat: out.bin: no space left on device"). */
int verdict_fail_local(const char *name, const char *what, int err, const char **result)
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
