/*
 * partials.h - the bound on what interrupted stores leave in rcatd's root.
 *
 * A store a client asked to be resumable keeps its partial file and its
 * restart points (".NAME.rcat-part", ".NAME.rcat-part.rp") when the client
 * disappears, so that a later `rcat -C --put` continues it. A client that
 * never comes back would leave them for ever: partials not written for
 * max_age are removed, when rcatd starts and then periodically, by a
 * thread of their own (a walk of a large root must not hold the loop). A
 * partial a running store holds (its flock) is never removed. The
 * temporaries of stores in ranges (".NAME.rcat-split-XXXXXXXX") that an
 * rcatd which did not stop left behind go the same way (the running one
 * removes its own sooner: serve_split.c). The walk
 * stays beneath the root (no symlink followed, no other filesystem) and
 * runs with rcatd's own rights, as every other path in root.c.
 */
#ifndef RCAT_PARTIALS_H
#define RCAT_PARTIALS_H

#include <stdint.h>

typedef void (*partials_log_fn)(const char *line, void *arg);

/* One walk: removes the stale partials beneath root; returns how many
 * files it removed, or -1 when root cannot be walked. */
long partials_sweep(const char *root, uint64_t max_age_s, partials_log_fn log, void *arg);

struct partials;
/* Sweeps now, then every max_age / 4 (at least a minute, at most an hour),
 * on a thread. NULL without memory or threads (rcatd goes on without). */
struct partials *partials_start(const char *root, uint64_t max_age_s, partials_log_fn log,
                                void *arg);
void partials_stop(struct partials *p);

#endif
