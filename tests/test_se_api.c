/*
 * test_se_api.c - the side-effect API as a newcomer uses it, end to end in
 * memory (two engines on the fake link, the SFTP type on both): a
 * descriptor made by the init helper moves the whole file; quota 0 moves
 * nothing and says so; a fetch into memory of a size nobody told the
 * client lands in a buffer the library grows (empty, one byte, piggybacked,
 * streamed over several MiB), bounded by its max; and a call's one int
 * taken apart into application status and library error.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <rpc2/se.h>
#include <rpc2/sftp.h>

#include "fakelink.h"
#include "sftp_type.h"
#include "testproto.h"
#include "check_run.h"

#define MS 1000ull
#define SEC 1000000ull
#define SERVER_BYTES (5u << 20)

enum { NODE_CLIENT = 0, NODE_SERVER = 1 };

static const struct engine_config cfg = {
    .retry_initial_us = 100 * MS,
    .retry_min_us = 10 * MS,
    .retry_max_us = 1 * SEC,
    .dead_peer_us = 30 * SEC,
    .idle_timeout_us = 600 * SEC,
    .max_connections = 100,
    .max_saved_reply = PKT_MAX_DATAGRAM,
    .id_seed = 11,
};

/* The server's file: SERVER_BYTES in memory; a fetch sends from the
 * offset the arguments name, so the client gets SERVER_BYTES - offset. */
static uint8_t *server_data;
static struct rpc2_se_desc server_desc;
static struct fakelink link_;

static void transfer_done(rpc2_request *req, int status, void *arg)
{
    *(int64_t *)arg = (int64_t)server_desc.bytes_transferred;
    engine_reply(req, status, link_.now);
}

static void h_fetch(rpc2_request *req, void *args, void *result, void *arg)
{
    const xfer_args *a = args;

    (void)arg;
    rpc2_se_desc_init(&server_desc, RPC2_SE_FETCH);
    server_desc.seek_offset = a->offset;
    server_desc.file_kind = RPC2_SE_FILE_VM;
    server_desc.file.vm.buf = server_data;
    server_desc.file.vm.len = SERVER_BYTES;
    int rc = rpc2_se_init(req, &server_desc);
    if (rc == 0)
        rc = rpc2_se_check_async(req, transfer_done, result);
    if (rc != 0)
        engine_reply(req, rc, link_.now);
}

static const struct rpc2_proc procs[] = {
    {.proc = TEST_FETCH,
     .decode_args = (xdrproc_t)xdr_xfer_args,
     .args_size = sizeof(xfer_args),
     .encode_result = (xdrproc_t)xdr_quad_t,
     .result_size = sizeof(int64_t),
     .async_handler = h_fetch},
};

struct outcome {
    int done, status;
};

static void on_called(int status, void *result, void *arg)
{
    struct outcome *o = arg;

    (void)result;
    o->done = 1, o->status = status;
}

static rpc2_conn *setup(void)
{
    struct rpc2_sftp_params p;
    rpc2_conn *conn;
    struct engine_bind_args a = {.subsystem = TEST_SUBSYS, .se_type = RPC2_SE_SFTP};

    server_data = malloc(SERVER_BYTES);
    ck_assert_ptr_nonnull(server_data);
    for (size_t i = 0; i < SERVER_BYTES; i++)
        server_data[i] = (uint8_t)((i * 2654435761u) >> 13);
    rpc2_sftp_params_init(&p);
    p.packet_size = 1400;
    p.window = 32;
    p.piggyback_max = 1000;
    fakelink_init(&link_, 5);
    fakelink_add(&link_, &cfg, NULL, NULL);
    fakelink_add(&link_, &cfg, NULL, NULL);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(sftp_register(fakelink_engine(&link_, i), &p), 0);
    ck_assert_int_eq(
        engine_export(fakelink_engine(&link_, NODE_SERVER), TEST_SUBSYS, procs, 1, NULL), 0);
    ck_assert_int_eq(fakelink_bind(&link_, NODE_CLIENT, NODE_SERVER, &a, 60 * SEC, &conn), 0);
    return conn;
}

static void teardown(void)
{
    fakelink_dispose(&link_);
    free(server_data);
}

/* Fetches the server's last `size` bytes into d; returns the call's status. */
static int fetch_last(rpc2_conn *c, size_t size, struct rpc2_se_desc *d)
{
    xfer_args args = {.path = "", .offset = SERVER_BYTES - size, .quota = -1};
    int64_t moved = 0;
    struct outcome o = {0};
    struct engine_call_args ca = {.proc = TEST_FETCH,
                                  .encode_args = (xdrproc_t)xdr_xfer_args,
                                  .args = &args,
                                  .decode_result = (xdrproc_t)xdr_quad_t,
                                  .result = &moved,
                                  .se = d};

    ck_assert_int_eq(engine_call(c, &ca, on_called, &o, link_.now), 0);
    ck_assert_msg(fakelink_run(&link_, &o.done, link_.now + 600 * SEC), "fetch never ended");
    return o.status;
}

static int same_as_server_tail(const void *buf, size_t size)
{
    return size == 0 || memcmp(buf, server_data + SERVER_BYTES - size, size) == 0;
}

/* A descriptor zeroed, then given to the init helper: the whole file. */
START_TEST(the_init_helper_means_the_whole_file)
{
    rpc2_conn *c = setup();
    size_t size = 3u << 20;
    uint8_t *buf = malloc(SERVER_BYTES);
    struct rpc2_se_desc d;

    memset(&d, 0, sizeof d);
    rpc2_se_desc_init(&d, RPC2_SE_FETCH);
    ck_assert_int_eq(d.quota, RPC2_SE_NO_QUOTA);
    d.file_kind = RPC2_SE_FILE_VM;
    d.file.vm.buf = buf;
    d.file.vm.max = SERVER_BYTES;
    ck_assert_int_eq(fetch_last(c, size, &d), 0);
    ck_assert_uint_eq(d.bytes_transferred, size);
    ck_assert_uint_eq(d.file.vm.len, size);
    ck_assert(!d.quota_exceeded);
    ck_assert(same_as_server_tail(buf, size));

    struct rpc2_se_desc m = RPC2_SE_DESC_INIT(RPC2_SE_FETCH); /* the macro: the same */
    ck_assert_int_eq(m.type, RPC2_SE_SFTP);
    ck_assert_int_eq(m.quota, RPC2_SE_NO_QUOTA);
    ck_assert_int_eq(m.seek_offset, 0);
    free(buf);
    teardown();
}
END_TEST

/* Quota 0 is an empty range, as documented: nothing moves, the call
 * succeeds, and quota_exceeded tells that the file had more. */
START_TEST(quota_zero_moves_nothing_and_says_so)
{
    rpc2_conn *c = setup();
    uint8_t buf[16];
    struct rpc2_se_desc d = {.type = RPC2_SE_SFTP,
                             .direction = RPC2_SE_FETCH,
                             .file_kind = RPC2_SE_FILE_VM,
                             .file.vm = {.buf = buf, .max = 16}};

    ck_assert_int_eq(d.quota, 0); /* what a descriptor written without .quota says */
    ck_assert_int_eq(fetch_last(c, 5000, &d), 0);
    ck_assert_uint_eq(d.bytes_transferred, 0);
    ck_assert(d.quota_exceeded);
    teardown();
}
END_TEST

/* Empty, one byte, piggybacked (under 1000 bytes here), exactly a window,
 * streamed over several MiB: the library's buffer holds each, exactly. */
START_TEST(a_fetch_of_unknown_size_grows_the_buffer)
{
    static const size_t sizes[] = {0, 1, 999, 1400 * 32, (4u << 20) + 7};
    rpc2_conn *c = setup();

    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        struct rpc2_se_desc d = RPC2_SE_DESC_INIT(RPC2_SE_FETCH);

        d.file_kind = RPC2_SE_FILE_VM;
        d.file.vm.grow = 1; /* buf NULL, max 0: the size is the server's business */
        ck_assert_msg(fetch_last(c, sizes[i], &d) == 0, "%zu bytes", sizes[i]);
        ck_assert_uint_eq(d.file.vm.len, sizes[i]);
        ck_assert_uint_eq(d.bytes_transferred, sizes[i]);
        ck_assert_uint_ge(d.file.vm.cap, d.file.vm.len);
        ck_assert_msg(same_as_server_tail(d.file.vm.buf, sizes[i]), "%zu bytes differ", sizes[i]);
        rpc2_se_vm_free(&d);
        ck_assert_ptr_null(d.file.vm.buf);
        ck_assert_uint_eq(d.file.vm.len, 0);
    }
    teardown();
}
END_TEST

/* max bounds the growth: more is RPC2_EOVERFLOW, the connection goes on,
 * and what was allocated is still the caller's to free. */
START_TEST(a_growing_buffer_stops_at_its_max)
{
    rpc2_conn *c = setup();
    struct rpc2_se_desc d = RPC2_SE_DESC_INIT(RPC2_SE_FETCH);

    d.file_kind = RPC2_SE_FILE_VM;
    d.file.vm.grow = 1;
    d.file.vm.max = 100000;
    ck_assert_int_ne(fetch_last(c, 1u << 20, &d), 0);
    ck_assert_int_eq(d.error, RPC2_EOVERFLOW);
    ck_assert_int_eq(d.local_status, RPC2_SE_FAILURE);
    ck_assert_uint_le(d.file.vm.cap, 100000);
    rpc2_se_vm_free(&d);
    ck_assert_ptr_null(d.file.vm.buf);

    d = (struct rpc2_se_desc)RPC2_SE_DESC_INIT(RPC2_SE_FETCH);
    d.file_kind = RPC2_SE_FILE_VM;
    d.file.vm.grow = 1;
    d.file.vm.max = 100000;
    ck_assert_int_eq(fetch_last(c, 100000, &d), 0); /* exactly max fits */
    ck_assert(same_as_server_tail(d.file.vm.buf, 100000));
    rpc2_se_vm_free(&d);
    teardown();
}
END_TEST

START_TEST(a_call_status_comes_apart)
{
    ck_assert_int_eq(rpc2_app_status(0), 0);
    ck_assert_int_eq(rpc2_lib_error(0), 0);
    ck_assert_int_eq(rpc2_app_status(7), 7);
    ck_assert_int_eq(rpc2_lib_error(7), 0);
    ck_assert_int_eq(rpc2_app_status(RPC2_EDEAD), 0);
    ck_assert_int_eq(rpc2_lib_error(RPC2_EDEAD), RPC2_EDEAD);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("se_api");
    TCase *t = tcase_create("api");

    tcase_set_timeout(t, 60);
    tcase_add_test(t, the_init_helper_means_the_whole_file);
    tcase_add_test(t, quota_zero_moves_nothing_and_says_so);
    tcase_add_test(t, a_fetch_of_unknown_size_grows_the_buffer);
    tcase_add_test(t, a_growing_buffer_stops_at_its_max);
    tcase_add_test(t, a_call_status_comes_apart);
    suite_add_tcase(s, t);
    return check_run(s);
}
