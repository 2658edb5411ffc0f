/*
 * test_dupcache.c - at-most-once execution as a numbered table of event
 * stories, in the manner of WireGuard's replay-counter selftest: each case
 * replays what a server saw on one connection and states every verdict.
 */
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <rpc2/rpc2.h>

#include "dupcache.h"
#include "check_run.h"

#define SAVE_MAX 64

enum op_kind {
    END,
    START,  /* dupcache_start(seq) */
    FINISH, /* dupcache_finish with a reply of len bytes, SAVE_MAX bound */
    CHECK,  /* dupcache_check(seq) must say want */
};

struct op {
    enum op_kind kind;
    uint32_t seq;
    size_t len;
    enum dup_verdict want;
};

/* clang-format off */
#define S(seq) {START, (seq), 0, DUP_NEW}
#define F(len) {FINISH, 0, (len), DUP_NEW}
#define C(seq, want) {CHECK, (seq), 0, (want)}
/* clang-format on */

static const struct {
    const char *story;
    struct op ops[10];
} cases[] = {
    {/* 1 */ "fresh connection takes any first call",
     {C(1, DUP_NEW), C(12345, DUP_NEW), C(0xffffffffu, DUP_NEW)}},
    {/* 2 */ "retransmission while running", {S(1), C(1, DUP_RUNNING)}},
    {/* 3 */ "next call while the previous runs", {S(1), C(2, DUP_WAIT), C(1000, DUP_WAIT)}},
    {/* 4 */ "older call while one runs", {S(5), C(4, DUP_STALE)}},
    {/* 5 */ "retransmission after the reply", {S(1), F(10), C(1, DUP_RESEND)}},
    {/* 6 */ "reply too big to keep", {S(1), F(SAVE_MAX + 1), C(1, DUP_LOST)}},
    {/* 7 */ "reply exactly at the bound is kept", {S(1), F(SAVE_MAX), C(1, DUP_RESEND)}},
    {/* 8 */ "empty reply is kept", {S(1), F(0), C(1, DUP_RESEND)}},
    {/* 9 */ "the client moves on", {S(1), F(10), C(2, DUP_NEW), C(7, DUP_NEW)}},
    {/* 10 */ "late duplicate of an older call", {S(10), F(10), C(9, DUP_STALE), C(0, DUP_STALE)}},
    {/* 11 */ "the previous call is forgotten once the next starts",
     {S(10), F(10), S(11), C(10, DUP_STALE), C(11, DUP_RUNNING), F(5), C(11, DUP_RESEND)}},
    {/* 12 */ "wrap: 0xffffffff answered, 1 comes next",
     {S(0xffffffffu), F(10), C(1, DUP_NEW), C(0xfffffffeu, DUP_STALE), C(0xffffffffu, DUP_RESEND)}},
    {/* 13 */ "wrap: the call after 0xffffffff runs, the old one is stale",
     {S(0xffffffffu), C(1, DUP_WAIT), F(10), S(1), F(10), C(0xffffffffu, DUP_STALE),
      C(1, DUP_RESEND), C(2, DUP_NEW)}},
    {/* 14 */ "half the sequence space away is not after",
     {S(1), F(10), C(0x80000000u, DUP_NEW), C(0x80000001u, DUP_STALE)}},
    {/* 15 */ "a lost reply stays lost, the next call is new",
     {S(3), F(SAVE_MAX * 2), C(3, DUP_LOST), C(4, DUP_NEW), S(4), F(1), C(4, DUP_RESEND),
      C(3, DUP_STALE)}},
};

static void run_case(size_t n)
{
    static const uint8_t reply[SAVE_MAX * 2];
    struct dupcache d;

    dupcache_init(&d);
    for (size_t i = 0; i < 10 && cases[n].ops[i].kind != END; i++) {
        const struct op *op = &cases[n].ops[i];

        if (op->kind == START)
            dupcache_start(&d, op->seq);
        else if (op->kind == FINISH)
            ck_assert_int_eq(dupcache_finish(&d, reply, op->len, SAVE_MAX, UINT64_MAX), 0);
        else
            ck_assert_msg(dupcache_check(&d, op->seq) == op->want,
                          "case %zu (%s), op %zu: seq %#x gave %d, want %d", n + 1, cases[n].story,
                          i + 1, op->seq, dupcache_check(&d, op->seq), op->want);
    }
    dupcache_dispose(&d);
}

START_TEST(verdict_table)
{
    run_case((size_t)_i);
}
END_TEST

START_TEST(seq_after_table)
{
    static const struct {
        uint32_t a, b;
        int after;
    } rows[] = {
        /* 1 */ {2, 1, 1},
        /* 2 */ {1, 2, 0},
        /* 3 */ {5, 5, 0},
        /* 4 */ {0, 0xffffffffu, 1},
        /* 5 */ {1, 0xfffffff0u, 1},
        /* 6 */ {0xfffffff0u, 1, 0},
        /* 7 */ {0x7fffffffu, 0, 1},
        /* 8 */ {0x80000000u, 0, 0},
        /* 9 */ {0, 0x80000000u, 0},
        /* 10 */ {0x80000001u, 1, 0},
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        ck_assert_msg(seq_after(rows[i].a, rows[i].b) == rows[i].after, "row %zu", i + 1);
}
END_TEST

START_TEST(finish_copies_the_bytes)
{
    uint8_t reply[16];
    struct dupcache d;

    for (size_t i = 0; i < sizeof(reply); i++)
        reply[i] = (uint8_t)(i * 7);
    dupcache_init(&d);
    dupcache_start(&d, 1);
    ck_assert_int_eq(dupcache_finish(&d, reply, sizeof(reply), 100, UINT64_MAX), 0);
    ck_assert_ptr_nonnull(d.reply);
    ck_assert_ptr_ne(d.reply, reply);
    ck_assert_uint_eq(d.reply_len, sizeof(reply));

    /* The caller reuses its buffer; the saved copy must not change. */
    uint8_t want[16];

    memcpy(want, reply, sizeof(want));
    memset(reply, 0xee, sizeof(reply));
    ck_assert_mem_eq(d.reply, want, sizeof(want));
    ck_assert_int_eq(d.running, 0);
    dupcache_dispose(&d);
    ck_assert_ptr_null(d.reply);
}
END_TEST

START_TEST(saved_reply_released_on_next_start)
{
    static const uint8_t reply[] = "the answer";
    struct dupcache d;

    dupcache_init(&d);
    dupcache_start(&d, 41);
    dupcache_finish(&d, reply, sizeof(reply), 100, UINT64_MAX);
    ck_assert_ptr_nonnull(d.reply);

    /* Call 42 proves the client has reply 41: keeping it would only waste
     * memory (the sanitizer build would also call a leak here). */
    dupcache_start(&d, 42);
    ck_assert_ptr_null(d.reply);
    ck_assert_uint_eq(d.reply_len, 0);
    ck_assert_uint_eq(d.last_seq, 42);
    ck_assert_int_eq(d.running, 1);
    dupcache_dispose(&d);
}
END_TEST

START_TEST(reply_over_bound_is_not_saved)
{
    static const uint8_t reply[200];
    struct dupcache d;

    dupcache_init(&d);
    dupcache_start(&d, 7);
    ck_assert_int_eq(dupcache_finish(&d, reply, sizeof(reply), sizeof(reply) - 1, UINT64_MAX), 0);
    ck_assert_ptr_null(d.reply);
    ck_assert_uint_eq(d.reply_len, 0);
    ck_assert_int_eq(dupcache_check(&d, 7), DUP_LOST);
    dupcache_dispose(&d);
}
END_TEST

/* Connections that share a total: a reply that would take it past its bound
 * is not kept (the next retry of that call gets an error, not a second run),
 * and every release, start or dispose gives its bytes back. */
START_TEST(shared_total_bounds_all_connections)
{
    static const uint8_t reply[100];
    struct dupcache a, b, c, plain;
    uint64_t total = 0;

    dupcache_init(&a);
    dupcache_init(&b);
    dupcache_init(&c);
    dupcache_init(&plain);
    dupcache_count_in(&a, &total);
    dupcache_count_in(&b, &total);
    dupcache_count_in(&c, &total);

    dupcache_start(&a, 1);
    ck_assert_int_eq(dupcache_finish(&a, reply, 60, 100, 150), 0);
    ck_assert_uint_eq(total, 60);
    dupcache_start(&b, 1);
    ck_assert_int_eq(dupcache_finish(&b, reply, 90, 100, 150), 0);
    ck_assert_uint_eq(total, 150); /* exactly at the bound: kept */
    dupcache_start(&c, 1);
    ck_assert_int_eq(dupcache_finish(&c, reply, 1, 100, 150), 0);
    ck_assert_ptr_null(c.reply); /* one byte over: not kept, not counted */
    ck_assert_uint_eq(total, 150);
    ck_assert_int_eq(dupcache_check(&c, 1), DUP_LOST);

    /* Uncounted caches do not touch the total. */
    dupcache_start(&plain, 1);
    ck_assert_int_eq(dupcache_finish(&plain, reply, 100, 100, 150), 0);
    ck_assert_ptr_nonnull(plain.reply);
    ck_assert_uint_eq(total, 150);

    dupcache_start(&a, 2); /* a's client moved on: its 60 bytes come back */
    ck_assert_uint_eq(total, 90);
    ck_assert_int_eq(dupcache_finish(&a, reply, 60, 100, 150), 0);
    ck_assert_uint_eq(total, 150);
    dupcache_dispose(&b); /* b's connection went */
    ck_assert_uint_eq(total, 60);
    dupcache_start(&c, 2);
    ck_assert_int_eq(dupcache_finish(&c, reply, 90, 100, 150), 0);
    ck_assert_ptr_nonnull(c.reply);
    dupcache_dispose(&a);
    dupcache_dispose(&c);
    dupcache_dispose(&plain);
    ck_assert_uint_eq(total, 0);
}
END_TEST

static Suite *dupcache_suite(void)
{
    Suite *s = suite_create("dupcache");
    TCase *tc = tcase_create("core");

    tcase_add_loop_test(tc, verdict_table, 0, (int)(sizeof(cases) / sizeof(cases[0])));
    tcase_add_test(tc, seq_after_table);
    tcase_add_test(tc, finish_copies_the_bytes);
    tcase_add_test(tc, saved_reply_released_on_next_start);
    tcase_add_test(tc, reply_over_bound_is_not_saved);
    tcase_add_test(tc, shared_total_bounds_all_connections);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(dupcache_suite());
}
