/*
 * rcat_server.c - a server whose call carries a file: the client names a
 * file in the server's directory and receives its bytes as a side effect of
 * the call. The handler is the blocking kind, so the transfer reads as plain
 * sequential code: describe the file, initialise, check, return.
 *
 *   rcat_server [ADDR:PORT [DIR]]   (default 127.0.0.1:7755 and .; port 0 picks one)
 *
 * It prints "rcat_server listening on PORT" and serves until killed.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <rpc2/rpc2.h>
#include <rpc2/se.h>
#include <rpc2/sftp.h>

#include "rcat_example.h"

/* A blocking handler runs on a worker thread (params.workers) and may wait;
 * its return value is the reply status. arg is what rpc2_export was given:
 * here the directory served. */
static int fetch(rpc2_request *req, void *args, void *result, void *arg)
{
    const char *name = ((rcat_example_args *)args)->name;
    /* Plain names only (no '/', no leading '.'): a client cannot leave DIR. */
    if (name[0] == '\0' || name[0] == '.' || strchr(name, '/'))
        return RCAT_EXAMPLE_BAD_NAME;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", (const char *)arg, name);

    /* The server's end of the transfer: this file, from its start, all of it.
     * The client described its own end (where the bytes go) in its own
     * descriptor; descriptors are never sent, each side keeps its own. */
    /* The whole file, server to client: seek 0, quota RPC2_SE_NO_QUOTA. */
    struct rpc2_se_desc desc = RPC2_SE_DESC_INIT(RPC2_SE_FETCH);
    desc.file_kind = RPC2_SE_FILE_NAME;
    desc.file.name.path = path;
    int rc = rpc2_se_init(req, &desc); /* opens the file: RPC2_ENOENT if it is not there */
    if (rc == 0)
        rc = rpc2_se_check(req); /* moves every byte, waiting until the client has them */
    return rc;                   /* the reply; the client's call returns this status */
}

static const struct rpc2_proc rcat_procs[] = {
    {
        .proc = RCAT_EXAMPLE_FETCH,
        .decode_args = (xdrproc_t)xdr_rcat_example_args,
        .args_size = sizeof(rcat_example_args),
        .blocking_handler = fetch,
    },
};

int main(int argc, char **argv)
{
    struct rpc2_params params;
    rpc2_params_init(&params);
    params.listen[0] = argc > 1 ? argv[1] : "127.0.0.1:7755";
    params.n_listen = 1;
    params.workers = 2; /* threads for blocking handlers: two transfers at once */
    char *dir = argc > 2 ? argv[2] : ".";

    rpc2_ctx *ctx;
    int rc = rpc2_ctx_new(&params, &ctx);
    if (rc == 0)
        rc = rpc2_sftp_activate(ctx, NULL); /* the SFTP side effect, default parameters */
    if (rc == 0)
        rc = rpc2_export(ctx, RCAT_EXAMPLE_SUBSYS, rcat_procs, 1, dir);
    if (rc != 0) {
        fprintf(stderr, "rcat_server: %s\n", rpc2_strerror(rc));
        return 1;
    }
    printf("rcat_server listening on %d\n", rpc2_ctx_port(ctx));
    fflush(stdout);
    rpc2_ctx_run(ctx); /* until the process is killed */
    rpc2_ctx_free(ctx);
    return 0;
}
