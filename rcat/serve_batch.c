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
 * RCAT_BATCH_BYTES read. The files are opened and read on a worker (an
 * open may stall, NFS); the transfer and the call's end run on the loop.
 * Each file gets its own log line, as a FETCH does.
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

/* Room for more bytes in the call's buffer (c->batch_buf, c->batch_cap). */
static int reserve(struct call *c, size_t used, size_t more)
{
    size_t want = used + more;

    if (want <= c->batch_cap)
        return 0;
    size_t cap = c->batch_cap ? c->batch_cap : 65536;
    while (cap < want)
        cap *= 2;
    void *p = realloc(c->batch_buf, cap);
    if (!p)
        return RPC2_ENOMEM;
    c->batch_buf = p;
    c->batch_cap = cap;
    return 0;
}

/* The file fd (st its fstat once open) read whole at buf + *used, if it
 * is the same file from its first byte to its last: one byte more than
 * its size is asked for, so that a file that grew shows, and its fstat
 * after the read must agree with st (fileversion.c's test, the one FETCH's
 * transfer makes). */
static int read_whole(struct call *c, int fd, const struct stat *st, size_t *used)
{
    size_t size = (size_t)st->st_size, got = 0;
    struct stat after;
    int rc;

    if ((uint64_t)st->st_size > RCAT_BATCH_BYTES - *used)
        return RPC2_ECHANGED; /* it grew past what the call may read since it was listed */
    if ((rc = reserve(c, *used, size + 1)) != 0)
        return rc;
    char *at = (char *)c->batch_buf + *used;
    for (;;) {
        ssize_t n = pread(fd, at + got, size + 1 - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return root_status_of_errno(errno);
        if (n == 0 || (got += (size_t)n) > size)
            break;
    }
    if (got != size || fstat(fd, &after) < 0 || after.st_size != st->st_size ||
        after.st_mtim.tv_sec != st->st_mtim.tv_sec ||
        after.st_mtim.tv_nsec != st->st_mtim.tv_nsec ||
        after.st_ctim.tv_sec != st->st_ctim.tv_sec || after.st_ctim.tv_nsec != st->st_ctim.tv_nsec)
        return RPC2_ECHANGED;
    *used += size;
    return 0;
}

/* One path of the batch into its entry: its outcome is its own. */
static void take_one(struct call *c, const struct root *at, const char *path, u_int len,
                     batch_entry *e, size_t *used)
{
    struct stat st;
    int fd;

    e->status = root_open_regular(at, path, len, O_RDONLY, &fd, &st);
    if (e->status != 0)
        return;
    e->status = read_whole(c, fd, &st, used);
    close(fd);
    if (e->status != 0)
        return;
    serve_info_of(&st, &e->info);
    e->length = e->info.size;
}

/* The transfer is over: each file's line (the transfer's failure is every
 * sent file's), on the loop. */
static int batch_after(struct call *c, int status, void *args, void *result)
{
    const struct fetch_batch_req *r = args;
    const fetch_batch_result *res = result;

    for (u_int i = 0; i < res->entries.entries_len; i++) {
        const batch_entry *e = &res->entries.entries_val[i];
        struct call line = *c;

        line.path = r->a.paths.paths_val[i].path;
        line.bytes = e->status == 0 && status == 0 ? e->length : 0;
        serve_log_call(c->s, &line, e->status != 0 ? e->status : status);
    }
    c->logged = 1;
    return status;
}

static int do_fetch_batch(struct serve *s, rpc2_request *req, void *args, void *result,
                          struct call *c)
{
    const struct fetch_batch_req *r = args;
    fetch_batch_result *res = result;
    u_int n = r->a.paths.paths_len;
    size_t path_bytes = 0, used = 0;
    struct root at;
    int rc;

    for (u_int i = 0; i < n; i++)
        path_bytes += r->lens[i];
    if (path_bytes > RCAT_BATCH_PATH_BYTES)
        return RPC2_EINVAL;
    if ((rc = serve_caller_root(s, req, ACCESS_READ, &at)) != 0)
        return rc;
    if (n == 0) { /* a client asking whether this server knows the call */
        root_dispose(&at);
        return 0;
    }
    res->entries.entries_val = calloc(n, sizeof(batch_entry)); /* the library frees the result */
    rc = res->entries.entries_val ? reserve(c, 0, 1) : RPC2_ENOMEM;
    if (rc == 0) {
        res->entries.entries_len = n;
        for (u_int i = 0; i < n; i++)
            take_one(c, &at, r->a.paths.paths_val[i].path, r->lens[i],
                     &res->entries.entries_val[i], &used);
    }
    root_dispose(&at);
    if (rc != 0)
        return rc;
    c->bytes = used;
    c->desc = (struct rpc2_se_desc){
        .type = RPC2_SE_SFTP,
        .direction = RPC2_SE_FETCH,
        .quota = RPC2_SE_NO_QUOTA,
        .file_kind = RPC2_SE_FILE_VM,
        .file.vm = {.buf = c->batch_buf, .len = used},
    };
    return serve_transfer(c, batch_after, 1);
}

static int h_fetch_batch(rpc2_request *req, void *args, void *result, void *arg)
{
    const struct fetch_batch_req *r = args;

    return serve_run(arg, req, "FETCH_BATCH",
                     r->a.paths.paths_len ? r->a.paths.paths_val[0].path : "", do_fetch_batch,
                     args, result);
}

const struct rpc2_proc serve_batch_proc =
    PROC(RCAT_FETCH_BATCH, fetch_batch_req, fetch_batch_result, h_fetch_batch, 0);
