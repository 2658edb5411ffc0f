/*
 * reload.h - rcatd's two files about its clients, --keys (their secrets)
 * and --access (what each may do): read at start and again on SIGHUP,
 * after which the connections whose identity lost its key or a right are
 * ended. Revoking a client is deleting its line and sending SIGHUP. A file
 * that no longer reads keeps the old table: a typo must neither lock every
 * client out nor let anyone in.
 */
#ifndef RCAT_RELOAD_H
#define RCAT_RELOAD_H

#include <stddef.h>

#include <rpc2/rpc2.h>

#include "logfile.h"
#include "serve.h"

/* Embedded in rcatd's state; the paths, serve and log are set by it. */
struct reload {
    const char *keys_path;   /* NULL: no keys; binds above level none are refused */
    const char *access_path; /* NULL: every client gets serve's defaults */
    const char *hooks_path;  /* NULL: no post-store commands (posthook.h) */
    struct serve *serve;     /* judges calls by the access table */
    struct logfile *log;
    rpc2_keys *keys; /* replaced on SIGHUP; read by the library on the loop thread only */
};

/* At start, each 0 or -1 with the reason on standard error: the keys before
 * the context is made (reload_secret_for), the access table once serve is. */
int reload_keys_start(struct reload *r);
int reload_access_start(struct reload *r);

/* params.secret_for over r->keys, secret_arg being r. The library asks on
 * the loop thread, where reload_now swaps the keys too, so the table never
 * changes under a lookup. */
int reload_secret_for(const char *identity, size_t len, unsigned char secret[RPC2_SECRET_BYTES],
                      void *arg);

/* SIGHUP, on the loop thread: both files read again, and the connections
 * of ctx that lost their key or a right ended. */
void reload_now(struct reload *r, rpc2_ctx *ctx);

/* After the context is freed: it may look a secret up until then. */
void reload_dispose(struct reload *r);

#endif
