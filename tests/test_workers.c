/*
 * test_workers.c - the worker pool and the mailbox, the two places where
 * threads meet. Every wait here is on a condition variable with a deadline,
 * never a sleep, so a lost wake-up or a serialised pool fails the test
 * instead of slowing it down.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include <check.h>

#include <rpc2/rpc2.h>

#include "mailbox.h"
#include "workers.h"
#include "check_run.h"

/* Far longer than any of these tests needs; reaching it is the failure. */
#define DEADLINE_SEC 10

/* A flag-and-counter rendezvous between the test and its jobs. */
struct gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct timespec deadline;
    int open;
    int count;
};

static void gate_init(struct gate *g)
{
    pthread_condattr_t attr;

    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    ck_assert_int_eq(pthread_cond_init(&g->cond, &attr), 0);
    pthread_condattr_destroy(&attr);
    ck_assert_int_eq(pthread_mutex_init(&g->lock, NULL), 0);
    clock_gettime(CLOCK_MONOTONIC, &g->deadline);
    g->deadline.tv_sec += DEADLINE_SEC;
    g->open = 0;
    g->count = 0;
}

static void gate_dispose(struct gate *g)
{
    pthread_cond_destroy(&g->cond);
    pthread_mutex_destroy(&g->lock);
}

/* Waits, with g->lock held, for a broadcast; 0 once the deadline passed. */
static int gate_wait(struct gate *g)
{
    return pthread_cond_timedwait(&g->cond, &g->lock, &g->deadline) != ETIMEDOUT;
}

static void gate_open(struct gate *g)
{
    pthread_mutex_lock(&g->lock);
    g->open = 1;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

/* Blocks until the gate opens; records in count whether it did in time. */
static void wait_for_gate_job(void *arg)
{
    struct gate *g = arg;

    pthread_mutex_lock(&g->lock);
    while (!g->open && gate_wait(g))
        ;
    g->count = g->open;
    pthread_mutex_unlock(&g->lock);
}

static void count_job(void *arg)
{
    struct gate *g = arg;

    pthread_mutex_lock(&g->lock);
    g->count++;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

static void hit_job(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
}

START_TEST(thread_count_out_of_range_is_refused)
{
    struct workers *w = NULL;

    ck_assert_int_eq(workers_new(0, &w), RPC2_EINVAL);
    ck_assert_int_eq(workers_new(-1, &w), RPC2_EINVAL);
    ck_assert_int_eq(workers_new(257, &w), RPC2_EINVAL);
    ck_assert_ptr_null(w);
    workers_free(NULL);
    ck_assert_int_eq(workers_new(256, &w), 0);
    workers_free(w);
}
END_TEST

#define MANY_JOBS 1000

START_TEST(every_job_runs_exactly_once)
{
    atomic_int hits[MANY_JOBS];
    struct workers *w;

    for (int i = 0; i < MANY_JOBS; i++)
        atomic_init(&hits[i], 0);
    ck_assert_int_eq(workers_new(4, &w), 0);
    for (int i = 0; i < MANY_JOBS; i++)
        ck_assert_int_eq(workers_submit(w, hit_job, &hits[i]), 0);
    workers_free(w);

    for (int i = 0; i < MANY_JOBS; i++)
        ck_assert_msg(atomic_load(&hits[i]) == 1, "job %d ran %d times", i, atomic_load(&hits[i]));
}
END_TEST

/*
 * One job blocks until the test has seen 100 others finish. With the pool
 * serialised behind it, they never would, and the slow job would time out.
 */
START_TEST(a_slow_job_does_not_hold_up_the_others)
{
    struct gate slow, quick;
    struct workers *w;

    gate_init(&slow);
    gate_init(&quick);
    ck_assert_int_eq(workers_new(2, &w), 0);
    ck_assert_int_eq(workers_submit(w, wait_for_gate_job, &slow), 0);
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(workers_submit(w, count_job, &quick), 0);

    pthread_mutex_lock(&quick.lock);
    while (quick.count < 100 && gate_wait(&quick))
        ;
    int quick_done = quick.count;
    pthread_mutex_unlock(&quick.lock);
    gate_open(&slow);
    workers_free(w);

    ck_assert_int_eq(quick_done, 100);
    ck_assert_int_eq(slow.count, 1); /* released by the test, not by the deadline */
    gate_dispose(&slow);
    gate_dispose(&quick);
}
END_TEST

/* Three workers: two slow jobs run and more wait behind them, yet a quick
 * job runs at once on the worker kept for the quick lane. */
START_TEST(a_quick_job_never_queues_behind_slow_ones)
{
    struct gate slow, quick;
    struct workers *w;

    gate_init(&slow);
    gate_init(&quick);
    ck_assert_int_eq(workers_new(3, &w), 0);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(workers_submit(w, wait_for_gate_job, &slow), 0);
    ck_assert_int_eq(workers_submit_lane(w, 1, count_job, &quick), 0);

    pthread_mutex_lock(&quick.lock);
    while (quick.count < 1 && gate_wait(&quick))
        ;
    int quick_done = quick.count;
    pthread_mutex_unlock(&quick.lock);
    gate_open(&slow);
    workers_free(w);

    ck_assert_int_eq(quick_done, 1);
    ck_assert_int_eq(slow.count, 1); /* released by the test, not by the deadline */
    gate_dispose(&slow);
    gate_dispose(&quick);
}
END_TEST

/* A job that queues another until depth reaches zero, as a handler might.
 * (Check's asserts are for the test's own thread: jobs count failures.) */
struct chain {
    struct workers *w;
    atomic_int depth;
    atomic_int ran;
    atomic_int failed;
};

static void chain_job(void *arg)
{
    struct chain *c = arg;

    atomic_fetch_add(&c->ran, 1);
    if (atomic_fetch_sub(&c->depth, 1) > 1 && workers_submit(c->w, chain_job, c) != 0)
        atomic_fetch_add(&c->failed, 1);
}

/* The single worker is held at the gate while 500 jobs queue up behind it,
 * so free is called with a full queue and must run all of it. */
START_TEST(free_runs_the_queued_jobs_first)
{
    struct gate g;
    atomic_int hits;
    struct chain c;
    struct workers *w;

    gate_init(&g);
    atomic_init(&hits, 0);
    atomic_init(&c.depth, 10);
    atomic_init(&c.ran, 0);
    atomic_init(&c.failed, 0);
    ck_assert_int_eq(workers_new(1, &w), 0);
    c.w = w;
    ck_assert_int_eq(workers_submit(w, wait_for_gate_job, &g), 0);
    for (int i = 0; i < 500; i++)
        ck_assert_int_eq(workers_submit(w, hit_job, &hits), 0);
    ck_assert_int_eq(workers_submit(w, chain_job, &c), 0);
    gate_open(&g);
    workers_free(w);

    ck_assert_int_eq(atomic_load(&hits), 500);
    ck_assert_int_eq(atomic_load(&c.ran), 10);
    ck_assert_int_eq(atomic_load(&c.failed), 0);
    gate_dispose(&g);
}
END_TEST

/* ---- mailbox -------------------------------------------------------------- */

#define POSTERS 8
#define POSTS 10000

/* What the loop thread of the test knows; fields below the line are
 * touched only by items, which run on the draining thread. */
struct inbox {
    struct mailbox mb;
    struct gate woken; /* open: a wake-up came since the last drain */
    atomic_int wakes;
    atomic_int post_failed;
    int next_seq[POSTERS];
    int out_of_order;
    int ran;
};

struct letter {
    struct inbox *in;
    int poster;
    int seq;
};

static void wake(void *arg)
{
    struct inbox *in = arg;

    atomic_fetch_add(&in->wakes, 1);
    gate_open(&in->woken);
}

static void read_letter(void *arg)
{
    struct letter *l = arg;
    struct inbox *in = l->in;

    if (l->seq != in->next_seq[l->poster])
        in->out_of_order++;
    in->next_seq[l->poster] = l->seq + 1;
    in->ran++;
    free(l);
}

struct poster {
    pthread_t thread;
    struct inbox *in;
    int id;
};

static void *poster_main(void *arg)
{
    struct poster *p = arg;

    for (int seq = 0; seq < POSTS; seq++) {
        struct letter *l = malloc(sizeof *l);

        if (!l) {
            atomic_fetch_add(&p->in->post_failed, 1);
            continue;
        }
        *l = (struct letter){p->in, p->id, seq};
        if (mailbox_post(&p->in->mb, read_letter, l) != 0) {
            atomic_fetch_add(&p->in->post_failed, 1);
            free(l);
        }
    }
    return NULL;
}

/* Sleeps until a wake-up arrives (or the deadline passes), as the loop's
 * ev_async would, and rearms for the next one. */
static int wait_for_wake(struct inbox *in)
{
    struct gate *g = &in->woken;
    int ok = 1;

    pthread_mutex_lock(&g->lock);
    while (!g->open && (ok = gate_wait(g)))
        ;
    g->open = 0;
    pthread_mutex_unlock(&g->lock);
    return ok;
}

START_TEST(posts_from_many_threads_arrive_once_and_in_order)
{
    struct inbox in = {0};
    struct poster posters[POSTERS];
    int drained = 0;

    gate_init(&in.woken);
    atomic_init(&in.wakes, 0);
    atomic_init(&in.post_failed, 0);
    ck_assert_int_eq(mailbox_init(&in.mb, wake, &in), 0);
    for (int i = 0; i < POSTERS; i++) {
        posters[i] = (struct poster){.in = &in, .id = i};
        ck_assert_int_eq(pthread_create(&posters[i].thread, NULL, poster_main, &posters[i]), 0);
    }
    while (drained < POSTERS * POSTS && wait_for_wake(&in))
        drained += mailbox_drain(&in.mb);
    for (int i = 0; i < POSTERS; i++)
        pthread_join(posters[i].thread, NULL);
    drained += mailbox_drain(&in.mb);
    mailbox_dispose(&in.mb);

    ck_assert_int_eq(atomic_load(&in.post_failed), 0);
    ck_assert_int_eq(drained, POSTERS * POSTS);
    ck_assert_int_eq(in.ran, POSTERS * POSTS);
    ck_assert_int_eq(in.out_of_order, 0);
    for (int i = 0; i < POSTERS; i++)
        ck_assert_int_eq(in.next_seq[i], POSTS);
    ck_assert_int_eq(atomic_load(&in.wakes), POSTERS * POSTS);
    gate_dispose(&in.woken);
}
END_TEST

struct repost {
    struct mailbox *mb;
    int ran;
};

static void repost_item(void *arg)
{
    struct repost *r = arg;

    r->ran++;
    ck_assert_int_eq(mailbox_post(r->mb, repost_item, r), 0);
}

/* An item that posts again runs once per drain, not in a loop forever. */
START_TEST(items_posted_while_draining_wait_for_the_next_drain)
{
    struct mailbox mb;
    struct repost r = {&mb, 0};

    ck_assert_int_eq(mailbox_init(&mb, NULL, NULL), 0);
    ck_assert_int_eq(mailbox_drain(&mb), 0);
    ck_assert_int_eq(mailbox_post(&mb, repost_item, &r), 0);
    ck_assert_int_eq(mailbox_drain(&mb), 1);
    ck_assert_int_eq(r.ran, 1);
    ck_assert_int_eq(mailbox_drain(&mb), 1);
    ck_assert_int_eq(r.ran, 2);
    mailbox_dispose(&mb); /* the third post is freed unrun */
    ck_assert_int_eq(r.ran, 2);
}
END_TEST

static void must_not_run(void *arg)
{
    (*(int *)arg)++;
}

START_TEST(dispose_frees_items_without_running_them)
{
    struct mailbox mb;
    int ran = 0;

    ck_assert_int_eq(mailbox_init(&mb, NULL, NULL), 0);
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(mailbox_post(&mb, must_not_run, &ran), 0);
    mailbox_dispose(&mb);
    ck_assert_int_eq(ran, 0);
}
END_TEST

static Suite *workers_suite(void)
{
    Suite *s = suite_create("workers");
    TCase *pool = tcase_create("pool");
    TCase *mailbox = tcase_create("mailbox");

    tcase_set_timeout(pool, 2 * DEADLINE_SEC);
    tcase_add_test(pool, thread_count_out_of_range_is_refused);
    tcase_add_test(pool, every_job_runs_exactly_once);
    tcase_add_test(pool, a_slow_job_does_not_hold_up_the_others);
    tcase_add_test(pool, a_quick_job_never_queues_behind_slow_ones);
    tcase_add_test(pool, free_runs_the_queued_jobs_first);
    suite_add_tcase(s, pool);
    tcase_set_timeout(mailbox, 2 * DEADLINE_SEC);
    tcase_add_test(mailbox, posts_from_many_threads_arrive_once_and_in_order);
    tcase_add_test(mailbox, items_posted_while_draining_wait_for_the_next_drain);
    tcase_add_test(mailbox, dispose_frees_items_without_running_them);
    suite_add_tcase(s, mailbox);
    return s;
}

int main(void)
{
    return check_run(workers_suite());
}
