/*
 * ops_tree_put.c - rcat -r --put LOCAL... HOST:DIR: a local file or tree
 * stored beneath a remote directory, several files in flight at once
 * (jobs.c). The local walk never follows a link (tree_walk_local), and
 * each file is opened without following one, so what is sent is what the
 * walk saw. The server makes the directories a file needs
 * (RCAT_STORE_MKDIRS) and judges every path against its root and the
 * caller's rights. Each file is renamed into place whole but not flushed
 * (RCAT_STORE_NO_FLUSH): one RCAT_SYNC at the end makes the tree durable
 * before rcat reports it copied, as a fetched tree's one syncfs does; a
 * flush per file made a tree of small files take seconds.
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

#include "jobs.h"
#include "ops_tree.h"
#include "verdict.h"

struct put_run;

/* One file in flight on a lane. */
struct sitem {
    struct put_run *r;
    struct jobs *j;
    struct xfer x;
    struct rpc2_se_desc d;
    store_flags_args args;
    file_info info;
    const struct tree_entry *e;
    struct slot *s;
    unsigned lane;
    int fd;
    char *remote;
};

struct put_run {
    struct ops *o;
    struct tree *t;
    struct tree have; /* what the target holds already (--skip-existing), sorted by rel */
    size_t *files;
    const char *top; /* the remote path the tree's top becomes */
    const struct url *dst;
    struct sitem items[JOBS_MAX];
    int first;
    int flush_each; /* a server older than RCAT_STORE_NO_FLUSH: each store flushed alone */
    int deferred;   /* a store was sent unflushed: RCAT_SYNC at the end */
};

static int by_rel(const void *a, const void *b)
{
    return strcmp(((const struct tree_entry *)a)->rel, ((const struct tree_entry *)b)->rel);
}

static const struct tree_entry *held(const struct put_run *r, const char *rel)
{
    struct tree_entry key = {.rel = (char *)rel};

    return r->have.n ? bsearch(&key, r->have.v, r->have.n, sizeof key, by_rel) : NULL;
}

static void sitem_end(struct sitem *it, int code, const char *result)
{
    report_xfer_focus(&it->x.rep);
    xfer_end(&it->x, &it->d, code, result);
    ops_tree_note(&it->r->first, code);
    if (it->fd >= 0)
        close(it->fd);
    free(it->remote);
    jobs_finish(it->j, it->lane);
}

static void send_store(struct sitem *it);

/* A server older than RCAT_STORE_NO_FLUSH refused the flag before it kept
 * anything (bytes piggybacked on the call were read from the file, which
 * is ours and regular: it is read again): this file and the rest are sent
 * to be flushed one by one. */
static int resend_flushed(struct sitem *it, int status)
{
    struct rpc2_se_desc fresh = RPC2_SE_DESC_INIT(RPC2_SE_STORE);

    if (status != RPC2_EINVAL || !(it->args.flags & RCAT_STORE_NO_FLUSH) ||
        lseek(it->fd, 0, SEEK_SET) != 0)
        return 0;
    it->r->flush_each = 1;
    it->args.flags &= ~(u_int)RCAT_STORE_NO_FLUSH;
    fresh.event = it->d.event;
    fresh.event_arg = it->d.event_arg;
    fresh.stats_interval_us = it->d.stats_interval_us;
    fresh.sum_type = it->d.sum_type;
    memcpy(fresh.expect_sum, it->d.expect_sum, sizeof fresh.expect_sum);
    fresh.expect_sum_len = it->d.expect_sum_len;
    it->d = fresh;
    send_store(it);
    return 1;
}

static void stored(int status, void *result_, void *arg)
{
    struct sitem *it = arg;
    const char *result = "OK";
    int code = RCAT_EXIT_OK;

    (void)result_;
    if (resend_flushed(it, status))
        return;
    report_xfer_focus(&it->x.rep);
    if (status == 0 && (it->args.flags & RCAT_STORE_NO_FLUSH))
        it->r->deferred = 1;
    if (status != 0)
        code = ops_fail_lane(it->r->o, it->s, status, &it->d, it->remote, it->e->src, &result);
    sitem_end(it, code, result);
}

static void sitem_refused(struct sitem *it, const char *what, int err)
{
    const char *name = strerrorname_np(err);

    report_file_error(RCAT_EXIT_LOCAL, name ? name : "ESYSTEM", it->e->src, "%s%s%s", what,
                      what[0] ? ": " : "", strerror(err));
    ops_tree_note(&it->r->first, RCAT_EXIT_LOCAL);
    if (it->fd >= 0)
        close(it->fd);
    free(it->remote);
    jobs_finish(it->j, it->lane);
}

static int same_as_held(const struct put_run *r, const struct tree_entry *e, const struct stat *st)
{
    const struct tree_entry *h = held(r, e->rel);

    return h && h->kind == TREE_FILE && h->attr.size == (uint64_t)st->st_size &&
           h->attr.mtime_sec == st->st_mtim.tv_sec;
}

static void start_store(struct jobs *j, unsigned lane, struct slot *s, size_t task, void *arg)
{
    struct put_run *r = arg;
    struct sitem *it = &r->items[lane];
    const struct tree_entry *e = &r->t->v[r->files[task]];
    const char *result = "OK";
    struct stat st;
    int rc;

    *it = (struct sitem){.r = r, .j = j, .e = e, .s = s, .lane = lane, .fd = -1};
    it->d = (struct rpc2_se_desc)RPC2_SE_DESC_INIT(RPC2_SE_STORE);
    it->remote = tree_join(r->top, e->rel);
    if (!it->remote)
        return sitem_refused(it, "", ENOMEM);
    it->fd = open(e->src, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
    if (it->fd < 0 || fstat(it->fd, &st) < 0)
        return sitem_refused(it, "", errno);
    if (!S_ISREG(st.st_mode)) /* replaced since the walk */
        return sitem_refused(it, "no longer a regular file", EINVAL);
    if (e->skip || (r->o->cfg.skip_existing && same_as_held(r, e, &st))) {
        report_skip(e->src, it->remote, e->skip ? e->skip : "SameSizeAndMtime",
                    (uint64_t)st.st_size);
        close(it->fd);
        free(it->remote);
        jobs_finish(j, lane);
        return;
    }
    xfer_begin(&it->x, r->o, 1, e->src, it->remote, (int64_t)st.st_size, &it->d);
    it->x.rep.session = s->session;
    if (s->lost || r->o->timed_out) {
        rc = s->lost ? s->lost : RPC2_ETIMEDOUT;
        sitem_end(it, ops_fail(r->o, s, rc, NULL, it->remote, NULL, &result), result);
        return;
    }
    it->args.store = (store_args){
        .path = it->remote,
        .mode = (u_int)(st.st_mode & 0777),
        .keep_mtime = r->o->cfg.preserve,
        .mtime_sec = r->o->cfg.preserve ? st.st_mtim.tv_sec : 0,
        .mtime_nsec = r->o->cfg.preserve ? (u_int)st.st_mtim.tv_nsec : 0,
        .no_clobber = r->o->cfg.no_clobber,
    };
    /* durable all at once at the end (RCAT_SYNC), as a fetched tree is */
    it->args.flags = RCAT_STORE_MKDIRS | (r->flush_each ? 0 : RCAT_STORE_NO_FLUSH);
    send_store(it);
}

static void send_store(struct sitem *it)
{
    int rc;

    it->d.file_kind = RPC2_SE_FILE_FD;
    it->d.file.fd.fd = it->fd;
    rc = rpc2_call_async(it->s->conn, RCAT_STORE_FLAGS, (xdrproc_t)xdr_store_flags_args, &it->args,
                         (xdrproc_t)xdr_file_info, &it->info,
                         &(struct rpc2_call_opts){.se = &it->d}, stored, it);
    if (rc != 0)
        stored(rc, NULL, it);
}

/* ---- the tree around the files --------------------------------------------- */

static char *remote_of(const struct put_run *r, const struct tree_entry *e, struct url *u)
{
    char *path = tree_join(r->top, e->rel);

    if (path)
        ops_url_at(r->dst, path, u);
    return path;
}

/* What is done on the server for each entry of a kind (one call each):
 * rc 0, or the call's failure (a FILEERROR). */
typedef int (*remote_op)(struct put_run *r, const struct tree_entry *e, const struct url *u);

static void for_each(struct put_run *r, struct slot *s, enum tree_kind kind, int deepest_first,
                     remote_op op)
{
    for (size_t k = 0; k < r->t->n; k++) {
        const struct tree_entry *e = &r->t->v[deepest_first ? r->t->n - 1 - k : k];
        struct url u;
        char *path;
        int rc;

        if (e->kind != kind || !(path = remote_of(r, e, &u)))
            continue;
        rc = op(r, e, &u);
        if (rc != 0)
            ops_tree_note(&r->first, ops_fail_file(r->o, s, rc, path, e->src));
        free(path);
    }
}

/* Every directory, before the files (empty ones too): made with its
 * parents, an existing one being no error (RCAT_MKDIR). */
static int make_dir(struct put_run *r, const struct tree_entry *e, const struct url *u)
{
    return ops_mkdir(r->o, u, e->attr.mode & 0777, 1, NULL);
}

/* Links as links (RCAT_SYMLINK), replacing what had the name. */
static int make_link(struct put_run *r, const struct tree_entry *e, const struct url *u)
{
    int rc = ops_symlink(r->o, u, e->target, 1, NULL);

    if (rc == 0)
        report_link(e->src, u->path, e->target);
    return rc;
}

/* -p: the directories' modes and mtimes (RCAT_SETATTR), deepest first,
 * once the files in them no longer change them. */
static int keep_dir_attrs(struct put_run *r, const struct tree_entry *e, const struct url *u)
{
    return ops_setattr(r->o, u, RCAT_SETATTR_MODE | RCAT_SETATTR_MTIME, e->attr.mode & 0777,
                       e->attr.mtime_sec, e->attr.mtime_nsec, NULL);
}

/* --checksum-compare: a file the target holds with the same size is
 * summed at each end (no data moves) and left when the sums agree. */
static void mark_same_content(struct put_run *r)
{
    for (size_t i = 0; r->o->cfg.checksum_compare && i < r->t->n; i++) {
        struct tree_entry *e = &r->t->v[i];
        const struct tree_entry *h = held(r, e->rel);
        char *path;
        int fd;

        if (e->kind != TREE_FILE || !h || h->kind != TREE_FILE || h->attr.size != e->attr.size)
            continue;
        fd = open(e->src, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
        path = tree_join(r->top, e->rel);
        if (fd >= 0 && path && ops_same_content(r->o, r->dst, path, fd))
            e->skip = "SameChecksum";
        free(path);
        if (fd >= 0)
            close(fd);
    }
}

/* --skip-existing: the target's tree as it is, so each file is judged
 * without a call of its own. A target not there yet holds nothing. */
static void read_target(struct put_run *r, struct slot *s)
{
    if (!r->o->cfg.skip_existing && !r->o->cfg.checksum_compare)
        return;
    if (ops_plan_remote(r->o, s, r->top, "", 0, &r->have) != 0)
        tree_free(&r->have);
    if (r->have.n)
        qsort(r->have.v, r->have.n, sizeof *r->have.v, by_rel);
}

/* What was stored unflushed made durable in one call, before rcat says the
 * tree is copied: on the directory the top is in when the top is a file. */
static void flush_stored(struct put_run *r, struct slot *s)
{
    char dir[PATH_MAX];
    struct url u;
    int rc;

    if (!r->deferred)
        return;
    if (r->t->n > 0 && r->t->v[0].kind == TREE_DIR)
        snprintf(dir, sizeof dir, "%s", r->top);
    else
        tree_split(r->top, dir, sizeof dir);
    ops_url_at(r->dst, dir, &u);
    rc = ops_sync(r->o, &u);
    if (rc != 0)
        ops_tree_note(&r->first, ops_fail_file(r->o, s, rc, dir[0] ? dir : "/", NULL));
}

/* Where the tree's top goes (ops.h: enum tree_into); AS is BENEATH when
 * dst is a directory there. */
static char *target_of(struct ops *o, struct slot *s, const char *local, const struct url *dst,
                       enum tree_into into, int *rc)
{
    char base[NAME_MAX + 1];
    file_info info;

    *rc = 0;
    if (into == TREE_INTO_CONTENTS)
        return strdup(dst->path);
    if (into == TREE_INTO_AS && dst->path[0]) {
        int st = ops_stat_call(o, s, dst->path, &info);

        if (st != 0 && st != RCAT_NOT_FOUND) {
            *rc = st;
            return NULL;
        }
        if (st == RCAT_NOT_FOUND || info.type != RCAT_DIR)
            return strdup(dst->path);
    }
    tree_basename(local, base, sizeof base);
    if (!base[0]) {
        *rc = RCAT_BAD_PATH;
        return NULL;
    }
    return tree_join(dst->path, base);
}

int ops_tree_put(struct ops *o, const char *local, const struct url *dst, enum tree_into into)
{
    struct put_run r = {.o = o, .dst = dst};
    uint64_t *sizes;
    struct tree t;
    struct slot *s = NULL;
    char where[PATH_MAX];
    const char *result = "OK";
    char *top = NULL;
    int rc, code;

    tree_init(&t);
    tree_init(&r.have);
    r.t = &t;
    rc = tree_walk_local(&t, local, "", 1, 0, where, sizeof where);
    if (rc < 0) {
        code = verdict_fail_local(where[0] ? where : local, NULL, -rc, &result);
        tree_free(&t);
        return code;
    }
    if (t.n > 0 && t.v[0].kind == TREE_DIR && !o->cfg.recursive) {
        tree_free(&t);
        return verdict_fail_local(local, "a directory: copy it with -r", EISDIR, &result);
    }
    rc = ops_connect(o, dst, &s);
    if (rc == 0)
        top = target_of(o, s, local, dst, into, &rc);
    if (rc != 0 || !top) {
        code = ops_fail(o, s, rc ? rc : RPC2_ENOMEM, NULL, dst->path, local, &result);
        tree_free(&t);
        return code;
    }
    r.top = top;
    report_tree_plan(t.files, t.file_bytes);
    read_target(&r, s);
    mark_same_content(&r);
    for_each(&r, s, TREE_DIR, 0, make_dir);
    if (tree_file_list(&t, &r.files, &sizes) == 0) {
        jobs_run_paced(o, dst, o->cfg.jobs, t.files, start_store, sizes, &r);
        free(sizes);
        if (!o->signal) /* interrupted: what is left is not begun */
            for_each(&r, s, TREE_LINK, 0, make_link);
        if (o->cfg.preserve && !o->signal)
            for_each(&r, s, TREE_DIR, 1, keep_dir_attrs);
        flush_stored(&r, s);
    } else {
        ops_tree_note(&r.first, verdict_fail_local(local, NULL, ENOMEM, &result));
    }
    free(r.files);
    free(top);
    tree_free(&r.have);
    tree_free(&t);
    return r.first;
}
