/*
 * test_sentmap.c - the source's packet record: slots by seq, the bounded
 * buffer pool (lazy, reused, never above its capacity), and the flight and
 * worried queues kept in transmission order through sends, worries,
 * resends and acknowledgements, checked against a model in a random run.
 */
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "sentmap.h"
#include "check_run.h"

#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #cond);                                  \
    } while (0)

START_TEST(pool_is_lazy_bounded_and_reused)
{
    struct sentmap m;
    struct sentmap_packet *p[6];
    uint8_t *first;
    uint32_t seq;

    ck_assert_int_eq(sentmap_init(&m, 5, 1000, 0, 0), 0);
    ck_assert_uint_eq(m.mask, 7);
    ck_assert_uint_eq(m.pool.buffers, 0);
    for (seq = 1; seq <= 5; seq++) {
        p[seq] = sentmap_take(&m, seq);
        ck_assert_ptr_nonnull(p[seq]);
        ck_assert_ptr_nonnull(p[seq]->data);
        ck_assert_uint_eq(p[seq]->seq, seq);
        ck_assert_uint_eq(p[seq]->where, SENTMAP_READ);
        memset(p[seq]->data, (int)seq, 1000);
    }
    ck_assert_uint_eq(m.pool.buffers, 5);
    ck_assert_ptr_null(sentmap_take(&m, 6)); /* the pool is exhausted */
    ck_assert_ptr_null(sentmap_take(&m, 9)); /* slot 1 is taken */
    first = p[1]->data;
    sentmap_release(&m, p[1]);
    ck_assert_uint_eq(p[1]->where, SENTMAP_FREE);
    ck_assert_ptr_null(p[1]->data);
    p[0] = sentmap_take(&m, 6);
    ck_assert_ptr_eq(p[0]->data, first); /* reused, not allocated */
    ck_assert_uint_eq(m.pool.buffers, 5);
    ck_assert_ptr_eq(sentmap_at(&m, 6), p[0]);
    sentmap_trim(&m);
    ck_assert_uint_eq(m.pool.buffers, 0);
    ck_assert_ptr_nonnull(sentmap_take(&m, 7));
    sentmap_dispose(&m);
    sentmap_dispose(&m); /* idempotent */
}
END_TEST

/* What a lender saw: each unpin, and whether the packet still had its
 * buffer then (it must: the buffer goes back only after). */
struct lender_log {
    struct sentmap *m;
    uint64_t pins[4];
    unsigned n, buffer_held;
};

static void log_unpin(void *arg, uint64_t pin)
{
    struct lender_log *l = arg;

    REQUIRE(l->n < 4);
    l->pins[l->n++] = pin;
    for (uint32_t i = 0; i <= l->m->mask; i++)
        if (l->m->slots[i].pin == pin && l->m->slots[i].data != NULL)
            l->buffer_held++;
}

/* Buffers have the room asked for around the data, and a buffer a link
 * may still read (pinned) is let go only after the lender's unpin, when it
 * is released or trimmed; an unpinned one costs no call. */
START_TEST(pinned_buffers_wait_for_unpin)
{
    struct sentmap m;
    struct lender_log log = {.m = &m};
    struct sentmap_packet *p[4];

    ck_assert_int_eq(sentmap_init(&m, 3, 100, 64, 16), 0);
    m.lender = (struct sentmap_lender){log_unpin, &log};
    for (uint32_t seq = 1; seq <= 3; seq++) {
        p[seq] = sentmap_take(&m, seq);
        ck_assert_ptr_nonnull(p[seq]);
        memset(p[seq]->data - 64, (int)seq, 64 + 100 + 16); /* ASan: the room is there */
    }
    p[1]->pin = 11;
    p[2]->pin = 12;
    sentmap_release(&m, p[3]);
    ck_assert_uint_eq(log.n, 0);
    sentmap_release(&m, p[1]);
    ck_assert_uint_eq(log.n, 1);
    ck_assert_uint_eq(log.pins[0], 11);
    ck_assert_uint_eq(log.buffer_held, 1);
    ck_assert_uint_eq(p[1]->pin, 0);
    sentmap_unpin(&m, p[2]);
    sentmap_unpin(&m, p[2]); /* once only */
    ck_assert_uint_eq(log.n, 2);
    ck_assert_uint_eq(log.pins[1], 12);
    p[2]->pin = 13;
    sentmap_trim(&m);
    ck_assert_uint_eq(log.n, 3);
    ck_assert_uint_eq(log.pins[2], 13);
    ck_assert_uint_eq(log.buffer_held, 3);
    ck_assert_uint_eq(m.pool.buffers, 0);
    ck_assert_int_ne(sentmap_init(&m, 3, 100, 5000, 0), 0); /* room is bounded */
    sentmap_dispose(&m);
}
END_TEST

/* A map lent less memory frees its spares now and the buffers of packets
 * released later, down to what it may keep; it never goes over its
 * capacity when lent more. */
START_TEST(keep_gives_memory_back)
{
    struct sentmap m;
    struct sentmap_packet *p[9];
    uint32_t seq;

    ck_assert_int_eq(sentmap_init(&m, 8, 1000, 0, 0), 0);
    for (seq = 1; seq <= 8; seq++)
        p[seq] = sentmap_take(&m, seq);
    sentmap_release(&m, p[1]);
    sentmap_release(&m, p[2]);
    ck_assert_uint_eq(m.pool.buffers, 8); /* two spares kept */
    bufpool_keep(&m.pool, 3);
    ck_assert_uint_eq(m.pool.buffers, 6); /* the spares went at once */
    for (seq = 3; seq <= 5; seq++)
        sentmap_release(&m, p[seq]);
    ck_assert_uint_eq(m.pool.buffers, 3); /* then each release down to 3 */
    ck_assert_uint_eq(m.pool.spare_count, 0);
    sentmap_release(&m, p[6]);
    ck_assert_uint_eq(m.pool.buffers, 3);
    ck_assert_uint_eq(m.pool.spare_count, 1); /* at the limit: kept for reuse */
    bufpool_keep(&m.pool, 100);
    ck_assert_uint_eq(m.pool.keep, 8);
    for (seq = 9; seq <= 14; seq++)
        ck_assert_ptr_nonnull(sentmap_take(&m, seq));
    ck_assert_uint_eq(m.pool.buffers, 8);
    ck_assert_ptr_null(sentmap_take(&m, 15));
    sentmap_dispose(&m);
}
END_TEST

START_TEST(queues_keep_transmission_order)
{
    struct sentmap m;
    struct sentmap_packet *p[5];
    uint32_t seq;

    ck_assert_int_eq(sentmap_init(&m, 4, 16, 0, 0), 0);
    for (seq = 1; seq <= 4; seq++) {
        p[seq] = sentmap_take(&m, seq);
        sentmap_sent(&m, p[seq], 100 + seq, seq);
    }
    ck_assert_uint_eq(m.flight.count, 4);
    ck_assert_ptr_eq(sentmap_head(&m, &m.flight), p[1]);
    ck_assert_ptr_null(sentmap_head(&m, &m.worried));
    /* 1 and 3 are judged lost, oldest first. */
    sentmap_worry(&m, p[1]);
    sentmap_worry(&m, p[3]);
    ck_assert_uint_eq(m.flight.count, 2);
    ck_assert_uint_eq(m.worried.count, 2);
    ck_assert_ptr_eq(sentmap_head(&m, &m.flight), p[2]);
    ck_assert_ptr_eq(sentmap_head(&m, &m.worried), p[1]);
    sentmap_worry(&m, p[1]); /* already worried: no change */
    ck_assert_uint_eq(m.worried.count, 2);
    /* 1 goes again: it is now the newest in flight. */
    sentmap_sent(&m, p[1], 200, 5);
    ck_assert_uint_eq(p[1]->transmissions, 2);
    ck_assert_uint_eq(p[1]->sent_time, 200);
    ck_assert_ptr_eq(sentmap_head(&m, &m.worried), p[3]);
    ck_assert_uint_eq(m.slots[m.flight.tail].seq, 1);
    /* Acknowledged packets leave whichever queue they are on. */
    sentmap_release(&m, p[3]);
    ck_assert_uint_eq(m.worried.count, 0);
    sentmap_release(&m, p[4]);
    ck_assert_uint_eq(m.flight.count, 2);
    ck_assert_ptr_eq(sentmap_head(&m, &m.flight), p[2]);
    sentmap_release(&m, p[2]);
    sentmap_release(&m, p[1]);
    ck_assert_uint_eq(m.flight.count, 0);
    ck_assert_uint_eq(m.flight.head, SENTMAP_NIL);
    ck_assert_uint_eq(m.flight.tail, SENTMAP_NIL);
    sentmap_dispose(&m);
}
END_TEST

/* ---- random run against a model ------------------------------------------ */

#define CAP 50u

static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Walks a queue both ways and checks order, links, count and membership. */
static void check_queue(struct sentmap *m, const struct sentmap_queue *q, uint8_t where)
{
    uint32_t i, n = 0, prev = SENTMAP_NIL;
    uint64_t last_order = 0;

    for (i = q->head; i != SENTMAP_NIL; i = m->slots[i].next) {
        REQUIRE(m->slots[i].where == where);
        REQUIRE(m->slots[i].prev == prev);
        if (where == SENTMAP_FLIGHT)
            REQUIRE(m->slots[i].tx_order > last_order);
        last_order = m->slots[i].tx_order;
        prev = i;
        n++;
    }
    REQUIRE(q->tail == prev);
    REQUIRE(q->count == n);
}

/* Each transmission keeps its own record: a resend is a new one, and the
 * original's stays findable until the ring comes round to it. */
START_TEST(transmissions_keep_their_own_records)
{
    struct sentmap m;
    struct sentmap_packet *p;
    struct sentmap_tx *t;
    const struct sentmap_tx *found;
    uint64_t tx;

    ck_assert_int_eq(sentmap_init(&m, 4, 16, 0, 0), 0);
    p = sentmap_take(&m, 7);
    t = sentmap_sent(&m, p, 100, 1);
    t->delivered = 55;
    sentmap_sent(&m, p, 300, 2); /* resent */
    found = sentmap_tx_find(&m, 1);
    ck_assert_ptr_nonnull(found);
    ck_assert_uint_eq(found->sent_time, 100);
    ck_assert_uint_eq(found->delivered, 55);
    ck_assert_uint_eq(found->seq, 7);
    found = sentmap_tx_find(&m, 2);
    ck_assert_ptr_nonnull(found);
    ck_assert_uint_eq(found->sent_time, 300);
    ck_assert_uint_eq(p->tx_order, 2);
    ck_assert_ptr_null(sentmap_tx_find(&m, 3)); /* never sent */
    ck_assert_ptr_null(sentmap_tx_find(&m, 0));
    /* Far enough on, the ring has reused tx 1's record. */
    for (tx = 3; tx <= 3 + 4 * 4; tx++)
        sentmap_sent(&m, p, 400 + tx, tx);
    ck_assert_ptr_null(sentmap_tx_find(&m, 1));
    ck_assert_ptr_nonnull(sentmap_tx_find(&m, 3 + 4 * 4));
    sentmap_dispose(&m);
}
END_TEST

START_TEST(random_against_model)
{
    struct sentmap m;
    uint32_t lo = 1, hi = 1; /* seqs lo .. hi - 1 may be in use */
    uint64_t x = 42, order = 0;
    int step, i;

    ck_assert_int_eq(sentmap_init(&m, CAP, 8, 0, 0), 0);
    for (step = 0; step < 200000; step++) {
        uint64_t r = rng_next(&x) % 10;
        uint32_t seq = lo + (hi > lo ? (uint32_t)(rng_next(&x) % (hi - lo)) : 0);
        struct sentmap_packet *p = sentmap_at(&m, seq);

        if (r < 3 && hi - lo < CAP) {
            REQUIRE(sentmap_take(&m, hi) != NULL);
            sentmap_sent(&m, sentmap_at(&m, hi), step, ++order);
            hi++;
        } else if (r < 5 && p->where != SENTMAP_FREE) {
            sentmap_sent(&m, p, step, ++order);
        } else if (r < 7) {
            sentmap_worry(&m, p);
        } else if (r < 9 && p->where != SENTMAP_FREE) {
            sentmap_release(&m, p);
        }
        while (lo < hi && sentmap_at(&m, lo)->where == SENTMAP_FREE)
            lo++;
        if (step % 64 == 0) {
            check_queue(&m, &m.flight, SENTMAP_FLIGHT);
            check_queue(&m, &m.worried, SENTMAP_WORRIED);
            REQUIRE(m.flight.count + m.worried.count + m.pool.spare_count == m.pool.buffers);
            REQUIRE(m.pool.buffers <= CAP);
        }
    }
    for (i = 0; i <= (int)m.mask; i++)
        if (m.slots[i].where != SENTMAP_FREE)
            sentmap_release(&m, &m.slots[i]);
    ck_assert_uint_eq(m.pool.spare_count, m.pool.buffers);
    sentmap_dispose(&m);
}
END_TEST

static Suite *sentmap_suite(void)
{
    Suite *s = suite_create("sentmap");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, pool_is_lazy_bounded_and_reused);
    tcase_add_test(tc, pinned_buffers_wait_for_unpin);
    tcase_add_test(tc, keep_gives_memory_back);
    tcase_add_test(tc, queues_keep_transmission_order);
    tcase_add_test(tc, transmissions_keep_their_own_records);
    tcase_add_test(tc, random_against_model);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(sentmap_suite());
}
