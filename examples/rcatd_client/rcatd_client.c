/*
 * rcatd_client.c - a client of rcatd written against the installed library
 * alone: rcatd's interface comes from <rpc2/rcat_proto.h> and the XDR
 * routines from running the installed rcat_proto.x through rpcgen (see the
 * Makefile beside this file). It asks for a file's size and mode (STAT),
 * then fetches it to standard output (FETCH, the file riding on the call).
 *
 *   rcatd_client HOST PORT PATH
 */
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>
#include <rpc2/rpc2.h>
#include <rpc2/se.h>
#include <rpc2/sftp.h>
#include <rpc2/rcat_proto.h>

/* rcatd answers with 0, a positive rcat_status, or a negative rpc2 error. */
static void complain(const char *path, int rc, const struct rpc2_se_desc *d)
{
    if (rc > 0)
        fprintf(stderr, "rcatd_client: %s: rcatd refused: rcat_status %d\n", path, rc);
    else if (d && d->error != 0) /* the call ran; its side effect failed */
        fprintf(stderr, "rcatd_client: %s: %s\n", path, rpc2_strerror(d->error));
    else
        fprintf(stderr, "rcatd_client: %s: %s\n", path, rpc2_strerror(rc));
}

static int stat_path(rpc2_conn *conn, char *path)
{
    path_args args = {.path = path};
    file_info info = {0};
    int rc = rpc2_call(conn, RCAT_STAT, (xdrproc_t)xdr_path_args, &args, (xdrproc_t)xdr_file_info,
                       &info, NULL);

    if (rc != 0) {
        complain(path, rc, NULL);
        return rc;
    }
    fprintf(stderr, "%s: %" PRIu64 " bytes, mode %04o\n", path, (uint64_t)info.size, info.mode);
    return 0;
}

static int fetch_path(rpc2_conn *conn, char *path)
{
    fetch_args args = {.path = path, .offset = 0, .length = -1}; /* the whole file */
    file_info info = {0};
    struct rpc2_se_desc d = {
        .type = RPC2_SE_SFTP,
        .direction = RPC2_SE_FETCH,
        .quota = -1,
        .file_kind = RPC2_SE_FILE_FD,
        .file.fd.fd = STDOUT_FILENO,
    };
    struct rpc2_call_opts opts = {.se = &d};
    int rc = rpc2_call(conn, RCAT_FETCH, (xdrproc_t)xdr_fetch_args, &args,
                       (xdrproc_t)xdr_file_info, &info, &opts);

    if (rc != 0)
        complain(path, rc, &d);
    return rc;
}

int main(int argc, char **argv)
{
    struct rpc2_params params;
    rpc2_ctx *ctx;
    rpc2_conn *conn;
    int rc;

    if (argc != 4) {
        fprintf(stderr, "usage: rcatd_client HOST PORT PATH\n");
        return 2;
    }
    rpc2_params_init(&params);
    params.dead_peer_us = 5 * 1000 * 1000;
    rc = rpc2_ctx_new(&params, &ctx);
    if (rc != 0) {
        fprintf(stderr, "rcatd_client: %s\n", rpc2_strerror(rc));
        return 1;
    }
    struct rpc2_bind_params bind = {
        .host = argv[1],
        .port = argv[2],
        .subsystem = RCAT_SUBSYS,
        .se_type = RPC2_SE_SFTP,
        .identity = "rcatd-client-example",
    };
    rc = rpc2_sftp_activate(ctx, NULL);
    if (rc == 0)
        rc = rpc2_bind(ctx, &bind, &conn);
    if (rc != 0) {
        fprintf(stderr, "rcatd_client: %s:%s: %s\n", argv[1], argv[2], rpc2_strerror(rc));
        rpc2_ctx_free(ctx);
        return 1;
    }
    rc = stat_path(conn, argv[3]);
    if (rc == 0)
        rc = fetch_path(conn, argv[3]);
    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
    return rc == 0 ? 0 : 1;
}
