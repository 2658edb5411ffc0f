/*
 * queue.h - rcat queue: the spool's commands (queue_cli.c) and its runner
 * (queue_run.c), reached from rcat's main() when argv[1] is "queue".
 */
#ifndef RCAT_QUEUE_H
#define RCAT_QUEUE_H

#include <stdint.h>

#include "queue_store.h"

/* Exit codes of rcat queue (rcat's own meanings). */
#define QUEUE_EXIT_OK 0
#define QUEUE_EXIT_USAGE 1
#define QUEUE_EXIT_REFUSED 3 /* no such request, or it has already ended */
#define QUEUE_EXIT_LOCAL 4   /* the database, or a local file */

int queue_main(int argc, char **argv);

/* queue_run.c */
int queue_run_main(const char *spec, int argc, char **argv);
/* queue_hook.c: runs one claimed hook and records that it ran. */
int queue_hook_main(const char *spec, int argc, char **argv);

/* "2026-12-06T10:00:00.123Z" */
void queue_format_time(int64_t ms, char *out, unsigned cap);

#endif
