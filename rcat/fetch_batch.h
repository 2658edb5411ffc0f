/*
 * fetch_batch.h - what rcat -r needs to fetch small files several to a
 * call (RCAT_FETCH_BATCH, rcat_proto.x): which files go together, and the
 * check of a reply before any byte of it is used. ops_tree.c runs the
 * calls; these parts are apart so that a test can feed them anything
 * (tests/test_fetch_batch.c).
 */
#ifndef RCAT_FETCH_BATCH_H
#define RCAT_FETCH_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "rcat_proto.h"

/* The listed bytes of one batch at most: what one reply datagram carries
 * on loopback (the library piggybacks up to ~56 KiB there, with room for
 * the result), so that a batch costs one request and one reply. A batch
 * that grew past it meanwhile, or on a path that piggybacks less (1,380
 * bytes a packet on a WAN), is streamed, still one call for many files.
 * Larger, streamed batches were slower on loopback than these (the
 * stream's own round trips and acks), fewer files a call saved less. */
#define FETCH_BATCH_BUDGET (48u << 10)
/* A file of at most this many bytes (as listed) goes in a batch, so that
 * a batch holds two files at least; a larger one moves alone. */
#define FETCH_BATCH_FILE_MAX (FETCH_BATCH_BUDGET / 2)
/* The paths of one batch together at most, within the server's own cap
 * (RCAT_BATCH_PATH_BYTES), so that the call stays a modest datagram. */
#define FETCH_BATCH_PATHS (8u << 10)

/* One task of the run: files first .. first + n - 1 of its list, in one
 * FETCH_BATCH when batch, else one FETCH (n is then 1). */
struct fetch_batch_task {
    size_t first, n;
    uint64_t bytes; /* listed */
    int batch;
};

/* Groups n files (sizes as listed, path_lens their remote paths' lengths)
 * into tasks, in order: runs of small files into batches, every other
 * file alone; without batching every file alone. out has room for n.
 * Returns the number of tasks. */
size_t fetch_batch_group(const uint64_t *sizes, const size_t *path_lens, size_t n, int batching,
                         struct fetch_batch_task *out);

/* Whether res answers a batch of asked paths whose side effect brought
 * data_len bytes: one entry per path, each sent file's length its size,
 * none for a file not sent, the lengths adding up to data_len exactly.
 * 0, or -1 with *why saying what is wrong (the reply is then not used). */
int fetch_batch_check(const fetch_batch_result *res, unsigned asked, size_t data_len,
                      const char **why);

#endif
