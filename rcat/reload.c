/*
 * reload.c - rcatd's key and access files, read at start and on SIGHUP.
 * A reload swaps the tables first and judges the live connections after,
 * against both the old table and the new: a connection ends only for what
 * its own identity lost, so reloading an unchanged file ends none.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "level.h"
#include "posthook.h"
#include "serve_hook.h"
#include "reload.h"

int reload_secret_for(const char *identity, size_t len, unsigned char secret[RPC2_SECRET_BYTES],
                      void *arg)
{
    return rpc2_keys_secret_for(identity, len, secret, ((struct reload *)arg)->keys);
}

/* ---- keys ------------------------------------------------------------------ */

/* Loads r->keys_path; 0, or the library's error with err saying why (it
 * names the file and line, and never quotes a secret). */
static int keys_load(const struct reload *r, rpc2_keys **out, char *err, size_t errlen)
{
    int rc;

    err[0] = '\0';
    rc = rpc2_keys_load(r->keys_path, out, err, errlen);
    if (rc != 0 && !err[0])
        snprintf(err, errlen, "%s: %s", r->keys_path, rpc2_strerror(rc));
    return rc;
}

int reload_keys_start(struct reload *r)
{
    char err[512];

    if (!r->keys_path)
        return 0;
    if (keys_load(r, &r->keys, err, sizeof err) != 0) {
        fprintf(stderr, "rcatd: %s\n", err);
        return -1;
    }
    return 0;
}

/* The old keys are the caller's to free: they judge which live connections
 * were bound with a secret that is gone. */
static void keys_reload(struct reload *r)
{
    char err[512];
    rpc2_keys *keys;

    if (!r->keys_path)
        return;
    if (keys_load(r, &keys, err, sizeof err) != 0) {
        logfile_printf(r->log, "rcatd: keys not reloaded, the old ones stay: %s", err);
        return;
    }
    r->keys = keys;
    logfile_printf(r->log, "rcatd: keys reloaded from %s", r->keys_path);
}

/* ---- access ---------------------------------------------------------------- */

static void access_free(struct access *a)
{
    if (a)
        access_dispose(a);
    free(a);
}

/* Loads r->access_path and hands it to serve; 0, or -1 with err saying
 * why (the old table, if any, then stays). *old is the table replaced (the
 * caller's to free), *now the one serve judges by from now on. */
static int access_install(struct reload *r, struct access **old, struct access **now, char *err,
                          size_t errlen)
{
    struct access *a = malloc(sizeof *a);
    char why[512];

    if (!a) {
        snprintf(err, errlen, "%s: out of memory", r->access_path);
        return -1;
    }
    if (access_load(a, r->access_path, err, errlen) != 0) {
        free(a);
        return -1;
    }
    if (serve_set_access(r->serve, a, old, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: %s", r->access_path, why);
        access_free(a);
        return -1;
    }
    *now = a;
    return 0;
}

/* ---- post-store commands ----------------------------------------------------- */

/* Loads r->hooks_path and hands it to serve; 0, or -1 with err saying why
 * (the old rules, if any, then stay). */
static int hooks_install(struct reload *r, char *err, size_t errlen)
{
    struct posthook_rules *rules = malloc(sizeof *rules), *old = NULL;

    if (!rules) {
        snprintf(err, errlen, "%s: out of memory", r->hooks_path);
        return -1;
    }
    if (posthook_load(rules, r->hooks_path, err, errlen) != 0) {
        free(rules);
        return -1;
    }
    serve_hooks_set(serve_hooks_of(r->serve), rules, &old);
    if (old)
        posthook_dispose(old);
    free(old);
    return 0;
}

/* The daemon's own files are hidden from every client by device and inode
 * (root.h); a reload may have found them replaced. */
static int hide_own_files(struct reload *r)
{
    const char *paths[3];
    size_t n = 0;

    if (r->keys_path)
        paths[n++] = r->keys_path;
    if (r->access_path)
        paths[n++] = r->access_path;
    if (r->hooks_path)
        paths[n++] = r->hooks_path;
    return serve_hide(r->serve, paths, n);
}

int reload_access_start(struct reload *r)
{
    char err[ACCESS_ERR_MAX];
    struct access *old = NULL, *now = NULL;
    int rc;

    if ((r->access_path && access_install(r, &old, &now, err, sizeof err) != 0) ||
        (r->hooks_path && hooks_install(r, err, sizeof err) != 0)) {
        fprintf(stderr, "rcatd: %s\n", err);
        return -1;
    }
    if ((rc = hide_own_files(r)) != 0) {
        fprintf(stderr, "rcatd: cannot hide the key and access files from clients: %s\n",
                strerror(-rc));
        return -1;
    }
    return 0;
}

/* ---- ending what was revoked ------------------------------------------------ */

/* What a reload changed; equal pointers: that file did not change. */
struct revocation {
    struct reload *r;
    rpc2_keys *old_keys, *new_keys;
    struct access *old_acl, *new_acl;
    unsigned defaults;
};

/* Whether identity's secret is gone or another now: a connection made with
 * the old one must not outlive it. */
static int key_changed(const struct revocation *rv, const char *identity)
{
    unsigned char a[RPC2_SECRET_BYTES], b[RPC2_SECRET_BYTES];
    size_t len = strlen(identity);
    int changed = rpc2_keys_secret_for(identity, len, a, rv->old_keys) != 0 ||
                  rpc2_keys_secret_for(identity, len, b, rv->new_keys) != 0 ||
                  memcmp(a, b, sizeof a) != 0;

    explicit_bzero(a, sizeof a);
    explicit_bzero(b, sizeof b);
    return changed;
}

/* An rpc2_conn_filter: a connection ends when its identity lost its key
 * (above level none) or any right (access.h, access_narrowed). */
static int revoked(const char *identity, enum rpc2_security level, void *arg)
{
    const struct revocation *rv = arg;
    char shown[64];

    if (!(level != RPC2_SEC_NONE && rv->old_keys != rv->new_keys && key_changed(rv, identity)) &&
        !(rv->old_acl != rv->new_acl &&
          access_narrowed(rv->old_acl, rv->new_acl, identity, level, rv->defaults)))
        return 0;
    /* claimed, not proved, at level none: shown with only printable bytes */
    snprintf(shown, sizeof shown, "%s", identity);
    for (char *p = shown; *p; p++)
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
            *p = '?';
    logfile_printf(rv->r->log, "rcatd: revoked: ending a connection of %s (level %s)", shown,
                   level_name(level));
    return 1;
}

void reload_now(struct reload *r, rpc2_ctx *ctx)
{
    struct revocation rv = {.r = r, .old_keys = r->keys, .defaults = serve_defaults(r->serve)};
    char err[ACCESS_ERR_MAX];
    unsigned ended;
    int rc;

    keys_reload(r);
    rv.new_keys = r->keys;
    if (r->access_path && access_install(r, &rv.old_acl, &rv.new_acl, err, sizeof err) != 0)
        logfile_printf(r->log, "rcatd: access not reloaded, the old one stays: %s", err);
    else if (r->access_path)
        logfile_printf(r->log, "rcatd: access reloaded from %s", r->access_path);
    if (r->hooks_path && hooks_install(r, err, sizeof err) != 0)
        logfile_printf(r->log, "rcatd: hooks not reloaded, the old ones stay: %s", err);
    else if (r->hooks_path)
        logfile_printf(r->log, "rcatd: hooks reloaded from %s", r->hooks_path);
    if ((rc = hide_own_files(r)) != 0)
        logfile_printf(r->log, "rcatd: cannot hide the key and access files from clients: %s",
                       strerror(-rc));
    ended = rpc2_ctx_end_connections(ctx, revoked, &rv);
    if (ended)
        logfile_printf(r->log, "rcatd: %u connection%s ended by the reload", ended,
                       ended == 1 ? "" : "s");
    if (rv.old_keys != rv.new_keys)
        rpc2_keys_free(rv.old_keys);
    access_free(rv.old_acl);
}

void reload_dispose(struct reload *r)
{
    rpc2_keys_free(r->keys);
    r->keys = NULL;
}
