/*
 * split.h - rcat --split=N: one large file fetched as N byte ranges at once,
 * each over its own connection (jobs.c's lanes), written at its offset into
 * one temporary beside the target, checksummed whole against the server's
 * SUM of the file, and renamed into place only then; with --put, the same
 * into a temporary on the server (split_put.c). On a long, lossy path
 * one transfer's window and rate controller cap what one connection moves;
 * several ranges in flight fill the path. A range that fails is fetched
 * again alone, from near where it stopped.
 */
#ifndef RCAT_SPLIT_H
#define RCAT_SPLIT_H

#include "url.h"

struct ops;

#define SPLIT_MAX 64                 /* ranges at once: connections to one server */
#define SPLIT_MIN_RANGE (4ull << 20) /* no range smaller: a smaller file is not split */

/* The fetch of src into dest (a file by name) with --split, when it
 * applies: returns 1 with the operand's exit code in *code (reported,
 * events and all), or 0 having done nothing that shows (the file is small,
 * not a regular file, or the target not a file by name: ops_fetch then
 * fetches it as usual). */
int split_fetch(struct ops *o, const struct url *src, const char *dest, int *code);
/* The store of local into dst with --split, when it applies: as
 * split_fetch (0: standard input, a small file, a target naming a
 * directory: ops_store stores it as usual). */
int split_store(struct ops *o, const char *local, const struct url *dst, int *code);

#endif
