/*
 * vmfile_client.c - memory to memory: read FILE (or standard input) into a
 * buffer, PUT it into vmfile_server's memory, GET it back into a second
 * buffer, check the two match and write the copy to standard output.
 *
 *   vmfile_client HOST PORT [FILE]
 */
#include <stdio.h>
#include <string.h>
#include <rpc2/rpc2.h>
#include <rpc2/se.h>
#include <rpc2/sftp.h>

#include "vmfile.h"

static char sent[VMFILE_MAX], back[VMFILE_MAX];

/* One call whose side effect moves buf: its len bytes to the server (PUT),
 * or up to VMFILE_MAX bytes from it, *len set to how many came (GET). */
static int call(rpc2_conn *conn, uint32_t proc, char *buf, size_t *len)
{
    struct rpc2_se_desc desc = {
        .type = RPC2_SE_SFTP,
        .direction = proc == VMFILE_PUT ? RPC2_SE_STORE : RPC2_SE_FETCH,
        .quota = -1,
        .file_kind = RPC2_SE_FILE_VM,
        .file.vm = {.buf = buf, .len = *len, .max = VMFILE_MAX}, /* source: len, sink: max */
    };
    struct rpc2_call_opts opts = {.se = &desc};
    vmfile_result result = {0};
    int rc = rpc2_call(conn, proc, NULL, NULL, (xdrproc_t)xdr_vmfile_result, &result, &opts);
    const char *what = proc == VMFILE_PUT ? "PUT" : "GET";
    if (rc == VMFILE_BUSY)
        fprintf(stderr, "vmfile_client: %s: server busy, try again\n", what);
    else if (rc != 0 && desc.error != 0) /* the side effect failed: desc.error says why */
        fprintf(stderr, "vmfile_client: %s: %s (%s side)\n", what, rpc2_strerror(desc.error),
                desc.remote_status == RPC2_SE_FAILURE ? "server" : "client");
    else if (rc != 0)
        fprintf(stderr, "vmfile_client: %s: %s\n", what, rpc2_strerror(rc));
    else
        *len = desc.file.vm.len; /* GET: bytes written into buf; PUT: unchanged */
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: vmfile_client HOST PORT [FILE]\n");
        return 2;
    }
    FILE *in = argc == 4 ? fopen(argv[3], "rb") : stdin;
    if (!in) {
        perror(argv[3]);
        return 1;
    }
    size_t n = fread(sent, 1, sizeof sent, in);
    if (ferror(in) || fgetc(in) != EOF) { /* the bound: refuse what would not fit */
        fprintf(stderr, "vmfile_client: input unreadable or larger than %d bytes\n", VMFILE_MAX);
        return 1;
    }
    if (in != stdin)
        fclose(in);
    struct rpc2_params params;
    rpc2_params_init(&params);             /* no listen address: a client socket */
    params.dead_peer_us = 5 * 1000 * 1000; /* give up after 5 s of silence */
    rpc2_ctx *ctx;
    int rc = rpc2_ctx_new(&params, &ctx);
    if (rc != 0) {
        fprintf(stderr, "vmfile_client: %s\n", rpc2_strerror(rc));
        return 1;
    }
    rc = rpc2_sftp_activate(ctx, NULL); /* both ends need SFTP */
    struct rpc2_bind_params bind = {
        .host = argv[1],
        .port = argv[2],
        .subsystem = VMFILE_SUBSYS,
        .se_type = RPC2_SE_SFTP, /* calls on this connection may carry files */
        .identity = "vmfile-example",
    };
    rpc2_conn *conn;
    if (rc == 0)
        rc = rpc2_bind(ctx, &bind, &conn);
    if (rc != 0)
        fprintf(stderr, "vmfile_client: %s\n", rpc2_strerror(rc));
    size_t got = 0;
    if (rc == 0) {
        rc = call(conn, VMFILE_PUT, sent, &n); /* call() reports its own errors */
        if (rc == 0)
            rc = call(conn, VMFILE_GET, back, &got);
        rpc2_unbind(conn);
    }
    if (rc == 0 && (got != n || memcmp(sent, back, n) != 0)) {
        fprintf(stderr, "vmfile_client: GET brought back other bytes than PUT sent\n");
        rc = RPC2_EIO;
    }
    if (rc == 0 && (fwrite(back, 1, got, stdout) != got || fflush(stdout) != 0)) {
        perror("vmfile_client: standard output");
        rc = RPC2_EIO;
    }
    rpc2_ctx_free(ctx);
    return rc == 0 ? 0 : 1;
}
