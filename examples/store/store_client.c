/*
 * store_client.c - send a file to store_server from an open descriptor: FILE
 * if given, else standard input (a pipe works: the bytes stream as they are
 * read). The server keeps them as NAME in its directory.
 *
 *   store_client HOST PORT NAME [FILE]
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>
#include <rpc2/rpc2.h>
#include <rpc2/se.h>
#include <rpc2/sftp.h>

#include "store.h"

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: store_client HOST PORT NAME [FILE]\n");
        return 2;
    }
    int fd = argc == 5 ? open(argv[4], O_RDONLY) : STDIN_FILENO;
    if (fd < 0) {
        perror(argv[4]);
        return 1;
    }
    struct rpc2_params params;
    rpc2_params_init(&params);             /* no listen address: a client socket */
    params.dead_peer_us = 5 * 1000 * 1000; /* give up after 5 s of silence */

    rpc2_ctx *ctx;
    int rc = rpc2_ctx_new(&params, &ctx);
    if (rc != 0) {
        fprintf(stderr, "store_client: %s\n", rpc2_strerror(rc));
        return 1;
    }
    rc = rpc2_sftp_activate(ctx, NULL); /* both ends need SFTP */
    struct rpc2_bind_params bind = {
        .host = argv[1],
        .port = argv[2],
        .subsystem = STORE_SUBSYS,
        .se_type = RPC2_SE_SFTP, /* calls on this connection may carry files */
        .identity = "store-example",
    };
    rpc2_conn *conn;
    if (rc == 0)
        rc = rpc2_bind(ctx, &bind, &conn);

    /* This end: the source, an open descriptor read from where it stands
     * to its end. The library reads it but leaves it open. */
    struct rpc2_se_desc desc = RPC2_SE_DESC_INIT(RPC2_SE_STORE); /* client to server, all of it */
    desc.file_kind = RPC2_SE_FILE_FD;
    desc.file.fd.fd = fd;
    store_result result = {0};
    if (rc == 0) {
        store_args args = {.name = argv[3]};
        struct rpc2_call_opts opts = {.se = &desc};
        rc = rpc2_call(conn, STORE_PUT, (xdrproc_t)xdr_store_args, &args,
                       (xdrproc_t)xdr_store_result, &result, &opts);
        rpc2_unbind(conn);
    }
    if (rc == 0)
        printf("stored %" PRIu64 " bytes as %s\n", (uint64_t)result.bytes, argv[3]);
    else if (rc == STORE_BAD_NAME)
        fprintf(stderr, "store_client: %s: not a plain file name\n", argv[3]);
    else if (desc.error != 0) /* the side effect failed: desc.error says why */
        fprintf(stderr, "store_client: %s: %s (%s side)\n", argv[3], rpc2_strerror(desc.error),
                desc.remote_status == RPC2_SE_FAILURE ? "server" : "client");
    else
        fprintf(stderr, "store_client: %s\n", rpc2_strerror(rc));
    close(fd);
    rpc2_ctx_free(ctx);
    return rc == 0 ? 0 : 1;
}
