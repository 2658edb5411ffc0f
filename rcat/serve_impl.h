/*
 * serve_impl.h - what serve.c (the transfers, the call's life, the log
 * line) shares with serve_ops.c (the remote operations: mkdir, rename,
 * delete, glob, sum, symlinks, attributes): the server's state, one call's
 * state, and the steps every handler is made of. Only serve*.c include it.
 */
#ifndef RCAT_SERVE_IMPL_H
#define RCAT_SERVE_IMPL_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <rpc2/rpc2.h>
#include <rpc2/se.h>

#include "rcat_proto.h"
#include "root.h"
#include "serve.h"
#include "serve_hook.h"

#define LOG_PATH_MAX 512 /* bytes of an escaped path shown in the log */
#define SERVE_BATCH_SPARES 16 /* FETCH_BATCH buffers kept for reuse */
#define MODE_BITS 0777   /* no setuid, setgid or sticky file from the network */
/* An identity is at most 255 bytes; escaped, each may take 4. */
#define IDENTITY_SHOWN_MAX (255 * 4 + 16)

struct serve {
    struct root root;
    pthread_mutex_t acl_lock;
    struct access *acl; /* NULL: every caller gets the defaults */
    unsigned defaults;  /* ACCESS_*: what anonymous callers may do */
    struct listings *listings;
    enum rpc2_security min_security;
    serve_log_fn log;
    void *log_arg;
    struct metrics *metrics;
    uint64_t restart_interval;   /* a resumable store's; 0: the library's default */
    struct serve_hooks hooks;    /* post-store commands (serve_hook.c) */
    struct serve_splits *splits; /* the temporaries of stores in ranges (serve_split.c) */
    atomic_uint running;         /* calls from their handler's start to their reply */
    atomic_int stopping;
    /* FETCH_BATCH's buffers, kept for the next calls (serve_batch.c): one
     * malloc and free per call moved the heap's top each time, and
     * trimming it cost every thread's TLB (a tenth of rcatd's time) */
    pthread_mutex_t batch_lock;
    struct serve_batch_spare {
        void *buf;
        size_t cap;
    } batch_spares[SERVE_BATCH_SPARES];
    unsigned n_batch_spares;
};

/* One call from its handler's start to its reply, which may come from a
 * continuation on another worker once its transfer is over. */
struct call {
    struct serve *s;
    rpc2_request *req;
    const char *proc, *path;
    const char *path2_key; /* RENAME's "to", SYMLINK's "target": path2 ends the log line */
    const char *path2;
    const char *count_key; /* DELETE's "removed", GLOB's "matches": count ends it */
    uint64_t count;
    struct timespec t0;
    uint64_t bytes;          /* moved; for the remote operations, what their line counts */
    int fd;                  /* FETCH: the file; STORE: its directory; -1: none */
    struct stat st;          /* FETCH: the file's fstat once open (desc.file.fd.st) */
    char name[NAME_MAX + 1]; /* STORE: the name in that directory */
    char sink_path[32 + NAME_MAX];
    struct rpc2_se_desc desc; /* the transfer's, valid until it is over */
    int client_failed;        /* the client's end ended the transfer by its own error */
    uint32_t rtt_us;          /* the transfer's last smoothed round trip; 0: none */
    off_t append_from;        /* STORE with RCAT_STORE_APPEND: the file's size before; else -1 */
    struct hookrun_job *hook; /* its post-store command, while it runs */
    int split_held;           /* it holds a split temporary (serve_split_hold): which */
    dev_t split_dev;
    ino_t split_ino;
    void *batch_buf; /* FETCH_BATCH: the files' bytes, one after the other (serve_batch.c) */
    size_t batch_cap;
    int logged; /* its lines are written already (FETCH_BATCH: one per file) */
    void *args, *result; /* an async handler's, for after (serve_transfer_now) */
    /* the procedure's rest after its transfer: the reply's status */
    int (*after)(struct call *c, int status, void *args, void *result);
};

/* ---- arguments: the wire's path lengths kept beside the decoded struct ---- */

/* XDR strings may carry a NUL that C strings then stop at: each argument
 * type is decoded with the length the wire gave its path (the first field
 * of every one), so root_check can compare. */
static inline bool_t serve_peek_len(XDR *x, u_int *len)
{
    u_int pos = xdr_getpos(x);

    return xdr_u_int(x, len) && xdr_setpos(x, pos);
}

#define CHECKED_DECODER(req, args)                                                                 \
    static bool_t xdr_##req(XDR *x, struct req *r)                                                 \
    {                                                                                              \
        if (x->x_op == XDR_DECODE && !serve_peek_len(x, &r->path_len))                             \
            return FALSE;                                                                          \
        return xdr_##args(x, &r->a);                                                               \
    }

/* RENAME's and SPLIT_END's: two names on the wire, both lengths kept
 * (serve_ops.c). */
struct serve_rename_req {
    rename_args a;
    u_int path_len, to_len;
};
bool_t xdr_serve_rename_req(XDR *x, struct serve_rename_req *r);

/* quick: never waits on a client (rpc2_proc.quick) */
#define PROC(num, req, res, fn, is_quick)                                                          \
    {                                                                                              \
        .proc = num, .decode_args = (xdrproc_t)xdr_##req, .args_size = sizeof(struct req),         \
        .encode_result = (xdrproc_t)xdr_##res, .result_size = sizeof(res), .blocking_handler = fn, \
        .quick = is_quick                                                                          \
    }

/* serve_log.c: a status by name (the rcat_proto.x codes, rpc2's errors);
 * a client's path made safe for a log line; milliseconds since t0; the
 * call's one line, through the configured log. Several calls' lines (a
 * batch's files) are gathered with serve_log_add and go to the log at
 * once, joined by newlines, with serve_log_flush: one write, not one each. */
#define SERVE_LOG_LINE_MAX (2 * LOG_PATH_MAX + 1400)
const char *serve_status_name(int status);
void serve_escape_path(const char *in, char *out, size_t cap);
double serve_ms_since(const struct timespec *t0);
void serve_log_call(struct serve *s, const struct call *c, int status);
struct serve_log_lines {
    char *buf;
    size_t len, cap;
};
void serve_log_add(struct serve *s, struct serve_log_lines *l, const struct call *c, int status);
void serve_log_flush(struct serve *s, struct serve_log_lines *l);
void serve_log_lines_free(struct serve_log_lines *l);

typedef int (*serve_proc_fn)(struct serve *s, rpc2_request *req, void *args, void *result,
                             struct call *c);

/* ---- serve.c ---- */

/* Runs fn as the procedure proc on path: counted, logged, its files
 * closed, unless the server is stopping. */
int serve_run(struct serve *s, rpc2_request *req, const char *proc, const char *path,
              serve_proc_fn fn, void *args, void *result);
/* The caller's own root, if it may do any of need (ACCESS_*); out is the
 * caller's to dispose of. 0, an rcat_status or an rpc2 error. */
int serve_caller_root(struct serve *s, rpc2_request *req, unsigned need, struct root *out);
void serve_info_of(const struct stat *st, file_info *out);
/* Runs the side effect c->desc describes without the worker; after (may be
 * NULL) finishes the call once it is over, on the loop when on_loop (it
 * must then wait on nothing), else on a worker. RPC2_CONTINUED or an error. */
int serve_transfer(struct call *c, int (*after)(struct call *, int, void *, void *), int on_loop);
/* The call's state, counted as running (the handler's start); serve_run
 * makes it for a blocking handler, an async one makes its own. */
struct call *serve_call_begin(struct serve *s, rpc2_request *req, const char *proc,
                              const char *path);
/* Whether the caller may read the whole served root (its grant's root is
 * the served one): the one case where files are opened on the loop
 * (root_open_cached on s->root). */
int serve_reads_whole_root(struct serve *s, rpc2_request *req);
/* From an async handler on the loop: the call goes to a worker (its
 * blocking handler), or is answered with why it cannot. */
void serve_to_worker(rpc2_request *req);
/* From an async handler on the loop: runs the side effect c->desc
 * describes at once, then after (may be NULL) and the reply, on the loop. */
void serve_transfer_now(struct call *c, int (*after)(struct call *, int, void *, void *));
/* A file is in place (the directory c->fd, name; or the file c->fd when
 * name is NULL): its post-store command, if one is configured for it, runs
 * before the reply (RPC2_CONTINUED); else 0. On a worker. */
int serve_after_store(struct call *c, const char *name, const file_info *info);

/* ---- serve_ops.c ---- */

#define SERVE_OPS_N 9
extern const struct rpc2_proc serve_ops_procs[SERVE_OPS_N];

/* ---- serve_range.c ---- */

extern const struct rpc2_proc serve_range_proc; /* STORE_RANGE */

/* ---- serve_batch.c ---- */

extern const struct rpc2_proc serve_batch_proc; /* FETCH_BATCH */
/* The call's buffer (c->batch_buf) kept for another call, or freed. */
void serve_batch_release(struct serve *s, struct call *c);
/* Frees the buffers kept, at the end. */
void serve_batch_spares_free(struct serve *s);

/* ---- serve_split.c ---- */

#define SERVE_SPLIT_N 2                                 /* SPLIT_BEGIN, SPLIT_END */
#define SERVE_SPLIT_IDLE_DEFAULT_US (600ull * 1000000u) /* rcatd --split-idle */
extern const struct rpc2_proc serve_split_procs[SERVE_SPLIT_N];
struct serve_splits;
/* The table of split temporaries and its sweeper (idle_us 0: the default).
 * 0 or -errno. */
int serve_splits_new(uint64_t idle_us, serve_log_fn log, void *log_arg, struct serve_splits **out);
/* After the last call: removes every temporary left. NULL is fine. */
void serve_splits_free(struct serve_splits *t);
/* The call works on st's file: if it is a split temporary, it is held (never
 * removed) until serve_split_release, which call_end does; writes: the
 * call changes it (a SUM noted before no longer holds). */
void serve_split_hold(struct serve *s, struct call *c, const struct stat *st, int writes);
void serve_split_release(struct serve *s, struct call *c);
/* A SUM of the whole of the temporary c holds: SPLIT_END's checksum. */
void serve_split_note_sum(struct serve *s, const struct call *c, int type, const unsigned char *sum,
                          unsigned len, uint64_t bytes);

#endif
