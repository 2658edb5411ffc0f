/*
 * serve.c - what rcatd does for each call of rcat_proto.x: resolve the
 * path beneath the root (root.c), do the work, move the file as the call's
 * SFTP side effect, log one line.
 *
 * Every procedure is a blocking handler on the worker pool. FETCH and STORE
 * must be (they wait for their transfer); STAT and LIST are too, because
 * filesystem calls can stall (a slow disk, NFS, a directory of a million
 * entries to read and sort) and the loop thread they would otherwise run
 * on is the one that keeps every transfer of every client moving. The price
 * is that --workers bounds all calls at once, not only transfers.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* O_PATH */
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <rpc2/rpc2.h>
#include <rpc2/se.h>

#include "access.h"
#include "metrics.h"
#include "rcat_proto.h"
#include "root.h"
#include "serve.h"

/* LIST reads and sorts the whole directory for every page (the client asks
 * by index); past this many entries it refuses rather than eat memory. */
#define LIST_CAP (1u << 20)
#define LOG_PATH_MAX 512 /* bytes of an escaped path shown in the log */
#define MODE_BITS 0777   /* no setuid, setgid or sticky file from the network */
/* An identity is at most 255 bytes; escaped, each may take 4. */
#define IDENTITY_SHOWN_MAX (255 * 4 + 16)

struct serve {
    struct root root;
    pthread_mutex_t acl_lock;
    struct access *acl; /* NULL: every caller gets the defaults */
    unsigned defaults;  /* ACCESS_*: what anonymous callers may do */
    enum rpc2_security min_security;
    serve_log_fn log;
    void *log_arg;
    struct metrics *metrics;
    atomic_uint running; /* calls inside a handler */
    atomic_int stopping;
};

/* ---- arguments: the wire's path length kept beside the decoded struct ---- */

/* XDR strings may carry a NUL that C strings then stop at: each argument
 * type is decoded with the length the wire gave its path (the first field
 * of every one), so root_check can compare. */
struct fetch_req {
    fetch_args a;
    u_int path_len;
};
struct path_req {
    path_args a;
    u_int path_len;
};
struct list_req {
    list_args a;
    u_int path_len;
};
struct store_req {
    store_args a;
    u_int path_len;
};

static bool_t peek_path_len(XDR *x, u_int *len)
{
    u_int pos = xdr_getpos(x);

    return xdr_u_int(x, len) && xdr_setpos(x, pos);
}

#define CHECKED_DECODER(req, args)                                                                 \
    static bool_t xdr_##req(XDR *x, struct req *r)                                                 \
    {                                                                                              \
        if (x->x_op == XDR_DECODE && !peek_path_len(x, &r->path_len))                              \
            return FALSE;                                                                          \
        return xdr_##args(x, &r->a);                                                               \
    }
CHECKED_DECODER(fetch_req, fetch_args)
CHECKED_DECODER(path_req, path_args)
CHECKED_DECODER(list_req, list_args)
CHECKED_DECODER(store_req, store_args)

/* ---- statuses ---------------------------------------------------------------- */

/* A side effect that failed on a local file says why with an rpc2 code;
 * the transport's own failures (a dead peer, a closed connection) stay
 * rpc2 errors. */
static int status_of_rpc2(int code)
{
    switch (code) {
    case RPC2_ENOENT:
        return RCAT_NOT_FOUND;
    case RPC2_EACCES:
        return RCAT_PERMISSION;
    case RPC2_ENOSPC:
        return RCAT_NO_SPACE;
    case RPC2_EIO:
        return RCAT_IO;
    case RPC2_EEXIST:
        return RCAT_EXISTS;
    case RPC2_EISDIR:
        return RCAT_IS_DIR;
    default:
        return code;
    }
}

static const char *status_name(int status)
{
    static const char *const names[] = {
        "ok",
        "RCAT_READ_ONLY",
        "RCAT_OUTSIDE_ROOT",
        "RCAT_NOT_FOUND",
        "RCAT_PERMISSION",
        "RCAT_IS_DIR",
        "RCAT_NOT_DIR",
        "RCAT_EXISTS",
        "RCAT_BAD_PATH",
        "RCAT_IO",
        "RCAT_NO_SPACE",
    };

    if (status < 0)
        return rpc2_errname(status);
    return (size_t)status < sizeof names / sizeof names[0] ? names[status] : "RCAT_UNKNOWN";
}

/* ---- the log line -------------------------------------------------------- */

/* A path is the client's to choose: bytes that could break the line (or a
 * terminal) are shown as \xNN, and a long one is cut. */
static void escape_path(const char *in, char *out, size_t cap)
{
    size_t o = 0;

    if (!in || !*in)
        in = "\"\""; /* the one way an empty path shows on the line */
    for (; *in && o + 8 < cap; in++) {
        unsigned char c = (unsigned char)*in;
        if (c <= ' ' || c == '"' || c == '\\' || c == 0x7f)
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        else
            out[o++] = (char)c;
    }
    if (*in)
        o += (size_t)snprintf(out + o, cap - o, "...");
    out[o] = '\0';
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Who called: the identity named in the bind (proved by its secret above
 * level none; only claimed at none), and the connection's level. */
static void describe_caller(rpc2_request *req, char *out, size_t cap)
{
    static const char *const levels[] = {"none", "auth", "encrypt"};
    unsigned level = (unsigned)rpc2_request_security(req);
    char id[IDENTITY_SHOWN_MAX];

    /* the identity is the client's to choose at level none: escaped like a path */
    escape_path(rpc2_request_identity(req), id, sizeof id);
    snprintf(out, cap, "%s %s", id, level < 3 ? levels[level] : "?");
}

static void log_call(struct serve *s, rpc2_request *req, const char *proc, const char *path,
                     uint64_t bytes, const struct timespec *t0, int status)
{
    char shown[LOG_PATH_MAX], caller[IDENTITY_SHOWN_MAX + 32], line[LOG_PATH_MAX + 1400];

    if (!s->log)
        return;
    escape_path(path, shown, sizeof shown);
    describe_caller(req, caller, sizeof caller);
    snprintf(line, sizeof line, "%s %s %s %s %" PRIu64 " B %.1f ms %s", rpc2_request_peer(req),
             caller, proc, shown, bytes, ms_since(t0), status_name(status));
    s->log(line, s->log_arg);
}

/* ---- helpers --------------------------------------------------------------- */

static void info_of(const struct stat *st, file_info *out)
{
    out->size = st->st_size > 0 ? (u_quad_t)st->st_size : 0;
    out->mode = st->st_mode & 07777;
    out->mtime_sec = st->st_mtim.tv_sec;
    out->mtime_nsec = (u_int)st->st_mtim.tv_nsec;
    out->type = S_ISREG(st->st_mode)   ? RCAT_REG
                : S_ISDIR(st->st_mode) ? RCAT_DIR
                : S_ISLNK(st->st_mode) ? RCAT_LNK
                                       : RCAT_OTHER;
}

/* Runs the side effect the handler described; *bytes says how much moved. */
static int transfer(rpc2_request *req, struct rpc2_se_desc *d, uint64_t *bytes)
{
    int rc = rpc2_se_init(req, d);

    if (rc == 0)
        rc = rpc2_se_check(req);
    *bytes = d->bytes_transferred;
    if (rc == 0)
        return 0;
    return status_of_rpc2(d->error ? d->error : rc);
}

/* ---- who may do what (access.h) ------------------------------------------- */

/* The caller's own root, if it may do any of need; out is the caller's to
 * dispose of. The grant is copied out under the lock: a reload may free
 * the table as soon as the lock is released. */
static int caller_root(struct serve *s, rpc2_request *req, unsigned need, struct root *out)
{
    struct access_grant g;
    enum access_verdict v;

    pthread_mutex_lock(&s->acl_lock);
    v = access_decide(s->acl, rpc2_request_identity(req), rpc2_request_security(req), s->defaults,
                      &g);
    pthread_mutex_unlock(&s->acl_lock);
    if (v == ACCESS_TOO_LOW)
        return RPC2_ESECURITY;
    if (v == ACCESS_UNLISTED || !(g.rights & need))
        return need == ACCESS_WRITE && g.rights ? RCAT_READ_ONLY : RCAT_PERMISSION;
    return root_enter(&s->root, g.root, out);
}

/* ---- FETCH ----------------------------------------------------------------- */

static int do_fetch(struct serve *s, rpc2_request *req, void *args, void *result, uint64_t *bytes)
{
    const struct fetch_req *r = args;
    struct stat st;
    int fd = -1;

    if (r->a.offset > INT64_MAX || r->a.length < -1)
        return RPC2_EINVAL;
    struct root at;
    int rc = caller_root(s, req, ACCESS_READ, &at);
    if (rc != 0)
        return rc;
    /* regular files only, judged before they are opened (root.h) */
    rc = root_open_regular(&at, r->a.path, r->path_len, O_RDONLY, &fd, &st);
    root_dispose(&at);
    if (rc != 0)
        return rc;
    struct rpc2_se_desc d = {
        .type = RPC2_SE_SFTP,
        .direction = RPC2_SE_FETCH,
        .seek_offset = (int64_t)r->a.offset,
        .quota = r->a.length,
        .file_kind = RPC2_SE_FILE_FD,
        .file.fd.fd = fd,
    };
    info_of(&st, result);
    rc = transfer(req, &d, bytes);
    close(fd);
    return rc;
}

/* ---- STAT ------------------------------------------------------------------ */

/* lstat: a symlink is described, not followed (its directory may be). */
static int do_stat(struct serve *s, rpc2_request *req, void *args, void *result, uint64_t *bytes)
{
    const struct path_req *r = args;
    struct stat st;

    (void)bytes;
    struct root at;
    int rc = caller_root(s, req, ACCESS_READ | ACCESS_LIST, &at);
    if (rc != 0)
        return rc;
    rc = root_stat(&at, r->a.path, r->path_len, &st);
    root_dispose(&at);
    if (rc == 0)
        info_of(&st, result);
    return rc;
}

/* ---- LIST ------------------------------------------------------------------ */

struct names {
    char **v;
    size_t n, cap;
};

static void names_free(struct names *ns)
{
    for (size_t i = 0; i < ns->n; i++)
        free(ns->v[i]);
    free(ns->v);
}

static int names_add(struct names *ns, const char *name)
{
    if (ns->n == ns->cap) {
        size_t cap = ns->cap ? ns->cap * 2 : 64;
        char **v = realloc(ns->v, cap * sizeof *v);
        if (!v)
            return RPC2_ENOMEM;
        ns->v = v;
        ns->cap = cap;
    }
    ns->v[ns->n] = strdup(name);
    return ns->v[ns->n++] ? 0 : RPC2_ENOMEM;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every name but "." and "..", sorted bytewise (the same in every locale). */
static int read_names(DIR *d, struct names *ns)
{
    struct dirent *e;
    int rc = 0;

    errno = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        rc = ns->n < LIST_CAP ? names_add(ns, e->d_name) : RCAT_IO;
        errno = 0;
    }
    if (rc == 0 && errno != 0)
        rc = root_status_of_errno(errno);
    if (rc == 0)
        qsort(ns->v, ns->n, sizeof *ns->v, by_name);
    return rc;
}

/* Entries [start, start + RCAT_LIST_MAX). One removed since readdir is
 * left out: the next page, read afresh, no longer counts it either. */
static int fill_page(int dirfd, struct names *ns, u_int start, list_result *out)
{
    size_t end = ns->n - start < RCAT_LIST_MAX ? ns->n : (size_t)start + RCAT_LIST_MAX;
    struct stat st;

    out->entries.entries_val = calloc(end - start ? end - start : 1, sizeof(list_entry));
    if (!out->entries.entries_val)
        return RPC2_ENOMEM;
    for (size_t i = start; i < end; i++) {
        if (fstatat(dirfd, ns->v[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT)
                continue;
            return root_status_of_errno(errno);
        }
        list_entry *le = &out->entries.entries_val[out->entries.entries_len++];
        le->name = ns->v[i]; /* handed over: the library frees the result */
        ns->v[i] = NULL;
        info_of(&st, &le->info);
    }
    out->more = end < ns->n;
    return 0;
}

static int do_list(struct serve *s, rpc2_request *req, void *args, void *result, uint64_t *bytes)
{
    const struct list_req *r = args;
    struct names ns = {0};
    int fd;

    (void)bytes;
    struct root at;
    int rc = caller_root(s, req, ACCESS_LIST, &at);
    if (rc != 0)
        return rc;
    rc = root_open_dir(&at, r->a.path, r->path_len, &fd);
    root_dispose(&at);
    if (rc != 0)
        return rc;
    DIR *d = fdopendir(fd);
    if (!d) {
        rc = root_status_of_errno(errno);
        close(fd);
        return rc;
    }
    rc = read_names(d, &ns);
    if (rc == 0 && r->a.start < ns.n)
        rc = fill_page(dirfd(d), &ns, r->a.start, result);
    names_free(&ns);
    closedir(d);
    return rc;
}

/* ---- STORE ----------------------------------------------------------------- */

/* The file is in place (with its mtime, set before the rename): what the
 * reply says. */
static int finish_store(int dirfd, const char *name, file_info *out)
{
    struct stat st;

    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return root_status_of_errno(errno);
    info_of(&st, out);
    return 0;
}

/* The sink writes a temporary beside the name and renames it into place
 * once complete and flushed. Its path goes through the directory resolved
 * beneath the root (/proc/self/fd/N/NAME), so both happen in that
 * directory whatever is renamed meanwhile. */
static int do_store(struct serve *s, rpc2_request *req, void *args, void *result, uint64_t *bytes)
{
    const struct store_req *r = args;
    const store_args *a = &r->a;
    char name[NAME_MAX + 1], path[32 + NAME_MAX];
    int dirfd, exists;

    struct root at;
    int rc = caller_root(s, req, ACCESS_WRITE, &at);
    if (rc != 0)
        return rc;
    if (a->keep_mtime && a->mtime_nsec >= 1000000000u)
        rc = RPC2_EINVAL;
    else
        rc = root_open_store(&at, a->path, r->path_len, &dirfd, name, &exists);
    root_dispose(&at);
    if (rc != 0)
        return rc;
    if (exists && a->no_clobber)
        rc = RCAT_EXISTS;
    if (rc == 0) {
        snprintf(path, sizeof path, "/proc/self/fd/%d/%s", dirfd, name);
        struct rpc2_se_desc d = {
            .type = RPC2_SE_SFTP,
            .direction = RPC2_SE_STORE,
            .quota = -1,
            .file_kind = RPC2_SE_FILE_NAME,
            .file.name = {.path = path,
                          .mode = a->mode & MODE_BITS,
                          .atomic = 1,
                          .no_clobber = a->no_clobber,
                          .fsync = 1,
                          .attrs = a->keep_mtime ? RPC2_SE_ATTR_MTIME : 0,
                          .mtime_sec = a->mtime_sec,
                          .mtime_nsec = a->mtime_nsec},
        };
        rc = transfer(req, &d, bytes);
    }
    if (rc == 0)
        rc = finish_store(dirfd, name, result);
    close(dirfd);
    return rc;
}

/* ---- the handlers ---------------------------------------------------------- */

typedef int (*proc_fn)(struct serve *s, rpc2_request *req, void *args, void *result,
                       uint64_t *bytes);

/* running goes up before stopping is read, and serve_stop sets stopping
 * before it reads running: a call either sees the stop or is counted. */
static int run(struct serve *s, rpc2_request *req, const char *proc, const char *path, proc_fn fn,
               void *args, void *result)
{
    struct timespec t0;
    uint64_t bytes = 0;
    int status;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    atomic_fetch_add(&s->running, 1);
    metrics_call_begin(s->metrics, proc);
    status = atomic_load(&s->stopping) ? RPC2_ECLOSED : fn(s, req, args, result, &bytes);
    log_call(s, req, proc, path, bytes, &t0, status);
    metrics_call_end(s->metrics, &(struct metrics_call){proc, status_name(status),
                                                         rpc2_request_identity(req), bytes,
                                                         ms_since(&t0) / 1e3});
    atomic_fetch_sub(&s->running, 1);
    return status;
}

static int h_fetch(rpc2_request *req, void *args, void *result, void *arg)
{
    return run(arg, req, "FETCH", ((struct fetch_req *)args)->a.path, do_fetch, args, result);
}

static int h_stat(rpc2_request *req, void *args, void *result, void *arg)
{
    return run(arg, req, "STAT", ((struct path_req *)args)->a.path, do_stat, args, result);
}

static int h_list(rpc2_request *req, void *args, void *result, void *arg)
{
    return run(arg, req, "LIST", ((struct list_req *)args)->a.path, do_list, args, result);
}

static int h_store(rpc2_request *req, void *args, void *result, void *arg)
{
    return run(arg, req, "STORE", ((struct store_req *)args)->a.path, do_store, args, result);
}

#define PROC(num, req, res, fn)                                                                    \
    {                                                                                              \
        .proc = num, .decode_args = (xdrproc_t)xdr_##req, .args_size = sizeof(struct req),         \
        .encode_result = (xdrproc_t)xdr_##res, .result_size = sizeof(res), .blocking_handler = fn  \
    }

static const struct rpc2_proc procs[] = {
    PROC(RCAT_FETCH, fetch_req, file_info, h_fetch),
    PROC(RCAT_STAT, path_req, file_info, h_stat),
    PROC(RCAT_LIST, list_req, list_result, h_list),
    PROC(RCAT_STORE, store_req, file_info, h_store),
};

/* ---- the API --------------------------------------------------------------- */

/* Files are opened, and the store path goes, through /proc/self/fd: better
 * to find out now than on the first call that /proc is missing (a bare
 * chroot or container). */
static int proc_fd_works(int fd)
{
    char path[64];
    struct stat a, b;

    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int pfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (pfd < 0)
        return -errno;
    int same =
        fstat(pfd, &a) == 0 && fstat(fd, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
    close(pfd);
    return same ? 0 : -ENOENT;
}

int serve_new(const struct serve_config *cfg, struct serve **out, const char **why)
{
    struct serve *s = calloc(1, sizeof *s);
    int rc;

    *out = NULL;
    if (!s)
        return -ENOMEM;
    rc = root_init(&s->root, cfg->root);
    if (rc != 0) {
        *why = "cannot open the root directory";
        free(s);
        return rc;
    }
    if ((rc = proc_fd_works(s->root.fd)) != 0) {
        *why = "rcatd needs /proc/self/fd (is /proc mounted?)";
        serve_free(s);
        return rc;
    }
    pthread_mutex_init(&s->acl_lock, NULL);
    s->defaults = ACCESS_READ | ACCESS_LIST | (cfg->writable ? ACCESS_WRITE : 0);
    s->min_security = cfg->min_security;
    s->log = cfg->log;
    s->log_arg = cfg->log_arg;
    s->metrics = cfg->metrics;
    *out = s;
    return 0;
}

int serve_export(struct serve *s, rpc2_ctx *ctx)
{
    return rpc2_export(ctx, RCAT_SUBSYS, procs, sizeof procs / sizeof procs[0], s);
}

unsigned serve_defaults(const struct serve *s)
{
    return s->defaults;
}

int serve_set_access(struct serve *s, struct access *acl, struct access **old, char *why,
                     size_t whylen)
{
    for (size_t i = 0; acl && i < acl->n; i++) {
        struct root sub;
        int rc = root_enter(&s->root, acl->e[i].root, &sub);
        if (rc != 0) {
            snprintf(why, whylen,
                     "line %zu: %s's root \"%s\" is not a directory beneath the "
                     "served one (%s)",
                     acl->e[i].line, acl->e[i].identity, acl->e[i].root, status_name(rc));
            return -1;
        }
        root_dispose(&sub);
    }
    pthread_mutex_lock(&s->acl_lock);
    *old = s->acl;
    s->acl = acl;
    pthread_mutex_unlock(&s->acl_lock);
    return 0;
}

int serve_hide(struct serve *s, const char *const *paths, size_t n)
{
    return root_hide(&s->root, paths, n);
}

void serve_stop(struct serve *s)
{
    atomic_store(&s->stopping, 1);
}

unsigned serve_running(struct serve *s)
{
    return atomic_load(&s->running);
}

void serve_free(struct serve *s)
{
    if (!s)
        return;
    root_dispose(&s->root);
    if (s->acl) {
        access_dispose(s->acl);
        free(s->acl);
    }
    free(s);
}
