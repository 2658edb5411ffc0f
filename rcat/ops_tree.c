/*
 * ops_tree.c - rcat -r HOST:PATH LOCAL: a remote file, a tree or the
 * matches of a wildcard copied beneath a local directory, several files in
 * flight at once (jobs.c). Directories are made first, then the files move
 * (each into a temporary beside its name, renamed into place when whole,
 * with the mode and with -p the mtime it had on the server), then links,
 * then with -p the directories' own modes and mtimes, deepest first, once
 * their contents no longer change them. Nothing is written outside the
 * destination: names are checked as they come (ops_walk.c) and every
 * directory is opened without following links (tree_open_dir). The files
 * are flushed to disk once, at the end (syncfs), not one by one.
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
#include "policy.h"
#include "verdict.h"

struct fetch_run;

/* One file in flight on a lane. */
struct item {
    struct fetch_run *r;
    struct jobs *j;
    struct xfer x;
    struct rpc2_se_desc d;
    fetch_args args;
    file_info info;
    const struct tree_entry *e;
    struct slot *s;
    unsigned lane;
    int dirfd, fd;
    char *local; /* for messages and events */
    char tmp[NAME_MAX + 1];
    const char *name;
};

struct fetch_run {
    struct ops *o;
    const struct url *src;
    struct tree *t;
    size_t *files; /* indices of t's files */
    int topfd;
    struct tree_dirs dirs; /* the files' directories, open for the run */
    int pid;               /* in the temporaries' names */
    const char *dest;
    struct item items[JOBS_MAX];
    unsigned seq;
    int first; /* the first failure's exit code */
};

static char *local_name(const struct fetch_run *r, const struct tree_entry *e)
{
    return tree_join(r->dest, e->rel);
}

/* Same size and mtime (to the second, as rsync): the copy is taken to be
 * the file already. */
static int same_file(int dirfd, const char *name, const struct tree_attr *a)
{
    struct stat st;

    return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
           (uint64_t)st.st_size == a->size && st.st_mtim.tv_sec == a->mtime_sec;
}

static void item_close(struct item *it)
{
    if (it->fd >= 0)
        close(it->fd);
    if (it->dirfd >= 0)
        tree_dirs_put(&it->r->dirs, it->dirfd);
    free(it->local);
    it->fd = it->dirfd = -1;
    it->local = NULL;
}

/* The file is whole in its temporary: with -p its mode and mtime (without,
 * it was created with its mode under the umask), then its name. */
static int put_in_place(struct fetch_run *r, struct item *it, const char **result)
{
    const struct tree_attr *a = &it->e->attr;

    if (r->o->cfg.preserve) {
        if (fchmod(it->fd, a->mode) < 0)
            return verdict_fail_local(it->local, "cannot set the mode", errno, result);
        struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT},
                                 {.tv_sec = a->mtime_sec, .tv_nsec = a->mtime_nsec}};

        if (futimens(it->fd, ts) < 0)
            return verdict_fail_local(it->local, "cannot set the mtime", errno, result);
    }
    if (renameat(it->dirfd, it->tmp, it->dirfd, it->name) < 0)
        return verdict_fail_local(it->local, "cannot rename the copy into place", errno, result);
    it->tmp[0] = '\0';
    return RCAT_EXIT_OK;
}

static void item_end(struct item *it, int code, const char *result)
{
    if (it->tmp[0] && it->dirfd >= 0)
        unlinkat(it->dirfd, it->tmp, 0);
    it->tmp[0] = '\0';
    report_xfer_focus(&it->x.rep);
    xfer_end(&it->x, &it->d, code, result);
    ops_tree_note(&it->r->first, code);
    item_close(it);
    jobs_finish(it->j, it->lane);
}

static void fetched(int status, void *result_, void *arg)
{
    struct item *it = arg;
    struct fetch_run *r = it->r;
    const char *result = "OK";
    int code = RCAT_EXIT_OK;

    (void)result_;
    report_xfer_focus(&it->x.rep);
    if (status != 0) {
        code = ops_fail_lane(r->o, it->s, status, &it->d, it->e->src, it->local, &result);
    } else {
        code = put_in_place(r, it, &result);
    }
    item_end(it, code, result);
}

/* A temporary of ours beside the name: never an existing file, never
 * through a link (O_EXCL). Without -p it is made with the file's
 * permission bits, which the umask trims as it would the file's own: the
 * copy then needs no fchmod (one system call less per file, as cp). With
 * -p it stays private until put_in_place gives it the server's mode. */
static int open_temporary(struct fetch_run *r, struct item *it)
{
    mode_t mode = r->o->cfg.preserve ? 0600 : (it->e->attr.mode & 0777);

    for (int tries = 0; tries < 100; tries++) {
        int n = snprintf(it->tmp, sizeof it->tmp, ".%s.rcat-%d-%u", it->name, r->pid, r->seq++);

        if (n < 0 || (size_t)n >= sizeof it->tmp)
            snprintf(it->tmp, sizeof it->tmp, ".rcat-%d-%u", r->pid, r->seq++);
        it->fd =
            openat(it->dirfd, it->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (it->fd >= 0 || errno != EEXIST)
            break;
    }
    if (it->fd < 0)
        it->tmp[0] = '\0';
    return it->fd < 0 ? -errno : 0;
}

/* A file that failed before its transfer began: FILEERROR, no STOP. */
static void item_refused(struct item *it, const char *what, int err)
{
    const char *name = strerrorname_np(err);

    report_file_error(RCAT_EXIT_LOCAL, name ? name : "ESYSTEM", it->local, "%s: %s", what,
                      strerror(err));
    ops_tree_note(&it->r->first, RCAT_EXIT_LOCAL);
    item_close(it);
    jobs_finish(it->j, it->lane);
}

static void start_fetch(struct jobs *j, unsigned lane, struct slot *s, size_t task, void *arg)
{
    struct fetch_run *r = arg;
    struct item *it = &r->items[lane];
    const struct tree_entry *e = &r->t->v[r->files[task]];
    char dir[PATH_MAX];
    const char *result = "OK";
    int rc;

    *it = (struct item){.r = r, .j = j, .e = e, .s = s, .lane = lane, .dirfd = -1, .fd = -1};
    it->d = (struct rpc2_se_desc)RPC2_SE_DESC_INIT(RPC2_SE_FETCH);
    it->local = local_name(r, e);
    it->name = tree_split(e->rel, dir, sizeof dir);
    if (!it->local)
        return item_refused(it, "out of memory", ENOMEM);
    it->dirfd = tree_dirs_get(&r->dirs, dir);
    if (it->dirfd < 0)
        return item_refused(it, "cannot open its directory", -it->dirfd);
    if (e->skip || (r->o->cfg.skip_existing && same_file(it->dirfd, it->name, &e->attr))) {
        report_skip(e->src, it->local, e->skip ? e->skip : "SameSizeAndMtime", e->attr.size);
        item_close(it);
        jobs_finish(j, lane);
        return;
    }
    rc = open_temporary(r, it);
    if (rc < 0)
        return item_refused(it, "cannot create the copy", -rc);
    xfer_begin(&it->x, r->o, 0, e->src, it->local, (int64_t)e->attr.size, &it->d);
    it->x.rep.session = s->session;
    if (s->lost || r->o->timed_out) {
        rc = s->lost ? s->lost : RPC2_ETIMEDOUT;
        item_end(it, ops_fail(r->o, s, rc, NULL, e->src, NULL, &result), result);
        return;
    }
    it->d.file_kind = RPC2_SE_FILE_FD;
    it->d.file.fd.fd = it->fd;
    it->d.file.fd.positional = 1; /* a temporary of its own: no lseek, no fcntl */
    /* room made first only where a full disk would waste a long transfer:
     * for a small file the call that makes it costs more than it saves */
    it->d.expected_size = e->attr.size >= (1u << 20) ? e->attr.size : 0;
    it->args = (fetch_args){.path = e->src, .offset = 0, .length = -1};
    rc = rpc2_call_async(s->conn, RCAT_FETCH, (xdrproc_t)xdr_fetch_args, &it->args,
                         (xdrproc_t)xdr_file_info, &it->info,
                         &(struct rpc2_call_opts){.se = &it->d}, fetched, it);
    if (rc != 0)
        fetched(rc, NULL, it);
}

/* ---- the tree around the files --------------------------------------------- */

/* Directories first (their files go in them), each made without following
 * a link; one that cannot be made fails alone (its files then fail too). */
static void make_dirs(struct fetch_run *r)
{
    for (size_t i = 0; i < r->t->n; i++) {
        const struct tree_entry *e = &r->t->v[i];
        int fd;

        if (e->kind != TREE_DIR || !e->rel[0])
            continue;
        fd = tree_open_dir(r->topfd, e->rel, 1);
        if (fd >= 0) {
            close(fd);
            continue;
        }
        char *local = local_name(r, e);
        const char *name = strerrorname_np(-fd);

        report_file_error(RCAT_EXIT_LOCAL, name ? name : "ESYSTEM", local ? local : e->rel,
                          "cannot make the directory: %s",
                          fd == -ELOOP ? "a symbolic link is in the way" : strerror(-fd));
        ops_tree_note(&r->first, RCAT_EXIT_LOCAL);
        free(local);
    }
}

/* A link made under a temporary name and renamed over the name, so that
 * whatever had the name (a file, an older link) is replaced at once. */
static int make_link(struct fetch_run *r, const struct tree_entry *e, const char *target)
{
    char dir[PATH_MAX], tmp[NAME_MAX + 1];
    const char *name = tree_split(e->rel, dir, sizeof dir);
    int dfd = tree_open_dir(r->topfd, dir, 0), err = 0;

    if (dfd < 0)
        return dfd;
    snprintf(tmp, sizeof tmp, ".rcat-link-%d-%u", (int)getpid(), r->seq++);
    if (symlinkat(target, dfd, tmp) < 0)
        err = -errno;
    else if (renameat(dfd, tmp, dfd, name) < 0) {
        err = -errno;
        unlinkat(dfd, tmp, 0);
    }
    close(dfd);
    return err;
}

/* Links as links: the target is the server's to tell (RCAT_READLINK), and
 * is made as it is, wherever it points (as cp -P, rsync -l). */
static void make_links(struct fetch_run *r, struct slot *s)
{
    char target[RCAT_MAX_PATH + 1];

    for (size_t i = 0; i < r->t->n; i++) {
        const struct tree_entry *e = &r->t->v[i];
        char *local;
        struct url u;
        int rc;

        if (e->kind != TREE_LINK)
            continue;
        local = local_name(r, e);
        ops_url_at(r->src, e->src, &u);
        rc = ops_readlink(r->o, &u, target, sizeof target);
        if (rc != 0) {
            ops_tree_note(&r->first, ops_fail_file(r->o, s, rc, e->src, local));
        } else if ((rc = make_link(r, e, target)) < 0) {
            const char *name = strerrorname_np(-rc);

            report_file_error(RCAT_EXIT_LOCAL, name ? name : "ESYSTEM", local ? local : e->rel,
                              "cannot make the symbolic link: %s", strerror(-rc));
            ops_tree_note(&r->first, RCAT_EXIT_LOCAL);
        } else {
            report_link(e->src, local ? local : e->rel, target);
        }
        free(local);
    }
}

/* --checksum-compare: a copy of the same size is summed at each end (no
 * data moves) and left when the sums agree. */
static void mark_same_content(struct fetch_run *r)
{
    for (size_t i = 0; r->o->cfg.checksum_compare && i < r->t->n; i++) {
        struct tree_entry *e = &r->t->v[i];
        char dir[PATH_MAX];
        const char *name = tree_split(e->rel, dir, sizeof dir);
        struct stat st;
        int dfd, fd;

        if (e->kind != TREE_FILE || (dfd = tree_open_dir(r->topfd, dir, 0)) < 0)
            continue;
        fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
        if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
            (uint64_t)st.st_size == e->attr.size && ops_same_content(r->o, r->src, e->src, fd))
            e->skip = "SameChecksum";
        if (fd >= 0)
            close(fd);
        close(dfd);
    }
}

/* -p: the directories' modes and mtimes, deepest first (the plan has each
 * directory before its contents), after everything in them was written. */
static void keep_dir_attrs(struct fetch_run *r)
{
    for (size_t i = r->t->n; i-- > 0;) {
        const struct tree_entry *e = &r->t->v[i];
        struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT},
                                 {.tv_sec = e->attr.mtime_sec, .tv_nsec = e->attr.mtime_nsec}};
        int fd;

        if (e->kind != TREE_DIR)
            continue;
        fd = tree_open_dir(r->topfd, e->rel, 0);
        if (fd < 0)
            continue; /* said when it was made */
        if (fchmod(fd, e->attr.mode) < 0 || futimens(fd, ts) < 0) {
            char *local = local_name(r, e);
            const char *result;

            ops_tree_note(&r->first,
                          verdict_fail_local(local ? local : e->rel,
                                             "cannot keep its mode and mtime", errno, &result));
            free(local);
        }
        close(fd);
    }
}

/* The destination's top: dest itself when the copy goes into it, else the
 * directory dest is to be made in (its parent), which must exist. */
static int open_top(struct fetch_run *r, const char *dest, int into_dir, const char **result)
{
    char *copy;

    if (into_dir && r->o->cfg.mkdirs) {
        copy = tree_join(dest, "");
        int code = copy ? policy_make_parents(copy, 0, result) : RCAT_EXIT_LOCAL;
        free(copy);
        if (code != RCAT_EXIT_OK)
            return code;
    }
    if (into_dir && mkdir(dest, 0777) < 0 && errno != EEXIST)
        return verdict_fail_local(dest, "cannot make the directory", errno, result);
    r->topfd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (r->topfd < 0)
        return verdict_fail_local(dest, NULL, errno, result);
    return RCAT_EXIT_OK;
}

/* Turns the plan of one top entry copied as dest itself (rel "") into one
 * beneath dest's parent, named after dest. */
static int rebase(struct tree *t, const char *dest, char *parent, size_t cap)
{
    char base[NAME_MAX + 1];

    tree_basename(dest, base, sizeof base);
    tree_split(dest, parent, cap);
    if (!parent[0])
        snprintf(parent, cap, "%s", dest[0] == '/' ? "/" : ".");
    if (!base[0])
        return -1;
    for (size_t i = 0; i < t->n; i++) {
        char *rel = tree_join(base, t->v[i].rel);

        if (!rel)
            return -1;
        if (!t->v[i].rel[0])
            rel[strlen(base)] = '\0';
        free(t->v[i].rel);
        t->v[i].rel = rel;
    }
    return 0;
}

static int plan(struct fetch_run *r, struct slot *s, const struct url *src, enum tree_into into)
{
    struct ops *o = r->o;
    struct tree *t = r->t;
    struct tree matches;
    char base[NAME_MAX + 1];
    int rc;

    if (!ops_has_wildcard(src->path)) {
        tree_basename(src->path, base, sizeof base);
        return ops_plan_remote(o, s, src->path, into == TREE_INTO_BENEATH ? base : "", 0, t);
    }
    rc = ops_glob_remote(o, s, src, &matches);
    if (rc == 0 && matches.n == 0)
        rc = RCAT_NOT_FOUND;
    for (size_t i = 0; rc == 0 && i < matches.n; i++) {
        int one = ops_plan_remote(o, s, matches.v[i].src, matches.v[i].rel, 0, t);

        if (one != 0) /* each match fails alone */
            ops_tree_note(&r->first,
                          ops_fail(o, s, one, NULL, matches.v[i].src, NULL, &(const char *){NULL}));
    }
    tree_free(&matches);
    return rc;
}

static int run_files(struct fetch_run *r, const struct url *src)
{
    uint64_t *sizes;
    int rc;

    if (tree_file_list(r->t, &r->files, &sizes) < 0)
        return RPC2_ENOMEM;
    rc = jobs_run_paced(r->o, src, r->o->cfg.jobs, r->t->files, start_fetch, sizes, r);
    free(sizes);
    free(r->files);
    return rc;
}

int ops_tree_fetch(struct ops *o, const struct url *src, const char *dest, enum tree_into into)
{
    struct fetch_run r = {.o = o, .src = src, .dest = dest, .topfd = -1, .pid = (int)getpid()};
    struct tree t;
    struct slot *s = NULL;
    char parent[PATH_MAX];
    const char *result = "OK";
    int code, rc = ops_connect(o, src, &s);

    tree_init(&t);
    r.t = &t;
    if (rc == 0)
        rc = plan(&r, s, src, into);
    if (rc != 0) {
        code = ops_fail(o, s, rc, NULL, src->path[0] ? src->path : "/", NULL, &result);
        tree_free(&t);
        return code;
    }
    report_tree_plan(t.files, t.file_bytes);
    if (into == TREE_INTO_AS && t.n > 0 && t.v[0].kind != TREE_DIR) {
        if (rebase(&t, dest, parent, sizeof parent) < 0) {
            tree_free(&t);
            return verdict_fail_local(dest, "no name to give the copy", EINVAL, &result);
        }
        r.dest = parent;
        code = open_top(&r, parent, 0, &result);
    } else {
        code = open_top(&r, dest, 1, &result);
    }
    tree_dirs_init(&r.dirs, r.topfd);
    if (code == RCAT_EXIT_OK) {
        make_dirs(&r);
        mark_same_content(&r);
        rc = run_files(&r, src);
        if (rc == RPC2_ENOMEM)
            ops_tree_note(&r.first, verdict_fail_local(dest, NULL, ENOMEM, &result));
        if (!o->signal) /* interrupted: what is left is not begun */
            make_links(&r, s);
        if (o->cfg.preserve && !o->signal)
            keep_dir_attrs(&r);
        if (syncfs(r.topfd) < 0)
            ops_tree_note(&r.first, verdict_fail_local(dest, "cannot flush", errno, &result));
        code = r.first;
    }
    tree_dirs_free(&r.dirs);
    if (r.topfd >= 0)
        close(r.topfd);
    tree_free(&t);
    return code;
}
