/*
 * jobs.c - the lanes of rcat -j N (jobs.h): N connections to one server,
 * each running one call at a time, fed from one task list on rcat's loop.
 * Lanes are bound asynchronously while the first one already works, so a
 * run of a few files does not wait for N handshakes. A lane whose
 * connection is lost takes no more tasks while another one lives. With
 * --rate, starts are paced so the lanes together keep to it (jobs_pace),
 * and each lane's transfer gets its share of it while it runs (ratectl.h),
 * both following a live change of the rate (--rate-control).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jobs.h"
#include "ratectl.h"

struct lane {
    struct slot own;   /* the connection of an extra lane */
    struct slot *slot; /* the one in use: the run's own for lane 0 */
    int busy;
    int binding;   /* its bind has not answered yet */
    int abandoned; /* the run ended before it did: on_bound frees the lane */
};

struct jobs {
    struct ops *o;
    struct lane *lanes[JOBS_MAX];
    unsigned n_lanes, busy, binding;
    size_t next, n_tasks;
    jobs_start_fn start;
    const uint64_t *bytes; /* each task's; NULL: unpaced */
    void *arg;
    double started; /* bytes of the tasks started */
    double allowed; /* bytes the rate has allowed since the run began */
    ev_tstamp last; /* when allowed was last brought up to date, on the loop's clock */
    ev_timer pace;  /* wakes the loop when the next start is due */
};

#define PACE_SPARE 0.05 /* seconds of the rate a start may come early by */
#define PACE_LONGEST 0.25 /* the longest wait before the rate is read again (a live change) */

static void on_pace(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop, (void)w, (void)revents; /* dispatch runs once the loop returns */
}

/* Whether the next task may start now; if not, the timer is set for when
 * it may. The rate is read afresh each time, and what it allowed is added
 * up as time passes, so a live change paces from then on at the new rate. */
static int jobs_pace(struct jobs *j)
{
    struct ops *o = j->o;
    double rate = j->bytes ? (double)ratectl_rate(o->ratectl, o->cfg.rate.rate_bps) : 0;
    ev_tstamp now = ev_now(o->loop);

    if (rate <= 0) {
        j->allowed = j->started; /* unpaced: no debt carried into a later rate */
        j->last = now;
        return 1;
    }
    j->allowed += rate * (now - j->last);
    j->last = now;
    if (ev_is_active(&j->pace))
        return 0;
    double ahead = j->started - j->allowed - rate * PACE_SPARE;

    if (ahead <= 0)
        return 1;
    ev_timer_set(&j->pace, ahead / rate < PACE_LONGEST ? ahead / rate : PACE_LONGEST, 0.);
    ev_timer_start(o->loop, &j->pace);
    return 0;
}

static void on_bound(int status, rpc2_conn *conn, void *arg)
{
    struct lane *l = arg;

    if (l->abandoned) {
        if (status == 0)
            rpc2_unbind(conn);
        free(l);
        return;
    }
    l->binding = 0;
    if (status == 0)
        ops_slot_bound(&l->own, conn);
    else
        l->own.lost = status;
}

static void cancel_all(void *arg)
{
    struct jobs *j = arg;

    for (unsigned i = 0; i < j->n_lanes; i++)
        if (j->lanes[i]->busy && j->lanes[i]->slot->conn)
            rpc2_cancel(j->lanes[i]->slot->conn);
}

void jobs_finish(struct jobs *j, unsigned lane)
{
    ratectl_leave(j->o->ratectl, j->lanes[lane]->slot->conn);
    j->lanes[lane]->busy = 0;
    j->busy--;
}

static int lane_ready(const struct lane *l)
{
    return !l->busy && !l->binding && !l->slot->lost;
}

/* A lane to start the next task on: an idle live one; when none lives
 * (and none is still binding), an idle dead one, so the task fails. */
static int pick(const struct jobs *j)
{
    int any_alive = 0;

    for (unsigned i = 0; i < j->n_lanes; i++) {
        const struct lane *l = j->lanes[i];

        if (lane_ready(l))
            return (int)i;
        if (l->binding || !l->slot->lost)
            any_alive = 1;
    }
    for (unsigned i = 0; !any_alive && i < j->n_lanes; i++)
        if (!j->lanes[i]->busy)
            return (int)i;
    return -1;
}

static void dispatch(struct jobs *j)
{
    int i;

    while (j->next < j->n_tasks && !j->o->signal && (i = pick(j)) >= 0 && jobs_pace(j)) {
        struct lane *l = j->lanes[i];

        l->busy = 1;
        j->busy++;
        if (j->bytes)
            j->started += (double)j->bytes[j->next];
        ratectl_join(j->o->ratectl, l->slot->conn);
        j->start(j, (unsigned)i, l->slot, j->next++, j->arg);
    }
}

static int add_lanes(struct jobs *j, struct slot *first, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        struct lane *l = calloc(1, sizeof *l);

        if (!l)
            return i > 0 ? 0 : RPC2_ENOMEM;
        l->slot = i == 0 ? first : &l->own;
        j->lanes[j->n_lanes++] = l;
        if (i == 0)
            continue;
        memcpy(l->own.host, first->host, sizeof l->own.host);
        l->own.port = first->port;
        l->binding = 1;
        if (first->lost || ops_bind_async(j->o, &l->own, on_bound, l) != 0) {
            l->binding = 0;
            l->own.lost = first->lost ? first->lost : RPC2_ELIMIT;
        }
    }
    return 0;
}

static void end_lanes(struct jobs *j)
{
    for (unsigned i = 0; i < j->n_lanes; i++) {
        struct lane *l = j->lanes[i];

        if (l->binding) {
            l->abandoned = 1; /* on_bound frees it */
            continue;
        }
        if (i > 0)
            rpc2_unbind(l->own.conn);
        free(l);
    }
}

int jobs_run(struct ops *o, const struct url *server, unsigned lanes, size_t n_tasks,
             jobs_start_fn start, void *arg)
{
    return jobs_run_paced(o, server, lanes, n_tasks, start, NULL, arg);
}

int jobs_run_paced(struct ops *o, const struct url *server, unsigned lanes, size_t n_tasks,
                   jobs_start_fn start, const uint64_t *bytes, void *arg)
{
    struct jobs j = {.o = o, .n_tasks = n_tasks, .start = start, .bytes = bytes, .arg = arg};
    struct slot *first = NULL;
    int rc = ops_connect(o, server, &first);

    if (!first)
        return rc ? rc : RPC2_ELIMIT;
    if (lanes < 1)
        lanes = 1;
    if (lanes > JOBS_MAX)
        lanes = JOBS_MAX;
    if ((size_t)lanes > n_tasks)
        lanes = n_tasks ? (unsigned)n_tasks : 1;
    if (add_lanes(&j, first, first->lost ? 1 : lanes) != 0) {
        end_lanes(&j);
        return RPC2_ENOMEM;
    }
    o->cancel_all = cancel_all;
    o->cancel_all_arg = &j;
    ev_now_update(o->loop);
    j.last = ev_now(o->loop);
    ev_timer_init(&j.pace, on_pace, 0., 0.);
    ops_watch(o, 1);
    for (;;) {
        dispatch(&j);
        if (j.busy == 0 && (j.next >= j.n_tasks || o->signal))
            break;
        ev_run(o->loop, EVRUN_ONCE);
    }
    ev_timer_stop(o->loop, &j.pace);
    ops_watch(o, 0);
    o->cancel_all = NULL;
    end_lanes(&j);
    return rc;
}
