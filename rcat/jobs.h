/*
 * jobs.h - several transfers in flight at once (rcat -j N). rpc2 runs one
 * call at a time on a connection, so N lanes are N connections to one
 * server on the run's one context; each takes the next task of one list
 * as soon as its last one is over. Small files ride in the call's reply
 * (or request), so with N calls in flight each costs a fraction of a round
 * trip.
 */
#ifndef RCAT_JOBS_H
#define RCAT_JOBS_H

#include <stddef.h>
#include <stdint.h>

#include "ops_impl.h"

#define JOBS_MAX 64 /* lanes at most: connections to one server */

struct jobs;

/*
 * Starts task on lane's connection (s; s->lost says the lane cannot run
 * it, and the task should fail with that error): with rpc2_call_async,
 * or at once (a file skipped, or one that failed before any call). Either
 * way the task ends with exactly one jobs_finish(j, lane).
 */
typedef void (*jobs_start_fn)(struct jobs *j, unsigned lane, struct slot *s, size_t task,
                              void *arg);

/* Runs tasks 0 .. n_tasks-1 on up to lanes connections to server's host
 * (the run's own connection first, the others bound meanwhile), until all
 * are over or a signal or --max-time ends the run (the calls in flight are
 * cancelled; tasks not started are not). Returns 0, or the rpc2 error of
 * the first connection when no lane could be bound at all (the tasks were
 * then started on it and failed with it). */
int jobs_run(struct ops *o, const struct url *server, unsigned lanes, size_t n_tasks,
             jobs_start_fn start, void *arg);
void jobs_finish(struct jobs *j, unsigned lane);

/*
 * jobs_run with --rate (o->cfg.rate.rate_bps) as one rate for the whole
 * run, whatever the lanes: a task starts only once the bytes of those
 * started before it (bytes[task] each) fit what the rate allows since
 * the run began, with a twentieth of a second's worth to spare. Small
 * files move in one packet, unpaced, so this is their rate; a large one
 * streams at its share of the rate (ratectl_join: every lane's transfer
 * in flight gets an equal share, whatever the run's function), and the
 * next task waits the time it takes at the rate, so lanes do not add up to
 * several times the rate. A live change (--rate-control) reaches both.
 */
int jobs_run_paced(struct ops *o, const struct url *server, unsigned lanes, size_t n_tasks,
                   jobs_start_fn start, const uint64_t *bytes, void *arg);

#endif
