/*
 * test_seblock.c - the SFTP blocks of CALL and REPLY: round trips, and
 * every malformed form refused (a truncation at any length, unknown values,
 * data without its flag, trailing bytes).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <rpc2/rpc2.h>

#include "seblock.h"
#include "check_run.h"

static size_t encode_call(const struct seblock_call *b, uint8_t *buf, size_t cap)
{
    struct pkt_writer w;
    pkt_writer_init(&w, buf, cap);
    seblock_call_encode(b, &w);
    ck_assert(!w.failed);
    return (size_t)(w.p - buf);
}

static size_t encode_reply(const struct seblock_reply *b, uint8_t *buf, size_t cap)
{
    struct pkt_writer w;
    pkt_writer_init(&w, buf, cap);
    seblock_reply_encode(b, &w);
    ck_assert(!w.failed);
    return (size_t)(w.p - buf);
}

static const uint8_t data[] = "some bytes";

START_TEST(call_round_trip_and_truncations)
{
    struct seblock_call in = {.direction = 2, .flags = SEBLOCK_PIGGY | SEBLOCK_STRICT,
                              .quota = 1ll << 40, .packet_size = 1400, .window = 512,
                              .piggyback_max = 0, .data = data, .data_len = sizeof data};
    struct seblock_call out;
    uint8_t buf[128];
    size_t len = encode_call(&in, buf, sizeof buf);
    ck_assert_int_eq(seblock_call_decode(buf, len, &out), PKT_OK);
    ck_assert_int_eq(out.quota, 1ll << 40);
    ck_assert_uint_eq(out.data_len, sizeof data);
    ck_assert_mem_eq(out.data, data, sizeof data);
    for (size_t cut = 0; cut < len; cut++)
        ck_assert_int_ne(seblock_call_decode(buf, cut, &out), PKT_OK);
    uint8_t longer[132];
    memcpy(longer, buf, len);
    memset(longer + len, 0, 4);
    ck_assert_int_eq(seblock_call_decode(longer, len + 4, &out), PKT_ELENGTH);
}
END_TEST

/* Each row breaks one field of a valid CALL block. */
START_TEST(call_refusals)
{
    static const struct {
        uint32_t direction, flags;
        int64_t quota;
        uint32_t data_len;
    } rows[] = {
        {0, 0, -1, 0},                 /* no direction */
        {3, 0, -1, 0},                 /* unknown direction */
        {1, 0x10, -1, 0},              /* unknown flag */
        {1, SEBLOCK_QUOTA_HIT, -1, 0}, /* a REPLY flag in a CALL */
        {1, 0, -2, 0},                 /* quota below -1 */
        {2, 0, -1, 4},                 /* data without PIGGY */
        {1, SEBLOCK_PIGGY, -1, 4},     /* a fetch carrying data (a store's flag) */
        {2, SEBLOCK_PIGGY_OK, -1, 0},  /* a store taking data in the reply */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct seblock_call in = {.direction = rows[i].direction, .flags = rows[i].flags,
                                  .quota = rows[i].quota, .packet_size = 1400, .window = 8,
                                  .data = data, .data_len = rows[i].data_len};
        struct seblock_call out;
        uint8_t buf[128];
        size_t len = encode_call(&in, buf, sizeof buf);
        ck_assert_msg(seblock_call_decode(buf, len, &out) != PKT_OK, "row %zu accepted", i);
    }
}
END_TEST

START_TEST(reply_round_trip_and_refusals)
{
    uint8_t sum[16] = {1, 2, 3};
    struct seblock_reply in = {.status = RPC2_ENOSPC, .bytes = 5ull << 30,
                               .flags = SEBLOCK_QUOTA_HIT, .checksum = sum, .checksum_len = 16};
    struct seblock_reply out;
    uint8_t buf[128];
    size_t len = encode_reply(&in, buf, sizeof buf);
    ck_assert_int_eq(seblock_reply_decode(buf, len, &out), PKT_OK);
    ck_assert_int_eq(out.status, RPC2_ENOSPC);
    ck_assert_uint_eq(out.bytes, 5ull << 30);
    ck_assert_uint_eq(out.checksum_len, 16);
    for (size_t cut = 0; cut < len; cut++)
        ck_assert_int_ne(seblock_reply_decode(buf, cut, &out), PKT_OK);
    in.status = 7; /* a server's end fails with an rpc2 error, never a positive one */
    len = encode_reply(&in, buf, sizeof buf);
    ck_assert_int_ne(seblock_reply_decode(buf, len, &out), PKT_OK);
    in.status = 0;
    in.flags = SEBLOCK_PIGGY_OK; /* a CALL flag */
    len = encode_reply(&in, buf, sizeof buf);
    ck_assert_int_ne(seblock_reply_decode(buf, len, &out), PKT_OK);
    in.flags = 0;
    in.data = data;
    in.data_len = 3; /* data without PIGGY */
    len = encode_reply(&in, buf, sizeof buf);
    ck_assert_int_ne(seblock_reply_decode(buf, len, &out), PKT_OK);
    in.checksum_len = 17; /* longer than the field's bound */
    in.data_len = 0;
    uint8_t big[32] = {0};
    in.checksum = big;
    len = encode_reply(&in, buf, sizeof buf);
    ck_assert_int_ne(seblock_reply_decode(buf, len, &out), PKT_OK);
}
END_TEST

/* The source info rides at the end of a store's CALL and of a REPLY, with
 * its flag only, and nothing a mode or a time cannot be gets through. */
START_TEST(source_info)
{
    struct seblock_info info = {.size = 123456789012ull, .mode = 0640, .mtime_sec = -5,
                                .mtime_nsec = 999999999};
    struct seblock_call call = {.direction = 2, .flags = SEBLOCK_SOURCE_INFO, .quota = -1,
                                .packet_size = 1400, .window = 64, .info = info};
    struct seblock_reply reply = {.flags = SEBLOCK_SOURCE_INFO, .bytes = 7, .info = info};
    struct seblock_call cout;
    struct seblock_reply rout;
    uint8_t buf[128];
    size_t len = encode_call(&call, buf, sizeof buf);

    ck_assert_int_eq(seblock_call_decode(buf, len, &cout), PKT_OK);
    ck_assert_uint_eq(cout.info.size, info.size);
    ck_assert_uint_eq(cout.info.mode, 0640);
    ck_assert_int_eq(cout.info.mtime_sec, -5);
    ck_assert_uint_eq(cout.info.mtime_nsec, 999999999);
    for (size_t cut = 0; cut < len; cut++)
        ck_assert_int_ne(seblock_call_decode(buf, cut, &cout), PKT_OK);
    call.direction = 1; /* a fetch's client has no source to tell of */
    len = encode_call(&call, buf, sizeof buf);
    ck_assert_int_eq(seblock_call_decode(buf, len, &cout), PKT_EFLAGS);
    len = encode_reply(&reply, buf, sizeof buf);
    ck_assert_int_eq(seblock_reply_decode(buf, len, &rout), PKT_OK);
    ck_assert_uint_eq(rout.info.size, info.size);
    ck_assert_uint_eq(rout.info.mode, 0640);
    reply.info.mode = 010000;
    len = encode_reply(&reply, buf, sizeof buf);
    ck_assert_int_eq(seblock_reply_decode(buf, len, &rout), PKT_EFLAGS);
    reply.info.mode = 0640;
    reply.info.mtime_nsec = 1000000000;
    len = encode_reply(&reply, buf, sizeof buf);
    ck_assert_int_eq(seblock_reply_decode(buf, len, &rout), PKT_EFLAGS);
    reply.flags = 0; /* without the flag, no info is written */
    len = encode_reply(&reply, buf, sizeof buf);
    ck_assert_uint_eq(len, 24);
}
END_TEST

/* A fetch's client sink offers its restart point at the end of the CALL:
 * read back whole; refused in a store, without RESUME, or cut short. */
START_TEST(restart_point)
{
    struct seblock_call call = {.direction = 1, .flags = SEBLOCK_RESUME | SEBLOCK_RESTART,
                                .quota = -1, .packet_size = 1400, .window = 64,
                                .restart = 0x1234567890ull};
    struct seblock_call out;
    uint8_t buf[128];
    size_t len;

    for (unsigned i = 0; i < SEBLOCK_CHECKSUM_MAX; i++)
        call.restart_sum[i] = (uint8_t)(i * 17 + 3);
    len = encode_call(&call, buf, sizeof buf);
    ck_assert_int_eq(seblock_call_decode(buf, len, &out), PKT_OK);
    ck_assert_uint_eq(out.restart, call.restart);
    ck_assert_mem_eq(out.restart_sum, call.restart_sum, SEBLOCK_CHECKSUM_MAX);
    ck_assert_uint_le(len, 36 + SEBLOCK_RESTART_SIZE);
    for (size_t cut = 0; cut < len; cut++)
        ck_assert_int_ne(seblock_call_decode(buf, cut, &out), PKT_OK);
    call.flags = SEBLOCK_RESTART; /* a point for a server that was not told of resume */
    len = encode_call(&call, buf, sizeof buf);
    ck_assert_int_eq(seblock_call_decode(buf, len, &out), PKT_EFLAGS);
    call.flags = SEBLOCK_RESUME | SEBLOCK_RESTART;
    call.direction = 2; /* a store's client is the source: it has no point to offer */
    len = encode_call(&call, buf, sizeof buf);
    ck_assert_int_eq(seblock_call_decode(buf, len, &out), PKT_EFLAGS);
    call.direction = 1;
    call.restart = 1ull << 63;
    len = encode_call(&call, buf, sizeof buf);
    ck_assert_int_eq(seblock_call_decode(buf, len, &out), PKT_EFLAGS);
    call.flags = SEBLOCK_RESUME; /* RESUME alone: no point follows */
    len = encode_call(&call, buf, sizeof buf);
    ck_assert_int_eq(seblock_call_decode(buf, len, &out), PKT_OK);
    ck_assert_uint_eq(len, 36);
}
END_TEST

/* The named sum: round trips in both blocks; an unknown type, a value of
 * another length, or a CALL value without the data it is the sum of are
 * refused, and an old block (no flag) decodes with no type. */
START_TEST(named_sum)
{
    static const uint8_t md5[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    struct seblock_call in = {.direction = 2, .flags = SEBLOCK_PIGGY | SEBLOCK_NAMED_SUM,
                              .quota = -1, .packet_size = 1400, .window = 8, .data = data,
                              .data_len = sizeof data, .sum_type = RPC2_SE_SUM_MD5,
                              .named_sum = md5, .named_sum_len = 16};
    struct seblock_call out;
    uint8_t buf[256];
    size_t len = encode_call(&in, buf, sizeof buf);
    ck_assert_int_eq(seblock_call_decode(buf, len, &out), PKT_OK);
    ck_assert_uint_eq(out.sum_type, RPC2_SE_SUM_MD5);
    ck_assert_uint_eq(out.named_sum_len, 16);
    ck_assert_mem_eq(out.named_sum, md5, 16);
    for (size_t cut = 0; cut < len; cut++)
        ck_assert_int_ne(seblock_call_decode(buf, cut, &out), PKT_OK);
    in.named_sum_len = 12; /* not an md5's length */
    ck_assert_int_eq(seblock_call_decode(buf, encode_call(&in, buf, sizeof buf), &out), PKT_EFLAGS);
    in.named_sum_len = 16;
    in.sum_type = 9; /* no such type */
    ck_assert_int_eq(seblock_call_decode(buf, encode_call(&in, buf, sizeof buf), &out), PKT_EFLAGS);
    in = (struct seblock_call){.direction = 1, .flags = SEBLOCK_NAMED_SUM, .quota = -1,
                               .packet_size = 1400, .window = 8, .sum_type = RPC2_SE_SUM_SHA256,
                               .named_sum = md5, .named_sum_len = 16};
    ck_assert_int_eq(seblock_call_decode(buf, encode_call(&in, buf, sizeof buf), &out), PKT_EFLAGS);
    in.named_sum_len = 0; /* a fetch asks, with no value */
    ck_assert_int_eq(seblock_call_decode(buf, encode_call(&in, buf, sizeof buf), &out), PKT_OK);
    ck_assert_uint_eq(out.sum_type, RPC2_SE_SUM_SHA256);
    ck_assert_uint_eq(out.named_sum_len, 0);
    in.flags = 0; /* an older client's block */
    ck_assert_int_eq(seblock_call_decode(buf, encode_call(&in, buf, sizeof buf), &out), PKT_OK);
    ck_assert_uint_eq(out.sum_type, 0);

    struct seblock_reply r = {.flags = SEBLOCK_NAMED_SUM, .sum_type = RPC2_SE_SUM_MD5,
                              .named_sum = md5, .named_sum_len = 16};
    struct seblock_reply rout;
    len = encode_reply(&r, buf, sizeof buf);
    ck_assert_int_eq(seblock_reply_decode(buf, len, &rout), PKT_OK);
    ck_assert_uint_eq(rout.sum_type, RPC2_SE_SUM_MD5);
    ck_assert_mem_eq(rout.named_sum, md5, 16);
    r.named_sum_len = 0; /* the server's end failed: the type, no value */
    ck_assert_int_eq(seblock_reply_decode(buf, encode_reply(&r, buf, sizeof buf), &rout), PKT_OK);
    r.sum_type = 0;
    ck_assert_int_eq(seblock_reply_decode(buf, encode_reply(&r, buf, sizeof buf), &rout),
                     PKT_EFLAGS);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("seblock");
    TCase *t = tcase_create("seblock");
    tcase_add_test(t, call_round_trip_and_truncations);
    tcase_add_test(t, call_refusals);
    tcase_add_test(t, reply_round_trip_and_refusals);
    tcase_add_test(t, source_info);
    tcase_add_test(t, restart_point);
    tcase_add_test(t, named_sum);
    suite_add_tcase(s, t);
    return check_run(s);
}
