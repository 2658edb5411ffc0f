/*
 * serve_range.c - rcatd's STORE_RANGE (rcat_proto.x): one byte range of a
 * file that a client stores in ranges at once (rcat --put --split). Apart
 * from serve.c's STORE because it is the one store that writes into an
 * existing file in place: it never creates, truncates or renames, and the
 * descriptor's seek offset and quota bound the sink to the range the
 * client named, checked here first. The client has the file made
 * (SPLIT_BEGIN, serve_split.c), checks the whole with SUM and has it
 * renamed into place (SPLIT_END), so nothing partial ever has the final
 * name.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/file.h>

#include "access.h"
#include "serve_impl.h"

struct store_range_req {
    store_range_args a;
    u_int path_len;
};
CHECKED_DECODER(store_range_req, store_range_args)

/* The range is over: exactly its bytes came, and they are on stable
 * storage before the reply says so. */
static int range_after(struct call *c, int status, void *args, void *result)
{
    const struct store_range_req *r = args;
    struct stat st;

    if (status != 0)
        return status;
    if (c->desc.quota_exceeded || c->desc.bytes_transferred != (uint64_t)r->a.length)
        return RPC2_EINVAL; /* the client sent other than it said: the range is not whole */
    if (fdatasync(c->fd) < 0 || fstat(c->fd, &st) < 0)
        return root_status_of_errno(errno);
    serve_info_of(&st, result);
    return 0;
}

static int do_store_range(struct serve *s, rpc2_request *req, void *args, void *result,
                          struct call *c)
{
    const struct store_range_req *r = args;
    struct root at;
    struct stat st;
    int rc;

    (void)result;
    /* within the file's possible bytes, and not empty: nothing else is a range */
    if (r->a.length < 1 || r->a.offset > (uint64_t)(INT64_MAX - r->a.length))
        return RPC2_EINVAL;
    rc = serve_caller_root(s, req, ACCESS_WRITE, &at);
    if (rc != 0)
        return rc;
    rc = root_open_regular(&at, r->a.path, r->path_len, O_WRONLY, &c->fd, &st);
    root_dispose(&at);
    if (rc != 0)
        return rc;
    /* a temporary a range is written into is in use: neither the idle
     * sweep (serve_split.c) nor the partials' walk (its flock) removes it */
    serve_split_hold(s, c, &st, 1);
    flock(c->fd, LOCK_SH | LOCK_NB);
    c->desc = (struct rpc2_se_desc){
        .type = RPC2_SE_SFTP,
        .direction = RPC2_SE_STORE,
        .seek_offset = (int64_t)r->a.offset,
        .quota = r->a.length,
        .file_kind = RPC2_SE_FILE_FD,
        .file.fd.fd = c->fd,
    };
    return serve_transfer(c, range_after, 0); /* the flush waits on the disk: a worker's */
}

static int h_store_range(rpc2_request *rq, void *args, void *result, void *arg)
{
    return serve_run(arg, rq, "STORE_RANGE", ((struct store_range_req *)args)->a.path,
                     do_store_range, args, result);
}

const struct rpc2_proc serve_range_proc =
    PROC(RCAT_STORE_RANGE, store_range_req, file_info, h_store_range, 0);
