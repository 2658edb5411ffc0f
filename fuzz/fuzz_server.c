/*
 * fuzz_server.c - exists because a server is what a hostile network talks
 * to: every datagram, bound or not, sealed or not, in any order and at any
 * time, reaches the engine, the duplicate cache, XDR argument decoding,
 * the side-effect block and the SFTP machines of a running transfer. None
 * of it may crash, leak, or make the server send a datagram its peers
 * would refuse.
 *
 * The server exports one subsystem (a null call, an XDR blob, a call the
 * server holds until later, a blocking handler, and fetches and stores
 * through SFTP of memory buffers, of files in a scratch directory (stores
 * atomic, by name) and of pipes, read and written without blocking on a
 * watched descriptor as ctx.c does it) and has SFTP registered. It knows
 * FUZZ_IDENTITY's secret, so secure binds complete and later datagrams
 * can be protected with the session, as a genuine client's are.
 *
 * Input: one byte choosing the server's limits (fuzz_engine_limits: cookie
 * threshold, calls running, saved reply bytes ...), then a sequence of
 * records, each
 *   u8 ctl   bits 0-1 peer; bit 2 seal with a valid check; bit 3 fix up
 *            the header (body_len from the length, dst_conn = the id the
 *            server gave this peer, and for SFTP packets transfer = the
 *            seq of this peer's latest CALL; a BIND_REQ carrying any hello
 *            for FUZZ_IDENTITY gets a genuine one instead, at level auth
 *            or encrypt by the first hello byte's lowest bit); with bit 2,
 *            a datagram to a peer's secure connection is protected with
 *            its session instead of the check; bit 4 put the cookie the
 *            server last gave this peer into a BIND_REQ; bit 5 advance the
 *            clock first (u16 milliseconds); bit 6 answer the held call
 *            first; bit 7 deliver the datagram twice
 *   u16 length, then that many bytes: the datagram as sent
 */
#define _GNU_SOURCE /* pipe2 */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <rpc/rpc.h>

#include <rpc2/se.h>
#include <rpc2/sftp.h>

#include "fuzz_engine.h"
#include "fuzz_formats.h"
#include "sftp_type.h"
#include "wire.h"

#define FZ_BLOB_MAX 1024u
#define FZ_BYTES 16384u
#define FZ_SLOTS 4
#define FZ_WATCHES 8
#define FZ_PIPE_BYTES 4096u /* what a fetched pipe holds before its end */

struct fz_range {
    int64_t offset, quota;
};

struct fz_blob {
    u_int len;
    char *data;
};

/* A running side effect's descriptor lives here until its check is done. */
struct fz_slot {
    int used;
    struct rpc2_se_desc desc;
    int64_t *result;
    int fds[2];      /* a pipe's ends, -1 when closed */
    char path[300];  /* a stored file, removed when its transfer ends */
};

/* A descriptor a side effect waits on, as ctx.c's ev_io would watch it. */
struct fz_watch {
    struct engine_fdwatch *w;
    int fd, events;
};

static struct fuzz_engine fe;
static struct fz_slot slots[FZ_SLOTS];
static struct fz_watch watches[FZ_WATCHES];
static char scratch[256]; /* the files' directory, made once per process */
static char src_path[300];
static rpc2_request *held;
static uint8_t fetch_bytes[FZ_BYTES], store_bytes[FZ_BYTES];
static uint8_t dgram[PKT_MAX_DATAGRAM + FUZZ_SEAL_ROOM];

static bool_t xdr_fz_range(XDR *x, struct fz_range *r)
{
    return xdr_int64_t(x, &r->offset) && xdr_int64_t(x, &r->quota);
}

static bool_t xdr_fz_blob(XDR *x, struct fz_blob *b)
{
    return xdr_bytes(x, &b->data, &b->len, FZ_BLOB_MAX);
}

/* ---- handlers ------------------------------------------------------------ */

static void h_null(rpc2_request *req, void *args, void *result, void *arg)
{
    engine_reply(req, 0, fe.now);
}

static void h_blob(rpc2_request *req, void *args, void *result, void *arg)
{
    const struct fz_blob *b = args;
    u_int sum = 0;

    for (u_int i = 0; i < b->len; i++)
        sum += (uint8_t)b->data[i];
    *(u_int *)result = sum;
    engine_reply(req, 0, fe.now);
}

/* A long-running call: answered when a record says so (BUSY meanwhile). */
static void h_hold(rpc2_request *req, void *args, void *result, void *arg)
{
    if (held)
        engine_reply(held, 0, fe.now);
    held = req;
}

static int h_block(rpc2_request *req, void *args, void *result, void *arg)
{
    *(u_int *)result = 7;
    return 0;
}

static int run_inline(void *env, struct rpc2_request *req)
{
    engine_handler_returned(req, engine_run_handler(req), fe.now);
    return 0;
}

static int watch_fd(void *env, struct engine_fdwatch *w, int fd, int events)
{
    struct fz_watch *free_slot = NULL;

    for (int i = 0; i < FZ_WATCHES; i++) {
        if (watches[i].w == w) {
            watches[i].fd = fd;
            watches[i].events = events;
            if (!events)
                watches[i].w = NULL;
            return 0;
        }
        if (!watches[i].w && !free_slot)
            free_slot = &watches[i];
    }
    if (!events)
        return 0;
    if (!free_slot)
        return RPC2_ENOMEM;
    *free_slot = (struct fz_watch){.w = w, .fd = fd, .events = events};
    return 0;
}

/* What the loop would do between datagrams: a reader drains some of each
 * stored pipe, and every watched descriptor that is ready is told so. */
static void run_watches(void)
{
    char sink[FZ_PIPE_BYTES];

    for (int i = 0; i < FZ_SLOTS; i++)
        if (slots[i].used && slots[i].desc.direction == RPC2_SE_STORE && slots[i].fds[0] >= 0)
            (void)!read(slots[i].fds[0], sink, sizeof sink);
    for (int i = 0; i < FZ_WATCHES; i++) {
        struct pollfd p = {.fd = watches[i].fd};
        if (!watches[i].w)
            continue;
        p.events = (short)((watches[i].events & ENGINE_FD_READ ? POLLIN : 0) |
                           (watches[i].events & ENGINE_FD_WRITE ? POLLOUT : 0));
        if (poll(&p, 1, 0) == 1)
            watches[i].w->ready(watches[i].w, fe.now);
    }
    engine_flush(fe.e);
}

static const struct engine_hooks hooks = {.run_blocking = run_inline, .watch_fd = watch_fd};

static void slot_release(struct fz_slot *s)
{
    for (int i = 0; i < 2; i++)
        if (s->fds[i] >= 0)
            close(s->fds[i]);
    if (s->path[0])
        unlink(s->path);
    s->used = 0;
}

static void transfer_done(rpc2_request *req, int status, void *arg)
{
    struct fz_slot *s = arg;

    *s->result = (int64_t)s->desc.bytes_transferred;
    slot_release(s);
    engine_reply(req, status, fe.now);
}

static struct fz_slot *slot_new(void)
{
    for (int i = 0; i < FZ_SLOTS; i++)
        if (!slots[i].used) {
            memset(&slots[i], 0, sizeof slots[i]);
            slots[i].used = 1;
            slots[i].fds[0] = slots[i].fds[1] = -1;
            return &slots[i];
        }
    return NULL;
}

enum fz_end { END_VM, END_FILE, END_PIPE };

static void scratch_remove(void)
{
    unlink(src_path);
    rmdir(scratch);
}

/* The scratch directory, and in it the file fetches read; gone at exit. */
static int scratch_ready(void)
{
    int fd;

    if (scratch[0])
        return 1;
    /* run.sh names a directory it removes afterwards (libFuzzer ends a
     * run without atexit handlers); a replay by hand uses TMPDIR */
    const char *parent = getenv("FUZZ_SCRATCH") ? getenv("FUZZ_SCRATCH") : getenv("TMPDIR");
    snprintf(scratch, sizeof scratch, "%s/fuzz_server.XXXXXX", parent ? parent : "/tmp");
    if (!mkdtemp(scratch)) {
        scratch[0] = '\0';
        return 0;
    }
    snprintf(src_path, sizeof src_path, "%s/src", scratch);
    fd = open(src_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FUZZ_REQUIRE(fd >= 0 && write(fd, fetch_bytes, FZ_BYTES) == (ssize_t)FZ_BYTES);
    close(fd);
    atexit(scratch_remove);
    return 1;
}

/* A file by name: fetches read scratch/src, stores write scratch/dstN
 * atomically (a temporary, renamed on success). */
static int describe_file(struct fz_slot *s)
{
    if (!scratch_ready())
        return RPC2_ESYSTEM;
    s->desc.file_kind = RPC2_SE_FILE_NAME;
    if (s->desc.direction == RPC2_SE_FETCH) {
        s->desc.file.name.path = src_path; /* s->path stays empty: src is kept */
        return 0;
    }
    snprintf(s->path, sizeof s->path, "%s/dst%d", scratch, (int)(s - slots));
    s->desc.file.name.path = s->path;
    s->desc.file.name.mode = 0600;
    s->desc.file.name.atomic = 1;
    return 0;
}

/* A pipe: a fetch reads what was written into it before its end closed; a
 * store writes into it while run_watches drains it a little at a time. */
static int describe_pipe(struct fz_slot *s)
{
    if (pipe2(s->fds, O_CLOEXEC) < 0)
        return RPC2_ESYSTEM;
    s->desc.file_kind = RPC2_SE_FILE_FD;
    if (s->desc.direction == RPC2_SE_FETCH) {
        FUZZ_REQUIRE(write(s->fds[1], fetch_bytes, FZ_PIPE_BYTES) == (ssize_t)FZ_PIPE_BYTES);
        close(s->fds[1]);
        s->fds[1] = -1;
        s->desc.file.fd.fd = s->fds[0];
    } else {
        s->desc.file.fd.fd = s->fds[1];
        FUZZ_REQUIRE(fcntl(s->fds[0], F_SETFL, O_NONBLOCK) == 0); /* the drain never waits */
    }
    return 0;
}

static void describe_vm(struct fz_slot *s)
{
    int fetch = s->desc.direction == RPC2_SE_FETCH;

    s->desc.file_kind = RPC2_SE_FILE_VM;
    s->desc.file.vm.buf = fetch ? fetch_bytes : store_bytes;
    s->desc.file.vm.len = fetch ? FZ_BYTES : 0;
    s->desc.file.vm.max = FZ_BYTES;
}

/* Both directions: the server's end is a memory buffer, a file or a pipe,
 * placed where the client's arguments say (offset and quota are checked by
 * the library). */
static void side_effect(rpc2_request *req, const struct fz_range *r, int64_t *result,
                        enum rpc2_se_direction dir, enum fz_end end)
{
    struct fz_slot *s = slot_new();
    int rc = 0;

    if (!s) {
        engine_reply(req, RPC2_ELIMIT, fe.now);
        return;
    }
    s->result = result;
    s->desc.type = RPC2_SE_SFTP;
    s->desc.direction = dir;
    s->desc.seek_offset = r->offset;
    s->desc.quota = r->quota;
    if (end == END_FILE)
        rc = describe_file(s);
    else if (end == END_PIPE)
        rc = describe_pipe(s);
    else
        describe_vm(s);
    if (rc == 0)
        rc = rpc2_se_init(req, &s->desc);
    if (rc == 0)
        rc = rpc2_se_check_async(req, transfer_done, s);
    if (rc != 0) {
        slot_release(s);
        engine_reply(req, rc, fe.now);
    }
}

static void h_fetch(rpc2_request *req, void *args, void *result, void *arg)
{
    side_effect(req, args, result, RPC2_SE_FETCH, END_VM);
}

static void h_store(rpc2_request *req, void *args, void *result, void *arg)
{
    side_effect(req, args, result, RPC2_SE_STORE, END_VM);
}

static void h_fetch_file(rpc2_request *req, void *args, void *result, void *arg)
{
    side_effect(req, args, result, RPC2_SE_FETCH, END_FILE);
}

static void h_store_file(rpc2_request *req, void *args, void *result, void *arg)
{
    side_effect(req, args, result, RPC2_SE_STORE, END_FILE);
}

static void h_fetch_pipe(rpc2_request *req, void *args, void *result, void *arg)
{
    side_effect(req, args, result, RPC2_SE_FETCH, END_PIPE);
}

static void h_store_pipe(rpc2_request *req, void *args, void *result, void *arg)
{
    side_effect(req, args, result, RPC2_SE_STORE, END_PIPE);
}

#define TRANSFER_PROC(num, handler)                                                                \
    {                                                                                              \
        .proc = num, .decode_args = (xdrproc_t)xdr_fz_range, .args_size = sizeof(struct fz_range), \
        .encode_result = (xdrproc_t)xdr_int64_t, .result_size = sizeof(int64_t),                  \
        .async_handler = handler                                                                   \
    }

static const struct rpc2_proc procs[] = {
    {.proc = P_NULL, .async_handler = h_null},
    {.proc = P_BLOB,
     .decode_args = (xdrproc_t)xdr_fz_blob,
     .args_size = sizeof(struct fz_blob),
     .encode_result = (xdrproc_t)xdr_u_int,
     .result_size = sizeof(u_int),
     .async_handler = h_blob},
    {.proc = P_HOLD, .async_handler = h_hold},
    {.proc = P_BLOCK,
     .encode_result = (xdrproc_t)xdr_u_int,
     .result_size = sizeof(u_int),
     .blocking_handler = h_block},
    TRANSFER_PROC(P_FETCH, h_fetch),
    TRANSFER_PROC(P_STORE, h_store),
    TRANSFER_PROC(P_FETCH_FILE, h_fetch_file),
    TRANSFER_PROC(P_STORE_FILE, h_store_file),
    TRANSFER_PROC(P_FETCH_PIPE, h_fetch_pipe),
    TRANSFER_PROC(P_STORE_PIPE, h_store_pipe),
};

/* ---- records ------------------------------------------------------------- */

/* Small windows and a small memory cap: transfers finish within an input. */
static void register_sftp(struct engine *e)
{
    struct rpc2_sftp_params p;

    rpc2_sftp_params_init(&p);
    p.window = 16;
    p.send_ahead = 4;
    p.ack_point = 2;
    p.retry_count = 3;
    p.retry_interval_us = 20000;
    p.memory_cap = (uint64_t)SFTP_MAX_PACKET * 8;
    FUZZ_REQUIRE(sftp_register(e, &p) == 0);
}

/* Replaces a BIND_REQ's cookie with the one the server gave; returns the
 * new length (the old one if the body does not decode). */
static size_t echo_cookie(const struct fuzz_peer *p, size_t len)
{
    static uint8_t body[PKT_MAX_BODY];
    struct pkt_bind_req m;
    size_t body_len;

    if (pkt_bind_req_decode(dgram + PKT_HDR_SIZE, len - PKT_HDR_SIZE, &m) != PKT_OK)
        return len;
    m.cookie = p->cookie;
    m.cookie_len = p->cookie_len;
    if (pkt_bind_req_encode(&m, body, sizeof body, &body_len) != PKT_OK)
        return len;
    memcpy(dgram + PKT_HDR_SIZE, body, body_len);
    return PKT_HDR_SIZE + body_len;
}

/* A BIND_REQ for FUZZ_IDENTITY carrying any hello gets the hello a client
 * holding the secret would send, so the bind completes and the peer's later
 * datagrams can be protected with the session (fuzz_engine_seal). */
static size_t genuine_hello(struct fuzz_peer *p, size_t len)
{
    static uint8_t body[PKT_MAX_BODY], hello[PKT_MAX_HELLO];
    struct pkt_bind_req m;
    size_t hello_len, body_len;
    uint32_t src_conn = fuzz_load_u32(dgram + FUZZ_OFF_SRC_CONN);

    if (pkt_bind_req_decode(dgram + PKT_HDR_SIZE, len - PKT_HDR_SIZE, &m) != PKT_OK || !m.hello ||
        m.hello_len == 0 || m.identity_len != strlen(FUZZ_IDENTITY) ||
        memcmp(m.identity, FUZZ_IDENTITY, m.identity_len) != 0)
        return len;
    hello_len = fuzz_engine_hello(&fe, p, m.hello[0] & 1 ? RPC2_SEC_ENCRYPT : RPC2_SEC_AUTH, &m,
                                  src_conn, hello, sizeof hello);
    if (hello_len == 0)
        return len;
    m.hello = hello;
    m.hello_len = (uint32_t)hello_len;
    if (pkt_bind_req_encode(&m, body, sizeof body, &body_len) != PKT_OK)
        return len;
    memcpy(dgram + PKT_HDR_SIZE, body, body_len);
    return PKT_HDR_SIZE + body_len;
}

static size_t fix_up(struct fuzz_peer *p, size_t len, uint8_t ctl)
{
    uint8_t type = dgram[FUZZ_OFF_TYPE];

    if (len < PKT_HDR_SIZE)
        return len;
    if (type == PKT_BIND_REQ && (ctl & SRV_ECHO_COOKIE))
        len = echo_cookie(p, len);
    if (type == PKT_BIND_REQ)
        len = genuine_hello(p, len);
    if (type != PKT_BIND_REQ)
        fuzz_store_u32(dgram + FUZZ_OFF_DST_CONN, p->conn_id);
    if (type >= PKT_SFTP_DATA)
        fuzz_store_u32(dgram + FUZZ_OFF_TRANSFER, p->call_seq);
    fuzz_store_u32(dgram + FUZZ_OFF_BODY_LEN, (uint32_t)(len - PKT_HDR_SIZE));
    return len;
}

static void run_record(struct fuzz_in *in)
{
    uint8_t ctl = fin_u8(in);
    struct fuzz_peer *p = fuzz_engine_peer(&fe, ctl & SRV_PEER);
    size_t len;
    const uint8_t *bytes;

    if (ctl & SRV_ADVANCE)
        fuzz_engine_advance(&fe, (uint64_t)fin_u16(in) * 1000);
    run_watches();
    if ((ctl & SRV_ANSWER_HELD) && held) {
        rpc2_request *req = held;
        held = NULL;
        engine_reply(req, 0, fe.now);
        engine_flush(fe.e);
    }
    bytes = fin_bytes(in, fin_u16(in), &len);
    if (len > PKT_MAX_DATAGRAM)
        len = PKT_MAX_DATAGRAM;
    memcpy(dgram, bytes, len);
    if (ctl & SRV_FIXUP)
        len = fix_up(p, len, ctl);
    if (len >= PKT_HDR_SIZE && dgram[FUZZ_OFF_TYPE] == PKT_CALL)
        p->call_seq = fuzz_load_u32(dgram + FUZZ_OFF_SEQ);
    if (ctl & SRV_SEAL)
        len = fuzz_engine_seal(&fe, ctl & SRV_PEER, dgram, len, sizeof dgram);
    for (int i = (ctl & SRV_TWICE) ? 2 : 1; i > 0; i--)
        fuzz_engine_receive(&fe, ctl & SRV_PEER, dgram, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct engine_config cfg;
    struct fuzz_in in;

    memset(slots, 0, sizeof slots);
    memset(watches, 0, sizeof watches);
    held = NULL;
    fuzz_engine_config(&cfg);
    cfg.secret_for = fuzz_secret_for;
    fuzz_engine_init(&fe, &cfg, &hooks, NULL);
    FUZZ_REQUIRE(engine_export(fe.e, FZ_SUBSYS, procs, sizeof procs / sizeof procs[0], NULL) == 0);
    register_sftp(fe.e);
    fin_init(&in, data, size);
    fuzz_engine_limits(&fe, fin_u8(&in));
    while (!fin_empty(&in))
        run_record(&in);
    fuzz_engine_advance(&fe, 1000000); /* let timers run once more */
    held = NULL;                       /* engine_free frees it with the others */
    fuzz_engine_dispose(&fe);
    for (int i = 0; i < FZ_SLOTS; i++) /* transfers the disposal ended unanswered */
        if (slots[i].used)
            slot_release(&slots[i]);
    return 0;
}
