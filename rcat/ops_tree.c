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

#include "fetch_batch.h"
#include "jobs.h"
#include "ops_tree.h"
#include "policy.h"
#include "verdict.h"

struct fetch_run;

/* One file in flight on a lane, alone or in a batch. */
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

/* A lane's FETCH_BATCH: its files (those not skipped nor failed before
 * the call) and the call. */
struct batch {
    struct item items[RCAT_BATCH_FILES];
    unsigned n;
    batch_path paths[RCAT_BATCH_FILES];
    fetch_batch_args args;
    fetch_batch_result res;
    struct rpc2_se_desc d; /* the files' bytes, into memory */
    /* the lane's memory for them, kept from call to call: a buffer malloc'ed
     * and freed per call moved the heap's top each time (brk, page faults) */
    void *buf;
    size_t cap;
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
    struct fetch_batch_task *tasks;
    struct batch *batches[JOBS_MAX]; /* each lane's, made on its first batch */
    int batching; /* the server answers FETCH_BATCH */
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

/* The file's STOP and its files closed; its temporary removed unless it
 * took the name. The lane's task goes on (jobs_finish) elsewhere. */
static void item_over(struct item *it, int code, const char *result)
{
    if (it->tmp[0] && it->dirfd >= 0)
        unlinkat(it->dirfd, it->tmp, 0);
    it->tmp[0] = '\0';
    report_xfer_focus(&it->x.rep);
    xfer_end(&it->x, &it->d, code, result);
    ops_tree_note(&it->r->first, code);
    item_close(it);
}

static void item_end(struct item *it, int code, const char *result)
{
    item_over(it, code, result);
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
static int item_refused(struct item *it, const char *what, int err)
{
    const char *name = strerrorname_np(err);

    report_file_error(RCAT_EXIT_LOCAL, name ? name : "ESYSTEM", it->local, "%s: %s", what,
                      strerror(err));
    ops_tree_note(&it->r->first, RCAT_EXIT_LOCAL);
    item_close(it);
    return 0;
}

/* A file's start, alone or in a batch: its temporary open and its START
 * said (1), or over already (0): skipped, or failed before any call. */
static int item_begin(struct fetch_run *r, struct item *it, struct slot *s)
{
    const struct tree_entry *e = it->e;
    char dir[PATH_MAX];
    int rc;

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
        return 0;
    }
    rc = open_temporary(r, it);
    if (rc < 0)
        return item_refused(it, "cannot create the copy", -rc);
    xfer_begin(&it->x, r->o, 0, e->src, it->local, (int64_t)e->attr.size, &it->d);
    it->x.rep.session = s->session;
    return 1;
}

static void start_fetch(struct jobs *j, unsigned lane, struct slot *s, size_t file, void *arg)
{
    struct fetch_run *r = arg;
    struct item *it = &r->items[lane];
    const struct tree_entry *e = &r->t->v[r->files[file]];
    const char *result = "OK";
    int rc;

    *it = (struct item){.r = r, .j = j, .e = e, .s = s, .lane = lane, .dirfd = -1, .fd = -1};
    if (!item_begin(r, it, s)) {
        jobs_finish(j, lane);
        return;
    }
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

/* ---- several small files in one call (FETCH_BATCH) ------------------------- */

/* The whole of data into the file's temporary, then into place. */
static int write_copy(struct fetch_run *r, struct item *it, const char *data, size_t len,
                      const char **result)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = pwrite(it->fd, data + done, len - done, (off_t)done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return verdict_fail_local(it->local, NULL, errno, result);
        done += (size_t)n;
    }
    it->d.bytes_transferred = len;
    return put_in_place(r, it, result);
}

/* A reply whose lengths do not add up: every file of the batch fails,
 * nothing of it is written. */
static int refuse_reply(struct item *it, const char *why, const char **result)
{
    report_file_error(RCAT_EXIT_INTEGRITY, "EBADREPLY", it->local,
                      "the server's reply to FETCH_BATCH is malformed (%s): nothing kept", why);
    *result = "EBADREPLY";
    return RCAT_EXIT_INTEGRITY;
}

/* The call is over: each file's outcome is its own (the server's status
 * for it, or the call's failure), and its bytes are taken from the reply
 * only once every length in it was checked (fetch_batch_check). */
static void batch_fetched(int status, void *result_, void *arg)
{
    struct batch *b = arg;
    struct item *first = &b->items[0];
    struct fetch_run *r = first->r;
    const char *why = NULL, *data = b->d.file.vm.buf;
    size_t off = 0;

    (void)result_;
    if (status == 0 && fetch_batch_check(&b->res, b->n, b->d.file.vm.len, &why) != 0)
        status = RPC2_EDECODE;
    for (unsigned i = 0; i < b->n; i++) {
        struct item *it = &b->items[i];
        const batch_entry *e = status == 0 ? &b->res.entries.entries_val[i] : NULL;
        const char *result = "OK";
        int code;

        report_xfer_focus(&it->x.rep);
        if (why)
            code = refuse_reply(it, why, &result);
        else if (status != 0 || e->status != 0)
            code = ops_fail_lane(r->o, it->s, status ? status : e->status, &it->d, it->e->src,
                                 it->local, &result);
        else
            code = write_copy(r, it, data + off, (size_t)e->length, &result);
        if (e)
            off += (size_t)e->length;
        item_over(it, code, result);
    }
    xdr_free((xdrproc_t)xdr_fetch_batch_result, (char *)&b->res);
    b->buf = b->d.file.vm.buf; /* grown, maybe: the lane's from now on */
    b->cap = b->d.file.vm.cap;
    jobs_finish(first->j, first->lane);
}

/* A lane's batch: its files begun (those skipped or failed at once are
 * over), then one call for the rest. */
static void start_batch(struct jobs *j, unsigned lane, struct slot *s,
                        const struct fetch_batch_task *t, struct fetch_run *r)
{
    struct batch *b = r->batches[lane];
    int rc;

    if (!b && !(b = r->batches[lane] = calloc(1, sizeof *b))) {
        for (size_t k = 0; k < t->n; k++)
            ops_tree_note(&r->first, verdict_fail_local(r->t->v[r->files[t->first + k]].src, NULL,
                                                        ENOMEM, &(const char *){NULL}));
        jobs_finish(j, lane);
        return;
    }
    b->n = 0;
    for (size_t k = 0; k < t->n; k++) {
        struct item *it = &b->items[b->n];

        *it = (struct item){.r = r, .j = j, .e = &r->t->v[r->files[t->first + k]], .s = s,
                            .lane = lane, .dirfd = -1, .fd = -1};
        if (item_begin(r, it, s))
            b->paths[b->n++].path = (char *)it->e->src;
    }
    if (b->n == 0) {
        jobs_finish(j, lane);
        return;
    }
    b->args = (fetch_batch_args){.paths = {.paths_len = b->n, .paths_val = b->paths}};
    b->res = (fetch_batch_result){0};
    b->d = (struct rpc2_se_desc)RPC2_SE_DESC_INIT(RPC2_SE_FETCH);
    b->d.file_kind = RPC2_SE_FILE_VM;
    b->d.file.vm.grow = 1;
    b->d.file.vm.buf = b->buf;
    b->d.file.vm.cap = b->cap;
    b->d.file.vm.max = RCAT_BATCH_BYTES; /* the most a server sends for one call */
    rc = s->lost ? s->lost : r->o->timed_out ? RPC2_ETIMEDOUT : 0;
    if (rc == 0)
        rc = rpc2_call_async(s->conn, RCAT_FETCH_BATCH, (xdrproc_t)xdr_fetch_batch_args, &b->args,
                             (xdrproc_t)xdr_fetch_batch_result, &b->res,
                             &(struct rpc2_call_opts){.se = &b->d}, batch_fetched, b);
    if (rc != 0)
        batch_fetched(rc, NULL, b);
}

static void start_task(struct jobs *j, unsigned lane, struct slot *s, size_t task, void *arg)
{
    struct fetch_run *r = arg;
    const struct fetch_batch_task *t = &r->tasks[task];

    if (t->batch)
        start_batch(j, lane, s, t, r);
    else
        start_fetch(j, lane, s, t->first, arg);
}

/* Batches only where each file needs no more than its bytes (no sum asked
 * for each, no resume) and the server knows the call: asked once with an
 * empty batch, which an older server answers RPC2_ENOPROC. */
static int server_batches(struct fetch_run *r, struct slot *s)
{
    const struct ops_config *c = &r->o->cfg;
    fetch_batch_args none = {0};
    fetch_batch_result res = {0};

    if (c->sum.type || c->sum.expect_len || c->resume)
        return 0;
    int rc = ops_call(r->o, s, RCAT_FETCH_BATCH, (xdrproc_t)xdr_fetch_batch_args, &none,
                      (xdrproc_t)xdr_fetch_batch_result, &res, NULL);
    xdr_free((xdrproc_t)xdr_fetch_batch_result, (char *)&res);
    return rc == 0;
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

/* The files as tasks: runs of small ones in batches when the server
 * takes them, each other file alone. */
static int run_files(struct fetch_run *r, const struct url *src, struct slot *s)
{
    uint64_t *sizes, *task_bytes = NULL;
    size_t *lens = NULL, n = r->t->files, n_tasks = 0;
    int rc = RPC2_ENOMEM;

    if (tree_file_list(r->t, &r->files, &sizes) < 0)
        return RPC2_ENOMEM;
    r->tasks = calloc(n ? n : 1, sizeof *r->tasks);
    lens = calloc(n ? n : 1, sizeof *lens);
    task_bytes = calloc(n ? n : 1, sizeof *task_bytes);
    if (r->tasks && lens && task_bytes) {
        for (size_t i = 0; i < n; i++)
            lens[i] = strlen(r->t->v[r->files[i]].src);
        r->batching = n > 1 && server_batches(r, s);
        n_tasks = fetch_batch_group(sizes, lens, n, r->batching, r->tasks);
        for (size_t i = 0; i < n_tasks; i++)
            task_bytes[i] = r->tasks[i].bytes;
        rc = jobs_run_paced(r->o, src, r->o->cfg.jobs, n_tasks, start_task, task_bytes, r);
    }
    for (size_t i = 0; i < JOBS_MAX; i++) {
        if (r->batches[i])
            free(r->batches[i]->buf);
        free(r->batches[i]);
    }
    free(task_bytes);
    free(lens);
    free(r->tasks);
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
        rc = run_files(&r, src, s);
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
