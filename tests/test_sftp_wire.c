/*
 * test_sftp_wire.c - the SFTP body codecs: every message survives a round
 * trip, and every truncated, padded, over-long or out-of-range form is
 * refused with its reason, so a hostile packet never reaches a machine.
 */
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "wire.h"
#include "check_run.h"

#include <rpc2/rpc2.h>

/* ---- DATA ---------------------------------------------------------------- */

START_TEST(data_round_trip)
{
    static const uint32_t lens[] = {0, 1, 3, 4, 1400, SFTP_MAX_PACKET};
    static const uint32_t flags[] = {0, SFTP_DATA_LAST, SFTP_DATA_ACKME,
                                     SFTP_DATA_LAST | SFTP_DATA_ACKME};
    uint8_t *body = malloc(PKT_MAX_BODY);
    size_t i, j;

    for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
        for (j = 0; j < sizeof(flags) / sizeof(flags[0]); j++) {
            struct sftp_data d;
            uint8_t *data = sftp_data_encode(body, PKT_MAX_BODY, flags[j], 7, lens[i]);

            ck_assert_ptr_nonnull(data);
            ck_assert_ptr_eq(data, body + SFTP_DATA_HEAD);
            memset(data, 0x5a, lens[i]);
            ck_assert_int_eq(sftp_data_decode(body, SFTP_DATA_HEAD + lens[i], &d), PKT_OK);
            ck_assert_uint_eq(d.flags, flags[j]);
            ck_assert_uint_eq(d.len, lens[i]);
            if (lens[i] == 0)
                ck_assert_ptr_null(d.bytes);
            else
                ck_assert_ptr_eq(d.bytes, data);
        }
    free(body);
}
END_TEST

START_TEST(data_refusals)
{
    uint8_t body[20] = {0, 0, 0, 1, 0, 0, 0, 9, 'x'};
    struct sftp_data d;
    size_t n;

    for (n = 0; n < SFTP_DATA_HEAD; n++)
        ck_assert_int_eq(sftp_data_decode(body, n, &d), PKT_ESHORT);
    ck_assert_int_eq(sftp_data_decode(NULL, 0, &d), PKT_ESHORT);
    ck_assert_int_eq(sftp_data_decode(body, 9, &d), PKT_OK);
    ck_assert_uint_eq(d.tx, 9);
    body[3] = 0x20; /* an unknown flag */
    ck_assert_int_eq(sftp_data_decode(body, 9, &d), PKT_EFLAGS);
    body[3] = 0;
    body[0] = 0x80;
    ck_assert_int_eq(sftp_data_decode(body, 9, &d), PKT_EFLAGS);
    ck_assert_uint_eq(d.len, 0);
    /* The encoder refuses what the decoder would. */
    ck_assert_ptr_null(sftp_data_encode(body, sizeof(body), 0x20, 7, 1));
    ck_assert_ptr_null(sftp_data_encode(body, sizeof(body), 0, 7, 13));
    ck_assert_ptr_nonnull(sftp_data_encode(body, sizeof(body), 0, 7, 12));
    ck_assert_ptr_null(sftp_data_encode(body, 3, 0, 7, 0));
    ck_assert_ptr_null(sftp_data_encode(body, (size_t)-1, 0, 7, SFTP_MAX_PACKET + 1));
}
END_TEST

/* ---- ACK ----------------------------------------------------------------- */

static size_t encode_ack(uint32_t gta, uint64_t delivered, const uint8_t *bitmap, uint32_t len,
                         uint8_t *body, size_t cap)
{
    struct sftp_ack a = {
        .got_them_all = gta, .window_end = gta + 64, .delivered = delivered, .bitmap = bitmap,
        .bitmap_len = len};
    size_t out;

    ck_assert_int_eq(sftp_ack_encode(&a, body, cap, &out), PKT_OK);
    return out;
}

START_TEST(ack_round_trip)
{
    static const uint32_t lens[] = {0, 1, 3, 4, 5, 8, 1000, SFTP_MAX_BITMAP};
    uint8_t bitmap[SFTP_MAX_BITMAP], body[SFTP_MAX_ACK];
    size_t i, out;

    for (i = 0; i < sizeof(bitmap); i++)
        bitmap[i] = (uint8_t)(i * 7 + 1);
    for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        struct sftp_ack a;

        out = encode_ack(0xfffe0000u, 0x123456789abull, bitmap, lens[i], body, sizeof(body));
        ck_assert_uint_eq(out, SFTP_ACK_HEAD + ((lens[i] + 3) & ~3u));
        ck_assert_int_eq(sftp_ack_decode(body, out, &a), PKT_OK);
        ck_assert_uint_eq(a.got_them_all, 0xfffe0000u);
        ck_assert_uint_eq(a.delivered, 0x123456789abull);
        ck_assert_uint_eq(a.bitmap_len, lens[i]);
        if (lens[i] > 0)
            ck_assert_mem_eq(a.bitmap, bitmap, lens[i]);
    }
}
END_TEST

START_TEST(ack_highest_and_room)
{
    uint8_t bitmap[3] = {0x01, 0x00, 0x80};
    struct sftp_ack a = {.got_them_all = 10, .window_end = 10, .bitmap = bitmap};

    ck_assert_uint_eq(sftp_ack_highest(&a), 10);
    a.bitmap_len = 1; /* bit 0: seq 12 */
    ck_assert_uint_eq(sftp_ack_highest(&a), 12);
    a.bitmap_len = 3; /* bit 23: seq 35 */
    ck_assert_uint_eq(sftp_ack_highest(&a), 35);
    ck_assert_uint_eq(sftp_ack_bitmap_room(0, 0), 0);
    ck_assert_uint_eq(sftp_ack_bitmap_room(SFTP_ACK_HEAD, 0), 0);
    ck_assert_uint_eq(sftp_ack_bitmap_room(SFTP_ACK_HEAD + 7, 0), 4);
    ck_assert_uint_eq(sftp_ack_bitmap_room(PKT_MAX_BODY, 0), SFTP_MAX_BITMAP);
    ck_assert_uint_eq(sftp_ack_bitmap_room(SFTP_ACK_HEAD + SFTP_ACK_WISH_SIZE + 7, 1), 4);
    ck_assert_uint_eq(sftp_ack_bitmap_room(SFTP_ACK_HEAD + 7, 1), 0);
}
END_TEST

/* The transmission an ACK names, its delay, and the sink's rate wish
 * after the bitmap: a wish only with its flag, a policy only known ones. */
START_TEST(ack_tx_delay_and_wish)
{
    uint8_t bitmap[2] = {0x05, 0x01}, body[SFTP_MAX_ACK + SFTP_ACK_WISH_SIZE];
    struct sftp_ack a = {.got_them_all = 3, .window_end = 50, .delivered = 9,
                         .flags = SFTP_ACK_WISH, .largest_tx = 0xfffffff0u,
                         .ack_delay_us = 777, .bitmap = bitmap, .bitmap_len = 2,
                         .wish = {SFTP_POLICY_FIXED, 12500000, 1000}};
    struct sftp_ack b;
    size_t out;

    ck_assert_int_eq(sftp_ack_encode(&a, body, sizeof(body), &out), PKT_OK);
    ck_assert_uint_eq(out, SFTP_ACK_HEAD + 4 + SFTP_ACK_WISH_SIZE);
    ck_assert_int_eq(sftp_ack_decode(body, out, &b), PKT_OK);
    ck_assert_uint_eq(b.largest_tx, 0xfffffff0u);
    ck_assert_uint_eq(b.ack_delay_us, 777);
    ck_assert_uint_eq(b.bitmap_len, 2);
    ck_assert_uint_eq(b.wish.policy, SFTP_POLICY_FIXED);
    ck_assert_uint_eq(b.wish.rate, 12500000);
    ck_assert_uint_eq(b.wish.min_rate, 1000);
    /* without its wish the body is short; a policy nobody knows is refused */
    ck_assert_int_eq(sftp_ack_decode(body, out - SFTP_ACK_WISH_SIZE, &b), PKT_ESHORT);
    body[SFTP_ACK_HEAD + 4 + 3] = SFTP_POLICY_MAX + 1;
    ck_assert_int_eq(sftp_ack_decode(body, out, &b), PKT_EFLAGS);
    a.wish.policy = SFTP_POLICY_MAX + 1;
    ck_assert_int_eq(sftp_ack_encode(&a, body, sizeof(body), &out), PKT_ELENGTH);
    /* no flag: no wish on the wire, whatever the struct holds */
    a.flags = 0;
    ck_assert_int_eq(sftp_ack_encode(&a, body, sizeof(body), &out), PKT_OK);
    ck_assert_uint_eq(out, SFTP_ACK_HEAD + 4);
    ck_assert_int_eq(sftp_ack_decode(body, out, &b), PKT_OK);
    ck_assert_uint_eq(b.wish.policy, 0);
}
END_TEST

/* Every proper prefix of a valid body is refused, and so is any extra byte. */
static void check_prefixes_and_tails(const uint8_t *body, size_t len,
                                     int (*decode)(const uint8_t *, size_t))
{
    uint8_t longer[SFTP_MAX_ACK + 8];
    size_t n;

    for (n = 0; n < len; n++)
        ck_assert_msg(decode(body, n) != PKT_OK, "prefix of %zu bytes accepted", n);
    memcpy(longer, body, len);
    memset(longer + len, 0, 4);
    for (n = 1; n <= 4; n++)
        ck_assert_msg(decode(longer, len + n) == PKT_ELENGTH, "%zu trailing bytes accepted", n);
    ck_assert_int_eq(decode(body, len), PKT_OK);
}

static int decode_ack(const uint8_t *b, size_t n)
{
    struct sftp_ack a;

    return sftp_ack_decode(b, n, &a);
}

static int decode_start(const uint8_t *b, size_t n)
{
    struct sftp_start s;

    return sftp_start_decode(b, n, &s);
}

static int decode_abort(const uint8_t *b, size_t n)
{
    int32_t e;

    return sftp_abort_decode(b, n, &e);
}

START_TEST(ack_truncations_and_tails)
{
    uint8_t bitmap[5] = {1, 2, 3, 4, 5}, body[64];
    size_t out = encode_ack(7, 99, bitmap, 5, body, sizeof(body));

    check_prefixes_and_tails(body, out, decode_ack);
    out = encode_ack(7, 99, NULL, 0, body, sizeof(body));
    check_prefixes_and_tails(body, out, decode_ack);
}
END_TEST

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

START_TEST(ack_refusals)
{
    uint8_t body[SFTP_MAX_ACK + 16] = {0};
    uint8_t bitmap[2] = {0x01, 0x00};
    struct sftp_ack a = {.got_them_all = 1, .window_end = 1, .bitmap = bitmap, .bitmap_len = 2};
    size_t out;

    /* A bitmap longer than any window needs. */
    put_be32(body + SFTP_ACK_HEAD - 4, SFTP_MAX_BITMAP + 4);
    body[SFTP_ACK_HEAD + SFTP_MAX_BITMAP + 3] = 1;
    ck_assert_int_eq(sftp_ack_decode(body, SFTP_ACK_HEAD + SFTP_MAX_BITMAP + 4, &a), PKT_ELENGTH);
    /* A length beyond the body. */
    put_be32(body + SFTP_ACK_HEAD - 4, 8);
    ck_assert_int_eq(sftp_ack_decode(body, SFTP_ACK_HEAD + 4, &a), PKT_ESHORT);
    /* A bitmap ending in a zero byte says nothing more: refused. */
    memset(body, 0, sizeof(body));
    put_be32(body + SFTP_ACK_HEAD - 4, 2);
    body[SFTP_ACK_HEAD] = 1;
    ck_assert_int_eq(sftp_ack_decode(body, SFTP_ACK_HEAD + 4, &a), PKT_ELENGTH);
    ck_assert_uint_eq(a.bitmap_len, 0);
    /* Non-zero padding. */
    body[SFTP_ACK_HEAD + 1] = 1;
    body[SFTP_ACK_HEAD + 3] = 1;
    ck_assert_int_eq(sftp_ack_decode(body, SFTP_ACK_HEAD + 4, &a), PKT_EFLAGS);
    /* The encoder refuses the same. */
    a = (struct sftp_ack){.got_them_all = 1, .window_end = 1, .bitmap = bitmap, .bitmap_len = 2};
    ck_assert_int_eq(sftp_ack_encode(&a, body, sizeof(body), &out), PKT_ELENGTH);
    a.bitmap_len = SFTP_MAX_BITMAP + 1;
    ck_assert_ptr_null(sftp_ack_encode_head(body, sizeof(body), &a, &out));
    a.bitmap_len = 1;
    ck_assert_int_eq(sftp_ack_encode(&a, body, SFTP_ACK_HEAD + 3, &out), PKT_ELENGTH);
    ck_assert_uint_eq(out, 0);
}
END_TEST

/* The head encoder leaves the bitmap to the caller but zeroes the padding. */
START_TEST(ack_head_zeroes_padding)
{
    uint8_t body[SFTP_ACK_HEAD + 8];
    struct sftp_ack a = {.got_them_all = 3, .window_end = 3, .delivered = 4, .bitmap_len = 1}, b;
    size_t out;
    uint8_t *bitmap;

    memset(body, 0xee, sizeof(body));
    bitmap = sftp_ack_encode_head(body, sizeof(body), &a, &out);
    ck_assert_ptr_eq(bitmap, body + SFTP_ACK_HEAD);
    ck_assert_uint_eq(out, SFTP_ACK_HEAD + 4);
    bitmap[0] = 0x10;
    ck_assert_int_eq(sftp_ack_decode(body, out, &b), PKT_OK);
    ck_assert_uint_eq(b.bitmap[0], 0x10);
}
END_TEST

/* ---- START and ABORT ----------------------------------------------------- */

START_TEST(start_round_trip_and_refusals)
{
    struct sftp_start s = {.window = 16384, .packet_size = 64000}, t;
    uint8_t body[16];
    size_t out;

    ck_assert_int_eq(sftp_start_encode(&s, body, sizeof(body), &out), PKT_OK);
    ck_assert_uint_eq(out, SFTP_START_SIZE);
    ck_assert_int_eq(sftp_start_decode(body, out, &t), PKT_OK);
    ck_assert_uint_eq(t.window, 16384);
    ck_assert_uint_eq(t.packet_size, 64000);
    check_prefixes_and_tails(body, out, decode_start);
    /* Zero window or packet size would stall the transfer forever. */
    memset(body, 0, 4);
    ck_assert_int_eq(sftp_start_decode(body, out, &t), PKT_ELENGTH);
    ck_assert_uint_eq(t.packet_size, 0);
    ck_assert_int_eq(sftp_start_encode(&s, body, sizeof(body), &out), PKT_OK);
    memset(body + 4, 0, 4);
    ck_assert_int_eq(sftp_start_decode(body, out, &t), PKT_ELENGTH);
    s.window = 0;
    ck_assert_int_eq(sftp_start_encode(&s, body, sizeof(body), &out), PKT_ELENGTH);
    s.window = 1;
    ck_assert_int_eq(sftp_start_encode(&s, body, 7, &out), PKT_ELENGTH);
}
END_TEST

/* A sink's restart point rides in START (resume.h): read back exactly; any
 * other length between the two forms, or an offset no file has, refused. */
START_TEST(start_with_restart_point)
{
    struct sftp_start s = {.window = 256, .packet_size = 1400, .has_restart = 1,
                           .restart = 0x123456789aull}, t;
    uint8_t body[SFTP_START_RESTART_SIZE + 4];
    size_t out;

    for (unsigned i = 0; i < SFTP_SUM_SIZE; i++)
        s.restart_sum[i] = (uint8_t)(0xa0 + i);
    ck_assert_int_eq(sftp_start_encode(&s, body, sizeof(body), &out), PKT_OK);
    ck_assert_uint_eq(out, SFTP_START_RESTART_SIZE);
    ck_assert_int_eq(sftp_start_decode(body, out, &t), PKT_OK);
    ck_assert(t.has_restart);
    ck_assert_uint_eq(t.restart, s.restart);
    ck_assert_mem_eq(t.restart_sum, s.restart_sum, SFTP_SUM_SIZE);
    for (size_t n = SFTP_START_SIZE + 1; n < SFTP_START_RESTART_SIZE; n++)
        ck_assert_int_ne(sftp_start_decode(body, n, &t), PKT_OK);
    ck_assert_int_ne(sftp_start_decode(body, out + 4, &t), PKT_OK);
    ck_assert_int_eq(sftp_start_decode(body, SFTP_START_SIZE, &t), PKT_OK);
    ck_assert(!t.has_restart);
    body[SFTP_START_SIZE] = 0x80; /* an offset past INT64_MAX */
    ck_assert_int_eq(sftp_start_decode(body, out, &t), PKT_EFLAGS);
}
END_TEST

START_TEST(abort_round_trip_and_refusals)
{
    static const int32_t errors[] = {RPC2_EDEAD, RPC2_ESEFAIL2, RPC2_EIO, -1, INT32_MIN};
    uint8_t body[8];
    int32_t e;
    size_t i, out;

    for (i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
        ck_assert_int_eq(sftp_abort_encode(errors[i], body, sizeof(body), &out), PKT_OK);
        ck_assert_uint_eq(out, SFTP_ABORT_SIZE);
        ck_assert_int_eq(sftp_abort_decode(body, out, &e), PKT_OK);
        ck_assert_int_eq(e, errors[i]);
    }
    check_prefixes_and_tails(body, out, decode_abort);
    /* An abort must carry an error. */
    put_be32(body, 0);
    ck_assert_int_eq(sftp_abort_decode(body, 4, &e), PKT_EFLAGS);
    put_be32(body, 5);
    ck_assert_int_eq(sftp_abort_decode(body, 4, &e), PKT_EFLAGS);
    ck_assert_int_eq(e, 0);
    ck_assert_int_eq(sftp_abort_encode(0, body, sizeof(body), &out), PKT_EFLAGS);
    ck_assert_int_eq(sftp_abort_encode(-1, body, 3, &out), PKT_ELENGTH);
}
END_TEST

/* Random bytes never crash a decoder and what one accepts re-encodes exactly. */
/* window_end is flow control: never below got_them_all, at most a window
 * above it; flags other than COMPLETE are refused; both round-trip. */
START_TEST(ack_window_and_flags)
{
    uint8_t body[SFTP_MAX_ACK];
    struct sftp_ack a = {.got_them_all = 100, .window_end = 100 + SFTP_MAX_WINDOW,
                         .delivered = 7, .flags = SFTP_ACK_COMPLETE};
    struct sftp_ack b;
    size_t out;

    ck_assert_int_eq(sftp_ack_encode(&a, body, sizeof(body), &out), PKT_OK);
    ck_assert_int_eq(sftp_ack_decode(body, out, &b), PKT_OK);
    ck_assert_uint_eq(b.window_end, 100 + SFTP_MAX_WINDOW);
    ck_assert_uint_eq(b.flags, SFTP_ACK_COMPLETE);
    put_be32(body + 4, 99); /* below got_them_all */
    ck_assert_int_eq(sftp_ack_decode(body, out, &b), PKT_ELENGTH);
    put_be32(body + 4, 101 + SFTP_MAX_WINDOW); /* more than any window */
    ck_assert_int_eq(sftp_ack_decode(body, out, &b), PKT_ELENGTH);
    put_be32(body + 4, 100);
    put_be32(body + 16, 0x4); /* an unknown flag */
    ck_assert_int_eq(sftp_ack_decode(body, out, &b), PKT_EFLAGS);
    a.window_end = 99;
    ck_assert_ptr_null(sftp_ack_encode_head(body, sizeof(body), &a, &out));
    a.window_end = 100;
    a.flags = 0x4;
    ck_assert_ptr_null(sftp_ack_encode_head(body, sizeof(body), &a, &out));
}
END_TEST

START_TEST(probe_round_trip_and_refusals)
{
    uint8_t body[8];
    uint32_t flags;
    size_t out;

    ck_assert_int_eq(sftp_probe_encode(SFTP_PROBE_ANSWER_ME, body, sizeof(body), &out), PKT_OK);
    ck_assert_uint_eq(out, SFTP_PROBE_SIZE);
    ck_assert_int_eq(sftp_probe_decode(body, out, &flags), PKT_OK);
    ck_assert_uint_eq(flags, SFTP_PROBE_ANSWER_ME);
    ck_assert_int_eq(sftp_probe_encode(0, body, sizeof(body), &out), PKT_OK);
    ck_assert_int_eq(sftp_probe_decode(body, out, &flags), PKT_OK);
    ck_assert_uint_eq(flags, 0);
    ck_assert_int_ne(sftp_probe_decode(body, 3, &flags), PKT_OK);
    ck_assert_int_ne(sftp_probe_decode(body, 8, &flags), PKT_OK);
    put_be32(body, 0x2);
    ck_assert_int_eq(sftp_probe_decode(body, 4, &flags), PKT_EFLAGS);
    ck_assert_int_eq(sftp_probe_encode(0x2, body, sizeof(body), &out), PKT_EFLAGS);
    ck_assert_int_ne(sftp_probe_encode(0, body, 3, &out), PKT_OK);
}
END_TEST

/* The LAST packet may end with the stream's checksum; nothing else may. */
START_TEST(data_sum)
{
    uint8_t body[64];
    struct sftp_data d;
    uint8_t *data = sftp_data_encode(body, sizeof(body), SFTP_DATA_LAST | SFTP_DATA_SUM, 7, 5);

    ck_assert_ptr_nonnull(data);
    memcpy(data, "hello", 5);
    memset(data + 5, 0xab, SFTP_SUM_SIZE);
    ck_assert_int_eq(sftp_data_decode(body, SFTP_DATA_HEAD + 5 + SFTP_SUM_SIZE, &d), PKT_OK);
    ck_assert_uint_eq(d.len, 5);
    ck_assert_mem_eq(d.bytes, "hello", 5);
    ck_assert_ptr_eq(d.sum, data + 5);
    /* an empty LAST with a sum */
    ck_assert_ptr_nonnull(sftp_data_encode(body, sizeof(body), SFTP_DATA_LAST | SFTP_DATA_SUM, 7, 0));
    ck_assert_int_eq(sftp_data_decode(body, SFTP_DATA_HEAD + SFTP_SUM_SIZE, &d), PKT_OK);
    ck_assert_uint_eq(d.len, 0);
    ck_assert_ptr_null(d.bytes);
    /* too short for its sum */
    ck_assert_int_eq(sftp_data_decode(body, SFTP_DATA_HEAD + SFTP_SUM_SIZE - 1, &d), PKT_ELENGTH);
    ck_assert_ptr_null(d.sum);
    /* a sum without LAST, both ways */
    ck_assert_ptr_null(sftp_data_encode(body, sizeof(body), SFTP_DATA_SUM, 7, 0));
    put_be32(body, SFTP_DATA_SUM);
    ck_assert_int_eq(sftp_data_decode(body, SFTP_DATA_HEAD + SFTP_SUM_SIZE, &d), PKT_EFLAGS);
    /* the room for the sum is part of the capacity check */
    ck_assert_ptr_null(sftp_data_encode(body, SFTP_DATA_HEAD + 5 + SFTP_SUM_SIZE - 1,
                                        SFTP_DATA_LAST | SFTP_DATA_SUM, 7, 5));
}
END_TEST

START_TEST(random_bodies)
{
    uint64_t x = 0x9e3779b97f4a7c15ull;
    uint8_t body[64], again[SFTP_MAX_ACK];
    int i;

    for (i = 0; i < 200000; i++) {
        size_t len = (size_t)(x % sizeof(body)), k, out;
        struct sftp_ack a;
        struct sftp_start s;

        for (k = 0; k < sizeof(body); k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            body[k] = (uint8_t)(x & 0x3 ? x : 0);
        }
        if (i % 3 == 0 && len >= SFTP_ACK_HEAD) { /* plausible fields */
            put_be32(body + SFTP_ACK_HEAD - 4, (uint32_t)(len - SFTP_ACK_HEAD - (x >> 60) % 4));
            put_be32(body + 4, get_be32(body) + (uint32_t)(x >> 50) % 64);
            put_be32(body + 16, (uint32_t)(x >> 40) & 1);
        }
        if (sftp_ack_decode(body, len, &a) == PKT_OK) {
            ck_assert_int_eq(sftp_ack_encode(&a, again, sizeof(again), &out), PKT_OK);
            ck_assert_uint_eq(out, len);
            ck_assert_mem_eq(again, body, len);
        }
        if (sftp_start_decode(body, len, &s) == PKT_OK)
            ck_assert(len == SFTP_START_SIZE || len == SFTP_START_RESTART_SIZE);
    }
}
END_TEST

/* DATA with NAMED: the sum sits after tx, the data after it; only with
 * LAST, of a known type and exactly its length. */
START_TEST(data_named_sum)
{
    struct namedsum_value v = {.type = RPC2_SE_SUM_SHA1, .len = 20};
    uint8_t body[256];
    struct sftp_data d;
    uint32_t flags = SFTP_DATA_LAST | SFTP_DATA_SUM | SFTP_DATA_NAMED;

    memset(v.bytes, 0xab, sizeof v.bytes);
    uint8_t *p = sftp_data_encode_named(body, sizeof body, flags, 7, 5, &v);
    ck_assert_ptr_nonnull(p);
    memcpy(p, "hello", 5);
    memset(p + 5, 0x11, SFTP_SUM_SIZE);
    size_t len = (size_t)(p - body) + 5 + SFTP_SUM_SIZE;
    ck_assert_uint_eq(len, SFTP_DATA_HEAD + 8 + 20 + 5 + SFTP_SUM_SIZE);
    ck_assert_int_eq(sftp_data_decode(body, len, &d), PKT_OK);
    ck_assert_uint_eq(d.named_type, RPC2_SE_SUM_SHA1);
    ck_assert_uint_eq(d.named_len, 20);
    ck_assert_mem_eq(d.named, v.bytes, 20);
    ck_assert_uint_eq(d.len, 5);
    ck_assert_mem_eq(d.bytes, "hello", 5);
    ck_assert_ptr_nonnull(d.sum);
    /* NAMED without LAST, or without its sum, or with a sum of the wrong length */
    ck_assert_ptr_null(sftp_data_encode_named(body, sizeof body, SFTP_DATA_NAMED, 7, 5, &v));
    ck_assert_ptr_null(sftp_data_encode_named(body, sizeof body, flags, 7, 5, NULL));
    v.len = 16;
    ck_assert_ptr_null(sftp_data_encode_named(body, sizeof body, flags, 7, 5, &v));
    body[11] = 9; /* the type's low byte: no such type */
    ck_assert_int_eq(sftp_data_decode(body, len, &d), PKT_EFLAGS);
    body[11] = RPC2_SE_SUM_SHA256; /* a 20-byte value for a 32-byte type */
    ck_assert_int_eq(sftp_data_decode(body, len, &d), PKT_ELENGTH);
}
END_TEST

static Suite *wire_suite(void)
{
    Suite *s = suite_create("sftp_wire");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, data_round_trip);
    tcase_add_test(tc, data_refusals);
    tcase_add_test(tc, data_named_sum);
    tcase_add_test(tc, ack_round_trip);
    tcase_add_test(tc, ack_highest_and_room);
    tcase_add_test(tc, ack_tx_delay_and_wish);
    tcase_add_test(tc, ack_truncations_and_tails);
    tcase_add_test(tc, ack_refusals);
    tcase_add_test(tc, ack_head_zeroes_padding);
    tcase_add_test(tc, start_round_trip_and_refusals);
    tcase_add_test(tc, start_with_restart_point);
    tcase_add_test(tc, abort_round_trip_and_refusals);
    tcase_add_test(tc, ack_window_and_flags);
    tcase_add_test(tc, probe_round_trip_and_refusals);
    tcase_add_test(tc, data_sum);
    tcase_add_test(tc, random_bodies);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(wire_suite());
}
