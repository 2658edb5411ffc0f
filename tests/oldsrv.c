/*
 * oldsrv.c - an rcatd of an earlier version: rcatd's own serving code
 * (rcat/serve.c), exporting only the procedures up to a number (by
 * default RCAT_SPLIT_END, the version before FETCH_BATCH), so that a call
 * of a later one is answered RPC2_ENOPROC as an older server answers it.
 * rcat must then do without: fetch a tree file by file
 * (tests/test_batch.sh), store a file in one stream instead of ranges
 * (--upto 15, before SPLIT_BEGIN; tests/test_split_put.sh).
 *
 *   oldsrv --root DIR [--log FILE] [--upto PROC] [--writable 1]
 *
 * Anonymous callers, read-only unless --writable 1, on 127.0.0.1; prints
 * "rcatd listening on PORT" once ready (as rcatd, for tests/rcatd_lib.sh);
 * one line per call to FILE (default: standard error). SIGTERM or SIGINT
 * stop it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>
#include <rpc2/rpc2.h>
#include <rpc2/sftp.h>

#include "rcat_proto.h"
#include "serve.h"
#include "srv_run.h"

static void log_line(const char *line, void *arg)
{
    fprintf(arg, "%s\n", line);
    fflush(arg);
}

int main(int argc, char **argv)
{
    struct rpc2_params p;
    struct ev_loop *loop = ev_default_loop(0);
    struct serve_config sc = {.root = NULL, .log = log_line, .log_arg = stderr};
    struct serve *s = NULL;
    const char *why = "";
    rpc2_ctx *ctx = NULL;
    unsigned long upto = RCAT_SPLIT_END;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--root"))
            sc.root = argv[i + 1];
        else if (!strcmp(argv[i], "--log") && !(sc.log_arg = fopen(argv[i + 1], "a")))
            return 1;
        else if (!strcmp(argv[i], "--upto"))
            upto = strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--writable"))
            sc.writable = !strcmp(argv[i + 1], "1");
    }
    if (!sc.root || upto == 0 || upto > RCAT_SPLIT_END || !loop || serve_new(&sc, &s, &why) != 0) {
        fprintf(stderr, "usage: oldsrv --root DIR [--log FILE] [--upto PROC] [--writable 1] (%s)\n",
                why);
        return 1;
    }
    rpc2_params_init(&p);
    p.listen[p.n_listen++] = "127.0.0.1:0";
    p.loop = loop;
    p.workers = 2;
    if (rpc2_ctx_new(&p, &ctx) != 0 || rpc2_sftp_activate(ctx, NULL) != 0 ||
        serve_export_upto(s, ctx, (uint32_t)upto) != 0) {
        fprintf(stderr, "oldsrv: cannot start\n");
        return 1;
    }
    srv_run(loop, ctx, "rcatd");
    rpc2_ctx_free(ctx);
    serve_free(s);
    return 0;
}
