/*
 * split_put.c - rcat --put --split=N (split.h): one large local file stored
 * as N byte ranges at once. The server has no way to put ranges together
 * under a name by itself, and needs none: rcat makes an empty hidden
 * temporary beside the target (a STORE of nothing, no-clobber), sends each
 * range into it with STORE_RANGE over jobs.c's lanes (split.c), compares
 * the server's SUM of the whole with its own sum of the local file, sets
 * the mode (and mtime with -p) and RENAMEs it into place, no-clobber with
 * -n. Nothing partial ever has the target's name: a failure removes the
 * temporary, and a killed rcat leaves only it, hidden, never the name.
 * A local file that changes while its ranges move is refused, not stored.
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

/* ".NAME.rcat-split-PID-SEQ" beside the target on the server. */
static int name_temporary(struct split_run *r, unsigned seq)
{
    const char *path = r->server->path;
    const char *slash = strrchr(path, '/');
    int dir_len = slash ? (int)(slash - path + 1) : 0;
    const char *base = slash ? slash + 1 : path;
    int n = snprintf(r->remote_tmp, sizeof r->remote_tmp, "%.*s.%s.rcat-split-%d-%u", dir_len,
                     path, base, (int)getpid(), seq);

    if (n < 0 || (size_t)n >= sizeof r->remote_tmp || (size_t)n > URL_PATH_MAX)
        return -1;
    r->tmp_url = *r->server;
    memcpy(r->tmp_url.path, r->remote_tmp, (size_t)n + 1);
    return 0;
}

/* An empty file under a free temporary name, private until renamed. */
static int make_remote_temporary(struct split_run *r, struct slot *s, const char **result)
{
    struct ops *o = r->o;
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int rc = RCAT_EXISTS;

    if (null_fd < 0)
        return verdict_fail_local("/dev/null", NULL, errno, result);
    for (unsigned seq = 0; seq < 100 && rc == RCAT_EXISTS; seq++) {
        if (name_temporary(r, seq) != 0) {
            rc = RCAT_BAD_PATH;
            break;
        }
        store_flags_args f = {
            .store = {.path = r->remote_tmp, .mode = 0600, .no_clobber = 1},
            .flags = o->cfg.mkdirs ? RCAT_STORE_MKDIRS : 0};
        struct rpc2_se_desc d = RPC2_SE_DESC_INIT(RPC2_SE_STORE);
        file_info info;

        memset(&info, 0, sizeof info);
        d.file_kind = RPC2_SE_FILE_FD;
        d.file.fd.fd = null_fd;
        rc = f.flags ? ops_call(o, s, RCAT_STORE_FLAGS, (xdrproc_t)xdr_store_flags_args, &f,
                                (xdrproc_t)xdr_file_info, &info, &d)
                     : ops_call(o, s, RCAT_STORE, (xdrproc_t)xdr_store_args, &f.store,
                                (xdrproc_t)xdr_file_info, &info, &d);
    }
    close(null_fd);
    if (rc != 0) {
        r->remote_tmp[0] = '\0';
        return ops_fail(o, s, rc, NULL, r->server->path, r->shown, result);
    }
    return RCAT_EXIT_OK;
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
 * mtime with -p, then the name: with -n only if it is still free. */
static int put_in_place(struct split_run *r, const struct source *src, const char **result)
{
    struct ops *o = r->o;
    unsigned flags = RCAT_SETATTR_MODE | (o->cfg.preserve ? RCAT_SETATTR_MTIME : 0);
    file_info info;
    int rc = ops_setattr(o, &r->tmp_url, flags, (unsigned)src->mode & 0777, src->mtime_sec,
                         src->mtime_nsec, &info);

    if (rc == 0)
        rc = ops_rename(o, &r->tmp_url, r->server->path, o->cfg.no_clobber, &info);
    if (rc != 0)
        return ops_fail(o, NULL, rc, NULL, r->server->path, r->shown, result);
    r->remote_tmp[0] = '\0';
    return RCAT_EXIT_OK;
}

static int run_put(struct split_run *r, struct slot *s, const struct source *src,
                   const char **result)
{
    file_info there;
    int code;

    if (split_layout(r) != 0)
        return verdict_fail_local(r->shown, NULL, ENOMEM, result);
    /* -n: a name already taken is refused before any byte moves (the
     * rename at the end refuses one taken meanwhile) */
    if (r->o->cfg.no_clobber && ops_lookup(r->o, r->server, &there) == 0)
        return ops_fail(r->o, s, RCAT_EXISTS, NULL, r->server->path, r->shown, result);
    code = make_remote_temporary(r, s, result);
    if (code != RCAT_EXIT_OK)
        return code;
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
    r.fd = src.fd;
    r.size = (uint64_t)src.file_size;
    r.shown = src.shown;
    r.slot = s;
    report_info("%s: %zu ranges at once", local, r.n);
    report_xfer_begin(&r.rep, s->session, 1, local, dst->path, (int64_t)r.size);
    r.rep.label = src.shown;
    r.retrans0 = split_ctx_retransmissions(o);
    *code = run_put(&r, s, &src, &result);
    if (*code != RCAT_EXIT_OK)
        remove_temporary(&r);
    split_report_end(&r, *code, result);
    free(r.v);
    free(r.todo);
    source_close(&src);
    return 1;
}
