/*
 * serve.c - what rcatd does for each call of rcat_proto.x: resolve the
 * path beneath the root (root.c), do the work, move the file as the call's
 * SFTP side effect, log one line.
 *
 * Every procedure is a blocking handler on the worker pool, because
 * filesystem calls can stall (a slow disk, NFS, a directory of a million
 * entries) and the loop thread they would otherwise run on is the one that
 * keeps every transfer of every client moving. FETCH begins on the loop
 * (h_fetch_loop) only for a file that cannot stall it: resolved from the
 * kernel's caches on the root's own local filesystem (root_open_cached);
 * every other one goes to a worker. But no worker waits on a
 * client: FETCH and STORE open and check their file on a worker, hand the
 * transfer to the loop (rpc2_se_transfer_then) and let the worker go; the
 * call's rest (closing, the mtime, the reply) runs on a worker again once
 * the transfer is over, or, for a FETCH and a plain STORE, whose rest waits
 * on nothing the loop does not do already, on the loop (transfer()). So
 * --workers bounds filesystem work at once, not transfers, and a client
 * that never drains its pipe holds no worker: its transfer ends at the
 * stall timeout (rpc2_params.stall_timeout_us). STAT
 * and LIST are quick procedures: they go ahead of queued FETCHes and STOREs
 * and, with three workers or more, have one of their own (rpc2_proc.quick).
 * LIST pages come from kept listings (listing.c), O(page) each. A STORE's
 * temporary is still created, flushed and renamed by the side effect
 * (fileio.c) on the loop thread.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* O_PATH */
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <rpc2/rpc2.h>
#include <rpc2/se.h>

#include "access.h"
#include "level.h"
#include "listing.h"
#include "metrics.h"
#include "rcat_proto.h"
#include "root.h"
#include "serve.h"
#include "serve_impl.h"

/* ---- arguments: the wire's path length kept beside the decoded struct ---- */

/* Each argument type with the wire's length of its path (serve_impl.h). */
struct fetch_req {
    fetch_args a;
    u_int path_len;
};
struct path_req {
    path_args a;
    u_int path_len;
};
struct list_req {
    list_args a;
    u_int path_len;
};
struct store_req {
    store_args a;
    u_int path_len;
};
struct store_flags_req {
    store_flags_args a;
    u_int path_len;
};

CHECKED_DECODER(fetch_req, fetch_args)
CHECKED_DECODER(path_req, path_args)
CHECKED_DECODER(list_req, list_args)
CHECKED_DECODER(store_req, store_args)
CHECKED_DECODER(store_flags_req, store_flags_args)

/* ---- statuses ---------------------------------------------------------------- */

/* A side effect that failed on a local file says why with an rpc2 code;
 * the transport's own failures (a dead peer, a closed connection) stay
 * rpc2 errors. */
static int status_of_rpc2(int code)
{
    switch (code) {
    case RPC2_ENOENT:
        return RCAT_NOT_FOUND;
    case RPC2_EACCES:
        return RCAT_PERMISSION;
    case RPC2_ENOSPC:
        return RCAT_NO_SPACE;
    case RPC2_EIO:
        return RCAT_IO;
    case RPC2_EEXIST:
        return RCAT_EXISTS;
    case RPC2_EISDIR:
        return RCAT_IS_DIR;
    default:
        return code;
    }
}

/* ---- helpers --------------------------------------------------------------- */

void serve_info_of(const struct stat *st, file_info *out)
{
    out->size = st->st_size > 0 ? (u_quad_t)st->st_size : 0;
    out->mode = st->st_mode & 07777;
    out->mtime_sec = st->st_mtim.tv_sec;
    out->mtime_nsec = (u_int)st->st_mtim.tv_nsec;
    out->type = S_ISREG(st->st_mode)   ? RCAT_REG
                : S_ISDIR(st->st_mode) ? RCAT_DIR
                : S_ISLNK(st->st_mode) ? RCAT_LNK
                                       : RCAT_OTHER;
}

static int call_end(struct call *c, int status);

/* The transfer is over (or never ran): the call's rest, on a worker or on
 * the loop (transfer()). */
static int transfer_over(rpc2_request *req, int status, void *args, void *result, void *arg)
{
    struct call *c = arg;

    (void)req;
    c->bytes = c->desc.bytes_transferred;
    /* The client's own failure (its disk full, its reader gone) is no
     * failure of this server's file: its error is logged as the client's,
     * not mapped to what it would mean here. */
    c->client_failed = status != 0 && c->desc.remote_status == RPC2_SE_FAILURE;
    if (status != 0 && !c->client_failed)
        status = status_of_rpc2(c->desc.error ? c->desc.error : status);
    if (c->after)
        status = c->after(c, status, args, result);
    return status == RPC2_CONTINUED ? status : call_end(c, status);
}

/* Runs the side effect c->desc describes on the loop, without this worker;
 * after (may be NULL) finishes the call once it is over. */
/* The round trip the transfer ended with, for the metrics' histogram: its
 * STOP event's Delay (0 for piggybacked bytes, which had no machine). On
 * the loop thread; transfer_over reads it later. */
static int note_stop(const struct rpc2_event *ev, void *arg)
{
    struct call *c = arg;

    if (ev->type == RPC2_EVENT_STOP && RPC2_EVENT_HAS(ev, delay_us))
        c->rtt_us = ev->delay_us;
    return RPC2_EVENT_CONTINUE;
}

/* With metrics, the transfer's STOP event is noted (note_stop). */
static void watch_stop(struct call *c)
{
    if (c->s->metrics) {
        c->desc.event = note_stop;
        c->desc.event_arg = c;
    }
}

/* With on_loop the call ends on the loop, not on a worker: a FETCH (a log
 * line, the metrics, closing a file it only read) and a STORE that
 * replaces a file with no post-store command to run (a stat of the file
 * the loop itself has just written and renamed), none of which waits on
 * more than the loop's own file work does already (the side effect reads
 * and writes the files on the loop; it writes the same log, for rpc2's
 * warnings). On a worker, that end cost two thread hops per call, more
 * than a small file's own work (a tree of small files: rcatd's time went
 * to waking threads). What may flush or run a command (--append's fsync,
 * a post-store command) stays on a worker, as does every open that might
 * wait (h_fetch_loop opens only from the caches): opening a path is what
 * talks to an NFS server (close-to-open), and a hung one must stall a
 * worker, never every client. */
int serve_transfer(struct call *c, int (*after)(struct call *, int, void *, void *), int on_loop)
{
    c->after = after;
    watch_stop(c);
    if (on_loop)
        return rpc2_se_transfer_then_loop(c->req, &c->desc, transfer_over, c);
    return rpc2_se_transfer_then(c->req, &c->desc, transfer_over, c);
}

/* ---- who may do what (access.h) ------------------------------------------- */

/* The caller's grant, copied out under the lock: a reload may free the
 * table as soon as the lock is released. */
static enum access_verdict caller_grant(struct serve *s, rpc2_request *req, struct access_grant *g)
{
    enum access_verdict v;

    pthread_mutex_lock(&s->acl_lock);
    v = access_decide(s->acl, rpc2_request_identity(req), rpc2_request_security(req), s->defaults,
                      g);
    pthread_mutex_unlock(&s->acl_lock);
    return v;
}

/* The caller's own root, if it may do any of need; out is the caller's to
 * dispose of. */
int serve_caller_root(struct serve *s, rpc2_request *req, unsigned need, struct root *out)
{
    struct access_grant g;
    enum access_verdict v = caller_grant(s, req, &g);

    if (v == ACCESS_TOO_LOW)
        return RPC2_ESECURITY;
    if (v == ACCESS_UNLISTED || !(g.rights & need))
        /* a change refused to a caller who may only read: read-only; one who
         * may write but not delete is refused a DELETE by permission */
        return (need & (ACCESS_WRITE | ACCESS_DELETE)) && g.rights && !(g.rights & ACCESS_WRITE)
                   ? RCAT_READ_ONLY
                   : RCAT_PERMISSION;
    return root_enter(&s->root, g.root, out);
}

/* ---- FETCH ----------------------------------------------------------------- */

/* The file (open in c->fd, described by st, its fstat once open) is what
 * the call moves. The library takes its size and version from that fstat
 * (root.c took it to check the open file): none of its own. */
static void fetch_desc(struct call *c, const struct fetch_req *r, const struct stat *st,
                       void *result)
{
    c->st = *st;
    c->desc = (struct rpc2_se_desc){
        .type = RPC2_SE_SFTP,
        .direction = RPC2_SE_FETCH,
        .seek_offset = (int64_t)r->a.offset,
        .quota = r->a.length,
        .file_kind = RPC2_SE_FILE_FD,
        /* opened for this call alone */
        .file.fd = {.fd = c->fd, .positional = 1, .st = &c->st},
    };
    serve_info_of(st, result);
}

/* The file stays open (c->fd) until the call ends. */
static int do_fetch(struct serve *s, rpc2_request *req, void *args, void *result, struct call *c)
{
    const struct fetch_req *r = args;
    struct stat st;

    (void)req;
    if (r->a.offset > INT64_MAX || r->a.length < -1)
        return RPC2_EINVAL;
    struct root at;
    int rc = serve_caller_root(s, req, ACCESS_READ, &at);
    if (rc != 0)
        return rc;
    /* regular files only, judged before they are opened (root.h) */
    rc = root_open_regular(&at, r->a.path, r->path_len, O_RDONLY, &c->fd, &st);
    root_dispose(&at);
    if (rc != 0)
        return rc;
    fetch_desc(c, r, &st, result);
    return serve_transfer(c, NULL, 1);
}

/* ---- STAT ------------------------------------------------------------------ */

/* lstat: a symlink is described, not followed (its directory may be). */
static int do_stat(struct serve *s, rpc2_request *req, void *args, void *result, struct call *c)
{
    const struct path_req *r = args;
    struct stat st;

    (void)c;
    struct root at;
    int rc = serve_caller_root(s, req, ACCESS_READ | ACCESS_LIST, &at);
    if (rc != 0)
        return rc;
    rc = root_stat(&at, r->a.path, r->path_len, &st);
    root_dispose(&at);
    if (rc == 0)
        serve_info_of(&st, result);
    return rc;
}

/* ---- LIST ------------------------------------------------------------------ */

/* Entries [start, start + RCAT_LIST_MAX) of the kept listing. One removed
 * since the directory was read is left out. */
static int fill_page(int dirfd, const struct listing *ls, u_int start, list_result *out)
{
    size_t end = ls->n - start < RCAT_LIST_MAX ? ls->n : (size_t)start + RCAT_LIST_MAX;
    struct stat st;

    out->entries.entries_val = calloc(end - start ? end - start : 1, sizeof(list_entry));
    if (!out->entries.entries_val)
        return RPC2_ENOMEM;
    for (size_t i = start; i < end; i++) {
        if (fstatat(dirfd, ls->names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT)
                continue;
            return root_status_of_errno(errno);
        }
        list_entry *le = &out->entries.entries_val[out->entries.entries_len];
        le->name = strdup(ls->names[i]); /* the library frees the result */
        if (!le->name)
            return RPC2_ENOMEM;
        out->entries.entries_len++;
        serve_info_of(&st, &le->info);
    }
    out->more = end < ls->n;
    return 0;
}

static int do_list(struct serve *s, rpc2_request *req, void *args, void *result, struct call *c)
{
    const struct list_req *r = args;
    const struct listing *ls;
    int fd;

    (void)c;
    struct root at;
    int rc = serve_caller_root(s, req, ACCESS_LIST, &at);
    if (rc != 0)
        return rc;
    rc = root_open_dir(&at, r->a.path, r->path_len, &fd);
    root_dispose(&at);
    if (rc != 0)
        return rc;
    rc = listing_get(s->listings, fd, &ls);
    if (rc == 0) {
        if (r->a.start < ls->n)
            rc = fill_page(fd, ls, r->a.start, result);
        listing_release(s->listings, ls);
    }
    close(fd);
    return rc;
}

/* ---- STORE ----------------------------------------------------------------- */

/* The file is in place (with its mtime, set before the rename): what the
 * reply says. */
static int finish_store(int dirfd, const char *name, file_info *out)
{
    struct stat st;

    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return root_status_of_errno(errno);
    serve_info_of(&st, out);
    return 0;
}

/* A post-store command's end, on a worker: the call's. */
static int hook_over(rpc2_request *req, int status, void *args, void *result, void *arg)
{
    struct call *c = arg;

    (void)req, (void)args, (void)result;
    serve_hook_cancel(&c->s->hooks, &c->hook); /* the context went first: RPC2_ECLOSED */
    return call_end(c, status);
}

static void hook_done(int ok, void *arg)
{
    struct call *c = arg;

    rpc2_request_resume(c->req, ok ? 0 : RCAT_HOOK_FAILED);
}

int serve_after_store(struct call *c, const char *name, const file_info *info)
{
    char shown[LOG_PATH_MAX];
    struct serve_hook_call hc = {.req = c->req,
                                 .fd = c->fd,
                                 .name = name,
                                 .size = info->size,
                                 .desc = &c->desc,
                                 .shown = shown};

    serve_escape_path(c->path, shown, sizeof shown);
    return serve_hook_start(&c->s->hooks, &hc, hook_over, hook_done, c, &c->hook);
}

static int store_after(struct call *c, int status, void *args, void *result)
{
    if (status != 0)
        return status;
    (void)args;
    status = finish_store(c->fd, c->name, result);
    return status != 0 ? status : serve_after_store(c, c->name, result);
}

/* --append: the bytes go to the end of the file itself, which a failed
 * transfer leaves as it was (cut back to its size before); a complete one
 * is flushed to stable storage before the reply. */
static int append_after(struct call *c, int status, void *args, void *result)
{
    struct stat st;

    (void)args;
    if (status == 0 && fsync(c->fd) < 0)
        status = root_status_of_errno(errno);
    if (status != 0) {
        if (ftruncate(c->fd, c->append_from) < 0 || fsync(c->fd) < 0)
            return RCAT_IO; /* the file may keep part of the bytes: said, not hidden */
        return status;
    }
    if (fstat(c->fd, &st) < 0)
        return root_status_of_errno(errno);
    serve_info_of(&st, result);
    return serve_after_store(c, NULL, result);
}

static int store_append(const struct root *at, const struct store_req *r, struct call *c)
{
    struct stat st;
    int rc = root_open_append(at, r->a.path, r->path_len, r->a.mode & MODE_BITS, &c->fd, &st);

    if (rc != 0)
        return rc;
    c->append_from = st.st_size;
    if (lseek(c->fd, 0, SEEK_END) < 0)
        return root_status_of_errno(errno);
    c->desc = (struct rpc2_se_desc){.type = RPC2_SE_SFTP,
                                    .direction = RPC2_SE_STORE,
                                    .quota = -1,
                                    .file_kind = RPC2_SE_FILE_FD,
                                    .file.fd.fd = c->fd};
    return serve_transfer(c, append_after, 0);
}

/* The sink writes a temporary beside the name and renames it into place
 * once complete and flushed; one that does not complete leaves nothing.
 * Its path goes through the directory resolved beneath the root
 * (/proc/self/fd/N/NAME; the directory stays open in c->fd), so both
 * happen in that directory whatever is renamed meanwhile. */
static int store_replace(const struct root *at, const struct store_req *r, unsigned flags,
                         struct call *c)
{
    const store_args *a = &r->a;
    int exists = 0;
    int rc = root_open_store(at, a->path, r->path_len, &c->fd, c->name, &exists);

    if (rc != 0)
        return rc;
    if (exists && a->no_clobber)
        return RCAT_EXISTS;
    snprintf(c->sink_path, sizeof c->sink_path, "/proc/self/fd/%d/%s", c->fd, c->name);
    c->desc = (struct rpc2_se_desc){
        .type = RPC2_SE_SFTP,
        .direction = RPC2_SE_STORE,
        .quota = -1,
        .file_kind = RPC2_SE_FILE_NAME,
        /* a client that asks keeps its partial here for a later attempt */
        .resume = 1,
        .resume_interval = c->s->restart_interval,
        .file.name = {.path = c->sink_path,
                      .mode = a->mode & MODE_BITS,
                      .atomic = 1,
                      .no_clobber = a->no_clobber,
                      .flush = flags & RCAT_STORE_NO_FLUSH ? RPC2_SE_FLUSH_NEVER
                                                           : RPC2_SE_FLUSH_ALWAYS,
                      .attrs = a->keep_mtime ? RPC2_SE_ATTR_MTIME : 0,
                      .mtime_sec = a->mtime_sec,
                      .mtime_nsec = a->mtime_nsec},
    };
    return serve_transfer(c, store_after, !c->s->hooks.runner);
}

/* STORE and STORE_FLAGS: flags say what happens at the target. */
static int store_with(struct serve *s, rpc2_request *req, const struct store_req *r, unsigned flags,
                      struct call *c)
{
    const store_args *a = &r->a;
    struct root at;
    int rc;

    if (flags & ~(unsigned)(RCAT_STORE_APPEND | RCAT_STORE_MKDIRS | RCAT_STORE_NO_FLUSH) ||
        ((flags & RCAT_STORE_APPEND) && (flags & RCAT_STORE_NO_FLUSH)))
        return RPC2_EINVAL;
    if ((a->keep_mtime && a->mtime_nsec >= 1000000000u) ||
        ((flags & RCAT_STORE_APPEND) && (a->no_clobber || a->keep_mtime)))
        return RPC2_EINVAL;
    rc = serve_caller_root(s, req, ACCESS_WRITE, &at);
    if (rc != 0)
        return rc;
    if (flags & RCAT_STORE_MKDIRS)
        rc = root_make_parents(&at, a->path, r->path_len);
    if (rc == 0)
        rc = flags & RCAT_STORE_APPEND ? store_append(&at, r, c) : store_replace(&at, r, flags, c);
    root_dispose(&at);
    return rc;
}

static int do_store(struct serve *s, rpc2_request *req, void *args, void *result, struct call *c)
{
    (void)result;
    return store_with(s, req, args, 0, c);
}

static int do_store_flags(struct serve *s, rpc2_request *req, void *args, void *result,
                          struct call *c)
{
    const struct store_flags_req *f = args;
    struct store_req r = {.a = f->a.store, .path_len = f->path_len};

    (void)result;
    return store_with(s, req, &r, f->a.flags, c);
}

/* ---- the handlers ---------------------------------------------------------- */

/* The call's end, on whichever worker it comes: its line, its files. */
static int call_end(struct call *c, int status)
{
    struct serve *s = c->s;

    if (!c->logged)
        serve_log_call(s, c, status);
    metrics_call_end(s->metrics,
                     &(struct metrics_call){c->proc, serve_status_name(status),
                                            rpc2_request_identity(c->req), c->bytes,
                                            serve_ms_since(&c->t0) / 1e3, c->rtt_us / 1e6});
    serve_split_release(s, c);
    if (c->fd >= 0)
        close(c->fd);
    serve_batch_release(s, c);
    free(c);
    atomic_fetch_sub(&s->running, 1);
    return status;
}

/* running goes up before stopping is read, and serve_stop sets stopping
 * before it reads running: a call either sees the stop or is counted. A
 * procedure that left its transfer to the loop (RPC2_CONTINUED) ends in
 * transfer_over. */
struct call *serve_call_begin(struct serve *s, rpc2_request *req, const char *proc,
                              const char *path)
{
    struct call *c = calloc(1, sizeof *c);

    if (!c)
        return NULL;
    *c = (struct call){.s = s, .req = req, .proc = proc, .path = path, .fd = -1, .append_from = -1};
    clock_gettime(CLOCK_MONOTONIC, &c->t0);
    atomic_fetch_add(&s->running, 1);
    metrics_call_begin(s->metrics, proc);
    return c;
}

int serve_run(struct serve *s, rpc2_request *req, const char *proc, const char *path,
              serve_proc_fn fn, void *args, void *result)
{
    struct call *c = serve_call_begin(s, req, proc, path);
    int status;

    if (!c)
        return RPC2_ENOMEM;
    status = atomic_load(&s->stopping) ? RPC2_ESHUTDOWN : fn(s, req, args, result, c);
    return status == RPC2_CONTINUED ? status : call_end(c, status);
}

static int h_fetch(rpc2_request *req, void *args, void *result, void *arg)
{
    return serve_run(arg, req, "FETCH", ((struct fetch_req *)args)->a.path, do_fetch, args, result);
}

int serve_reads_whole_root(struct serve *s, rpc2_request *req)
{
    struct access_grant g;

    return caller_grant(s, req, &g) == ACCESS_GRANTED && (g.rights & ACCESS_READ) &&
           strcmp(g.root, ".") == 0;
}

void serve_to_worker(rpc2_request *req)
{
    int rc = rpc2_request_to_worker(req);

    if (rc != 0)
        rpc2_reply(req, rc);
}

static void fetched_on_loop(rpc2_request *req, int status, void *arg)
{
    struct call *c = arg;

    rpc2_reply(req, transfer_over(req, status, c->args, c->result, c));
}

/* FETCH's first turn, on the loop (rpc2.h: a proc with both handlers): a
 * file the kernel opens from its caches on the root's own filesystem
 * (root_open_cached) is opened here and its transfer started at once,
 * without the two thread hops a worker costs (serving a tree of small
 * files, rcatd spent more on those hops than on the files). Anything else
 * goes to a worker, where h_fetch opens and answers as ever: a path not in
 * the cache, one crossing a mount point (a hung NFS server must stall a
 * worker, never every client), a file refused, an error, a caller whose
 * root is not the served one. */
static void h_fetch_loop(rpc2_request *req, void *args, void *result, void *arg)
{
    struct serve *s = arg;
    const struct fetch_req *r = args;
    struct stat st;
    struct call *c;
    int fd;

    if (atomic_load(&s->stopping) || r->a.offset > INT64_MAX || r->a.length < -1 ||
        !serve_reads_whole_root(s, req) ||
        root_open_cached(&s->root, r->a.path, r->path_len, &fd, &st) != 0) {
        serve_to_worker(req);
        return;
    }
    c = serve_call_begin(s, req, "FETCH", r->a.path);
    if (!c) {
        close(fd);
        rpc2_reply(req, RPC2_ENOMEM);
        return;
    }
    c->fd = fd;
    fetch_desc(c, r, &st, result);
    serve_transfer_now(c, NULL);
}

void serve_transfer_now(struct call *c, int (*after)(struct call *, int, void *, void *))
{
    int rc;

    c->after = after;
    watch_stop(c);
    rc = rpc2_se_init(c->req, &c->desc);
    if (rc == 0)
        rc = rpc2_se_check_async(c->req, fetched_on_loop, c);
    if (rc != 0)
        fetched_on_loop(c->req, rc, c);
}

static int h_stat(rpc2_request *req, void *args, void *result, void *arg)
{
    return serve_run(arg, req, "STAT", ((struct path_req *)args)->a.path, do_stat, args, result);
}

static int h_list(rpc2_request *req, void *args, void *result, void *arg)
{
    return serve_run(arg, req, "LIST", ((struct list_req *)args)->a.path, do_list, args, result);
}

static int h_store(rpc2_request *req, void *args, void *result, void *arg)
{
    return serve_run(arg, req, "STORE", ((struct store_req *)args)->a.path, do_store, args, result);
}

static int h_store_flags(rpc2_request *req, void *args, void *result, void *arg)
{
    /* one procedure to the log and the metrics, whatever its flags */
    return serve_run(arg, req, "STORE", ((struct store_flags_req *)args)->a.store.path,
                     do_store_flags, args, result);
}

static const struct rpc2_proc procs[] = {
    {.proc = RCAT_FETCH,
     .decode_args = (xdrproc_t)xdr_fetch_req,
     .args_size = sizeof(struct fetch_req),
     .encode_result = (xdrproc_t)xdr_file_info,
     .result_size = sizeof(file_info),
     .async_handler = h_fetch_loop,
     .blocking_handler = h_fetch},
    PROC(RCAT_STAT, path_req, file_info, h_stat, 1),
    PROC(RCAT_LIST, list_req, list_result, h_list, 1),
    PROC(RCAT_STORE, store_req, file_info, h_store, 0),
    PROC(RCAT_STORE_FLAGS, store_flags_req, file_info, h_store_flags, 0),
};

/* ---- the API --------------------------------------------------------------- */

/* Files are opened, and the store path goes, through /proc/self/fd: better
 * to find out now than on the first call that /proc is missing (a bare
 * chroot or container). */
static int proc_fd_works(int fd)
{
    char path[64];
    struct stat a, b;

    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int pfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (pfd < 0)
        return -errno;
    int same =
        fstat(pfd, &a) == 0 && fstat(fd, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
    close(pfd);
    return same ? 0 : -ENOENT;
}

int serve_new(const struct serve_config *cfg, struct serve **out, const char **why)
{
    struct serve *s = calloc(1, sizeof *s);
    int rc;

    *out = NULL;
    if (!s)
        return -ENOMEM;
    pthread_mutex_init(&s->batch_lock, NULL); /* serve_free destroys it */
    if (listings_new(&s->listings) != 0) {
        free(s);
        return -ENOMEM;
    }
    rc = root_init(&s->root, cfg->root);
    if (rc != 0) {
        *why = "cannot open the root directory";
        listings_free(s->listings);
        free(s);
        return rc;
    }
    if ((rc = proc_fd_works(s->root.fd)) != 0) {
        *why = "rcatd needs /proc/self/fd (is /proc mounted?)";
        serve_free(s);
        return rc;
    }
    pthread_mutex_init(&s->acl_lock, NULL);
    /* --writable: anonymous callers may change anything, as STORE could
     * already replace any file; the access file gives d apart from w */
    s->defaults = ACCESS_READ | ACCESS_LIST | (cfg->writable ? ACCESS_WRITE | ACCESS_DELETE : 0);
    s->min_security = cfg->min_security;
    s->log = cfg->log;
    s->log_arg = cfg->log_arg;
    s->metrics = cfg->metrics;
    s->restart_interval = cfg->restart_interval;
    if ((rc = serve_hooks_init(&s->hooks, cfg->root, cfg->hooks_runner)) != 0) {
        *why = "cannot resolve the root's path";
        serve_free(s);
        return rc;
    }
    if ((rc = serve_splits_new(cfg->split_idle_us, cfg->log, cfg->log_arg, &s->splits)) != 0) {
        *why = "cannot start the split temporaries' sweeper";
        serve_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int serve_export_upto(struct serve *s, rpc2_ctx *ctx, uint32_t last_proc)
{
    enum { N = sizeof procs / sizeof procs[0] };
    struct rpc2_proc all[N + SERVE_OPS_N + 1 + SERVE_SPLIT_N + 1];
    size_t n = 0;

    memcpy(all, procs, sizeof procs);
    memcpy(all + N, serve_ops_procs, sizeof serve_ops_procs);
    all[N + SERVE_OPS_N] = serve_range_proc;
    memcpy(all + N + SERVE_OPS_N + 1, serve_split_procs, sizeof serve_split_procs);
    all[N + SERVE_OPS_N + 1 + SERVE_SPLIT_N] = serve_batch_proc;
    /* up to last_proc: the procedures a server of an older version had */
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i].proc <= last_proc)
            all[n++] = all[i];
    return rpc2_export(ctx, RCAT_SUBSYS, all, n, s); /* copied */
}

int serve_export(struct serve *s, rpc2_ctx *ctx)
{
    return serve_export_upto(s, ctx, UINT32_MAX);
}

unsigned serve_defaults(const struct serve *s)
{
    return s->defaults;
}

int serve_set_access(struct serve *s, struct access *acl, struct access **old, char *why,
                     size_t whylen)
{
    for (size_t i = 0; acl && i < acl->n; i++) {
        struct root sub;
        int rc = root_enter(&s->root, acl->e[i].root, &sub);
        if (rc != 0) {
            snprintf(why, whylen,
                     "line %zu: %s's root \"%s\" is not a directory beneath the "
                     "served one (%s)",
                     acl->e[i].line, acl->e[i].identity, acl->e[i].root, serve_status_name(rc));
            return -1;
        }
        root_dispose(&sub);
    }
    pthread_mutex_lock(&s->acl_lock);
    *old = s->acl;
    s->acl = acl;
    pthread_mutex_unlock(&s->acl_lock);
    return 0;
}

int serve_hide(struct serve *s, const char *const *paths, size_t n)
{
    return root_hide(&s->root, paths, n);
}

void serve_stop(struct serve *s)
{
    atomic_store(&s->stopping, 1);
}

unsigned serve_running(struct serve *s)
{
    return atomic_load(&s->running);
}

uint64_t serve_list_names_read(struct serve *s)
{
    return listings_names_read(s->listings);
}

void serve_free(struct serve *s)
{
    if (!s)
        return;
    root_dispose(&s->root);
    if (s->acl) {
        access_dispose(s->acl);
        free(s->acl);
    }
    listings_free(s->listings);
    serve_hooks_dispose(&s->hooks);
    serve_splits_free(s->splits);
    serve_batch_spares_free(s);
    free(s);
}

struct serve_hooks *serve_hooks_of(struct serve *s)
{
    return &s->hooks;
}
