/*
 * split_impl.h - what split.c (the ranges of one file moved at once over
 * jobs.c's lanes, and the fetch around them) shares with split_put.c (the
 * store around them): one run's state and the steps both are made of.
 * Only split*.c include it.
 */
#ifndef RCAT_SPLIT_IMPL_H
#define RCAT_SPLIT_IMPL_H

#include <limits.h>
#include <stdint.h>
#include <sys/stat.h>

#include <rpc2/se.h>

#include "localfile.h"
#include "ops_impl.h"
#include "report.h"
#include "url.h"

#define SPLIT_ROUNDS 5       /* the first, then rounds for the ranges that failed */
#define SPLIT_FIRST_WAIT 0.5 /* seconds before the second round; doubled after */

struct split_run;

struct range {
    struct split_run *r;
    uint64_t off, len;
    uint64_t done; /* bytes from off known written by an earlier attempt */
    uint64_t live; /* this attempt's bytes so far */
    uint64_t rate_bps;
    uint64_t resent; /* this attempt's packets resent so far */
    uint32_t packet_size, window; /* the last attempt's, from its NOTIFICATION */
    int ok;
    int error;     /* the last attempt's: an rpc2 error or an rcat_status */
    int sys_errno; /* with RPC2_ESYSTEM: why the temporary would not open */
    struct rpc2_se_desc d;
    union {
        fetch_args fetch;
        store_range_args store;
    } args;
    file_info info;
    struct jobs *j;
    struct slot *s;
    unsigned lane;
    int fd;
};

struct split_run {
    struct ops *o;
    int put;                   /* ranges stored (split_put.c), not fetched */
    const struct url *server;  /* the remote file's (a fetch's source, a put's target) */
    const char *shown;         /* the local file's name in messages */
    uint64_t size;             /* the file's, when the ranges were laid out */
    struct slot *slot; /* the run's connection to the server, for messages */
    struct sink k;
    file_info at_start; /* the STAT before any range */
    char tmp[PATH_MAX];
    int fd;             /* fetch: the temporary; put: the local file */
    struct stat tmp_st; /* fetch: the temporary; put: the local file at the start */
    char remote_tmp[RCAT_MAX_PATH + 1]; /* put: the server's temporary; "": none */
    struct url tmp_url;                 /* put: it, as a URL on the server */
    struct range *v;
    size_t n;
    size_t *todo; /* the ranges this round fetches */
    size_t n_todo;
    struct report_xfer rep;
    int told_init, told_session, told_notification;
    uint64_t retrans0, retrans, duplicates;
    unsigned char sum[RPC2_SE_SUM_MAX];
    unsigned sum_len;
};


/* The ranges of r->size laid out (r->n of them) */
int split_layout(struct split_run *r);
/* Moves every range, a few rounds at most: 0, or the index + 1 of the
 * range whose error ends the run. */
size_t split_move_ranges(struct split_run *r, unsigned lanes);
/* The failure of the range that ended the run, reported: its exit code. */
int split_range_failure(struct split_run *r, size_t which, const char **result);
/* Ranges for a file of size with --split=N: N, but none under
 * SPLIT_MIN_RANGE; 0 or 1: not worth splitting. */
size_t split_ranges_for(uint64_t size, unsigned split);
/* The run's bytes so far (and the rate of the ranges moving, into *rate_bps). */
uint64_t split_bytes_so_far(const struct split_run *r, uint64_t *rate_bps);
/* The run's STOP: its bytes, retransmissions and sum (when code is OK). */
void split_report_end(struct split_run *r, int code, const char *result);
uint64_t split_ctx_retransmissions(struct ops *o);

/* The whole file's sum (type) here, into r->sum, and the server's SUM of
 * the file u names, both ends reading at once. */
struct split_sums {
    int type;
    int local_rc, local_errno; /* rpc2_se_sum_fd's outcome for r->fd */
    uint64_t summed;           /* bytes it read */
    unsigned char theirs[RCAT_SUM_BYTES];
    unsigned their_len;
    file_info now; /* the server's file as it summed it */
};
/* 0, or the SUM call's rpc2 error or rcat status. */
int split_sums(struct split_run *r, const struct url *u, struct split_sums *q);
/* Whether both sums are the file's (r->size bytes each): 1; 0 when they
 * differ; or the exit code of a --check they do not have (reported, named
 * for it). */
int split_sums_match(struct split_run *r, const struct split_sums *q, const char *named,
                     const char **result);

#endif
