/*
 * serve_batch.c - rcatd's FETCH_BATCH (rcat_proto.x): several whole small
 * files in one call, for rcat -r, whose tree of small files otherwise
 * costs one call, one reply and one wake-up of each end per file. Each
 * path is opened and judged exactly as FETCH's own (root_open_regular:
 * beneath the caller's root, a regular file, the caller's right r); the
 * files are read into one buffer, which the side effect sends as memory
 * (piggybacked when it fits the reply, streamed otherwise), and the reply
 * says each file's outcome and length. Work is bounded per call: at most
 * RCAT_BATCH_FILES paths of RCAT_BATCH_PATH_BYTES together, at most
 * RCAT_BATCH_BYTES read. As for FETCH, a batch whose files all open from
 * the kernel's caches beneath the served root is read on the loop; any
 * other is opened and read on a worker (an open may stall: NFS). The
 * transfer and the call's end run on the loop. Each file gets its own log
 * line, as a FETCH does.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "access.h"
#include "serve_impl.h"

/* The arguments with each path's length as the wire gave it (a NUL inside
 * a path is refused by root_check, as FETCH's). */
struct fetch_batch_req {
    fetch_batch_args a;
    u_int lens[RCAT_BATCH_FILES];
};

static bool_t xdr_fetch_batch_req(XDR *x, struct fetch_batch_req *r)
{
    u_int n;

    if (x->x_op != XDR_DECODE)
        return xdr_fetch_batch_args(x, &r->a);
    if (!xdr_u_int(x, &n) || n > RCAT_BATCH_FILES)
        return FALSE;
    r->a.paths.paths_val = calloc(n ? n : 1, sizeof(batch_path));
    if (!r->a.paths.paths_val)
        return FALSE;
    r->a.paths.paths_len = n; /* what a failed decode leaves, xdr_free frees */
    for (u_int i = 0; i < n; i++)
        if (!serve_peek_len(x, &r->lens[i]) || !xdr_batch_path(x, &r->a.paths.paths_val[i]))
            return FALSE;
    return TRUE;
}

/* The files' bytes as they are read, one after the other: what the
 * call's side effect sends (then c->batch_buf, c->batch_cap). */
struct reading {
    char *buf;
    size_t cap, used;
};

/* The most a batch read on the loop reads (h_fetch_batch_loop). */
#define LOOP_BYTES (256u << 10)

/* A buffer kept only up to this size: a batch's files fit it (rcat's
 * batches are what one reply carries), a larger one was a rare call's. */
#define SPARE_MAX (256u << 10)

/* A kept buffer for a new reading, if there is one. */
static void reading_begin(struct serve *s, struct reading *rd)
{
    *rd = (struct reading){0};
    pthread_mutex_lock(&s->batch_lock);
    if (s->n_batch_spares > 0) {
        struct serve_batch_spare *k = &s->batch_spares[--s->n_batch_spares];
        rd->buf = k->buf;
        rd->cap = k->cap;
    }
    pthread_mutex_unlock(&s->batch_lock);
}

static void keep_or_free(struct serve *s, void *buf, size_t cap)
{
    if (buf && cap <= SPARE_MAX) {
        pthread_mutex_lock(&s->batch_lock);
        if (s->n_batch_spares < SERVE_BATCH_SPARES) {
            s->batch_spares[s->n_batch_spares++] = (struct serve_batch_spare){buf, cap};
            buf = NULL;
        }
        pthread_mutex_unlock(&s->batch_lock);
    }
    free(buf);
}

void serve_batch_release(struct serve *s, struct call *c)
{
    keep_or_free(s, c->batch_buf, c->batch_cap);
    c->batch_buf = NULL;
}

void serve_batch_spares_free(struct serve *s)
{
    while (s->n_batch_spares > 0)
        free(s->batch_spares[--s->n_batch_spares].buf);
    pthread_mutex_destroy(&s->batch_lock);
}

/* Room for more bytes after what was read. */
static int reserve(struct reading *rd, size_t more)
{
    size_t want = rd->used + more;

    if (want <= rd->cap)
        return 0;
    size_t cap = rd->cap ? rd->cap : 65536;
    while (cap < want)
        cap *= 2;
    char *p = realloc(rd->buf, cap);
    if (!p)
        return RPC2_ENOMEM;
    rd->buf = p;
    rd->cap = cap;
    return 0;
}

static int same_time(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

/* The file fd (st its fstat once open) read whole after what was read,
 * if it is the same file from its first byte to its last: one byte more
 * than its size is asked for, so that a file that grew shows, and its
 * fstat after the read must agree with st (the test FETCH's transfer
 * makes, sftp/fileversion.c). */
static int read_whole(struct reading *rd, int fd, const struct stat *st, size_t limit)
{
    size_t size = (size_t)st->st_size, got = 0;
    struct stat after;
    int rc;

    if ((uint64_t)st->st_size > limit - rd->used)
        return RPC2_ECHANGED; /* it grew past what the call may read since it was listed */
    if ((rc = reserve(rd, size + 1)) != 0)
        return rc;
    for (;;) {
        size_t ask = size + 1 - got;
        ssize_t n = pread(fd, rd->buf + rd->used + got, ask, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return root_status_of_errno(errno);
        got += (size_t)n;
        /* a short read that ends at the size is the end (the fstat below
         * tells a file that changed meanwhile); one before it may be a
         * filesystem's partial read, and is read on */
        if (n == 0 || got > size || (got == size && (size_t)n < ask))
            break;
    }
    if (got != size || fstat(fd, &after) < 0 || after.st_size != st->st_size ||
        after.st_ino != st->st_ino || !same_time(&after.st_mtim, &st->st_mtim) ||
        !same_time(&after.st_ctim, &st->st_ctim))
        return RPC2_ECHANGED;
    rd->used += size;
    return 0;
}

/* One path of the batch into its entry, its outcome its own: the file
 * opened as FETCH on a worker opens it (root_open_regular, which says why
 * a file is refused), or with cached from the kernel's caches beneath the
 * served root (root_open_cached, as FETCH on the loop; it opens nothing
 * root_open_regular would refuse). With cached, 0 when the file could be
 * taken, else RPC2_CONTINUED: the caller goes to a worker instead. */
static int take_one(const struct root *at, int cached, const char *path, u_int len,
                    batch_entry *e, struct reading *rd)
{
    struct stat st;
    int fd;

    e->status = cached ? root_open_cached(at, path, len, &fd, &st)
                       : root_open_regular(at, path, len, O_RDONLY, &fd, &st);
    if (e->status != 0)
        return cached ? RPC2_CONTINUED : 0;
    /* the loop reads no more than a few replies' worth; a batch of larger
     * files (rcat sends none) is read on a worker, up to the call's cap */
    e->status = read_whole(rd, fd, &st, cached ? LOOP_BYTES : RCAT_BATCH_BYTES);
    close(fd);
    if (e->status != 0)
        return cached ? RPC2_CONTINUED : 0;
    serve_info_of(&st, &e->info);
    e->length = e->info.size;
    return 0;
}

/* Every path of r into res: 0, or with cached RPC2_CONTINUED as soon as
 * one is not in the caches (nothing is kept), or an rpc2 error. */
static int take_all(struct serve *s, const struct root *at, int cached,
                    const struct fetch_batch_req *r, fetch_batch_result *res, struct reading *rd)
{
    u_int n = r->a.paths.paths_len;
    int rc = 0;

    res->entries.entries_val = calloc(n ? n : 1, sizeof(batch_entry)); /* the library frees it */
    if (!res->entries.entries_val || reserve(rd, 1) != 0)
        rc = RPC2_ENOMEM;
    for (u_int i = 0; rc == 0 && i < n; i++)
        rc = take_one(at, cached, r->a.paths.paths_val[i].path, r->lens[i],
                      &res->entries.entries_val[i], rd);
    if (rc != 0) {
        free(res->entries.entries_val);
        res->entries.entries_val = NULL;
        keep_or_free(s, rd->buf, rd->cap);
        *rd = (struct reading){0};
        return rc;
    }
    res->entries.entries_len = n;
    return 0;
}

/* The transfer is over: each file's line (the transfer's failure is every
 * sent file's), on the loop. */
static int batch_after(struct call *c, int status, void *args, void *result)
{
    const struct fetch_batch_req *r = args;
    const fetch_batch_result *res = result;
    struct serve_log_lines lines = {0};

    for (u_int i = 0; i < res->entries.entries_len; i++) {
        const batch_entry *e = &res->entries.entries_val[i];
        struct call line = *c;

        line.path = r->a.paths.paths_val[i].path;
        line.bytes = e->status == 0 && status == 0 ? e->length : 0;
        serve_log_add(c->s, &lines, &line, e->status != 0 ? e->status : status);
    }
    serve_log_flush(c->s, &lines);
    serve_log_lines_free(&lines);
    c->logged = 1;
    return status;
}

/* The bytes read go as the call's side effect, from memory. */
static void batch_desc(struct call *c, struct reading *rd)
{
    c->batch_buf = rd->buf;
    c->batch_cap = rd->cap;
    c->bytes = rd->used;
    c->desc = (struct rpc2_se_desc){
        .type = RPC2_SE_SFTP,
        .direction = RPC2_SE_FETCH,
        .quota = RPC2_SE_NO_QUOTA,
        .file_kind = RPC2_SE_FILE_VM,
        .file.vm = {.buf = rd->buf, .len = rd->used},
    };
}

/* Bounded work: the paths' bytes together (their count is the XDR's). */
static int too_long(const struct fetch_batch_req *r)
{
    size_t path_bytes = 0;

    for (u_int i = 0; i < r->a.paths.paths_len; i++)
        path_bytes += r->lens[i];
    return path_bytes > RCAT_BATCH_PATH_BYTES;
}

static int do_fetch_batch(struct serve *s, rpc2_request *req, void *args, void *result,
                          struct call *c)
{
    const struct fetch_batch_req *r = args;
    struct reading rd;
    struct root at;
    int rc;

    if (too_long(r))
        return RPC2_EINVAL;
    if ((rc = serve_caller_root(s, req, ACCESS_READ, &at)) != 0)
        return rc;
    if (r->a.paths.paths_len == 0) { /* a client asking whether this server knows the call */
        root_dispose(&at);
        return 0;
    }
    reading_begin(s, &rd);
    rc = take_all(s, &at, 0, r, result, &rd);
    root_dispose(&at);
    if (rc != 0)
        return rc;
    batch_desc(c, &rd);
    return serve_transfer(c, batch_after, 1);
}

static int h_fetch_batch(rpc2_request *req, void *args, void *result, void *arg)
{
    const struct fetch_batch_req *r = args;

    return serve_run(arg, req, "FETCH_BATCH",
                     r->a.paths.paths_len ? r->a.paths.paths_val[0].path : "", do_fetch_batch,
                     args, result);
}

/* The first turn, on the loop, as FETCH's (serve.c's h_fetch_loop): a
 * batch whose every file opens from the kernel's caches beneath the
 * served root is read and sent at once, without the two thread hops a
 * worker costs; any other one (a file not cached or refused, a caller
 * with a root of its own, anything to refuse) goes to a worker, which
 * does it all again and answers as ever. A batch's files are small and
 * cached, so the loop reads no more at once than FETCHes of them would. */
static void h_fetch_batch_loop(rpc2_request *req, void *args, void *result, void *arg)
{
    struct serve *s = arg;
    const struct fetch_batch_req *r = args;
    struct reading rd;
    struct call *c;

    if (atomic_load(&s->stopping) || r->a.paths.paths_len == 0 || too_long(r) ||
        !serve_reads_whole_root(s, req)) {
        serve_to_worker(req);
        return;
    }
    reading_begin(s, &rd);
    if (take_all(s, &s->root, 1, r, result, &rd) != 0) {
        serve_to_worker(req);
        return;
    }
    c = serve_call_begin(s, req, "FETCH_BATCH", r->a.paths.paths_val[0].path);
    if (!c) {
        keep_or_free(s, rd.buf, rd.cap);
        rpc2_reply(req, RPC2_ENOMEM);
        return;
    }
    c->args = args;
    c->result = result;
    batch_desc(c, &rd);
    serve_transfer_now(c, batch_after);
}

const struct rpc2_proc serve_batch_proc = {.proc = RCAT_FETCH_BATCH,
                                           .decode_args = (xdrproc_t)xdr_fetch_batch_req,
                                           .args_size = sizeof(struct fetch_batch_req),
                                           .encode_result = (xdrproc_t)xdr_fetch_batch_result,
                                           .result_size = sizeof(fetch_batch_result),
                                           .async_handler = h_fetch_batch_loop,
                                           .blocking_handler = h_fetch_batch};
