/*
 * batch_raw.c - FETCH_BATCH as a client that is not rcat sends it, for
 * test_batch.sh: each path judged as FETCH judges it, its outcome its own
 * (a good file, one missing, a directory, one outside the root, one the
 * server may not read, all in one call: each gets
 * its own status, the good ones their bytes, in order, the lengths adding
 * up to what arrived), and the bounds held (more paths than
 * RCAT_BATCH_FILES, or more path bytes than RCAT_BATCH_PATH_BYTES, are
 * refused whole). An empty batch is answered empty.
 *
 *   batch_raw PORT      (rcatd on 127.0.0.1:PORT serving a root with
 *                        raw/a holding "alpha", raw/b holding "bravo!",
 *                        a directory raw/d and a file raw/secret the
 *                        server may not read)
 *
 * Prints one line per case that went wrong; exits 0 when none did.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <rpc2/rpc2.h>
#include <rpc2/se.h>
#include <rpc2/sftp.h>

#include "rcat_proto.h"
#include "raw_bind.h"

static int failures;

static void expect(const char *what, long got, long want)
{
    if (got != want) {
        printf("FAIL: %s: %ld (%s), want %ld\n", what, got,
               got < 0 ? rpc2_errname((int)got) : "", want);
        failures++;
    }
}

/* One FETCH_BATCH of n paths; the files' bytes into data. */
static int batch(rpc2_conn *c, char **paths, u_int n, fetch_batch_result *res, char *data,
                 size_t cap, size_t *len)
{
    batch_path *p = calloc(n ? n : 1, sizeof *p);
    struct rpc2_se_desc d = RPC2_SE_DESC_INIT(RPC2_SE_FETCH);
    int rc;

    for (u_int i = 0; i < n; i++)
        p[i].path = paths[i];
    fetch_batch_args a = {.paths = {.paths_len = n, .paths_val = p}};
    memset(res, 0, sizeof *res);
    d.file_kind = RPC2_SE_FILE_VM;
    d.file.vm.buf = data;
    d.file.vm.max = cap;
    rc = rpc2_call(c, RCAT_FETCH_BATCH, (xdrproc_t)xdr_fetch_batch_args, &a,
                   (xdrproc_t)xdr_fetch_batch_result, res,
                   &(struct rpc2_call_opts){.se = n ? &d : NULL});
    *len = d.file.vm.len;
    free(p);
    return rc;
}

/* Six paths, six outcomes, two files' bytes in order. */
static void mixed(rpc2_conn *c)
{
    char *paths[] = {"raw/a", "raw/missing", "raw/d", "../outside", "raw/secret", "raw/b"};
    int want[] = {0, RCAT_NOT_FOUND, RCAT_IS_DIR, RCAT_OUTSIDE_ROOT, RCAT_PERMISSION, 0};
    fetch_batch_result res;
    char data[64];
    size_t len = 0;
    int rc = batch(c, paths, 6, &res, data, sizeof data, &len);

    expect("a batch of six outcomes", rc, 0);
    if (rc != 0)
        return;
    expect("entries in the reply", res.entries.entries_len, 6);
    for (u_int i = 0; i < res.entries.entries_len && i < 6; i++) {
        const batch_entry *e = &res.entries.entries_val[i];
        char what[64];

        snprintf(what, sizeof what, "%s's status", paths[i]);
        expect(what, e->status, want[i]);
        snprintf(what, sizeof what, "%s's length", paths[i]);
        expect(what, (long)e->length, i == 0 ? 5 : i == 5 ? 6 : 0);
    }
    expect("bytes sent", (long)len, 11);
    if (len != 11 || memcmp(data, "alphabravo!", 11) != 0) {
        printf("FAIL: the files' bytes are not a's then b's\n");
        failures++;
    }
    xdr_free((xdrproc_t)xdr_fetch_batch_result, (char *)&res);
}

/* RCAT_BATCH_FILES + 1 paths, encoded by hand: rcat_proto.x's own
 * encoder refuses to send them. */
static bool_t xdr_too_many(XDR *x, void *unused)
{
    u_int n = RCAT_BATCH_FILES + 1;
    char *path = "raw/a";

    (void)unused;
    if (!xdr_u_int(x, &n))
        return FALSE;
    for (u_int i = 0; i < n; i++)
        if (!xdr_string(x, &path, RCAT_MAX_PATH))
            return FALSE;
    return TRUE;
}

/* More than the bounds: refused whole, nothing sent. */
static void bounds(rpc2_conn *c)
{
    char *paths[5];
    fetch_batch_result res = {0};
    char data[64];
    size_t len;
    static char longp[RCAT_MAX_PATH];

    expect("65 paths",
           rpc2_call(c, RCAT_FETCH_BATCH, (xdrproc_t)xdr_too_many, NULL,
                     (xdrproc_t)xdr_fetch_batch_result, &res, NULL),
           RPC2_EDECODE);
    xdr_free((xdrproc_t)xdr_fetch_batch_result, (char *)&res);
    /* five paths of 4,000 bytes: more than RCAT_BATCH_PATH_BYTES together */
    memset(longp, 'x', 4000);
    memcpy(longp, "raw/", 4);
    for (int i = 0; i < 5; i++)
        paths[i] = longp;
    expect("20,000 bytes of paths", batch(c, paths, 5, &res, data, sizeof data, &len),
           RPC2_EINVAL);
    expect("an empty batch", batch(c, paths, 0, &res, data, sizeof data, &len), 0);
    expect("an empty batch's entries", res.entries.entries_len, 0);
    xdr_free((xdrproc_t)xdr_fetch_batch_result, (char *)&res);
}

int main(int argc, char **argv)
{
    rpc2_ctx *ctx;
    rpc2_conn *conn;

    if (argc != 2) {
        fprintf(stderr, "usage: batch_raw PORT\n");
        return 2;
    }
    if (raw_bind("batch_raw", argv[1], &ctx, &conn) != 0)
        return 2;
    mixed(conn);
    bounds(conn);
    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
    return failures ? 1 : 0;
}
