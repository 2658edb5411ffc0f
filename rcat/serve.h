/*
 * serve.h - the four procedures of rcat_proto.x (FETCH, STAT, LIST, STORE)
 * over a directory, exported on an rpc2 context. rcatd.c owns the process
 * (signals, stopping; the options are rcatd_options.c's, the log file
 * logfile.c's); this owns what a call may do.
 */
#ifndef RCAT_SERVE_H
#define RCAT_SERVE_H

#include <stdint.h>
#include <rpc2/rpc2.h>

/* One line per call, e.g.
 * "127.0.0.1:40312 alice level>=auth FETCH a/b.txt 1048576 B 12.3 ms ok",
 * without timestamp or final newline; a batch's files come in one call,
 * their lines joined by '\n' (no line holds one otherwise: paths are
 * escaped). Called from worker threads, concurrently. */
typedef void (*serve_log_fn)(const char *line, void *arg);

struct serve_config {
    const char *root;                /* the directory served */
    int writable;                    /* STORE allowed to callers the access file does not cover */
    enum rpc2_security min_security; /* the lowest level any connection can have */
    serve_log_fn log;
    void *log_arg;
    struct metrics *metrics; /* counts every call (metrics.h); NULL: none */
    uint64_t restart_interval; /* bytes between a resumable store's restart points; 0: default */
    struct hookrun *hooks_runner; /* runs post-store commands (hookrun.h); NULL: none run */
    uint64_t split_idle_us; /* a split temporary no call held this long is removed; 0: 10 min */
};

struct serve;

/* Opens the root. Returns 0, or -errno with *why saying what failed. */
int serve_new(const struct serve_config *cfg, struct serve **out, const char **why);
/* Exports RCAT_SUBSYS on ctx, whose params.workers must be > 0: every
 * procedure is a blocking handler (FETCH and STORE hold a worker only for
 * their filesystem work, not for their transfer). Returns 0 or an rpc2
 * error. */
int serve_export(struct serve *s, rpc2_ctx *ctx);
/* serve_export, with only the procedures numbered up to last_proc: what a
 * server of the version that ended with it answered (tests/oldsrv.c, to
 * show that rcat meets an older rcatd as it should). */
int serve_export_upto(struct serve *s, rpc2_ctx *ctx, uint32_t last_proc);
struct access;
/* From now on calls are judged by acl (access.h; NULL: everyone gets the
 * defaults), which serve owns (malloc'd; access_dispose and free) once every
 * identity's root was found beneath the served one; otherwise -1 and why
 * names the line. *old is the table replaced, the caller's now: no call
 * holds it. Safe while calls run. */
int serve_set_access(struct serve *s, struct access *acl, struct access **old, char *why,
                     size_t whylen);
/* What callers the access file does not cover may do (ACCESS_*). */
unsigned serve_defaults(const struct serve *s);
/* Files no call may open, write or describe, replacing the previous ones
 * (the daemon's key and access files): root_hide. 0 or -errno. */
int serve_hide(struct serve *s, const char *const *paths, size_t n);
/* Calls that start from now on are refused (RPC2_ESHUTDOWN); the loop must
 * keep running until serve_running() is 0, because the running ones need it
 * to finish their transfers (rpc2_ctx_abort_transfers ends them at once).
 * Safe on any thread. */
void serve_stop(struct serve *s);
unsigned serve_running(struct serve *s);
/* Directory entries LIST has read so far: paging a directory to its end
 * reads it once, not once per page. */
uint64_t serve_list_names_read(struct serve *s);
/* The post-store commands' rules (serve_hook.h), for rcatd --hooks. */
struct serve_hooks *serve_hooks_of(struct serve *s);
/* After rpc2_ctx_free of the context it was exported on. NULL is fine. */
void serve_free(struct serve *s);

#endif
