/*
 * split_put.c - rcat --put --split=N (split.h): one large local file stored
 * as N byte ranges at once, as one store. The server makes an empty hidden
 * temporary beside the target (SPLIT_BEGIN), rcat sends each range into it
 * with STORE_RANGE over jobs.c's lanes (split.c), compares the server's SUM
 * of the whole with its own sum of the local file, sets the mode (and mtime
 * with -p), and the server renames it into place (SPLIT_END, no-clobber
 * with -n) and runs its post-store command for the name, as after a STORE:
 * never one for the temporary. Nothing partial ever has the target's name:
 * a failure removes the temporary, and one a killed rcat leaves is removed
 * by the server (rcatd --split-idle). A server without SPLIT_BEGIN gets the
 * file in one stream. A local file that changes while its ranges move is
 * refused, not stored.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "split.h"
#include "split_impl.h"
#include "verdict.h"

/* The server makes an empty file under a free hidden name beside the
 * target (SPLIT_BEGIN): 0 with it in r->remote_tmp, or the call's error;
 * RPC2_ENOPROC from a server older than it. */
static int begin_remote(struct split_run *r, struct slot *s)
{
    struct ops *o = r->o;
    split_begin_args a = {.path = (char *)r->server->path,
                          .flags = o->cfg.mkdirs ? RCAT_STORE_MKDIRS : 0};
    split_begin_result res = {0};
    int rc = ops_call(o, s, RCAT_SPLIT_BEGIN, (xdrproc_t)xdr_split_begin_args, &a,
                      (xdrproc_t)xdr_split_begin_result, &res, NULL);

    if (rc == 0) {
        size_t n = res.temporary ? strlen(res.temporary) : 0;
        if (n == 0 || n > URL_PATH_MAX || n >= sizeof r->remote_tmp) {
            rc = RPC2_EDECODE; /* a name no server of ours gives */
        } else {
            memcpy(r->remote_tmp, res.temporary, n + 1);
            r->tmp_url = *r->server;
            memcpy(r->tmp_url.path, res.temporary, n + 1);
        }
    }
    xdr_free((xdrproc_t)xdr_split_begin_result, (char *)&res);
    return rc;
}

/* Whether the local file is still as it was when its ranges were laid out. */
static int local_unchanged(const struct split_run *r)
{
    struct stat st;

    return fstat(r->fd, &st) == 0 && st.st_size == r->tmp_st.st_size &&
           st.st_mtim.tv_sec == r->tmp_st.st_mtim.tv_sec &&
           st.st_mtim.tv_nsec == r->tmp_st.st_mtim.tv_nsec &&
           st.st_ctim.tv_sec == r->tmp_st.st_ctim.tv_sec &&
           st.st_ctim.tv_nsec == r->tmp_st.st_ctim.tv_nsec;
}

static int changed_here(struct split_run *r, const char **result)
{
    *result = "RPC2_ECHANGED";
    report_error(RCAT_EXIT_CHANGED, *result, r->shown,
                 "the file changed here while its ranges were stored: nothing stored");
    return RCAT_EXIT_CHANGED;
}

/* The local file's sum against the server's sum of the temporary: equal
 * (and the local file unchanged meanwhile), the temporary is the file. */
static int check_whole(struct split_run *r, const char **result)
{
    struct ops *o = r->o;
    struct split_sums q = {.type = o->cfg.sum.type ? o->cfg.sum.type : RPC2_SE_SUM_XXH128};
    int rc;

    if (!local_unchanged(r))
        return changed_here(r, result);
    rc = split_sums(r, &r->tmp_url, &q);
    if (q.local_rc < 0)
        return verdict_fail_local(r->shown, "cannot read the file again",
                                  q.local_rc == RPC2_ENOMEM ? ENOMEM : q.local_errno, result);
    if (!local_unchanged(r) || q.summed != r->size)
        return changed_here(r, result);
    if (rc != 0)
        return ops_fail(o, NULL, rc, NULL, r->server->path, r->shown, result);
    rc = split_sums_match(r, &q, r->shown, result);
    if (rc)
        return rc == 1 ? RCAT_EXIT_OK : rc;
    *result = "RPC2_EINTEGRITY";
    report_error(RCAT_EXIT_INTEGRITY, *result, r->server->path,
                 "the ranges put together on the server do not have the file's %s: nothing "
                 "stored",
                 rpc2_se_sum_name(q.type));
    return RCAT_EXIT_INTEGRITY;
}

/* The mode a plain store gives (the local file's permission bits), the
 * mtime with -p, then the name (SPLIT_END): with -n only if it is still
 * free; the server runs its post-store command for the name then. */
static int put_in_place(struct split_run *r, const struct source *src, const char **result)
{
    struct ops *o = r->o;
    unsigned flags = RCAT_SETATTR_MODE | (o->cfg.preserve ? RCAT_SETATTR_MTIME : 0);
    file_info info;
    int rc = ops_setattr(o, &r->tmp_url, flags, (unsigned)src->mode & 0777, src->mtime_sec,
                         src->mtime_nsec, &info);

    if (rc == 0) {
        rename_args a = {.from = r->remote_tmp,
                         .to = (char *)r->server->path,
                         .flags = o->cfg.no_clobber ? RCAT_RENAME_NO_CLOBBER : 0};
        rc = ops_call(o, r->slot, RCAT_SPLIT_END, (xdrproc_t)xdr_rename_args, &a,
                      (xdrproc_t)xdr_file_info, &info, NULL);
    }
    if (rc == 0 || rc == RCAT_HOOK_FAILED)
        r->remote_tmp[0] = '\0'; /* it has the name now */
    if (rc != 0)
        return ops_fail(o, NULL, rc, NULL, r->server->path, r->shown, result);
    return RCAT_EXIT_OK;
}

static int run_put(struct split_run *r, struct slot *s, const struct source *src, int begun,
                   const char **result)
{
    file_info there;
    int code;

    if (begun != 0)
        return ops_fail(r->o, s, begun, NULL, r->server->path, r->shown, result);
    if (split_layout(r) != 0)
        return verdict_fail_local(r->shown, NULL, ENOMEM, result);
    /* -n: a name already taken is refused before any byte moves (the
     * rename at the end refuses one taken meanwhile) */
    if (r->o->cfg.no_clobber && ops_lookup(r->o, r->server, &there) == 0)
        return ops_fail(r->o, s, RCAT_EXISTS, NULL, r->server->path, r->shown, result);
    size_t failed = split_move_ranges(r, (unsigned)r->n);

    report_xfer_focus(&r->rep);
    if (failed)
        return !local_unchanged(r) ? changed_here(r, result)
                                   : split_range_failure(r, failed, result);
    code = check_whole(r, result);
    return code == RCAT_EXIT_OK ? put_in_place(r, src, result) : code;
}

/* A failed run's temporary goes; a signal does not stop that one call. */
static void remove_temporary(struct split_run *r)
{
    int sig = r->o->signal;

    if (!r->remote_tmp[0])
        return;
    r->o->signal = 0;
    r->o->timed_out = 0;
    if (ops_delete(r->o, &r->tmp_url, 0, NULL) != 0)
        report_info("%s: could not remove the temporary %s", r->server->path, r->remote_tmp);
    r->o->signal = sig;
}

int split_store(struct ops *o, const char *local, const struct url *dst, int *code)
{
    struct split_run r = {.o = o, .put = 1, .server = dst, .fd = -1};
    const char *result = "OK";
    struct slot *s = NULL;
    struct source src;
    size_t len = strlen(dst->path);

    if (o->cfg.split < 2 || !strcmp(local, "-") || len == 0 || dst->path[len - 1] == '/')
        return 0;
    if (source_open(local, &src, &result) != RCAT_EXIT_OK || src.file_size < 0 ||
        fstat(src.fd, &r.tmp_st) < 0 ||
        (r.n = split_ranges_for((uint64_t)src.file_size, o->cfg.split)) < 2 ||
        ops_connect(o, dst, &s) != 0) {
        source_close(&src);
        return 0; /* the usual store says why, or needs no split */
    }
    int begun = begin_remote(&r, s);
    if (begun == RPC2_ENOPROC) {
        report_info("%s: the server cannot store a file in ranges (it has no SPLIT_BEGIN): "
                    "one stream instead",
                    local);
        source_close(&src);
        return 0;
    }
    r.fd = src.fd;
    r.size = (uint64_t)src.file_size;
    r.shown = src.shown;
    r.slot = s;
    report_info("%s: %zu ranges at once", local, r.n);
    report_xfer_begin(&r.rep, s->session, 1, local, dst->path, (int64_t)r.size);
    r.rep.label = src.shown;
    r.retrans0 = split_ctx_retransmissions(o);
    *code = run_put(&r, s, &src, begun, &result);
    if (*code != RCAT_EXIT_OK)
        remove_temporary(&r);
    split_report_end(&r, *code, result);
    free(r.v);
    free(r.todo);
    source_close(&src);
    return 1;
}
