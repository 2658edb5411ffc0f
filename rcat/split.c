/*
 * split.c - rcat --split=N (split.h): the ranges of one file fetched at
 * once over jobs.c's lanes into one temporary, each range a FETCH of
 * (offset, length) whose descriptor writes at that offset through an fd of
 * its own (so no two transfers share a file position). The library checks
 * each range end to end; the whole file is then summed here and compared
 * with the server's SUM of it, so a file that changed between ranges, or a
 * range resumed from the wrong place, is refused instead of kept. Events
 * show one transfer: the ranges' STATS add up to the file's.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <rpc2/event.h>
#include <rpc2/retry.h>

#include "jobs.h"
#include "localfile.h"
#include "ops_impl.h"
#include "policy.h"
#include "report.h"
#include "split.h"
#include "split_impl.h"
#include "verdict.h"

uint64_t split_ctx_retransmissions(struct ops *o)
{
    struct rpc2_ctx_stats st;

    rpc2_ctx_stats(o->ctx, &st);
    return st.retransmissions;
}

/* ---- events: the ranges as one transfer ------------------------------------- */

uint64_t split_bytes_so_far(const struct split_run *r, uint64_t *rate_bps)
{
    uint64_t total = 0;

    *rate_bps = 0;
    for (size_t i = 0; i < r->n; i++) {
        total += r->v[i].ok ? r->v[i].len : r->v[i].done + r->v[i].live;
        if (!r->v[i].ok)
            *rate_bps += r->v[i].rate_bps;
    }
    return total;
}

/* The file's view of a range's event: the whole file's range and size,
 * and bytes and rate summed over the ranges. */
static void tell(struct split_run *r, const struct rpc2_event *ev)
{
    struct rpc2_event e = *ev;

    e.start_byte = 0;
    e.end_byte = (int64_t)r->size - 1;
    e.size = (int64_t)r->size;
    e.file_bytes = split_bytes_so_far(r, &e.rate_bps);
    e.packets_retransmitted = r->retrans;
    for (size_t i = 0; i < r->n; i++)
        e.packets_retransmitted += r->v[i].resent;
    report_xfer_event(&r->rep, &e, split_ctx_retransmissions(r->o) - r->retrans0);
}

static int on_range_event(const struct rpc2_event *ev, void *arg)
{
    struct range *g = arg;
    struct split_run *r = g->r;

    switch (ev->type) {
    case RPC2_EVENT_INIT:
        if (!r->told_init++)
            tell(r, ev);
        break;
    case RPC2_EVENT_SESSION:
        if (!r->told_session++)
            tell(r, ev);
        break;
    case RPC2_EVENT_NOTIFICATION:
        g->packet_size = ev->packet_size;
        g->window = ev->window;
        if (!r->told_notification++)
            tell(r, ev);
        break;
    case RPC2_EVENT_STATS:
        g->live = ev->file_bytes;
        g->rate_bps = ev->rate_bps;
        g->resent = ev->packets_retransmitted;
        tell(r, ev);
        break;
    case RPC2_EVENT_STOP: /* the ranges' ERROR and STOP are not the file's */
        r->retrans += ev->packets_retransmitted;
        r->duplicates += ev->duplicates;
        g->resent = 0;
        break;
    default:
        break;
    }
    return RPC2_EVENT_CONTINUE;
}

/* ---- one range on a lane ---------------------------------------------------- */

/* Where a failed attempt may continue: the sink writes out of order within
 * its window, so only what lies a window (twice, to be safe) behind the
 * furthest byte written is known to be there. A mistake here is caught by
 * the whole file's sum, never kept. */
static uint64_t known_written(const struct range *g)
{
    uint64_t moved = g->d.bytes_transferred;
    uint64_t margin = 2ull * g->packet_size * g->window;

    if (!g->packet_size || !g->window || moved <= margin)
        return 0;
    return moved - margin;
}

static void range_over(struct range *g, int status)
{
    if (g->fd >= 0)
        close(g->fd);
    g->fd = -1;
    g->rate_bps = 0;
    if (status == 0 && g->d.bytes_transferred != g->len - g->done)
        status = RPC2_ECHANGED; /* the file ended before the range: it shrank */
    if (status == 0) {
        g->ok = 1;
        g->done = g->len;
    } else {
        g->error = status;
        g->done += known_written(g);
        if (ops_conn_lost(status) && g->s)
            g->s->lost = status;
    }
    g->live = 0;
    jobs_finish(g->j, g->lane);
}

static void range_fetched(int status, void *result, void *arg)
{
    (void)result;
    range_over(arg, status);
}

/* Its own open file description: its position is its own. The file is
 * checked to still be the one this run made (a fetch's temporary, by its
 * name) or opened (a put's local file, through its descriptor). */
static int open_range_fd(const struct split_run *r)
{
    char proc[32];
    struct stat st;
    int fd;

    if (r->put) {
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", r->fd);
        fd = open(proc, O_RDONLY | O_CLOEXEC);
    } else {
        fd = open(r->tmp, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) < 0 || st.st_dev != r->tmp_st.st_dev || st.st_ino != r->tmp_st.st_ino) {
        close(fd);
        errno = ESTALE;
        return -1;
    }
    return fd;
}

/* The range's call: a FETCH of it, or a STORE_RANGE into the server's
 * temporary. */
static int call_range(struct split_run *r, struct range *g, struct slot *s, uint64_t at)
{
    int64_t len = (int64_t)(g->len - g->done);
    struct rpc2_call_opts opts = {.se = &g->d};

    if (r->put) {
        g->args.store = (store_range_args){.path = r->remote_tmp, .offset = at, .length = len};
        return rpc2_call_async(s->conn, RCAT_STORE_RANGE, (xdrproc_t)xdr_store_range_args,
                               &g->args.store, (xdrproc_t)xdr_file_info, &g->info, &opts,
                               range_fetched, g);
    }
    g->args.fetch = (fetch_args){.path = (char *)r->server->path, .offset = at, .length = len};
    return rpc2_call_async(s->conn, RCAT_FETCH, (xdrproc_t)xdr_fetch_args, &g->args.fetch,
                           (xdrproc_t)xdr_file_info, &g->info, &opts, range_fetched, g);
}

static void start_range(struct jobs *j, unsigned lane, struct slot *s, size_t task, void *arg)
{
    struct split_run *r = arg;
    struct range *g = &r->v[r->todo[task]];
    uint64_t at = g->off + g->done;
    int rc;

    g->j = j;
    g->lane = lane;
    g->s = s;
    g->live = 0;
    g->packet_size = g->window = 0;
    g->d = (struct rpc2_se_desc)RPC2_SE_DESC_INIT(r->put ? RPC2_SE_STORE : RPC2_SE_FETCH);
    if (s->lost || r->o->timed_out || r->o->signal)
        return range_over(g, s->lost ? s->lost : r->o->signal ? RPC2_ECANCELED : RPC2_ETIMEDOUT);
    g->fd = open_range_fd(r);
    g->sys_errno = g->fd < 0 ? errno : 0;
    if (g->fd < 0)
        return range_over(g, RPC2_ESYSTEM);
    g->d.file_kind = RPC2_SE_FILE_FD;
    g->d.file.fd.fd = g->fd;
    g->d.seek_offset = (int64_t)at;
    g->d.quota = (int64_t)(g->len - g->done);
    g->d.event = on_range_event;
    g->d.event_arg = g;
    g->d.stats_interval_us = report_stats_interval_us();
    rc = call_range(r, g, s, at);
    if (rc != 0)
        range_over(g, rc);
}

/* ---- rounds ------------------------------------------------------------------ */

/* Which ranges the next round fetches: those that failed for a reason
 * another attempt can cure. Returns how many failed for good (the first
 * such into *fatal). */
static size_t plan_round(struct split_run *r, size_t *fatal)
{
    size_t hopeless = 0;

    r->n_todo = 0;
    for (size_t i = 0; i < r->n; i++) {
        const struct range *g = &r->v[i];

        if (g->ok)
            continue;
        if (g->error && !rpc2_retry_retryable(g->error)) {
            if (!hopeless++)
                *fatal = i;
            continue;
        }
        r->todo[r->n_todo++] = i;
    }
    return hopeless;
}

size_t split_move_ranges(struct split_run *r, unsigned lanes)
{
    struct ops *o = r->o;
    double wait = SPLIT_FIRST_WAIT;
    size_t fatal = 0;

    for (unsigned round = 0; round < SPLIT_ROUNDS; round++) {
        if (plan_round(r, &fatal))
            return fatal + 1;
        if (r->n_todo == 0)
            return 0;
        if (o->signal || o->timed_out)
            break;
        if (round > 0) {
            report_info("%s: %zu range(s) failed (%s); moving them again from where they "
                        "stopped",
                        r->server->path, r->n_todo, rpc2_errname(r->v[r->todo[0]].error));
            ops_watch(o, 1);
            ops_wait(o, wait, NULL);
            ops_watch(o, 0);
            wait *= 2;
            ops_begin_attempt(o, r->server, 1); /* a fresh connection: the last may be lost */
        }
        int rc = jobs_run(o, r->server, lanes, r->n_todo, start_range, r);

        if (rc != 0 && r->n_todo && !r->v[r->todo[0]].error)
            r->v[r->todo[0]].error = rc;
        for (size_t i = 0; i < r->n; i++)
            r->v[i].s = NULL; /* the lanes' connections are gone */
    }
    for (size_t i = 0; i < r->n; i++)
        if (!r->v[i].ok)
            return i + 1;
    return 0;
}

/* ---- the file around the ranges ---------------------------------------------- */

static int make_temporary(struct split_run *r, const char **result)
{
    const char *path = r->k.path;
    const char *slash = strrchr(path, '/');
    int dir_len = slash ? (int)(slash - path + 1) : 0;
    const char *base = slash ? slash + 1 : path;

    for (unsigned seq = 0; seq < 100; seq++) {
        int n = snprintf(r->tmp, sizeof r->tmp, "%.*s.%s.rcat-split-%d-%u", dir_len, path, base,
                         (int)getpid(), seq);

        if (n < 0 || (size_t)n >= sizeof r->tmp)
            return verdict_fail_local(path, "cannot name a temporary", ENAMETOOLONG, result);
        r->fd = open(r->tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (r->fd >= 0 || errno != EEXIST)
            break;
    }
    if (r->fd < 0) {
        r->tmp[0] = '\0';
        return verdict_fail_local(path, "cannot create the temporary", errno, result);
    }
    if (fstat(r->fd, &r->tmp_st) < 0)
        return verdict_fail_local(path, NULL, errno, result);
    /* room for every byte before any moves: a full disk fails now */
    int err = posix_fallocate(r->fd, 0, (off_t)r->size);

    if (err == EOPNOTSUPP || err == EINVAL)
        err = ftruncate(r->fd, (off_t)r->size) < 0 ? errno : 0;
    return err ? verdict_fail_local(path, "cannot make room for the file", err, result)
               : RCAT_EXIT_OK;
}

/* ---- the whole file's sums, both ends at once --------------------------------- */

struct remote_sum {
    sum_args a;
    sum_result res;
    int done, status;
};

static void remote_summed(int status, void *result, void *arg)
{
    struct remote_sum *q = arg;

    (void)result;
    q->status = status;
    q->done = 1;
}

int split_sums(struct split_run *r, const struct url *u, struct split_sums *out)
{
    struct ops *o = r->o;
    struct remote_sum q = {.a = {.path = (char *)u->path, .type = (u_int)out->type, .length = -1}};
    struct slot *s = NULL;
    int rc = ops_connect(o, u, &s);

    memset(&q.res, 0, sizeof q.res);
    /* the server reads its copy while this end reads its own */
    if (rc == 0)
        rc = rpc2_call_async(s->conn, RCAT_SUM, (xdrproc_t)xdr_sum_args, &q.a,
                             (xdrproc_t)xdr_sum_result, &q.res, NULL, remote_summed, &q);
    out->local_rc = rpc2_se_sum_fd(r->fd, out->type, 0, -1, r->sum, &r->sum_len, &out->summed);
    out->local_errno = errno;
    if (rc != 0) /* not even sent: as a call on its own (rebinding a forgotten connection) */
        return ops_sum(o, u, (unsigned)out->type, 0, -1, out->theirs, &out->their_len, &out->now);
    o->in_call = s->conn; /* what a signal or --max-time cancels */
    ops_watch(o, 1);
    while (!q.done)
        ev_run(o->loop, EVRUN_ONCE);
    ops_watch(o, 0);
    o->in_call = NULL;
    rc = q.status;
    if (rc == 0 && (q.res.sum.sum_len == 0 ||
                    q.res.sum.sum_len != rpc2_se_sum_len(out->type)))
        rc = RPC2_EDECODE; /* not a sum of the type asked for */
    if (rc == 0) {
        memcpy(out->theirs, q.res.sum.sum_val, q.res.sum.sum_len);
        out->their_len = q.res.sum.sum_len;
        out->now = q.res.info;
    }
    xdr_free((xdrproc_t)xdr_sum_result, (char *)&q.res);
    if (rc != 0 && ops_conn_lost(rc))
        s->lost = rc;
    return rc;
}

int split_sums_match(struct split_run *r, const struct split_sums *q, const char *named,
                     const char **result)
{
    const struct ops_config *c = &r->o->cfg;

    if (q->their_len != r->sum_len || memcmp(q->theirs, r->sum, r->sum_len) != 0 ||
        q->summed != r->size || q->now.size != r->size)
        return 0;
    if (c->sum.expect_len &&
        (c->sum.expect_len != r->sum_len || memcmp(c->sum.expect, r->sum, r->sum_len))) {
        *result = "RPC2_EINTEGRITY";
        report_error(RCAT_EXIT_INTEGRITY, *result, named,
                     "the file's %s is not the one --check gave: nothing %s",
                     rpc2_se_sum_name(q->type), r->put ? "stored" : "kept");
        return RCAT_EXIT_INTEGRITY;
    }
    return 1;
}

/* The whole file here against the server's SUM of it now: equal, the
 * temporary is exactly the server's file. */
static int check_whole(struct split_run *r, const char **result)
{
    struct ops *o = r->o;
    struct split_sums q = {.type = o->cfg.sum.type ? o->cfg.sum.type : RPC2_SE_SUM_XXH128};
    int rc = split_sums(r, r->server, &q);

    if (q.local_rc < 0)
        return verdict_fail_local(r->k.shown, "cannot read the copy back",
                                  q.local_rc == RPC2_ENOMEM ? ENOMEM : q.local_errno, result);
    if (rc != 0)
        return ops_fail(o, NULL, rc, NULL, r->server->path, NULL, result);
    rc = split_sums_match(r, &q, r->server->path, result);
    if (rc)
        return rc == 1 ? RCAT_EXIT_OK : rc;
    int changed = q.now.size != r->at_start.size || q.now.mtime_sec != r->at_start.mtime_sec ||
                  q.now.mtime_nsec != r->at_start.mtime_nsec;

    *result = changed ? "RPC2_ECHANGED" : "RPC2_EINTEGRITY";
    report_error(changed ? RCAT_EXIT_CHANGED : RCAT_EXIT_INTEGRITY, *result, r->server->path,
                 changed ? "the file changed on the server while its ranges were fetched "
                           "(its %s differs): nothing kept"
                         : "the ranges put together do not have the server's %s of the "
                           "file: nothing kept",
                 rpc2_se_sum_name(q.type));
    return changed ? RCAT_EXIT_CHANGED : RCAT_EXIT_INTEGRITY;
}

/* Mode and mtime as a fetch by name gives them (sink_describe), then the
 * name: with -n only if it is still free. */
static int put_in_place(struct split_run *r, const char **result)
{
    const struct ops_config *c = &r->o->cfg;
    mode_t mask = umask(0);
    mode_t mode;

    umask(mask);
    if (c->preserve)
        mode = r->at_start.mode & 07777;
    else if (r->k.replaced)
        mode = r->k.old_mode;
    else
        mode = r->at_start.mode & 0777 & ~mask;
    if (fchmod(r->fd, mode) < 0)
        return verdict_fail_local(r->k.shown, "cannot set the mode", errno, result);
    if (c->preserve) {
        struct timespec ts[2] = {
            {.tv_nsec = UTIME_OMIT},
            {.tv_sec = r->at_start.mtime_sec, .tv_nsec = (long)r->at_start.mtime_nsec}};

        if (futimens(r->fd, ts) < 0)
            return verdict_fail_local(r->k.shown, "cannot set the mtime", errno, result);
    }
    if (fsync(r->fd) < 0)
        return verdict_fail_local(r->k.shown, "cannot flush the file", errno, result);
    if (c->no_clobber ? renameat2(AT_FDCWD, r->tmp, AT_FDCWD, r->k.path, RENAME_NOREPLACE) < 0
                      : rename(r->tmp, r->k.path) < 0)
        return verdict_fail_local(r->k.shown, "cannot rename the copy into place", errno, result);
    r->tmp[0] = '\0';
    return RCAT_EXIT_OK;
}

/* The failure of the range that ended the run, in rcat's words. */
int split_range_failure(struct split_run *r, size_t which, const char **result)
{
    struct range *g = &r->v[which - 1];

    if (g->error == RPC2_ECHANGED) {
        *result = "RPC2_ECHANGED";
        report_error(RCAT_EXIT_CHANGED, *result, r->server->path,
                     r->put ? "the file changed here while its ranges were stored (a range "
                              "ended short): nothing kept"
                            : "the file changed on the server while its ranges were fetched (a "
                              "range ended short): nothing kept");
        return RCAT_EXIT_CHANGED;
    }
    if (g->error == RPC2_ESYSTEM)
        return verdict_fail_local(r->shown, r->put ? "cannot open the file again" : "cannot open the temporary",
                                  g->sys_errno, result);
    return ops_fail(r->o, r->slot, g->error ? g->error : RPC2_ECANCELED, &g->d, r->server->path,
                    r->shown, result);
}

int split_layout(struct split_run *r)
{
    uint64_t each = (r->size + r->n - 1) / r->n;

    r->v = calloc(r->n, sizeof *r->v);
    r->todo = calloc(r->n, sizeof *r->todo);
    if (!r->v || !r->todo)
        return -1;
    for (size_t i = 0; i < r->n; i++) {
        r->v[i] = (struct range){.r = r, .off = i * each, .fd = -1};
        r->v[i].len = i + 1 < r->n ? each : r->size - r->v[i].off;
    }
    return 0;
}

static int run_split(struct split_run *r, unsigned lanes, const char **result)
{
    int code;

    if (split_layout(r) != 0)
        return verdict_fail_local(r->shown, NULL, ENOMEM, result);
    code = make_temporary(r, result);
    if (code != RCAT_EXIT_OK)
        return code;
    size_t failed = split_move_ranges(r, lanes);

    report_xfer_focus(&r->rep);
    if (failed)
        return split_range_failure(r, failed, result);
    code = check_whole(r, result);
    return code == RCAT_EXIT_OK ? put_in_place(r, result) : code;
}

size_t split_ranges_for(uint64_t size, unsigned split)
{
    uint64_t most = size / SPLIT_MIN_RANGE;

    return (size_t)(most < split ? most : split);
}

static void end_run(struct split_run *r)
{
    if (r->fd >= 0)
        close(r->fd);
    if (r->tmp[0])
        unlink(r->tmp);
    sink_close(&r->k);
}

void split_report_end(struct split_run *r, int code, const char *result)
{
    struct ops *o = r->o;
    uint64_t rate;
    uint64_t moved = r->v ? split_bytes_so_far(r, &rate) : 0;
    struct report_sum sum = {
        rpc2_se_sum_name(o->cfg.sum.type ? o->cfg.sum.type : RPC2_SE_SUM_XXH128), r->sum,
        code == RCAT_EXIT_OK ? r->sum_len : 0};

    report_xfer_range(&r->rep, 0, (int64_t)r->size - 1);
    report_xfer_end(&r->rep, moved, r->retrans + split_ctx_retransmissions(o) - r->retrans0,
                    r->duplicates, code, result, &sum);
}

int split_fetch(struct ops *o, const struct url *src, const char *dest, int *code)
{
    struct target_policy tp = {o->cfg.no_clobber, 0, o->cfg.mkdirs};
    struct split_run r = {.o = o, .server = src, .fd = -1};
    const char *result = "OK";
    struct slot *s = NULL;

    if (o->cfg.split < 2 || !dest || !strcmp(dest, "-"))
        return 0;
    if (ops_connect(o, src, &s) != 0 || ops_stat_call(o, s, src->path, &r.at_start) != 0 ||
        r.at_start.type != RCAT_REG)
        return 0; /* the usual fetch says why, or needs no split */
    r.size = r.at_start.size;
    r.n = split_ranges_for(r.size, o->cfg.split);
    if (r.n < 2)
        return 0;
    if (target_open(&tp, dest, &r.k, &result) != RCAT_EXIT_OK || !r.k.path) {
        sink_close(&r.k);
        return 0; /* a device or FIFO takes the bytes in order; a refusal is said again */
    }
    r.shown = r.k.shown;
    report_info("%s: %zu ranges at once", src->path, r.n);
    report_xfer_begin(&r.rep, s->session, 0, src->path, r.k.name, (int64_t)r.size);
    r.retrans0 = split_ctx_retransmissions(o);
    r.slot = s;
    *code = run_split(&r, (unsigned)r.n, &result);
    end_run(&r);
    split_report_end(&r, *code, result);
    free(r.v);
    free(r.todo);
    return 1;
}
