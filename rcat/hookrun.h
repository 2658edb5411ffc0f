/*
 * hookrun.h - running rcatd's post-store commands (posthook.h) without a
 * shell and without holding a thread while they run: a worker starts the
 * command (posix_spawn, in a process group of its own, stdin /dev/null,
 * signals at their defaults), and the loop watches it (a pidfd, its
 * stdout and stderr pipes, a timer for its limit), logs its output
 * (bounded), kills its process group at the time limit (SIGTERM, SIGKILL
 * HOOKRUN_KILL_GRACE_S later), and says how it ended.
 */
#ifndef RCAT_HOOKRUN_H
#define RCAT_HOOKRUN_H

#include <stddef.h>

#include "posthook.h"

#define HOOKRUN_KILL_GRACE_S 2.0 /* from SIGTERM to SIGKILL at the time limit */
#define HOOKRUN_LOG_BYTES 4096   /* of each stream's output logged; the rest is counted */
#define HOOKRUN_LINE_MAX 512     /* a longer line is logged in pieces */

struct ev_loop;
struct hookrun;
struct hookrun_job;

typedef void (*hookrun_log_fn)(const char *line, void *arg);
/* On the loop thread, once: ok is 1 when the command exited with its
 * expected code, 0 when it did not, was killed, or could not start. */
typedef void (*hookrun_done_fn)(int ok, void *arg);

/* cwd: where commands run (the served root). NULL on no memory. */
struct hookrun *hookrun_new(struct ev_loop *loop, const char *cwd, hookrun_log_fn log,
                            void *log_arg);
/* Any thread: what it takes to run job (taken), so that nothing can fail
 * once the caller has committed to waiting; what names the file in the
 * log. NULL without memory (job freed). */
struct hookrun_job *hookrun_prepare(struct posthook_job *job, const char *what);
/* A prepared job never launched. */
void hookrun_discard(struct hookrun_job *j);
/* Any thread: starts j; done(ok, arg) follows on the loop thread, once,
 * even when the command could not start. *handle is j until done runs (set
 * before it can), NULL after: what hookrun_cancel takes. */
void hookrun_launch(struct hookrun *h, struct hookrun_job *j, hookrun_done_fn done, void *arg,
                    struct hookrun_job **handle);
/* Any thread: if *handle is still a job, its done will not run and its
 * command is killed. */
void hookrun_cancel(struct hookrun *h, struct hookrun_job **handle);
/* Loop thread: every command running is killed now (SIGKILL to its
 * process group: rcatd's drain time is over), its call failing. */
void hookrun_end_all(struct hookrun *h);
/* Commands still running are killed and reaped; done is not called. */
void hookrun_free(struct hookrun *h);

#endif
