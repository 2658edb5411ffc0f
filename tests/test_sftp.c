/*
 * test_sftp.c - the SFTP side effect end to end in memory: two engines on
 * a fake link with a fake clock, a server whose handlers describe their end
 * of each transfer as a memory buffer, and clients fetching and storing
 * every size that matters, piggybacked and streamed, under loss,
 * duplication and reordering. Byte for byte, no sockets, no sleeps.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <openssl/evp.h>
#include <xxhash.h>
#include <rpc2/se.h>
#include <rpc2/sftp.h>

#include "addr.h"
#include "fakelink.h"
#include "packet.h"
#include "params.h"
#include "sftp_type.h"
#include "testproto.h"
#include "wire.h"
#include "check_run.h"

#define MS 1000ull
#define SEC 1000000ull
#define SERVER_BYTES (4u << 20)

enum { NODE_CLIENT = 0, NODE_SERVER = 1 };

static const struct engine_config cfg = {
    .retry_initial_us = 100 * MS,
    .retry_min_us = 10 * MS,
    .retry_max_us = 1 * SEC,
    .dead_peer_us = 30 * SEC,
    .idle_timeout_us = 600 * SEC,
    .max_connections = 100,
    .max_saved_reply = PKT_MAX_DATAGRAM,
    .id_seed = 7,
};

/* The server's "disk": one buffer it fetches from and stores into. */
struct server_end {
    uint8_t *data;
    struct rpc2_se_desc desc;
    int64_t moved;
    int checks;
};
static struct server_end srv;
static struct fakelink link_;
static uint8_t *client_buf;
/* The named sum the next client descriptor asks for (setup clears it). */
static struct {
    int type;
    unsigned char expect[RPC2_SE_SUM_MAX];
    unsigned expect_len;
} next_sum;

static void fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)((i * 2654435761u + seed) >> 13);
}

/* ---- the server's handlers ---------------------------------------------- */

static void transfer_done(rpc2_request *req, int status, void *arg)
{
    int64_t *moved = arg;
    *moved = (int64_t)srv.desc.bytes_transferred;
    srv.moved = *moved;
    engine_reply(req, status, link_.now);
}

static void describe(const xfer_args *a, enum rpc2_se_direction dir)
{
    memset(&srv.desc, 0, sizeof srv.desc);
    srv.desc.type = RPC2_SE_SFTP;
    srv.desc.direction = dir;
    srv.desc.seek_offset = a->offset;
    srv.desc.quota = a->quota;
    srv.desc.file_kind = RPC2_SE_FILE_VM;
    srv.desc.file.vm.buf = srv.data;
    srv.desc.file.vm.len = SERVER_BYTES;
    srv.desc.file.vm.max = SERVER_BYTES;
}

static void run_side_effect(rpc2_request *req, void *result)
{
    srv.checks++;
    int rc = rpc2_se_init(req, &srv.desc);
    if (rc == 0)
        rc = rpc2_se_check_async(req, transfer_done, result);
    if (rc != 0)
        engine_reply(req, rc, link_.now);
}

static void h_fetch(rpc2_request *req, void *args, void *result, void *arg)
{
    describe(args, RPC2_SE_FETCH);
    run_side_effect(req, result);
}

static void h_store(rpc2_request *req, void *args, void *result, void *arg)
{
    describe(args, RPC2_SE_STORE);
    srv.desc.file.vm.len = 0;
    run_side_effect(req, result);
}

static const struct rpc2_proc procs[] = {
    {.proc = TEST_FETCH,
     .decode_args = (xdrproc_t)xdr_xfer_args,
     .args_size = sizeof(xfer_args),
     .encode_result = (xdrproc_t)xdr_quad_t,
     .result_size = sizeof(int64_t),
     .async_handler = h_fetch},
    {.proc = TEST_STORE,
     .decode_args = (xdrproc_t)xdr_xfer_args,
     .args_size = sizeof(xfer_args),
     .encode_result = (xdrproc_t)xdr_quad_t,
     .result_size = sizeof(int64_t),
     .async_handler = h_store},
};

/* ---- set-up ------------------------------------------------------------- */

static void setup(uint64_t seed, const struct rpc2_sftp_params *p)
{
    memset(&srv, 0, sizeof srv);
    memset(&next_sum, 0, sizeof next_sum);
    srv.data = malloc(SERVER_BYTES);
    client_buf = malloc(SERVER_BYTES);
    fill_pattern(srv.data, SERVER_BYTES, 1);
    fill_pattern(client_buf, SERVER_BYTES, 2);
    fakelink_init(&link_, seed);
    fakelink_add(&link_, &cfg, NULL, NULL);
    fakelink_add(&link_, &cfg, NULL, NULL);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(sftp_register(fakelink_engine(&link_, i), p), 0);
    ck_assert_int_eq(
        engine_export(fakelink_engine(&link_, NODE_SERVER), TEST_SUBSYS, procs, 2, NULL), 0);
}

static void teardown(void)
{
    /* Every datagram left whole: lent ones were not changed before they went. */
    ck_assert_uint_eq(link_.sent_broken, 0);
    fakelink_dispose(&link_);
    free(srv.data);
    free(client_buf);
}

static void faults(double loss, double dup, double reorder)
{
    for (int i = 0; i < 2; i++)
        link_.faults[i] = (struct fakelink_faults){
            .loss = loss, .dup = dup, .reorder = reorder, .delay_us = 200, .max_extra_us = 5000};
}

struct outcome {
    int done, status;
};

static void on_called(int status, void *result, void *arg)
{
    struct outcome *o = arg;
    o->done = 1, o->status = status;
}

static rpc2_conn *bind_sftp(void)
{
    struct engine_bind_args a = {.subsystem = TEST_SUBSYS, .se_type = RPC2_SE_SFTP};
    rpc2_conn *conn;

    ck_assert_int_eq(fakelink_bind(&link_, NODE_CLIENT, NODE_SERVER, &a, 60 * SEC, &conn), 0);
    return conn;
}

/* A call in flight with a memory descriptor on the client; returns what
 * engine_call did (an error: the call never went). */
struct pending {
    xfer_args args;
    int64_t moved;
    struct outcome outcome;
};

static int try_start(rpc2_conn *c, enum rpc2_se_direction dir, int64_t server_offset, int64_t quota,
                     size_t client_len, size_t client_max, struct rpc2_se_desc *d,
                     struct pending *p)
{
    memset(p, 0, sizeof *p);
    p->args = (xfer_args){.path = "", .offset = server_offset, .quota = -1};
    memset(d, 0, sizeof *d);
    d->type = RPC2_SE_SFTP;
    d->direction = dir;
    d->quota = quota;
    d->file_kind = RPC2_SE_FILE_VM;
    d->file.vm.buf = client_buf;
    d->file.vm.len = client_len;
    d->file.vm.max = client_max;
    d->sum_type = next_sum.type;
    memcpy(d->expect_sum, next_sum.expect, sizeof d->expect_sum);
    d->expect_sum_len = next_sum.expect_len;
    struct engine_call_args ca = {.proc = dir == RPC2_SE_FETCH ? TEST_FETCH : TEST_STORE,
                                  .encode_args = (xdrproc_t)xdr_xfer_args,
                                  .args = &p->args,
                                  .decode_result = (xdrproc_t)xdr_quad_t,
                                  .result = &p->moved,
                                  .se = d};
    return engine_call(c, &ca, on_called, &p->outcome, link_.now);
}

static void start(rpc2_conn *c, enum rpc2_se_direction dir, int64_t server_offset, int64_t quota,
                  size_t client_len, size_t client_max, struct rpc2_se_desc *d, struct pending *p)
{
    ck_assert_int_eq(try_start(c, dir, server_offset, quota, client_len, client_max, d, p), 0);
}

/* One whole call; returns its status. */
static int transfer(rpc2_conn *c, enum rpc2_se_direction dir, int64_t server_offset, int64_t quota,
                    size_t client_len, struct rpc2_se_desc *d)
{
    struct pending p;
    start(c, dir, server_offset, quota, client_len, SERVER_BYTES, d, &p);
    ck_assert_msg(fakelink_run(&link_, &p.outcome.done, link_.now + 600 * SEC),
                  "transfer never ended");
    return p.outcome.status;
}

static struct rpc2_sftp_stats stats(int node)
{
    struct rpc2_sftp_stats s;
    ck_assert_int_eq(sftp_stats_of(fakelink_engine(&link_, node), &s), 0);
    return s;
}

/* ---- tests -------------------------------------------------------------- */

/* Sizes around every boundary: empty, one byte, the piggyback limit, the
 * window (packet 1400 bytes x 16 packets here), and a few MiB. */
static const size_t sizes[] = {0, 1, 1000, 1001, 1400 * 16 - 1, 1400 * 16, 1400 * 16 + 1, 3u << 20};
#define N_SIZES (sizeof sizes / sizeof sizes[0])

static void small_params(struct rpc2_sftp_params *p)
{
    rpc2_sftp_params_init(p);
    p->packet_size = 1400;
    p->window = 16;
    p->piggyback_max = 1000;
}

START_TEST(fetch_every_size)
{
    struct rpc2_sftp_params p;
    small_params(&p);
    setup(100 + (uint64_t)_i, &p);
    if (_i % 2)
        faults(0.10, 0.05, 0.2);
    rpc2_conn *c = bind_sftp();
    for (size_t i = 0; i < N_SIZES; i++) {
        struct rpc2_se_desc d;
        memset(client_buf, 0xee, SERVER_BYTES);
        int64_t offset = (int64_t)(SERVER_BYTES - sizes[i]);
        ck_assert_int_eq(transfer(c, RPC2_SE_FETCH, offset, -1, 0, &d), 0);
        ck_assert_uint_eq(d.bytes_transferred, sizes[i]);
        ck_assert_uint_eq(d.file.vm.len, sizes[i]);
        ck_assert_int_eq(d.local_status, RPC2_SE_SUCCESS);
        ck_assert_int_eq(d.remote_status, RPC2_SE_SUCCESS);
        ck_assert_int_eq(memcmp(client_buf, srv.data + offset, sizes[i]), 0);
        ck_assert_int_eq(srv.moved, (int64_t)sizes[i]);
    }
    teardown();
}
END_TEST

START_TEST(store_every_size)
{
    struct rpc2_sftp_params p;
    small_params(&p);
    setup(200 + (uint64_t)_i, &p);
    if (_i % 2)
        faults(0.10, 0.05, 0.2);
    rpc2_conn *c = bind_sftp();
    for (size_t i = 0; i < N_SIZES; i++) {
        struct rpc2_se_desc d;
        fill_pattern(client_buf, sizes[i], (uint32_t)i + 9);
        memset(srv.data, 0, SERVER_BYTES);
        ck_assert_msg(transfer(c, RPC2_SE_STORE, 0, -1, sizes[i], &d) == 0, "size %zu: %s",
                      sizes[i], rpc2_strerror(d.error));
        ck_assert_uint_eq(d.bytes_transferred, sizes[i]);
        ck_assert_uint_eq(srv.desc.file.vm.len, sizes[i]);
        ck_assert_int_eq(memcmp(client_buf, srv.data, sizes[i]), 0);
    }
    teardown();
}
END_TEST

/* A piggybacked transfer is one CALL and one REPLY: no SFTP packet at all. */
START_TEST(piggyback_sends_no_sftp_packet)
{
    struct rpc2_sftp_params p;
    small_params(&p);
    setup(300, &p);
    rpc2_conn *c = bind_sftp();
    uint64_t sent_before = engine_stats(fakelink_engine(&link_, NODE_CLIENT))->packets_sent;
    struct rpc2_se_desc d;
    ck_assert_int_eq(transfer(c, RPC2_SE_FETCH, SERVER_BYTES - 500, -1, 0, &d), 0);
    fill_pattern(client_buf, 1000, 3);
    ck_assert_int_eq(transfer(c, RPC2_SE_STORE, 0, 1000, 1000, &d), 0);
    ck_assert_int_eq(memcmp(client_buf, srv.data, 1000), 0);
    for (int node = 0; node < 2; node++) {
        struct rpc2_sftp_stats s = stats(node);
        ck_assert_uint_eq(s.data_sent + s.acks_sent + s.starts_sent, 0);
        ck_assert_uint_eq(s.piggybacked, 2); /* the fetch's and the store's */
    }
    /* two calls, two packets from the client */
    ck_assert_uint_eq(
        engine_stats(fakelink_engine(&link_, NODE_CLIENT))->packets_sent - sent_before, 2);
    /* ... and with piggybacking off, the same fetch streams */
    teardown();
    p.piggyback = 0;
    setup(301, &p);
    c = bind_sftp();
    ck_assert_int_eq(transfer(c, RPC2_SE_FETCH, SERVER_BYTES - 10, -1, 0, &d), 0);
    ck_assert_uint_gt(stats(NODE_SERVER).data_sent, 0);
    ck_assert_uint_eq(stats(NODE_SERVER).piggybacked, 0);
    teardown();
}
END_TEST

START_TEST(quota_cuts_a_range)
{
    struct rpc2_sftp_params p;
    small_params(&p);
    setup(400, &p);
    rpc2_conn *c = bind_sftp();
    struct rpc2_se_desc d;
    ck_assert_int_eq(transfer(c, RPC2_SE_FETCH, 12345, 100000, 0, &d), 0);
    ck_assert_uint_eq(d.bytes_transferred, 100000);
    ck_assert(d.quota_exceeded);
    ck_assert_int_eq(memcmp(client_buf, srv.data + 12345, 100000), 0);
    ck_assert_int_eq(transfer(c, RPC2_SE_FETCH, 0, 0, 0, &d), 0);
    ck_assert_uint_eq(d.bytes_transferred, 0);
    teardown();
    p.strict_quota = 1;
    setup(401, &p);
    c = bind_sftp();
    ck_assert_int_ne(transfer(c, RPC2_SE_FETCH, 0, 5000, 0, &d), 0);
    ck_assert_int_eq(d.error, RPC2_EQUOTA);
    teardown();
}
END_TEST

START_TEST(memory_sink_too_small_fails_cleanly)
{
    struct rpc2_sftp_params p;
    small_params(&p);
    setup(500, &p);
    rpc2_conn *c = bind_sftp();
    struct rpc2_se_desc d;
    struct pending call;
    start(c, RPC2_SE_FETCH, 0, -1, 0, 50000, &d, &call);
    ck_assert(fakelink_run(&link_, &call.outcome.done, link_.now + 600 * SEC));
    struct outcome o = call.outcome;
    ck_assert_int_ne(o.status, 0);
    ck_assert_int_eq(d.error, RPC2_EOVERFLOW);
    ck_assert_int_eq(d.local_status, RPC2_SE_FAILURE);
    /* the connection is still usable */
    ck_assert_int_eq(transfer(c, RPC2_SE_FETCH, 0, 100, 0, &d), 0);
    teardown();
}
END_TEST

/* 30% loss both ways with duplicates and long reorderings: still exact. */
START_TEST(heavy_loss_still_exact)
{
    struct rpc2_sftp_params p;
    small_params(&p);
    p.window = 64;
    setup(600 + (uint64_t)_i, &p);
    faults(0.30, 0.10, 0.30);
    rpc2_conn *c = bind_sftp();
    struct rpc2_se_desc d;
    ck_assert_int_eq(transfer(c, _i % 2 ? RPC2_SE_STORE : RPC2_SE_FETCH, 0, 1u << 20, 1u << 20, &d),
                     0);
    ck_assert_uint_eq(d.bytes_transferred, 1u << 20);
    ck_assert_int_eq(memcmp(client_buf, srv.data, 1u << 20), 0);
    teardown();
}
END_TEST

/* The server vanishes mid-transfer: the client fails with the dead-peer
 * error after the configured silence, not a hang. */
START_TEST(server_gone_mid_transfer)
{
    struct rpc2_sftp_params p;
    small_params(&p);
    setup(700, &p);
    faults(0, 0, 0);
    for (int i = 0; i < 2; i++)
        link_.faults[i].delay_us = 2000; /* slow enough that 20 ms is mid-transfer */
    rpc2_conn *c = bind_sftp();
    struct rpc2_se_desc d;
    struct pending call;
    start(c, RPC2_SE_FETCH, 0, -1, 0, SERVER_BYTES, &d, &call);
    struct outcome *o = &call.outcome;
    fakelink_run(&link_, NULL, link_.now + 20 * MS);
    ck_assert(!o->done);
    fakelink_restart(&link_, NODE_SERVER, NULL, NULL, NULL);
    uint64_t from = link_.now;
    ck_assert(fakelink_run(&link_, &o->done, link_.now + 120 * SEC));
    ck_assert_int_eq(o->status, RPC2_EDEAD);
    ck_assert_uint_le(link_.now - from, cfg.dead_peer_us + 2 * SEC);
    ck_assert_int_eq(d.local_status, RPC2_SE_FAILURE);
    teardown();
}
END_TEST

/* ---- the named sum users compare (rpc2_se_desc.sum_type) ---------------- */

/* The sum as the coreutils tools compute it: OpenSSL's one-shot digest, or
 * xxHash's canonical XXH3-128; a reference beside the library's streaming. */
static unsigned reference_sum(int type, const uint8_t *data, size_t len, unsigned char *out)
{
    if (type == RPC2_SE_SUM_XXH128) {
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits(data, len));
        memcpy(out, c.digest, sizeof c.digest);
        return sizeof c.digest;
    }
    const EVP_MD *md = type == RPC2_SE_SUM_MD5    ? EVP_md5()
                       : type == RPC2_SE_SUM_SHA1 ? EVP_sha1()
                                                  : EVP_sha256();
    unsigned n = 0;
    ck_assert_int_eq(EVP_Digest(data, len, out, &n, md, NULL), 1);
    return n;
}

static void assert_sum(const struct rpc2_se_desc *d, int type, const uint8_t *data, size_t len)
{
    unsigned char want[RPC2_SE_SUM_MAX];
    unsigned n = reference_sum(type, data, len, want);
    ck_assert_int_eq(d->sum_type, type);
    ck_assert_uint_eq(d->sum_len, n);
    ck_assert_uint_eq(n, rpc2_se_sum_len(type));
    ck_assert_int_eq(memcmp(d->sum, want, n), 0);
}

static const int sum_types[] = {RPC2_SE_SUM_MD5, RPC2_SE_SUM_SHA1, RPC2_SE_SUM_SHA256,
                                RPC2_SE_SUM_XXH128};

/* Both ends report the sum of the bytes moved, piggybacked or streamed,
 * both ways, for ranges too; a loop of 1 runs it under loss. */
START_TEST(named_sum_both_ends)
{
    struct rpc2_sftp_params p;
    small_params(&p);
    setup(500 + (uint64_t)_i, &p);
    if (_i % 2)
        faults(0.10, 0.05, 0.2);
    rpc2_conn *c = bind_sftp();
    struct rpc2_se_desc plain; /* without a sum_type nothing extra is computed or reported */
    ck_assert_int_eq(transfer(c, RPC2_SE_FETCH, 0, 5000, 0, &plain), 0);
    ck_assert_uint_eq(plain.sum_len + srv.desc.sum_len, 0);
    ck_assert(plain.checksum_valid); /* the end-to-end XXH3-128 as ever */
    for (size_t i = 0; i < N_SIZES; i++) {
        int type = sum_types[i % 4];
        struct rpc2_se_desc d;
        struct pending pf, ps;
        int64_t offset = (int64_t)(SERVER_BYTES - sizes[i]) / 2;
        next_sum.type = type;
        start(c, RPC2_SE_FETCH, offset, (int64_t)sizes[i], 0, SERVER_BYTES, &d, &pf);
        ck_assert(fakelink_run(&link_, &pf.outcome.done, link_.now + 600 * SEC));
        ck_assert_msg(pf.outcome.status == 0, "fetch %zu: %s", sizes[i], rpc2_strerror(d.error));
        assert_sum(&d, type, srv.data + offset, sizes[i]);
        assert_sum(&srv.desc, type, srv.data + offset, sizes[i]);

        fill_pattern(client_buf, sizes[i], (uint32_t)i + 20);
        next_sum.type = sum_types[(i + 1) % 4];
        start(c, RPC2_SE_STORE, 0, -1, sizes[i], SERVER_BYTES, &d, &ps);
        ck_assert(fakelink_run(&link_, &ps.outcome.done, link_.now + 600 * SEC));
        ck_assert_msg(ps.outcome.status == 0, "store %zu: %s", sizes[i], rpc2_strerror(d.error));
        assert_sum(&d, sum_types[(i + 1) % 4], client_buf, sizes[i]);
        assert_sum(&srv.desc, sum_types[(i + 1) % 4], srv.data, sizes[i]);
    }
    teardown();
}
END_TEST

/* A sum that is not the expected one fails the transfer with
 * RPC2_EINTEGRITY at whichever end expected it: a fetching sink keeps
 * nothing valid, a storing source ends before the server's end succeeds.
 * Piggybacked (1000 bytes) and streamed (3 MiB). */
START_TEST(named_sum_mismatch_fails)
{
    struct rpc2_sftp_params p;
    small_params(&p);
    setup(520, &p);
    rpc2_conn *c = bind_sftp();
    static const size_t lens[] = {1000, 3u << 20};
    for (int dir = 0; dir < 2; dir++)
        for (size_t i = 0; i < 2; i++) {
            struct rpc2_se_desc d;
            struct pending pd;
            next_sum.type = RPC2_SE_SUM_SHA256;
            unsigned n = reference_sum(RPC2_SE_SUM_SHA256, dir ? client_buf : srv.data, lens[i],
                                       next_sum.expect);
            next_sum.expect[n - 1] ^= 1;
            next_sum.expect_len = n;
            int checks = srv.checks;
            int rc =
                try_start(c, dir ? RPC2_SE_STORE : RPC2_SE_FETCH, 0, dir ? -1 : (int64_t)lens[i],
                          dir ? lens[i] : 0, SERVER_BYTES, &d, &pd);
            ck_assert_int_eq(rpc2_se_desc_check(&d), 0);
            if (rc == 0) {
                ck_assert(fakelink_run(&link_, &pd.outcome.done, link_.now + 600 * SEC));
                ck_assert_int_ne(pd.outcome.status, 0);
                ck_assert_int_eq(d.error, RPC2_EINTEGRITY);
                ck_assert_int_eq(d.local_status, RPC2_SE_FAILURE);
                /* the sum reported is the real one, which is what differed */
                assert_sum(&d, RPC2_SE_SUM_SHA256, dir ? client_buf : srv.data, lens[i]);
            } else { /* a piggybacked store that is not the data: never sent */
                ck_assert_int_eq(rc, RPC2_EINTEGRITY);
                ck_assert(dir && lens[i] <= p.piggyback_max);
                ck_assert_int_eq(srv.checks, checks);
            }
            if (dir)
                ck_assert_int_ne(srv.desc.local_status, RPC2_SE_SUCCESS);
        }
    teardown();
}
END_TEST

START_TEST(named_sum_types_checked)
{
    struct rpc2_se_desc d = RPC2_SE_DESC_INIT(RPC2_SE_FETCH);
    d.file_kind = RPC2_SE_FILE_VM;
    d.file.vm.buf = srv.data;
    d.sum_type = 5; /* no such sum */
    ck_assert_int_eq(rpc2_se_desc_check(&d), RPC2_EINVAL);
    d.sum_type = -1;
    ck_assert_int_eq(rpc2_se_desc_check(&d), RPC2_EINVAL);
    d.sum_type = RPC2_SE_SUM_MD5;
    ck_assert_int_eq(rpc2_se_desc_check(&d), 0);
    d.expect_sum_len = 32; /* an md5 is 16 bytes */
    ck_assert_int_eq(rpc2_se_desc_check(&d), RPC2_EINVAL);
    d.sum_type = 0;
    d.expect_sum_len = 16; /* an expected sum of no type */
    ck_assert_int_eq(rpc2_se_desc_check(&d), RPC2_EINVAL);
    ck_assert_str_eq(rpc2_se_sum_name(RPC2_SE_SUM_SHA256), "sha256");
    ck_assert_ptr_null(rpc2_se_sum_name(0));
    ck_assert_int_eq(rpc2_se_sum_parse("SHA1"), RPC2_SE_SUM_SHA1);
    ck_assert_int_eq(rpc2_se_sum_parse("crc32"), RPC2_EINVAL);
    char hex[8];
    d.sum_type = RPC2_SE_SUM_MD5;
    d.sum_len = 16;
    ck_assert_int_eq(rpc2_se_sum_hex(&d, hex, sizeof hex), RPC2_EINVAL); /* no room */
}
END_TEST

/* Off loopback, a DATA datagram at the default packet size goes whole
 * through a 1500-byte MTU at every security level, over IPv6 too (1400
 * bytes of data made 1456- to 1472-byte datagrams: every one fragmented
 * on IPv6). The addresses are values here, never used on a network. */
START_TEST(wan_data_fits_an_ipv6_mtu)
{
    struct rpc2_sftp_params p;
    struct rpc2_addr peer = {0};
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&peer.ss;
    uint32_t packet;

    rpc2_sftp_params_init(&p);
    sin6->sin6_family = AF_INET6;
    ck_assert_int_eq(inet_pton(AF_INET6, "2001:db8::1", &sin6->sin6_addr), 1);
    peer.len = sizeof *sin6;
    packet = sftp_choose_packet_size(&p, &peer);
    ck_assert_uint_le(PKT_HDR_SIZE + SFTP_DATA_HEAD + packet + PKT_MAX_TRAILER, 1500 - 40 - 8);
    ck_assert_uint_ge(packet, 1300); /* and not needlessly small */
    ck_assert_int_eq(inet_pton(AF_INET6, "::1", &sin6->sin6_addr), 1);
    ck_assert_uint_gt(sftp_choose_packet_size(&p, &peer), 60000); /* loopback's stay large */
}
END_TEST

static Suite *sftp_suite(void)
{
    Suite *s = suite_create("sftp");
    TCase *t = tcase_create("transfers");
    tcase_set_timeout(t, 120);
    tcase_add_loop_test(t, fetch_every_size, 0, 2);
    tcase_add_loop_test(t, store_every_size, 0, 2);
    tcase_add_test(t, piggyback_sends_no_sftp_packet);
    tcase_add_test(t, quota_cuts_a_range);
    tcase_add_test(t, memory_sink_too_small_fails_cleanly);
    tcase_add_loop_test(t, heavy_loss_still_exact, 0, 4);
    tcase_add_test(t, server_gone_mid_transfer);
    tcase_add_loop_test(t, named_sum_both_ends, 0, 2);
    tcase_add_test(t, named_sum_mismatch_fails);
    tcase_add_test(t, named_sum_types_checked);
    tcase_add_test(t, wan_data_fits_an_ipv6_mtu);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return check_run(sftp_suite());
}
