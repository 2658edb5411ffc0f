/*
 * vmfile_server.c - a server that keeps one file in memory, with async
 * handlers: each starts its transfer with rpc2_se_check_async() and returns
 * at once; the loop moves the bytes and calls done(), which replies. All of
 * it runs on the loop's one thread, so the state below needs no lock.
 *
 *   vmfile_server [ADDR:PORT]      (default 127.0.0.1:7755; port 0 picks one)
 *
 * It prints "vmfile_server listening on PORT" and serves until killed.
 */
#include <stdio.h>
#include <rpc2/rpc2.h>
#include <rpc2/se.h>
#include <rpc2/sftp.h>

#include "vmfile.h"

struct vmfile {
    char *stored, *incoming; /* a PUT fills incoming; on success the two swap */
    size_t stored_len;
    int busy;                 /* one transfer at a time: it owns desc and result */
    struct rpc2_se_desc desc; /* must stay valid until done() runs */
    vmfile_result *result;    /* valid until the reply */
};

/* Runs on the loop thread when the transfer has ended, with its outcome. */
static void done(rpc2_request *req, int status, void *arg)
{
    struct vmfile *v = arg;
    if (status == 0 && v->desc.direction == RPC2_SE_STORE) {
        char *old = v->stored; /* a failed PUT leaves the old bytes in place */
        v->stored = v->incoming;
        v->incoming = old;
        v->stored_len = v->desc.file.vm.len; /* a memory sink's bytes written */
    }
    v->result->size = v->stored_len;
    v->busy = 0;
    rpc2_reply(req, status);
}

/* The handler of both procedures: PUT's side effect comes in, GET's goes out. */
static void transfer(rpc2_request *req, void *args, void *result, void *arg)
{
    struct vmfile *v = arg; /* what rpc2_export was given */
    int put = rpc2_request_proc(req) == VMFILE_PUT;
    if (v->busy) {
        rpc2_reply(req, VMFILE_BUSY);
        return;
    }
    /* The server's end: PUT a memory sink (incoming), GET a memory source (stored). */
    struct rpc2_se_desc *d = &v->desc;
    rpc2_se_desc_init(d, put ? RPC2_SE_STORE : RPC2_SE_FETCH); /* the whole buffer */
    d->file_kind = RPC2_SE_FILE_VM;
    d->file.vm.buf = put ? v->incoming : v->stored;
    d->file.vm.len = put ? 0 : v->stored_len; /* a source: the bytes to send */
    d->file.vm.max = put ? VMFILE_MAX : 0;    /* a sink: the room, more is RPC2_EOVERFLOW */
    v->result = result;
    v->busy = 1; /* before the check: a small transfer may end (and done() run) inside it */
    int rc = rpc2_se_init(req, d);
    if (rc == 0)
        rc = rpc2_se_check_async(req, done, v); /* returns at once; done() replies */
    if (rc != 0) {
        v->busy = 0;
        rpc2_reply(req, rc);
    }
}

static const struct rpc2_proc vmfile_procs[] = {
    {.proc = VMFILE_PUT,
     .encode_result = (xdrproc_t)xdr_vmfile_result,
     .result_size = sizeof(vmfile_result),
     .async_handler = transfer},
    {.proc = VMFILE_GET,
     .encode_result = (xdrproc_t)xdr_vmfile_result,
     .result_size = sizeof(vmfile_result),
     .async_handler = transfer},
};

int main(int argc, char **argv)
{
    struct rpc2_params params;
    rpc2_params_init(&params); /* no workers: async handlers need none */
    params.listen[0] = argc > 1 ? argv[1] : "127.0.0.1:7755";
    params.n_listen = 1;

    static char memory[2][VMFILE_MAX]; /* both buffers, at their bound, once */
    struct vmfile v = {.stored = memory[0], .incoming = memory[1]};
    rpc2_ctx *ctx;
    int rc = rpc2_ctx_new(&params, &ctx);
    if (rc == 0)
        rc = rpc2_sftp_activate(ctx, NULL);
    if (rc == 0)
        rc = rpc2_export(ctx, VMFILE_SUBSYS, vmfile_procs, 2, &v);
    if (rc != 0) {
        fprintf(stderr, "vmfile_server: %s\n", rpc2_strerror(rc));
        return 1;
    }
    printf("vmfile_server listening on %d\n", rpc2_ctx_port(ctx));
    fflush(stdout);
    rpc2_ctx_run(ctx); /* until the process is killed */
    rpc2_ctx_free(ctx);
    return 0;
}
