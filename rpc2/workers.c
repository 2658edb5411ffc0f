/*
 * workers.c - a fixed pool of threads taking jobs from one FIFO queue. It
 * exists so a handler that blocks (on disk, on its side effect, on anything)
 * costs one worker and never the loop thread. Jobs of a lane are picked up
 * in the order they were submitted, the quick lane's first; with several
 * workers, nothing more is promised about when each one finishes. With three
 * or more, one is kept for the quick lane: a stat must not wait behind
 * slow handlers however many are queued.
 *
 * Each job wakes one thread that can take it, not every thread: with a
 * broadcast per job, a server of small calls spent its time in threads
 * woken for nothing and queueing on the lock (rcatd serving a tree of
 * small files). The thread kept for the quick lane waits on a condition
 * of its own, so a slow job's one wake-up never lands on it.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#include <rpc2/rpc2.h>

#include "workers.h"

#define WORKERS_MAX 256

struct job {
    workers_job_fn fn;
    void *arg;
    struct job *next;
};

/* A FIFO of jobs. */
struct lane {
    struct job *head, *tail;
};

struct workers {
    pthread_mutex_t lock;
    pthread_cond_t more;       /* a job was queued, or stopping was set */
    pthread_cond_t more_quick; /* the same, for the thread kept for quick jobs */
    struct lane quick, slow;
    int stopping; /* exit once the queue is empty */
    int started;  /* threads[0..started) are running */
    pthread_t threads[];
};

static struct job *lane_pop(struct lane *l)
{
    struct job *j = l->head;

    if (j) {
        l->head = j->next;
        if (!l->head)
            l->tail = NULL;
    }
    return j;
}

static void lane_push(struct lane *l, struct job *j)
{
    if (l->tail)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
}

/* The quick lane first; a thread kept for it takes nothing else. */
static struct job *take(struct workers *w, int quick_only)
{
    struct job *j = lane_pop(&w->quick);

    return j || quick_only ? j : lane_pop(&w->slow);
}

/* Takes the next job, waiting for one; NULL once stopping and drained. */
static struct job *next_job(struct workers *w, int quick_only)
{
    struct job *j;

    pthread_mutex_lock(&w->lock);
    while (!(j = take(w, quick_only)) && !w->stopping)
        pthread_cond_wait(quick_only ? &w->more_quick : &w->more, &w->lock);
    pthread_mutex_unlock(&w->lock);
    return j;
}

struct thread_arg {
    struct workers *w;
    int quick_only;
};

static void *worker_main(void *arg)
{
    struct thread_arg *ta = arg;
    struct workers *w = ta->w;
    int quick_only = ta->quick_only;
    struct job *j;

    free(ta);
    while ((j = next_job(w, quick_only))) {
        workers_job_fn fn = j->fn;
        void *job_arg = j->arg;

        free(j);
        fn(job_arg);
    }
    return NULL;
}

/* Stops and joins the running threads; the queue must be drained or empty. */
static void stop_and_join(struct workers *w)
{
    pthread_mutex_lock(&w->lock);
    w->stopping = 1;
    pthread_cond_broadcast(&w->more);
    pthread_cond_broadcast(&w->more_quick);
    pthread_mutex_unlock(&w->lock);
    for (int i = 0; i < w->started; i++)
        pthread_join(w->threads[i], NULL);
}

/* Starts the threads with every signal blocked, so the application's
 * signals keep going to its own threads, never into a handler's middle. */
static int start_threads(struct workers *w, int n)
{
    sigset_t all, old;
    int err = 0;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (; w->started < n; w->started++) {
        struct thread_arg *ta = malloc(sizeof *ta);

        if (!ta) {
            err = ENOMEM;
            break;
        }
        *ta = (struct thread_arg){w, n >= 3 && w->started == 0};
        err = pthread_create(&w->threads[w->started], NULL, worker_main, ta);
        if (err) {
            free(ta);
            break;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return err;
}

static void destroy(struct workers *w)
{
    pthread_cond_destroy(&w->more_quick);
    pthread_cond_destroy(&w->more);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

int workers_new(int n, struct workers **out)
{
    if (n < 1 || n > WORKERS_MAX || !out)
        return RPC2_EINVAL;
    struct workers *w = calloc(1, sizeof *w + (size_t)n * sizeof w->threads[0]);

    if (!w)
        return RPC2_ENOMEM;
    if (pthread_mutex_init(&w->lock, NULL)) {
        free(w);
        return RPC2_ESYSTEM;
    }
    if (pthread_cond_init(&w->more, NULL)) {
        pthread_mutex_destroy(&w->lock);
        free(w);
        return RPC2_ESYSTEM;
    }
    if (pthread_cond_init(&w->more_quick, NULL)) {
        pthread_cond_destroy(&w->more);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return RPC2_ESYSTEM;
    }
    int err = start_threads(w, n);

    if (err) {
        stop_and_join(w);
        destroy(w);
        errno = err;
        return RPC2_ESYSTEM;
    }
    *out = w;
    return 0;
}

int workers_submit_lane(struct workers *w, int quick, workers_job_fn fn, void *arg)
{
    struct job *j = malloc(sizeof *j);

    if (!j)
        return RPC2_ENOMEM;
    j->fn = fn;
    j->arg = arg;
    j->next = NULL;
    pthread_mutex_lock(&w->lock);
    lane_push(quick ? &w->quick : &w->slow, j);
    /* a quick job: the thread kept for it, and one other in case that one
     * is busy (whichever comes first takes it; the other finds nothing) */
    if (quick)
        pthread_cond_signal(&w->more_quick);
    pthread_cond_signal(&w->more);
    pthread_mutex_unlock(&w->lock);
    return 0;
}

int workers_submit(struct workers *w, workers_job_fn fn, void *arg)
{
    return workers_submit_lane(w, 0, fn, arg);
}

/* Workers leave only when the queue is empty, so every job queued before
 * this (and any a running job queues meanwhile) still runs. */
void workers_free(struct workers *w)
{
    if (!w)
        return;
    stop_and_join(w);
    destroy(w);
}
