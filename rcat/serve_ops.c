/*
 * serve_ops.c - rcatd's remote operations (rcat_proto.x): MKDIR, RENAME,
 * DELETE, GLOB, SUM, SYMLINK, READLINK, SETATTR and SYNC, each within the
 * caller's rights and root (serve_caller_root), logged one line per call
 * by serve.c like the transfers. The filesystem work is root_edit.c's and
 * globwalk.c's; this checks arguments and fills the replies.
 *
 * Every one runs on a worker and none waits on a client. What could hold
 * a worker long is bounded per call: a recursive DELETE removes at most
 * RCAT_DELETE_MAX entries and answers more, a GLOB page holds at most
 * RCAT_GLOB_MAX matches; a SUM reads its file once, as a FETCH would.
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
#include "globwalk.h"
#include "root_edit.h"
#include "serve_impl.h"

struct mkdir_req {
    mkdir_args a;
    u_int path_len;
};
struct delete_req {
    delete_args a;
    u_int path_len;
};
struct glob_req {
    glob_args a;
    u_int path_len;
};
struct sum_req {
    sum_args a;
    u_int path_len;
};
struct one_path_req {
    path_args a;
    u_int path_len;
};
struct setattr_req {
    setattr_args a;
    u_int path_len;
};
CHECKED_DECODER(mkdir_req, mkdir_args)
CHECKED_DECODER(delete_req, delete_args)
CHECKED_DECODER(glob_req, glob_args)
CHECKED_DECODER(sum_req, sum_args)
CHECKED_DECODER(one_path_req, path_args)
CHECKED_DECODER(setattr_req, setattr_args)

/* Two names on the wire: both lengths kept. */
struct symlink_req {
    symlink_args a;
    u_int path_len, target_len;
};

bool_t xdr_serve_rename_req(XDR *x, struct serve_rename_req *r)
{
    if (x->x_op != XDR_DECODE)
        return xdr_rename_args(x, &r->a);
    return serve_peek_len(x, &r->path_len) && xdr_string(x, &r->a.from, RCAT_MAX_PATH) &&
           serve_peek_len(x, &r->to_len) && xdr_string(x, &r->a.to, RCAT_MAX_PATH) &&
           xdr_u_int(x, &r->a.flags);
}

static bool_t xdr_symlink_req(XDR *x, struct symlink_req *r)
{
    if (x->x_op != XDR_DECODE)
        return xdr_symlink_args(x, &r->a);
    return serve_peek_len(x, &r->path_len) && xdr_string(x, &r->a.path, RCAT_MAX_PATH) &&
           serve_peek_len(x, &r->target_len) && xdr_string(x, &r->a.target, RCAT_MAX_PATH) &&
           xdr_u_int(x, &r->a.flags);
}

/* ---- MKDIR, RENAME, DELETE ----------------------------------------------- */

static int do_mkdir(struct serve *s, rpc2_request *req, void *args, void *result, struct call *c)
{
    const struct mkdir_req *r = args;
    struct root at;
    struct stat st;
    int rc;

    (void)c;
    if ((r->a.flags & ~(u_int)RCAT_MKDIR_PARENTS) || (r->a.mode & ~(u_int)MODE_BITS))
        return RPC2_EINVAL;
    rc = serve_caller_root(s, req, ACCESS_WRITE, &at);
    if (rc != 0)
        return rc;
    rc = root_mkdir(&at, r->a.path, r->path_len, r->a.mode, r->a.flags & RCAT_MKDIR_PARENTS, &st);
    root_dispose(&at);
    if (rc == 0)
        serve_info_of(&st, result);
    return rc;
}

static int do_rename(struct serve *s, rpc2_request *req, void *args, void *result, struct call *c)
{
    const struct serve_rename_req *r = args;
    struct root at;
    struct stat st;
    int rc;

    c->path2_key = "to";
    c->path2 = r->a.to;
    if (r->a.flags & ~(u_int)RCAT_RENAME_NO_CLOBBER)
        return RPC2_EINVAL;
    rc = serve_caller_root(s, req, ACCESS_WRITE, &at);
    if (rc != 0)
        return rc;
    rc = root_rename(&at, r->a.from, r->path_len, r->a.to, r->to_len,
                     r->a.flags & RCAT_RENAME_NO_CLOBBER, &st);
    root_dispose(&at);
    if (rc == 0)
        serve_info_of(&st, result);
    return rc;
}

static int do_delete(struct serve *s, rpc2_request *req, void *args, void *result, struct call *c)
{
    const struct delete_req *r = args;
    delete_result *out = result;
    struct root at;
    uint64_t removed = 0;
    int more = 0, rc;

    c->count_key = "removed";
    if (r->a.flags & ~(u_int)(RCAT_DELETE_DIR | RCAT_DELETE_RECURSIVE))
        return RPC2_EINVAL;
    rc = serve_caller_root(s, req, ACCESS_DELETE, &at);
    if (rc != 0)
        return rc;
    rc = root_delete(&at, r->a.path, r->path_len, r->a.flags, RCAT_DELETE_MAX, &removed, &more);
    root_dispose(&at);
    c->count = removed;
    out->removed = removed;
    out->more = more;
    return rc;
}

/* ---- GLOB ------------------------------------------------------------------ */

struct glob_page {
    glob_result *out;
    size_t bytes;
};

/* One match into the page; one that does not fit says there is more. */
static int add_match(const char *path, const struct stat *st, void *arg)
{
    struct glob_page *p = arg;
    glob_result *out = p->out;
    size_t n = strlen(path);

    if (out->entries.entries_len == RCAT_GLOB_MAX ||
        (out->entries.entries_len > 0 && p->bytes + n > RCAT_GLOB_BYTES)) {
        out->more = TRUE;
        return 1;
    }
    glob_entry *e = &out->entries.entries_val[out->entries.entries_len];
    e->path = strdup(path); /* the library frees the result */
    if (!e->path)
        return RPC2_ENOMEM;
    serve_info_of(st, &e->info);
    out->entries.entries_len++;
    p->bytes += n;
    return 0;
}

static int do_glob(struct serve *s, rpc2_request *req, void *args, void *result, struct call *c)
{
    const struct glob_req *r = args;
    glob_result *out = result;
    struct glob_page page = {.out = out};
    struct root at;
    int rc;

    c->count_key = "matches";
    out->entries.entries_val = calloc(RCAT_GLOB_MAX, sizeof(glob_entry));
    if (!out->entries.entries_val)
        return RPC2_ENOMEM;
    rc = serve_caller_root(s, req, ACCESS_LIST, &at);
    if (rc != 0)
        return rc;
    rc = glob_walk(&at, s->listings, r->a.pattern, r->path_len, r->a.after, add_match, &page);
    root_dispose(&at);
    c->count = out->entries.entries_len;
    return rc;
}

/* ---- SUM, READLINK --------------------------------------------------------- */

static int do_sum(struct serve *s, rpc2_request *req, void *args, void *result, struct call *c)
{
    const struct sum_req *r = args;
    sum_result *out = result;
    struct root at;
    struct stat st;
    unsigned len;
    int rc;

    if (r->a.offset > INT64_MAX || r->a.length < -1 || rpc2_se_sum_len((int)r->a.type) == 0 ||
        r->a.type > RCAT_SUM_XXH128)
        return RPC2_EINVAL;
    c->desc.sum_type = (int)r->a.type; /* the log line's sum= */
    rc = serve_caller_root(s, req, ACCESS_READ, &at);
    if (rc != 0)
        return rc;
    rc = root_open_regular(&at, r->a.path, r->path_len, O_RDONLY, &c->fd, &st);
    root_dispose(&at);
    if (rc != 0)
        return rc;
    out->sum.sum_val = malloc(RPC2_SE_SUM_MAX);
    if (!out->sum.sum_val)
        return RPC2_ENOMEM;
    serve_split_hold(s, c, &st, 0); /* summing a split temporary is using it */
    rc = rpc2_se_sum_fd(c->fd, (int)r->a.type, r->a.offset, r->a.length,
                        (unsigned char *)out->sum.sum_val, &len, &c->bytes);
    if (rc != 0)
        return rc == RPC2_ENOMEM || rc == RPC2_EINVAL ? rc : root_status_of_errno(errno);
    if (r->a.offset == 0)
        serve_split_note_sum(s, c, (int)r->a.type, (const unsigned char *)out->sum.sum_val, len,
                             c->bytes);
    out->sum.sum_len = len;
    out->bytes = c->bytes;
    serve_info_of(&st, &out->info);
    return 0;
}

static int do_readlink(struct serve *s, rpc2_request *req, void *args, void *result, struct call *c)
{
    const struct one_path_req *r = args;
    readlink_result *out = result;
    struct root at;
    int rc;

    (void)c;
    out->target = calloc(1, PATH_MAX);
    if (!out->target)
        return RPC2_ENOMEM;
    rc = serve_caller_root(s, req, ACCESS_READ, &at);
    if (rc != 0)
        return rc;
    rc = root_readlink(&at, r->a.path, r->path_len, out->target, PATH_MAX);
    root_dispose(&at);
    return rc;
}

/* ---- SYNC ------------------------------------------------------------------ */

/* The filesystem of a directory flushed at once (syncfs): the durability
 * point of a batch stored with RCAT_STORE_NO_FLUSH. A right to write, as
 * only a writer has anything to flush. */
static int do_sync(struct serve *s, rpc2_request *req, void *args, void *result, struct call *c)
{
    const struct one_path_req *r = args;
    struct root at;
    struct stat st;
    int rc;

    rc = serve_caller_root(s, req, ACCESS_WRITE, &at);
    if (rc != 0)
        return rc;
    rc = root_open(&at, r->a.path, r->path_len, O_RDONLY | O_DIRECTORY, &c->fd);
    root_dispose(&at);
    if (rc != 0)
        return rc;
    if (syncfs(c->fd) < 0 || fstat(c->fd, &st) < 0)
        return root_status_of_errno(errno);
    serve_info_of(&st, result);
    return 0;
}

/* ---- SYMLINK, SETATTR ------------------------------------------------------ */

static int do_symlink(struct serve *s, rpc2_request *req, void *args, void *result, struct call *c)
{
    const struct symlink_req *r = args;
    struct root at;
    struct stat st;
    int rc;

    c->path2_key = "target";
    c->path2 = r->a.target;
    if (r->a.flags & ~(u_int)RCAT_SYMLINK_REPLACE)
        return RPC2_EINVAL;
    rc = serve_caller_root(s, req, ACCESS_WRITE, &at);
    if (rc != 0)
        return rc;
    rc = root_symlink(&at, r->a.path, r->path_len, r->a.target, r->target_len,
                      r->a.flags & RCAT_SYMLINK_REPLACE, &st);
    root_dispose(&at);
    if (rc == 0)
        serve_info_of(&st, result);
    return rc;
}

static int do_setattr(struct serve *s, rpc2_request *req, void *args, void *result, struct call *c)
{
    const struct setattr_req *r = args;
    const setattr_args *a = &r->a;
    struct timespec mtime = {.tv_sec = (time_t)a->mtime_sec, .tv_nsec = (long)a->mtime_nsec};
    struct root at;
    struct stat st;
    int rc;

    (void)c;
    if (!a->flags || (a->flags & ~(u_int)(RCAT_SETATTR_MODE | RCAT_SETATTR_MTIME)) ||
        (a->mode & ~(u_int)MODE_BITS) || a->mtime_nsec >= 1000000000u)
        return RPC2_EINVAL;
    rc = serve_caller_root(s, req, ACCESS_WRITE, &at);
    if (rc != 0)
        return rc;
    rc = root_setattr(&at, a->path, r->path_len, a->flags, a->mode, &mtime, &st);
    root_dispose(&at);
    if (rc == 0)
        serve_info_of(&st, result);
    return rc;
}

/* ---- the handlers ---------------------------------------------------------- */

#define HANDLER(fn, NAME, req, field)                                                              \
    static int h_##fn(rpc2_request *rq, void *args, void *result, void *arg)                       \
    {                                                                                              \
        return serve_run(arg, rq, NAME, ((struct req *)args)->a.field, do_##fn, args, result);     \
    }
HANDLER(mkdir, "MKDIR", mkdir_req, path)
HANDLER(rename, "RENAME", serve_rename_req, from)
HANDLER(delete, "DELETE", delete_req, path)
HANDLER(glob, "GLOB", glob_req, pattern)
HANDLER(sum, "SUM", sum_req, path)
HANDLER(symlink, "SYMLINK", symlink_req, path)
HANDLER(readlink, "READLINK", one_path_req, path)
HANDLER(setattr, "SETATTR", setattr_req, path)
HANDLER(sync, "SYNC", one_path_req, path)

/* quick: one or two system calls, no walk and no file read */
const struct rpc2_proc serve_ops_procs[SERVE_OPS_N] = {
    PROC(RCAT_MKDIR, mkdir_req, file_info, h_mkdir, 1),
    PROC(RCAT_RENAME, serve_rename_req, file_info, h_rename, 1),
    PROC(RCAT_DELETE, delete_req, delete_result, h_delete, 0),
    PROC(RCAT_GLOB, glob_req, glob_result, h_glob, 0),
    PROC(RCAT_SUM, sum_req, sum_result, h_sum, 0),
    PROC(RCAT_SYMLINK, symlink_req, file_info, h_symlink, 1),
    PROC(RCAT_READLINK, one_path_req, readlink_result, h_readlink, 1),
    PROC(RCAT_SETATTR, setattr_req, file_info, h_setattr, 1),
    PROC(RCAT_SYNC, one_path_req, file_info, h_sync, 0), /* may wait on the disk */
};
