/*
 * ops_xfer.c - fetch and store: the operations that move a file, and what
 * rcat shows of each transfer, from the library's events (rpc2/event.h)
 * to report.h's lines. The local files are localfile.c's.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>

#include <rpc2/event.h>

#include "localfile.h"
#include "ops_impl.h"
#include "policy.h"
#include "report.h"
#include "split.h"
#include "verdict.h"

static uint64_t call_retransmissions(const struct ops *o)
{
    struct rpc2_ctx_stats st;

    rpc2_ctx_stats(o->ctx, &st);
    return st.retransmissions;
}

static int on_event(const struct rpc2_event *ev, void *arg)
{
    struct xfer *x = arg;

    if (ev->type == RPC2_EVENT_STOP) {
        x->stop = *ev;
        x->stop.policy = x->stop.error_name = x->stop.error_description = NULL;
        x->stop.checksum_type = NULL;
        x->stop.desc = NULL;
        x->stop.checksum = NULL;
        if (ev->checksum && ev->checksum_len == sizeof x->sum) {
            memcpy(x->sum, ev->checksum, sizeof x->sum);
            x->stop.checksum = x->sum;
        }
        x->stopped = 1;
    }
    if (ev->type == RPC2_EVENT_STATS)
        ratectl_sync(x->o->ratectl);
    report_xfer_event(&x->rep, ev, call_retransmissions(x->o) - x->retrans0);
    return RPC2_EVENT_CONTINUE;
}

/* Every transfer operand gets its STOP, whatever stage it fails at; the
 * session is filled in once connected. */
void xfer_begin(struct xfer *x, struct ops *o, int send, const char *file, const char *dest,
                int64_t size, struct rpc2_se_desc *d)
{
    x->o = o;
    x->stopped = 0;
    x->reopened = 0;
    o->last_error = 0;
    x->retrans0 = call_retransmissions(o);
    d->event = on_event;
    d->event_arg = x;
    d->stats_interval_us = report_stats_interval_us();
    d->sum_type = o->cfg.sum.type;
    memcpy(d->expect_sum, o->cfg.sum.expect, sizeof d->expect_sum);
    d->expect_sum_len = o->cfg.sum.expect_len;
    report_xfer_begin(&x->rep, NULL, send, file, dest, size);
}

static int xfer_connect(struct xfer *x, const struct url *u, struct slot **s, const char **result)
{
    int rc = ops_connect(x->o, u, s);

    if (rc != 0)
        return ops_fail(x->o, *s, rc, NULL, u->path, NULL, result);
    x->rep.session = (*s)->session;
    return RCAT_EXIT_OK;
}

/* -C (or a retry): the library keeps restart points and continues from the
 * last one the source confirms, for a whole file whose sink is a file by
 * name (a fetch's -o FILE; a store's server keeps them when asked); a
 * retry into anything else starts again from 0. */
static void resume_describe(const struct ops *o, struct rpc2_se_desc *d, int sink_by_name)
{
    d->resume = o->cfg.resume && sink_by_name && o->cfg.offset == 0 && o->cfg.length < 0;
    d->resume_fail_changed = o->cfg.resume_strict;
    d->resume_interval = o->cfg.resume_interval;
}

/* STOP: the library's, once the call has returned; a transfer that never
 * reached the library (a local file that would not open, a server not
 * reached) has none, and is told from its descriptor, which says nothing
 * moved. Bytes that went through a descriptor rcat cannot rewind (standard
 * output, a FIFO, standard input) cannot be moved again by a retry. */
void xfer_end(struct xfer *x, const struct rpc2_se_desc *d, int code, const char *result)
{
    struct rpc2_event none = {
        .file_bytes = d->bytes_transferred,
        .start_byte = d->seek_offset + (int64_t)d->resumed_from,
        .end_byte = d->quota >= 0 ? d->seek_offset + d->quota - 1 : -1,
        .size = -1,
        .packets_retransmitted = d->stats.retransmissions,
        .duplicates = d->stats.duplicates,
    };
    const struct rpc2_event *ev = x->stopped ? &x->stop : &none;

    if (code != RCAT_EXIT_OK && x->o->last_error && d->file_kind == RPC2_SE_FILE_FD &&
        d->bytes_transferred > 0 && !x->reopened) {
        report_info("not retried: bytes already went through %s",
                    x->rep.send ? x->rep.label : x->rep.dest);
        x->o->last_error = 0;
    }

    uint64_t retrans = ev->packets_retransmitted + call_retransmissions(x->o) - x->retrans0;

    struct report_sum sum = {.type = "xxh128", .bytes = d->checksum, .len = 16};

    if (d->sum_len) { /* the sum asked for; else the transfer's own, which is xxh128 */
        sum = (struct report_sum){rpc2_se_sum_name(d->sum_type), d->sum, d->sum_len};
    } else if (!d->checksum_valid) {
        sum.len = 0;
    }
    if (code != RCAT_EXIT_OK && !d->expect_sum_len)
        sum.len = 0; /* a failure's sum says nothing, unless it is why it failed */
    if (x->rep.size < 0 && ev->size >= 0)
        x->rep.size = ev->size;
    report_xfer_range(&x->rep, ev->start_byte, ev->end_byte);
    if (d->resume)
        report_xfer_resumed(&x->rep, d->resume_started_over, d->resume_note);
    report_xfer_end(&x->rep, ev->file_bytes, retrans, ev->duplicates, code, result, &sum);
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

/* ---- fetch ------------------------------------------------------------------ */

/* The size the bar and events show, when they want one, and the room a
 * file by name must have before the first byte moves: a STAT first. */
static int probe_size(struct ops *o, struct slot *s, const struct url *src, const struct sink *k,
                      int64_t *size, const char **result)
{
    file_info info;
    int rc;

    if (!report_wants_size() && !k->path)
        return RCAT_EXIT_OK;
    rc = ops_stat_call(o, s, src->path, &info);
    if (rc != 0)
        return ops_fail(o, s, rc, NULL, src->path, NULL, result);
    if (info.type == RCAT_REG)
        *size = range_size(o, info.size);
    return RCAT_EXIT_OK;
}

/* Whether fd is a pipe or socket whose reader has gone (`rcat URL | head`
 * with SIGPIPE ignored): the write failed with EPIPE, which the library
 * reports as an I/O error. */
static int reader_gone(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};

    return poll(&p, 1, 0) == 1 && (p.revents & POLLERR);
}

static int fetch_into(struct ops *o, struct slot *s, const struct url *src, const struct sink *k,
                      struct rpc2_se_desc *d, const char **result)
{
    fetch_args a = {
        .path = (char *)src->path, .offset = (u_quad_t)o->cfg.offset, .length = o->cfg.length};
    file_info info;
    int rc;

    memset(&info, 0, sizeof info);
    sink_describe(k, o->cfg.no_clobber, o->cfg.preserve, d);
    rc = ops_call(o, s, RCAT_FETCH, (xdrproc_t)xdr_fetch_args, &a, (xdrproc_t)xdr_file_info, &info,
                  d);
    if (rc != 0 && !k->path && d->local_status == RPC2_SE_FAILURE && reader_gone(k->fd)) {
        if (!o->sigpipe_default)
            return verdict_fail_local(k->shown, NULL, EPIPE, result);
        o->signal = SIGPIPE; /* what a write would have ended rcat by */
        *result = "EPIPE";
        return 128 + SIGPIPE;
    }
    if (rc != 0)
        return ops_fail(o, s, rc, d, src->path, k->shown, result);
    return RCAT_EXIT_OK;
}

int ops_fetch(struct ops *o, const struct url *src, const char *dest)
{
    struct rpc2_se_desc d = RPC2_SE_DESC_INIT(RPC2_SE_FETCH); /* from the destination's start */
    const char *result = "OK";
    struct slot *s = NULL;
    struct sink k;
    struct xfer x;
    struct target_policy tp = {o->cfg.no_clobber, o->cfg.append, o->cfg.mkdirs};
    int code;

    if (split_fetch(o, src, dest, &code))
        return code;
    code = target_open(&tp, dest, &k, &result);

    d.quota = o->cfg.length; /* --length, or RPC2_SE_NO_QUOTA */
    resume_describe(o, &d, k.path != NULL && !k.append);
    xfer_begin(&x, o, 0, src->path, k.name, -1, &d);
    x.reopened = k.append; /* a failed append is cut back: the next attempt appends again */
    if (code == RCAT_EXIT_OK)
        code = xfer_connect(&x, src, &s, &result);
    if (code == RCAT_EXIT_OK)
        code = probe_size(o, s, src, &k, &x.rep.size, &result);
    if (x.rep.size > 0)
        d.expected_size = (uint64_t)x.rep.size;
    if (code == RCAT_EXIT_OK)
        code = fetch_into(o, s, src, &k, &d, &result);
    code = target_end(&k, code, &result);
    xfer_end(&x, &d, code, result);
    sink_close(&k);
    return code;
}

/* ---- store ------------------------------------------------------------------ */

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
    store_flags_args f = {.store = a,
                          .flags = (o->cfg.append ? RCAT_STORE_APPEND : 0) |
                                   (o->cfg.mkdirs ? RCAT_STORE_MKDIRS : 0)};
    file_info info;
    int rc;

    memset(&info, 0, sizeof info);
    d->file_kind = RPC2_SE_FILE_FD;
    d->file.fd.fd = src->fd;
    if (f.flags) /* a server older than RCAT_STORE_FLAGS refuses it: never ignores them */
        rc = ops_call(o, s, RCAT_STORE_FLAGS, (xdrproc_t)xdr_store_flags_args, &f,
                      (xdrproc_t)xdr_file_info, &info, d);
    else
        rc = ops_call(o, s, RCAT_STORE, (xdrproc_t)xdr_store_args, &a, (xdrproc_t)xdr_file_info,
                      &info, d);
    return rc ? ops_fail(o, s, rc, d, dst->path, src->shown, result) : RCAT_EXIT_OK;
}

int ops_store(struct ops *o, const char *local, const struct url *dst)
{
    struct rpc2_se_desc d = RPC2_SE_DESC_INIT(RPC2_SE_STORE);
    const char *result = "OK";
    struct slot *s = NULL;
    struct source src;
    struct xfer x;
    int code;

    if (split_store(o, local, dst, &code))
        return code;
    code = source_open(local, &src, &result);
    int64_t size = src.file_size > 0 ? range_size(o, (uint64_t)src.file_size) : -1;

    d.seek_offset = o->cfg.offset;
    d.quota = o->cfg.length; /* --length, or RPC2_SE_NO_QUOTA */
    resume_describe(o, &d, !o->cfg.append);
    xfer_begin(&x, o, 1, local, dst->path, size, &d);
    x.rep.label = src.shown;
    x.reopened = src.own_fd;
    if (code == RCAT_EXIT_OK)
        code = xfer_connect(&x, dst, &s, &result);
    if (code == RCAT_EXIT_OK)
        code = store_from(o, s, &src, dst, &d, &result);
    xfer_end(&x, &d, code, result);
    source_close(&src);
    return code;
}
