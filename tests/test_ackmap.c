/*
 * test_ackmap.c - got-them-all plus bitmap: hand-worked cases for the
 * sink's side (new, duplicate, beyond the window, the bitmap's bit order
 * and trimming), the source's side (merging ACKs, old and new), and long
 * random runs against a plain array model, across many trips around the
 * ring, for windows that fill it exactly and ones that do not.
 */
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "ackmap.h"
#include "wire.h"
#include "check_run.h"

/* ck_assert marks a point (a write to a pipe) even when it holds: too slow
 * for loops of millions. This only costs when it fails. */
#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #cond);                                  \
    } while (0)

START_TEST(in_order_slides)
{
    struct ackmap m;
    uint32_t seq;

    ck_assert_int_eq(ackmap_init(&m, 8), 0);
    ck_assert_uint_eq(m.got_them_all, 0);
    ck_assert_int_eq(ackmap_add(&m, 0), ACKMAP_DUPLICATE); /* seq 0 names no packet */
    for (seq = 1; seq <= 1000; seq++) {
        ck_assert_int_eq(ackmap_add(&m, seq), ACKMAP_NEW);
        ck_assert_uint_eq(m.got_them_all, seq);
        ck_assert_uint_eq(m.held_beyond, 0);
        ck_assert_int_eq(ackmap_add(&m, seq), ACKMAP_DUPLICATE);
        ck_assert_uint_eq(ackmap_bitmap_len(&m, SFTP_MAX_BITMAP), 0);
    }
    ackmap_dispose(&m);
}
END_TEST

START_TEST(window_edge)
{
    struct ackmap m;

    ck_assert_int_eq(ackmap_init(&m, 100), 0);
    ck_assert_int_eq(ackmap_add(&m, 101), ACKMAP_BEYOND);
    ck_assert_int_eq(ackmap_add(&m, 100), ACKMAP_NEW);
    ck_assert_int_eq(ackmap_holds(&m, 100), 1);
    ck_assert_int_eq(ackmap_holds(&m, 101), 0);
    ck_assert_int_eq(ackmap_add(&m, 1), ACKMAP_NEW);
    ck_assert_uint_eq(m.got_them_all, 1);
    ck_assert_int_eq(ackmap_add(&m, 101), ACKMAP_NEW);
    ck_assert_int_eq(ackmap_add(&m, 102), ACKMAP_BEYOND);
    ck_assert_uint_eq(m.highest, 101);
    ackmap_dispose(&m);
    ck_assert_int_eq(ackmap_init(&m, 0), -1);
}
END_TEST

/* Bit i of the bitmap is seq got_them_all + 2 + i, LSB first in each byte. */
START_TEST(bitmap_layout)
{
    struct ackmap m;
    uint8_t out[4];

    ck_assert_int_eq(ackmap_init(&m, 64), 0);
    ck_assert_int_eq(ackmap_add(&m, 1), ACKMAP_NEW);
    ck_assert_int_eq(ackmap_add(&m, 3), ACKMAP_NEW);
    ck_assert_int_eq(ackmap_add(&m, 5), ACKMAP_NEW);
    ck_assert_int_eq(ackmap_add(&m, 10), ACKMAP_NEW);
    ck_assert_uint_eq(m.got_them_all, 1);
    ck_assert_uint_eq(ackmap_bitmap_len(&m, 4), 1);
    ackmap_write_bitmap(&m, out, 1);
    ck_assert_uint_eq(out[0], 0x85); /* seqs 3, 5, 10: bits 0, 2, 7 */
    ck_assert_int_eq(ackmap_add(&m, 11), ACKMAP_NEW);
    ck_assert_uint_eq(ackmap_bitmap_len(&m, 4), 2);
    ackmap_write_bitmap(&m, out, 2);
    ck_assert_uint_eq(out[1], 0x01);
    ck_assert_int_eq(ackmap_add(&m, 2), ACKMAP_NEW); /* fills the gap: 1..3 */
    ck_assert_uint_eq(m.got_them_all, 3);
    ck_assert_uint_eq(ackmap_bitmap_len(&m, 4), 1); /* 5 is bit 0, 10 bit 5, 11 bit 6 */
    ackmap_write_bitmap(&m, out, 1);
    ck_assert_uint_eq(out[0], 0x61);
    ackmap_dispose(&m);
}
END_TEST

START_TEST(bitmap_cut_and_trimmed)
{
    struct ackmap m;
    uint8_t out[8];

    ck_assert_int_eq(ackmap_init(&m, 1024), 0);
    ck_assert_int_eq(ackmap_add(&m, 2), ACKMAP_NEW);   /* bit 0 */
    ck_assert_int_eq(ackmap_add(&m, 500), ACKMAP_NEW); /* bit 498: byte 62 */
    ck_assert_uint_eq(ackmap_bitmap_len(&m, SFTP_MAX_BITMAP), 63);
    /* Cut at 8 bytes, then the zero bytes before the cut go too. */
    ck_assert_uint_eq(ackmap_bitmap_len(&m, 8), 1);
    ackmap_write_bitmap(&m, out, 1);
    ck_assert_uint_eq(out[0], 0x01);
    ck_assert_uint_eq(ackmap_bitmap_len(&m, 0), 0);
    ackmap_dispose(&m);
}
END_TEST

/* The largest window's farthest packet: a full-size bitmap, last byte nonzero. */
START_TEST(largest_window)
{
    struct ackmap m;
    uint8_t *out = calloc(1, SFTP_MAX_BITMAP);
    uint32_t len;

    ck_assert_int_eq(ackmap_init(&m, SFTP_MAX_WINDOW), 0);
    ck_assert_int_eq(ackmap_add(&m, SFTP_MAX_WINDOW), ACKMAP_NEW);
    ck_assert_int_eq(ackmap_add(&m, SFTP_MAX_WINDOW + 1), ACKMAP_BEYOND);
    len = ackmap_bitmap_len(&m, SFTP_MAX_BITMAP);
    ck_assert_uint_eq(len, SFTP_MAX_BITMAP);
    ackmap_write_bitmap(&m, out, len);
    ck_assert_uint_eq(out[len - 1], 0x40); /* bit 16382 = seq 16384 */
    ck_assert_uint_eq(out[0], 0);
    ackmap_dispose(&m);
    free(out);
}
END_TEST

/* ---- merging -------------------------------------------------------------- */

struct seen {
    uint32_t seqs[256];
    int n;
};

static void record(void *arg, uint32_t seq)
{
    struct seen *s = arg;

    ck_assert_int_lt(s->n, 256);
    s->seqs[s->n++] = seq;
}

START_TEST(merge_reports_each_seq_once)
{
    struct ackmap m;
    struct seen s = {.n = 0};
    uint8_t bitmap[2] = {0x05, 0x01}; /* gta 3: seqs 5, 7, 13 */

    ck_assert_int_eq(ackmap_init(&m, 32), 0);
    ck_assert_int_eq(ackmap_merge(&m, 3, bitmap, 2, record, &s), 0);
    ck_assert_int_eq(s.n, 6);
    ck_assert_uint_eq(s.seqs[0], 1);
    ck_assert_uint_eq(s.seqs[2], 3);
    ck_assert_uint_eq(s.seqs[3], 5);
    ck_assert_uint_eq(s.seqs[4], 7);
    ck_assert_uint_eq(s.seqs[5], 13);
    ck_assert_uint_eq(m.got_them_all, 3);
    ck_assert_uint_eq(m.highest, 13);
    /* The same ACK again: nothing new. */
    s.n = 0;
    ck_assert_int_eq(ackmap_merge(&m, 3, bitmap, 2, record, &s), 0);
    ck_assert_int_eq(s.n, 0);
    /* A newer one: 4 arrived, so got_them_all jumps over 5 to 5. */
    ck_assert_int_eq(ackmap_merge(&m, 5, (const uint8_t[]){0x01}, 1, record, &s), 0);
    ck_assert_int_eq(s.n, 1);
    ck_assert_uint_eq(s.seqs[0], 4);
    ck_assert_uint_eq(m.got_them_all, 5);
    /* An older view (gta 3, bit for 6): 6 is news; bits below our gta are not. */
    s.n = 0;
    ck_assert_int_eq(ackmap_merge(&m, 3, (const uint8_t[]){0x03}, 1, record, &s), 0);
    ck_assert_int_eq(s.n, 1);
    ck_assert_uint_eq(s.seqs[0], 6);
    ck_assert_uint_eq(m.got_them_all, 7); /* 6 and 7 held: slid */
    ackmap_dispose(&m);
}
END_TEST

START_TEST(merge_refuses_beyond_window)
{
    struct ackmap m;
    struct seen s = {.n = 0};
    uint8_t far[8] = {0, 0, 0, 0, 0, 0, 0, 0x80};

    ck_assert_int_eq(ackmap_init(&m, 32), 0);
    ck_assert_int_eq(ackmap_merge(&m, 33, NULL, 0, record, &s), -1);
    ck_assert_int_eq(ackmap_merge(&m, 0, far, 8, record, &s), -1); /* seq 65 */
    ck_assert_int_eq(s.n, 0);
    ck_assert_uint_eq(m.got_them_all, 0);
    ck_assert_int_eq(ackmap_merge(&m, 32, NULL, 0, record, &s), 0);
    ck_assert_int_eq(s.n, 32);
    ackmap_dispose(&m);
}
END_TEST

/* ---- random runs against a model ----------------------------------------- */

static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

#define MODEL_SEQS 40000u

struct model {
    uint8_t held[MODEL_SEQS + 1];
    uint32_t gta, window;
};

static int model_add(struct model *md, uint32_t seq)
{
    if (seq <= md->gta || md->held[seq])
        return ACKMAP_DUPLICATE;
    if (seq - md->gta > md->window)
        return ACKMAP_BEYOND;
    md->held[seq] = 1;
    while (md->gta < MODEL_SEQS && md->held[md->gta + 1])
        md->gta++;
    return ACKMAP_NEW;
}

static void check_bitmap(const struct ackmap *m, const struct model *md)
{
    static uint8_t out[SFTP_MAX_BITMAP];
    uint32_t len = ackmap_bitmap_len(m, SFTP_MAX_BITMAP), i;

    REQUIRE(m->got_them_all == md->gta);
    ackmap_write_bitmap(m, out, len);
    if (len > 0)
        REQUIRE(out[len - 1] != 0);
    for (i = 0; i < len * 8; i++) {
        uint32_t seq = md->gta + 2 + i;
        int bit = out[i / 8] >> (i % 8) & 1;

        REQUIRE(bit == (seq <= MODEL_SEQS ? md->held[seq] : 0));
    }
    for (i = md->gta + 2 + len * 8; i <= md->gta + md->window && i <= MODEL_SEQS; i++)
        REQUIRE(md->held[i] == 0);
}

static void count_new(void *arg, uint32_t seq)
{
    (void)seq;
    ++*(uint64_t *)arg;
}

static void random_run(uint32_t window, uint64_t seed)
{
    static struct model md;
    struct ackmap sink, source;
    uint8_t *bitmap = malloc(SFTP_MAX_BITMAP);
    uint64_t x = seed, reported = 0;
    uint32_t len;
    int step;

    memset(&md, 0, sizeof(md));
    md.window = window;
    REQUIRE(ackmap_init(&sink, window) == 0);
    REQUIRE(ackmap_init(&source, window) == 0);
    for (step = 0; md.gta < MODEL_SEQS - window - 64; step++) {
        /* Mostly near the front, sometimes a gap filler, sometimes far out. */
        uint64_t r = rng_next(&x);
        uint32_t span = r % 4 == 0 ? window + 8 : (window < 8 ? window : window / 4) + 1;
        uint32_t seq = md.gta + 1 + (uint32_t)(rng_next(&x) % span);

        if (r % 7 == 0)
            seq = md.gta + 1;
        REQUIRE((int)ackmap_add(&sink, seq) == model_add(&md, seq));
        if (step % 5 == 0)
            check_bitmap(&sink, &md);
        /* Merged every step: a real sink is never a window ahead of the source. */
        len = ackmap_bitmap_len(&sink, SFTP_MAX_BITMAP);
        ackmap_write_bitmap(&sink, bitmap, len);
        REQUIRE(ackmap_merge(&source, sink.got_them_all, bitmap, len, count_new, &reported) == 0);
        REQUIRE(source.got_them_all == sink.got_them_all);
        REQUIRE(source.held_beyond == sink.held_beyond);
        /* Each seq reported once: all up to got_them_all, plus those beyond. */
        REQUIRE(reported == (uint64_t)source.got_them_all + source.held_beyond);
    }
    ackmap_dispose(&sink);
    ackmap_dispose(&source);
    free(bitmap);
}

START_TEST(random_against_model)
{
    static const uint32_t windows[] = {1, 2, 63, 64, 65, 100, 128, 1000, 4096};
    size_t i;

    for (i = 0; i < sizeof(windows) / sizeof(windows[0]); i++)
        random_run(windows[i], 0x1234567ull + i);
}
END_TEST

static Suite *ackmap_suite(void)
{
    Suite *s = suite_create("ackmap");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, in_order_slides);
    tcase_add_test(tc, window_edge);
    tcase_add_test(tc, bitmap_layout);
    tcase_add_test(tc, bitmap_cut_and_trimmed);
    tcase_add_test(tc, largest_window);
    tcase_add_test(tc, merge_reports_each_seq_once);
    tcase_add_test(tc, merge_refuses_beyond_window);
    tcase_add_test(tc, random_against_model);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(ackmap_suite());
}
