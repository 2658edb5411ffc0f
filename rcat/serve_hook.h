/*
 * serve_hook.h - where serve.c meets the post-store commands: which rule a
 * stored file matches (posthook.h), with what it is given, and the call
 * suspended (rpc2_request_suspend) while hookrun.h runs the command. The
 * rules are swapped on SIGHUP while calls run.
 */
#ifndef RCAT_SERVE_HOOK_H
#define RCAT_SERVE_HOOK_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <rpc2/rpc2.h>
#include <rpc2/se.h>

#include "hookrun.h"
#include "posthook.h"

struct serve_hooks {
    pthread_mutex_t lock;
    int lock_made;
    struct posthook_rules *rules; /* NULL: no hooks file */
    struct hookrun *runner;       /* NULL: hooks are off */
    char *root_abs;               /* the served root's real path */
    size_t root_len;
};

/* A stored file: fd is its directory and name its name, or fd the file
 * itself when name is NULL. shown: its path as the log shows it. */
struct serve_hook_call {
    rpc2_request *req;
    int fd;
    const char *name;
    uint64_t size;
    const struct rpc2_se_desc *desc; /* the store's: its checksums */
    const char *shown;
};

/* 0 or -errno. runner NULL: no command ever runs. */
int serve_hooks_init(struct serve_hooks *h, const char *root, struct hookrun *runner);
void serve_hooks_dispose(struct serve_hooks *h);
/* From now on stored files are judged by rules (owned: posthook_dispose and
 * free), *old the ones replaced, the caller's now. */
void serve_hooks_set(struct serve_hooks *h, struct posthook_rules *rules,
                     struct posthook_rules **old);

/* On the worker finishing a STORE: 0 when no command is configured for
 * the file; RPC2_CONTINUED when one was started, the call suspended until
 * done(ok, arg) (on the loop: it resumes the request) and then then (on a
 * worker: the call's end); else the reply's status (RCAT_IO, no memory). */
int serve_hook_start(struct serve_hooks *h, const struct serve_hook_call *hc, rpc2_se_then_fn then,
                     hookrun_done_fn done, void *arg, struct hookrun_job **handle);
/* The call ends without waiting for its command (the context went). */
void serve_hook_cancel(struct serve_hooks *h, struct hookrun_job **handle);

#endif
