/*
 * workers.h - the thread pool that runs blocking handlers, so a slow
 * handler never stalls the loop or other connections. Jobs hand their
 * outcome back to the loop thread through a mailbox (mailbox.h). Two lanes:
 * quick jobs (a stat, a directory page) never queue behind slow ones.
 */
#ifndef RPC2_WORKERS_H
#define RPC2_WORKERS_H

struct workers;

typedef void (*workers_job_fn)(void *arg);

/* Starts n threads. Returns 0 or a negative rpc2 error. */
int workers_new(int n, struct workers **out);
/* Queues a job; some worker runs fn(arg). Returns 0 or RPC2_ENOMEM. */
int workers_submit(struct workers *w, workers_job_fn fn, void *arg);
/* The same on the quick lane (quick nonzero): its jobs are taken before
 * any other queued one, and with two threads or more one thread takes
 * nothing else, so a quick job never waits behind slow ones. */
int workers_submit_lane(struct workers *w, int quick, workers_job_fn fn, void *arg);
/* Lets queued and running jobs finish, then joins the threads. NULL is fine. */
void workers_free(struct workers *w);

#endif
