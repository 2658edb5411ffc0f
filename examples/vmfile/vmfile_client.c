/*
 * vmfile_client.c - memory to memory: read FILE (or standard input) into a
 * buffer, PUT it into vmfile_server's memory, GET it back into a buffer
 * the library grows as the bytes come (no need to ask the size first),
 * check the two match and write the copy to standard output.
 *
 *   vmfile_client HOST PORT [FILE]
 */
#include <stdio.h>
#include <string.h>
#include <rpc2/rpc2.h>
#include <rpc2/se.h>
#include <rpc2/sftp.h>

#include "vmfile.h"

static char sent[VMFILE_MAX];

/* One call whose side effect moves the memory desc names. */
static int call(rpc2_conn *conn, uint32_t proc, struct rpc2_se_desc *desc)
{
    struct rpc2_call_opts opts = {.se = desc};
    vmfile_result result = {0};
    int rc = rpc2_call(conn, proc, NULL, NULL, (xdrproc_t)xdr_vmfile_result, &result, &opts);
    const char *what = proc == VMFILE_PUT ? "PUT" : "GET";
    /* One int, three ranges: 0, the server's own status (> 0), an rpc2 error (< 0). */
    if (rpc2_app_status(rc) == VMFILE_BUSY)
        fprintf(stderr, "vmfile_client: %s: server busy, try again\n", what);
    else if (rc != 0 && desc->error != 0) /* the side effect failed: desc->error says why */
        fprintf(stderr, "vmfile_client: %s: %s (%s side)\n", what, rpc2_strerror(desc->error),
                desc->remote_status == RPC2_SE_FAILURE ? "server" : "client");
    else if (rc != 0)
        fprintf(stderr, "vmfile_client: %s: %s\n", what, rpc2_strerror(rc));
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
    /* The whole buffer, from our memory (a source: its len bytes)... */
    struct rpc2_se_desc put = RPC2_SE_DESC_INIT(RPC2_SE_STORE);
    put.file_kind = RPC2_SE_FILE_VM;
    put.file.vm.buf = sent;
    put.file.vm.len = n;
    /* ...and back into memory the library allocates as the bytes come, at
     * most VMFILE_MAX of them; freed below with rpc2_se_vm_free. */
    struct rpc2_se_desc get = RPC2_SE_DESC_INIT(RPC2_SE_FETCH);
    get.file_kind = RPC2_SE_FILE_VM;
    get.file.vm.grow = 1;
    get.file.vm.max = VMFILE_MAX;
    if (rc == 0) {
        rc = call(conn, VMFILE_PUT, &put); /* call() reports its own errors */
        if (rc == 0)
            rc = call(conn, VMFILE_GET, &get);
        rpc2_unbind(conn);
    }
    const char *back = get.file.vm.buf;
    size_t got = get.file.vm.len;
    if (rc == 0 && (got != n || (n > 0 && memcmp(sent, back, n) != 0))) {
        fprintf(stderr, "vmfile_client: GET brought back other bytes than PUT sent\n");
        rc = RPC2_EIO;
    }
    if (rc == 0 && ((got > 0 && fwrite(back, 1, got, stdout) != got) || fflush(stdout) != 0)) {
        perror("vmfile_client: standard output");
        rc = RPC2_EIO;
    }
    rpc2_se_vm_free(&get);
    rpc2_ctx_free(ctx);
    return rc == 0 ? 0 : 1;
}
