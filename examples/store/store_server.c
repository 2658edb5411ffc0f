/*
 * store_server.c - a server that receives files: a client names a file and
 * sends its bytes as a side effect of the call; the server writes them into
 * its directory atomically (under a temporary name, renamed into place only
 * when complete), so a failed or refused transfer leaves nothing behind.
 *
 *   store_server [ADDR:PORT [DIR]]  (default 127.0.0.1:7755 and .; port 0 picks one)
 *
 * It prints "store_server listening on PORT" and serves until killed.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <rpc2/rpc2.h>
#include <rpc2/se.h>
#include <rpc2/sftp.h>

#include "store.h"

/* A blocking handler on a worker thread; arg is the directory to write in. */
static int put(rpc2_request *req, void *args, void *result, void *arg)
{
    const char *name = ((store_args *)args)->name;
    /* Plain names only (no '/', no leading '.'): a client cannot leave DIR. */
    if (name[0] == '\0' || name[0] == '.' || strchr(name, '/'))
        return STORE_BAD_NAME;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", (const char *)arg, name);

    /* The server's end: the sink. The client's descriptor names its source. */
    struct rpc2_se_desc desc = RPC2_SE_DESC_INIT(RPC2_SE_STORE); /* client to server */
    desc.quota = STORE_MAX_BYTES; /* more is RPC2_EQUOTA: strict_quota in main() */
    desc.file_kind = RPC2_SE_FILE_NAME;
    desc.file.name.path = path;
    desc.file.name.mode = 0644;
    desc.file.name.atomic = 1;
    int rc = rpc2_se_init(req, &desc); /* creates the temporary file */
    if (rc == 0)
        rc = rpc2_se_check(req); /* receives every byte, then renames into place */
    ((store_result *)result)->bytes = desc.bytes_transferred; /* sent only if rc is 0 */
    return rc;
}

static const struct rpc2_proc store_procs[] = {
    {
        .proc = STORE_PUT,
        .decode_args = (xdrproc_t)xdr_store_args,
        .args_size = sizeof(store_args),
        .encode_result = (xdrproc_t)xdr_store_result,
        .result_size = sizeof(store_result),
        .blocking_handler = put,
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

    /* Without strict_quota a quota just ends a transfer early, successfully;
     * with it, a file larger than the quota fails the call. */
    struct rpc2_sftp_params sftp;
    rpc2_sftp_params_init(&sftp);
    sftp.strict_quota = 1;

    rpc2_ctx *ctx;
    int rc = rpc2_ctx_new(&params, &ctx);
    if (rc == 0)
        rc = rpc2_sftp_activate(ctx, &sftp);
    if (rc == 0)
        rc = rpc2_export(ctx, STORE_SUBSYS, store_procs, 1, dir);
    if (rc != 0) {
        fprintf(stderr, "store_server: %s\n", rpc2_strerror(rc));
        return 1;
    }
    printf("store_server listening on %d\n", rpc2_ctx_port(ctx));
    fflush(stdout);
    rpc2_ctx_run(ctx); /* until the process is killed */
    rpc2_ctx_free(ctx);
    return 0;
}
