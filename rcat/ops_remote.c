/*
 * ops_remote.c - the remote operations as calls (ops.h): one function per
 * procedure of rcat_proto.x's second half, each on the connection to u's
 * server, reporting nothing, so rcat's modes (ops_cmd.c) and the tree copy
 * can each say what a failure means where it happened.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <string.h>

#include "ops_impl.h"

static const char *remote_path(const struct url *u)
{
    return u->path[0] ? u->path : "."; /* the server's root */
}

/* A call of proc on u's server. */
static int call(struct ops *o, const struct url *u, uint32_t proc, xdrproc_t enc, const void *args,
                xdrproc_t dec, void *result)
{
    struct slot *s;
    int rc = ops_connect(o, u, &s);

    return rc != 0 ? rc : ops_call(o, s, proc, enc, args, dec, result, NULL);
}

/* A call answered with a file_info, copied to info when wanted. */
static int call_info(struct ops *o, const struct url *u, uint32_t proc, xdrproc_t enc,
                     const void *args, file_info *info)
{
    file_info out;

    memset(&out, 0, sizeof out);
    int rc = call(o, u, proc, enc, args, (xdrproc_t)xdr_file_info, &out);
    if (rc == 0 && info)
        *info = out;
    return rc;
}

int ops_mkdir(struct ops *o, const struct url *u, unsigned mode, int parents, file_info *info)
{
    mkdir_args a = {.path = (char *)remote_path(u),
                    .mode = mode & 0777,
                    .flags = parents ? RCAT_MKDIR_PARENTS : 0};

    return call_info(o, u, RCAT_MKDIR, (xdrproc_t)xdr_mkdir_args, &a, info);
}

int ops_lookup(struct ops *o, const struct url *u, file_info *info)
{
    path_args a = {.path = (char *)remote_path(u)};

    return call_info(o, u, RCAT_STAT, (xdrproc_t)xdr_path_args, &a, info);
}

int ops_rename(struct ops *o, const struct url *from, const char *to, int no_clobber,
               file_info *info)
{
    rename_args a = {.from = (char *)remote_path(from),
                     .to = (char *)to,
                     .flags = no_clobber ? RCAT_RENAME_NO_CLOBBER : 0};

    return call_info(o, from, RCAT_RENAME, (xdrproc_t)xdr_rename_args, &a, info);
}

/* A recursive delete comes back with more until the tree is gone. */
int ops_delete(struct ops *o, const struct url *u, unsigned flags, uint64_t *removed)
{
    delete_args a = {.path = (char *)remote_path(u), .flags = flags};
    uint64_t total = 0;
    int rc;

    for (;;) {
        delete_result r = {0};
        rc = call(o, u, RCAT_DELETE, (xdrproc_t)xdr_delete_args, &a, (xdrproc_t)xdr_delete_result,
                  &r);
        total += r.removed;
        if (rc == 0 && r.more && r.removed == 0)
            rc = RCAT_IO; /* no progress: calling again would loop */
        if (rc != 0 || !r.more)
            break;
    }
    if (removed)
        *removed = total;
    return rc;
}

/* One page after *after (a buffer of RCAT_MAX_PATH + 1, updated); fn
 * per entry; *more whether another page follows. */
static int glob_page(struct ops *o, const struct url *u, char *after, ops_glob_fn fn, void *arg,
                     int *more)
{
    glob_args a = {.pattern = (char *)remote_path(u), .after = after};
    glob_result r;
    int rc;

    memset(&r, 0, sizeof r);
    rc = call(o, u, RCAT_GLOB, (xdrproc_t)xdr_glob_args, &a, (xdrproc_t)xdr_glob_result, &r);
    for (u_int i = 0; rc == 0 && i < r.entries.entries_len; i++)
        rc = fn(r.entries.entries_val[i].path, &r.entries.entries_val[i].info, arg);
    if (rc == 0 && r.entries.entries_len > 0) {
        const char *last = r.entries.entries_val[r.entries.entries_len - 1].path;
        strncpy(after, last, RCAT_MAX_PATH);
        after[RCAT_MAX_PATH] = '\0';
    }
    *more = rc == 0 && r.more && r.entries.entries_len > 0;
    xdr_free((xdrproc_t)xdr_glob_result, (char *)&r);
    return rc;
}

int ops_glob(struct ops *o, const struct url *pattern, ops_glob_fn fn, void *arg)
{
    char after[RCAT_MAX_PATH + 1] = "";
    int more = 1, rc = 0;

    while (rc == 0 && more)
        rc = glob_page(o, pattern, after, fn, arg, &more);
    return rc;
}

int ops_sum(struct ops *o, const struct url *u, unsigned type, uint64_t offset, int64_t length,
            unsigned char sum[RCAT_SUM_BYTES], unsigned *len, file_info *info)
{
    sum_args a = {.path = (char *)remote_path(u), .type = type, .offset = offset, .length = length};
    sum_result r;
    int rc;

    memset(&r, 0, sizeof r);
    *len = 0;
    rc = call(o, u, RCAT_SUM, (xdrproc_t)xdr_sum_args, &a, (xdrproc_t)xdr_sum_result, &r);
    if (rc == 0 && (r.sum.sum_len == 0 || r.sum.sum_len != rpc2_se_sum_len((int)type)))
        rc = RPC2_EDECODE; /* not a sum of the type asked for */
    if (rc == 0) {
        memcpy(sum, r.sum.sum_val, r.sum.sum_len);
        *len = r.sum.sum_len;
        if (info)
            *info = r.info;
    }
    xdr_free((xdrproc_t)xdr_sum_result, (char *)&r);
    return rc;
}

int ops_symlink(struct ops *o, const struct url *u, const char *target, int replace,
                file_info *info)
{
    symlink_args a = {.path = (char *)remote_path(u),
                      .target = (char *)target,
                      .flags = replace ? RCAT_SYMLINK_REPLACE : 0};

    return call_info(o, u, RCAT_SYMLINK, (xdrproc_t)xdr_symlink_args, &a, info);
}

int ops_readlink(struct ops *o, const struct url *u, char *target, size_t cap)
{
    path_args a = {.path = (char *)remote_path(u)};
    readlink_result r = {0};
    int rc =
        call(o, u, RCAT_READLINK, (xdrproc_t)xdr_path_args, &a, (xdrproc_t)xdr_readlink_result, &r);

    if (rc == 0 && (!r.target || strlen(r.target) >= cap))
        rc = RPC2_ETOOBIG;
    if (rc == 0)
        strcpy(target, r.target);
    xdr_free((xdrproc_t)xdr_readlink_result, (char *)&r);
    return rc;
}

int ops_setattr(struct ops *o, const struct url *u, unsigned flags, unsigned mode,
                int64_t mtime_sec, unsigned mtime_nsec, file_info *info)
{
    setattr_args a = {.path = (char *)remote_path(u),
                      .flags = flags,
                      .mode = mode & 0777,
                      .mtime_sec = mtime_sec,
                      .mtime_nsec = mtime_nsec};

    return call_info(o, u, RCAT_SETATTR, (xdrproc_t)xdr_setattr_args, &a, info);
}

int ops_sync(struct ops *o, const struct url *u)
{
    path_args a = {.path = (char *)remote_path(u)};

    return call_info(o, u, RCAT_SYNC, (xdrproc_t)xdr_path_args, &a, NULL);
}

int ops_report_failure(struct ops *o, const struct url *u, const char *path, int rc)
{
    struct slot *s = NULL;
    const char *name;

    for (size_t i = 0; i < o->n_slots; i++)
        if (o->slots[i].port == u->port && !strcmp(o->slots[i].host, u->host))
            s = &o->slots[i];
    return ops_fail(o, s, rc, NULL, path ? path : (u->path[0] ? u->path : "/"), NULL, &name);
}
