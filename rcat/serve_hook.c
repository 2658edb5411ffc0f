/*
 * serve_hook.c - a STORE's post-store command, from the rule it matches to
 * the suspended call (serve_hook.h). The command is told the file's path as
 * the kernel resolves the descriptor the store wrote through, so it names
 * the file that was written, wherever the identity's own root is.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "level.h"
#include "rcat_proto.h"
#include "serve_hook.h"

extern char **environ;

int serve_hooks_init(struct serve_hooks *h, const char *root, struct hookrun *runner)
{
    *h = (struct serve_hooks){.runner = runner};
    if (!(h->root_abs = realpath(root, NULL)))
        return -errno;
    h->root_len = strlen(h->root_abs);
    pthread_mutex_init(&h->lock, NULL);
    h->lock_made = 1;
    return 0;
}

void serve_hooks_dispose(struct serve_hooks *h)
{
    if (h->rules) {
        posthook_dispose(h->rules);
        free(h->rules);
    }
    if (h->lock_made)
        pthread_mutex_destroy(&h->lock);
    free(h->root_abs);
    *h = (struct serve_hooks){0};
}

void serve_hooks_set(struct serve_hooks *h, struct posthook_rules *rules,
                     struct posthook_rules **old)
{
    pthread_mutex_lock(&h->lock);
    *old = h->rules;
    h->rules = rules;
    pthread_mutex_unlock(&h->lock);
}

/* The stored file's absolute path, from its descriptor. */
static int path_of(const struct serve_hook_call *hc, char *out, size_t cap)
{
    char link[64];

    snprintf(link, sizeof link, "/proc/self/fd/%d", hc->fd);
    ssize_t n = readlink(link, out, cap - 1);
    if (n < 0 || (size_t)n >= cap - 1)
        return -1;
    out[n] = '\0';
    if (!hc->name)
        return 0;
    size_t used = (size_t)n;
    int w =
        snprintf(out + used, cap - used, "%s%s", used && out[used - 1] == '/' ? "" : "/", hc->name);
    return w < 0 || (size_t)w >= cap - used ? -1 : 0;
}

/* Beneath the root, the path relative to it; elsewhere (moved meanwhile)
 * the absolute one. */
static const char *relative(const struct serve_hooks *h, const char *abs)
{
    if (strncmp(abs, h->root_abs, h->root_len) != 0)
        return abs;
    if (h->root_len == 1) /* the root is "/" */
        return abs + 1;
    return abs[h->root_len] == '/' ? abs + h->root_len + 1 : abs;
}

/* TYPE:HEX of the sum the client named, else of the transfer's own
 * XXH3-128; "" when the store computed neither. */
static void checksum_text(const struct rpc2_se_desc *d, char *out, size_t cap)
{
    const unsigned char *sum = d->sum_len ? d->sum : d->checksum;
    unsigned len = d->sum_len ? d->sum_len : d->checksum_valid ? 16 : 0;
    const char *name = d->sum_len ? rpc2_se_sum_name(d->sum_type) : "xxh128";
    size_t o = 0;

    out[0] = '\0';
    if (!len || !name)
        return;
    o = (size_t)snprintf(out, cap, "%s:", name);
    for (unsigned i = 0; i < len && o + 3 <= cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%02x", sum[i]);
}

/* The job for the file, if a rule names a command for it: 0 (*job NULL:
 * none), or an rcat status. */
static int job_for(struct serve_hooks *h, const struct serve_hook_call *hc,
                   struct posthook_job **job)
{
    char abs[PATH_MAX + NAME_MAX + 2], sum[16 + 2 * RPC2_SE_SUM_MAX];
    int rc = 0;

    *job = NULL;
    pthread_mutex_lock(&h->lock);
    int any = h->rules && h->rules->n > 0;
    pthread_mutex_unlock(&h->lock);
    if (!any)
        return 0;
    if (path_of(hc, abs, sizeof abs) != 0)
        return RCAT_IO;
    checksum_text(hc->desc, sum, sizeof sum);
    struct posthook_file f = {.abs_path = abs,
                              .rel_path = relative(h, abs),
                              .identity = rpc2_request_identity(hc->req),
                              .peer = rpc2_request_peer(hc->req),
                              .security = level_name(rpc2_request_security(hc->req)),
                              .size = hc->size,
                              .checksum = sum};
    pthread_mutex_lock(&h->lock);
    const struct posthook_rule *rule = posthook_match(h->rules, f.rel_path, f.identity);
    if (rule && posthook_job_new(rule, &f, environ, job) != 0)
        rc = RPC2_ENOMEM;
    pthread_mutex_unlock(&h->lock);
    return rc;
}

int serve_hook_start(struct serve_hooks *h, const struct serve_hook_call *hc, rpc2_se_then_fn then,
                     hookrun_done_fn done, void *arg, struct hookrun_job **handle)
{
    struct posthook_job *job;

    if (!h->runner)
        return 0;
    int rc = job_for(h, hc, &job);
    if (rc != 0 || !job)
        return rc;
    struct hookrun_job *j = hookrun_prepare(job, hc->shown);
    if (!j)
        return RPC2_ENOMEM;
    rc = rpc2_request_suspend(hc->req, then, arg);
    if (rc != RPC2_CONTINUED) {
        hookrun_discard(j);
        return rc;
    }
    hookrun_launch(h->runner, j, done, arg, handle);
    return RPC2_CONTINUED;
}

void serve_hook_cancel(struct serve_hooks *h, struct hookrun_job **handle)
{
    if (h->runner)
        hookrun_cancel(h->runner, handle);
}
