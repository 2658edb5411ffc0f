/*
 * ops.h - what rcat does on a server: fetch, store, stat and list, over one
 * rpc2 context and one connection per server. Each operation reports its
 * own errors (report.h) and returns rcat's exit code for it, so the caller
 * only has to decide which code the whole run ends with.
 */
#ifndef RCAT_OPS_H
#define RCAT_OPS_H

#include <stdint.h>

#include <rpc2/rpc2.h>

#include "url.h"

#include "rcat_proto.h"

#include "checksum.h"
#include "ratectl.h"

#define RCAT_IDENTITY_MAX 255 /* bytes of a bind's identity */

struct ops;

struct ops_config {
    uint32_t dead_peer_us;       /* --timeout: a server silent this long is lost; 0: the
                                  * library's default */
    uint64_t max_time_us;        /* --max-time: the whole run, from ops_new; 0: no limit */
    int64_t offset;              /* --offset: first byte of the source */
    int64_t length;              /* --length; -1: to the end */
    int preserve;                /* -p: keep mtime and mode bits */
    int no_clobber;              /* --no-clobber: never replace a file */
    int append;                  /* --append: add to the end of an existing file */
    int mkdirs;                  /* --mkdirs: make the target's missing directories */
    int verbose;                 /* -v: the library logs at debug level */
    size_t servers;              /* most distinct servers the run will name (its operand count) */
    enum rpc2_security security; /* --security */
    const char *identity;        /* --identity; NULL: rcat's name and version, at level none */
    const char *key_file;        /* --key-file: read only above level none */
    struct ratectl_config rate;  /* --rate, --min-rate, --policy, --rate-control */
    /* -C/--continue/--resume: a fetch into a file by name or a store keeps
     * restart points and continues from an earlier attempt's (a retry sets
     * it too); with resume_strict a source that changed fails (exit 6)
     * instead of starting over; resume_interval: bytes between restart
     * points (0: the library's default) */
    int resume;
    int resume_strict;
    uint64_t resume_interval;
    struct checksum_choice sum;  /* --checksum, --check */
    /* rcat -r (ops_tree*.c) */
    int recursive;        /* -r: directories with everything beneath them */
    unsigned jobs;        /* -j: files in flight at once (connections to a server) */
    unsigned split;       /* --split: a large fetch's ranges at once (split.h); < 2: not split */
    int skip_existing;    /* --skip-existing: same size and mtime at the target: not moved */
    int checksum_compare; /* --checksum-compare: same content at the target: not moved */
    /* --listen: the server connects from its side (rcatd --connect): rcat
     * listens here ("[ADDR:]PORT") and binds to a server only once it has
     * announced itself from the host the operand names; NULL: not so */
    const char *listen;
};

/* Returns an exit code (RCAT_EXIT_OK when *out is ready). Above level none
 * the key file is read here, before anything touches the network: a file
 * that cannot be used is a local error. */
int ops_new(const struct ops_config *c, struct ops **out);
void ops_free(struct ops *o);

/* Fetches src into the file dest, or standard output when dest is NULL or
 * "-". A file is written atomically: whole, or not at all. */
int ops_fetch(struct ops *o, const struct url *src, const char *dest);
/* Stores the local file (or "-": standard input) as dst. */
int ops_store(struct ops *o, const char *local, const struct url *dst);
/* Where rcat -r puts a copy. */
enum tree_into {
    TREE_INTO_AS,       /* the destination becomes the copy (unless it is a directory: then
                         * as BENEATH) */
    TREE_INTO_BENEATH,  /* DEST/NAME */
    TREE_INTO_CONTENTS, /* what the source directory holds goes into DEST */
};
/* rcat -r: the remote file, tree or wildcard's matches src copied to the
 * local dest, as into says. Several files move at once (cfg.jobs); each
 * has its events. */
int ops_tree_fetch(struct ops *o, const struct url *src, const char *dest, enum tree_into into);
/* rcat -r --put: the local file or tree stored at the remote dst, as into
 * says (AS: beneath dst when dst is a directory there). */
int ops_tree_put(struct ops *o, const char *local, const struct url *dst, enum tree_into into);
/* One stat line, or the listing of a directory, on standard output. */
int ops_stat(struct ops *o, const struct url *u);
int ops_list(struct ops *o, const struct url *u);

/* ---- remote operations (ops_remote.c) ----
 * One call each on u's server (a GLOB one per page, a recursive DELETE one
 * per RCAT_DELETE_MAX entries). Nothing is reported: each returns 0, a
 * positive rcat_status (the server refused: rcat_proto.x) or a negative rpc2
 * error, and ops_report_failure turns a failure into rcat's message and exit
 * code. info (may be NULL) gets what the server describes afterwards. */
int ops_mkdir(struct ops *o, const struct url *u, unsigned mode, int parents, file_info *info);
/* to: a path on the same server as from. */
int ops_rename(struct ops *o, const struct url *from, const char *to, int no_clobber,
               file_info *info);
/* flags: RCAT_DELETE_*; *removed (may be NULL) counts what went. */
int ops_delete(struct ops *o, const struct url *u, unsigned flags, uint64_t *removed);
/* Called once per match, in order; a nonzero return ends the walk and is
 * ops_glob's (use a negative rpc2 error or a positive rcat_status). No
 * match is no error: fn is never called. */
typedef int (*ops_glob_fn)(const char *path, const file_info *info, void *arg);
int ops_glob(struct ops *o, const struct url *pattern, ops_glob_fn fn, void *arg);
/* --checksum-compare, rcat handoff: whether the remote file path has the bytes of the
 * local file open at fd, by an xxh128 computed at each end (RCAT_SUM): 1,
 * or 0 (different, or not known). Not while a call runs on the run's own
 * connection. */
int ops_same_content(struct ops *o, const struct url *server, const char *path, int fd);
/* What u is (STAT), without a word said: RCAT_NOT_FOUND when nothing is there. */
int ops_lookup(struct ops *o, const struct url *u, file_info *info);
/* type: RCAT_SUM_* (the library's RPC2_SE_SUM_*); length -1: to the end.
 * sum gets *len bytes (at most RCAT_SUM_BYTES), as sha256sum prints them. */
int ops_sum(struct ops *o, const struct url *u, unsigned type, uint64_t offset, int64_t length,
            unsigned char sum[RCAT_SUM_BYTES], unsigned *len, file_info *info);
/* replace: RCAT_SYMLINK_REPLACE's meaning. */
int ops_symlink(struct ops *o, const struct url *u, const char *target, int replace,
                file_info *info);
/* The link's target into target (cap bytes, NUL-terminated; RPC2_ETOOBIG
 * when it does not fit). */
int ops_readlink(struct ops *o, const struct url *u, char *target, size_t cap);
/* flags: RCAT_SETATTR_*. */
int ops_setattr(struct ops *o, const struct url *u, unsigned flags, unsigned mode,
                int64_t mtime_sec, unsigned mtime_nsec, file_info *info);
/* The server's filesystem holding the directory u flushed (RCAT_SYNC): what
 * was stored with RCAT_STORE_NO_FLUSH is durable once it answers 0. */
int ops_sync(struct ops *o, const struct url *u);
/* rc from one of the above, reported on path (NULL: u's): the exit code. */
int ops_report_failure(struct ops *o, const struct url *u, const char *path, int rc);

/* rcat's modes over them (--mkdir, --mv, --rm, --glob, --sum, --readlink,
 * --symlink): each reports and returns an exit code. */
int ops_cmd_mkdir(struct ops *o, const struct url *u, int parents);
int ops_cmd_rename(struct ops *o, const struct url *from, const char *to, int no_clobber);
int ops_cmd_delete(struct ops *o, const struct url *u, unsigned flags);
int ops_cmd_glob(struct ops *o, const struct url *pattern);
int ops_cmd_sum(struct ops *o, const struct url *u, int type);
int ops_cmd_readlink(struct ops *o, const struct url *u);
int ops_cmd_symlink(struct ops *o, const char *target, const struct url *u);

/*
 * SIGINT, SIGTERM and SIGHUP cancel the call in flight, so that an atomic
 * fetch leaves no temporary behind; after an operation returns, this ends
 * the process by that signal (DONE first, with --json). It returns only
 * when no signal came.
 */
void ops_exit_if_interrupted(struct ops *o);

/* ---- for retries (retry.c) ---- */
rpc2_ctx *ops_ctx(struct ops *o);
/* The rpc2 error the last operation failed with, when doing it again could
 * succeed: 0 after a success, a local failure, an interruption, or bytes
 * that went through a stream and cannot be sent again. */
int ops_last_error(const struct ops *o);
/* What is left of --max-time: UINT64_MAX without one, 0 once it is over. */
uint64_t ops_time_left_us(const struct ops *o);
/* SIGINT, SIGTERM and SIGHUP end rcat with its DONE event while it waits
 * for a retry, until the next call has run. */
void ops_watch_signals(struct ops *o);
/* Before each attempt at an operand: clears the last error; again (a
 * retry) also forgets u's server's connection (lost, or forgotten by a
 * restarted server), so the attempt binds afresh. */
void ops_begin_attempt(struct ops *o, const struct url *u, int again);

#endif
