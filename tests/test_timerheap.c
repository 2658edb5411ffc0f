/*
 * test_timerheap.c - the timer heap against a sorted reference, because the
 * whole runtime's determinism under a fake clock rests on its firing order.
 */
#include <stdlib.h>

#include <check.h>

#include "timerheap.h"
#include "check_run.h"

/* xorshift64: a fixed seed makes every run draw the same deadlines. */
static uint64_t next_random(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* The heap property, and every timer knows where it sits. */
static void check_shape(const struct timerheap *h)
{
    for (size_t i = 0; i < h->len; i++) {
        const struct timer *t = h->items[i];

        ck_assert_uint_eq(t->index, i);
        if (i == 0)
            continue;
        const struct timer *p = h->items[(i - 1) / 2];

        ck_assert(p->deadline < t->deadline || (p->deadline == t->deadline && p->order < t->order));
    }
}

/* Pops everything up to now; returns how many, checking order on the way. */
static size_t drain(struct timerheap *h, uint64_t now, struct timer **out)
{
    size_t n = 0;
    struct timer *t;

    while ((t = timerheap_pop_expired(h, now)) != NULL) {
        ck_assert(!timer_armed(t));
        if (n > 0) {
            ck_assert_uint_le(out[n - 1]->deadline, t->deadline);
            if (out[n - 1]->deadline == t->deadline)
                ck_assert_uint_lt(out[n - 1]->order, t->order);
        }
        out[n++] = t;
    }
    return n;
}

struct ref {
    uint64_t deadline;
    size_t armed; /* position in arming order */
};

static int ref_cmp(const void *a, const void *b)
{
    const struct ref *x = a, *y = b;

    if (x->deadline != y->deadline)
        return x->deadline < y->deadline ? -1 : 1;
    return x->armed < y->armed ? -1 : x->armed > y->armed;
}

START_TEST(random_deadlines_fire_in_sorted_order)
{
    enum { N = 2000 };
    static struct timer timers[N];
    static struct timer *popped[N];
    static struct ref ref[N];
    struct timerheap h;
    uint64_t seed = 0x5eed;

    timerheap_init(&h);
    for (size_t i = 0; i < N; i++) {
        timer_init(&timers[i]);
        /* A small range forces many ties. */
        ref[i].deadline = next_random(&seed) % 300;
        ref[i].armed = i;
        ck_assert_int_eq(timerheap_set(&h, &timers[i], ref[i].deadline), 0);
    }
    check_shape(&h);
    qsort(ref, N, sizeof(ref[0]), ref_cmp);
    ck_assert_uint_eq(timerheap_next(&h), ref[0].deadline);
    ck_assert_uint_eq(drain(&h, UINT64_MAX, popped), N);
    for (size_t i = 0; i < N; i++)
        ck_assert_ptr_eq(popped[i], &timers[ref[i].armed]);
    timerheap_dispose(&h);
}
END_TEST

START_TEST(ties_fire_in_arming_order)
{
    static const size_t arm[] = {3, 1, 4, 0, 2};
    struct timer timers[5], *popped[5];
    struct timerheap h;

    timerheap_init(&h);
    for (size_t i = 0; i < 5; i++) {
        timer_init(&timers[arm[i]]);
        ck_assert_int_eq(timerheap_set(&h, &timers[arm[i]], 100), 0);
    }
    ck_assert_uint_eq(drain(&h, 100, popped), 5);
    for (size_t i = 0; i < 5; i++)
        ck_assert_ptr_eq(popped[i], &timers[arm[i]]);
    timerheap_dispose(&h);
}
END_TEST

START_TEST(moving_a_timer_earlier_and_later)
{
    struct timer a, b, c, *popped[3];
    struct timerheap h;

    timerheap_init(&h);
    timer_init(&a);
    timer_init(&b);
    timer_init(&c);
    timerheap_set(&h, &a, 10);
    timerheap_set(&h, &b, 20);
    timerheap_set(&h, &c, 30);

    /* Earlier: c becomes the next deadline without being armed twice. */
    timerheap_set(&h, &c, 5);
    ck_assert_uint_eq(h.len, 3);
    ck_assert_uint_eq(timerheap_next(&h), 5);
    check_shape(&h);

    /* Later, onto b's deadline: c was set last, so it fires after b. */
    timerheap_set(&h, &c, 20);
    timerheap_set(&h, &a, 40);
    check_shape(&h);
    ck_assert_uint_eq(drain(&h, UINT64_MAX, popped), 3);
    ck_assert_ptr_eq(popped[0], &b);
    ck_assert_ptr_eq(popped[1], &c);
    ck_assert_ptr_eq(popped[2], &a);
    timerheap_dispose(&h);
}
END_TEST

START_TEST(cancel_in_the_middle)
{
    enum { N = 300 };
    static struct timer timers[N];
    static struct timer *popped[N];
    struct timerheap h;
    uint64_t seed = 7;
    size_t left = 0;

    timerheap_init(&h);
    for (size_t i = 0; i < N; i++) {
        timer_init(&timers[i]);
        timerheap_set(&h, &timers[i], next_random(&seed) % 1000);
    }
    for (size_t i = 0; i < N; i += 3) {
        timerheap_cancel(&h, &timers[i]);
        ck_assert(!timer_armed(&timers[i]));
        check_shape(&h);
    }
    for (size_t i = 0; i < N; i++)
        left += timer_armed(&timers[i]);
    ck_assert_uint_eq(h.len, left);
    ck_assert_uint_eq(drain(&h, UINT64_MAX, popped), left);
    for (size_t i = 0; i < left; i++)
        ck_assert_uint_ne((size_t)(popped[i] - timers) % 3, 0);
    timerheap_dispose(&h);
}
END_TEST

START_TEST(cancel_idle_is_harmless)
{
    struct timer never, once, other;
    struct timerheap h;

    timerheap_init(&h);
    timer_init(&never);
    timer_init(&once);
    timer_init(&other);
    timerheap_set(&h, &other, 50);
    timerheap_cancel(&h, &never);
    timerheap_set(&h, &once, 10);
    timerheap_cancel(&h, &once);
    timerheap_cancel(&h, &once);
    ck_assert_uint_eq(h.len, 1);
    ck_assert_uint_eq(timerheap_next(&h), 50);
    ck_assert_ptr_eq(timerheap_pop_expired(&h, 50), &other);
    /* Popped timers are idle again: cancelling one is a no-op too. */
    timerheap_cancel(&h, &other);
    ck_assert_uint_eq(h.len, 0);
    timerheap_dispose(&h);
}
END_TEST

START_TEST(pop_expired_respects_now)
{
    struct timer t10, t20, t30;
    struct timerheap h;

    timerheap_init(&h);
    ck_assert_uint_eq(timerheap_next(&h), UINT64_MAX);
    ck_assert_ptr_null(timerheap_pop_expired(&h, UINT64_MAX));
    timer_init(&t10);
    timer_init(&t20);
    timer_init(&t30);
    timerheap_set(&h, &t30, 30);
    timerheap_set(&h, &t10, 10);
    timerheap_set(&h, &t20, 20);

    ck_assert_ptr_null(timerheap_pop_expired(&h, 9));
    ck_assert_ptr_eq(timerheap_pop_expired(&h, 20), &t10);
    ck_assert_ptr_eq(timerheap_pop_expired(&h, 20), &t20); /* deadline == now fires */
    ck_assert_ptr_null(timerheap_pop_expired(&h, 20));
    ck_assert_uint_eq(timerheap_next(&h), 30);
    ck_assert(timer_armed(&t30));
    timerheap_dispose(&h);
}
END_TEST

START_TEST(a_hundred_thousand_timers)
{
    enum { N = 100000 };
    struct timer *timers = calloc(N, sizeof(*timers));
    struct timer **popped = calloc(N, sizeof(*popped));
    struct timerheap h;
    uint64_t seed = 0xdeadbeef, now = 0;
    size_t total = 0;

    ck_assert_ptr_nonnull(timers);
    ck_assert_ptr_nonnull(popped);
    timerheap_init(&h);
    for (size_t i = 0; i < N; i++) {
        timer_init(&timers[i]);
        ck_assert_int_eq(timerheap_set(&h, &timers[i], next_random(&seed) % 1000000), 0);
    }
    /* Churn: move a quarter, cancel a quarter. */
    for (size_t i = 0; i < N; i += 4)
        timerheap_set(&h, &timers[i], next_random(&seed) % 1000000);
    for (size_t i = 1; i < N; i += 4)
        timerheap_cancel(&h, &timers[i]);
    check_shape(&h);
    ck_assert_uint_eq(h.len, N - N / 4);

    /* A fake clock stepping forward; each step fires only what is due. */
    while (h.len > 0) {
        now += 10007;
        size_t n = drain(&h, now, popped);

        for (size_t i = 0; i < n; i++)
            ck_assert_uint_le(popped[i]->deadline, now);
        ck_assert_uint_gt(timerheap_next(&h), now);
        total += n;
    }
    ck_assert_uint_eq(total, N - N / 4);
    timerheap_dispose(&h);
    free(popped);
    free(timers);
}
END_TEST

static Suite *timerheap_suite(void)
{
    Suite *s = suite_create("timerheap");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, random_deadlines_fire_in_sorted_order);
    tcase_add_test(tc, ties_fire_in_arming_order);
    tcase_add_test(tc, moving_a_timer_earlier_and_later);
    tcase_add_test(tc, cancel_in_the_middle);
    tcase_add_test(tc, cancel_idle_is_harmless);
    tcase_add_test(tc, pop_expired_respects_now);
    tcase_add_test(tc, a_hundred_thousand_timers);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(timerheap_suite());
}
