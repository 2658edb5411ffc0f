/*
 * se.h - side effects: bytes moved alongside a call.
 *
 * A client attaches a side-effect descriptor to a call ("while you run
 * this, send me this file" or "... take this file from me"); the server's
 * handler fills in its own descriptor for the same transfer, initialises
 * the side effect and checks it (runs it to completion), then replies. The
 * descriptor is each side's local view and is never sent as such.
 *
 * The transfer itself is done by a side-effect type; SFTP (sftp.h) is the
 * one this library ships. rpc2 knows side effects only through the hook
 * table a type registers (struct rpc2_se_ops), so another type can be added
 * without touching the runtime.
 */
#ifndef RPC2_SE_H
#define RPC2_SE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <rpc2/rpc2.h>
#include <rpc2/event.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Side-effect type ids (the se_type of a bind). 0 means none. */
#define RPC2_SE_SFTP 1

enum rpc2_se_direction {
    RPC2_SE_FETCH = 1, /* server to client */
    RPC2_SE_STORE = 2, /* client to server */
};

enum rpc2_se_file_kind {
    RPC2_SE_FILE_NAME = 1,  /* a path, opened (and for a sink created) by the library */
    RPC2_SE_FILE_FD = 2,    /* an open descriptor, left open */
    RPC2_SE_FILE_INODE = 3, /* a Linux file handle (open_by_handle_at) */
    RPC2_SE_FILE_VM = 4,    /* a memory buffer */
};

enum rpc2_se_status {
    RPC2_SE_NOT_STARTED = 0,
    RPC2_SE_IN_PROGRESS = 1,
    RPC2_SE_SUCCESS = 2,
    RPC2_SE_FAILURE = 3,
};

/* Named checksums a descriptor may ask for besides the end-to-end
 * XXH3-128 (sum_type); values are stable, they go on the wire. */
enum rpc2_se_sum_type {
    RPC2_SE_SUM_NONE = 0,
    RPC2_SE_SUM_MD5 = 1,
    RPC2_SE_SUM_SHA1 = 2,
    RPC2_SE_SUM_SHA256 = 3,
    RPC2_SE_SUM_XXH128 = 4, /* the same XXH3-128 as checksum[] */
};
#define RPC2_SE_SUM_MAX 32 /* bytes of the longest (sha256) */

/* A descriptor's quota when the whole file is meant: no limit. */
#define RPC2_SE_NO_QUOTA (-1)

/* Called as bytes move (on the loop thread, as events are: event.h);
 * total is the size when known, else -1. */
typedef void (*rpc2_se_progress_fn)(uint64_t bytes, int64_t total, void *arg);

#define RPC2_SE_HANDLE_MAX 128

/*
 * Start from RPC2_SE_DESC_INIT or rpc2_se_desc_init(), which mean "the whole
 * file": seek offset 0, quota RPC2_SE_NO_QUOTA. Then set file_kind and file.
 * A descriptor written field by field must say its quota: 0 is a real
 * quota, an empty range (nothing moves; the transfer succeeds at once, with
 * quota_exceeded set when the source had a byte), so a descriptor zeroed
 * with memset or `= {...}` without .quota moves nothing.
 */
/* What an atomic sink by name sets on its file before the file takes the
 * name (file.name.attrs). Without any, the file gets file.name.mode under
 * the umask, as open(2) would give it. */
/* When a sink by name makes what it wrote durable (file.name.flush). */
enum rpc2_se_flush {
    /* an atomic sink flushes the file, then its directory after the
     * rename, before it reports success; a plain sink leaves it to the
     * kernel */
    RPC2_SE_FLUSH_DEFAULT = 0,
    RPC2_SE_FLUSH_ALWAYS = 1, /* a plain sink flushes too (fsync) before success */
    /* no flush at all, an atomic sink renamed into place all the same: for
     * a caller that makes a batch of files durable at once afterwards
     * (syncfs), as rcatd does for a tree */
    RPC2_SE_FLUSH_NEVER = 2,
};

#define RPC2_SE_ATTR_MODE 0x1   /* the mode exactly, not reduced by the umask */
/* the source's permission bits, as the peer reports them, instead of
 * file.name.mode (which stays the fallback when the peer reports none) */
#define RPC2_SE_ATTR_SOURCE_MODE 0x2
#define RPC2_SE_ATTR_MTIME 0x4        /* file.name.mtime_sec/nsec */
#define RPC2_SE_ATTR_SOURCE_MTIME 0x8 /* the source's mtime, as the peer reports it */

struct stat;

struct rpc2_se_desc {
    uint32_t type;                    /* RPC2_SE_SFTP */
    enum rpc2_se_direction direction;
    int64_t seek_offset;              /* where in the local file to start; >= 0 */
    int64_t quota;                    /* most bytes to move; RPC2_SE_NO_QUOTA (-1): no limit;
                                       * 0: nothing (see above) */

    /* out */
    uint64_t bytes_transferred;
    int quota_exceeded;               /* the quota cut the transfer short */
    /* local FAILURE: this end did not deliver (its own error, or the call
     * failed); remote FAILURE: the other end failed by its own doing (not
     * merely because this end aborted the transfer; on the server: the
     * client's ABORT ended it, and error is the client's). */
    enum rpc2_se_status local_status, remote_status;
    int error;                        /* the rpc2 error when a status is FAILURE */
    /* XXH3-128 of the bytes this end moved (read as a source, received as a
     * sink), in canonical big-endian form as `xxhsum -H2` prints it; the
     * sink checked it against the source's before reporting success. */
    unsigned char checksum[16];
    int checksum_valid;
    struct {                          /* this end's packets, 0 for piggybacked transfers */
        uint64_t data_sent, data_received, retransmissions, duplicates;
        uint64_t acks_sent, acks_received, timeouts;
    } stats;

    rpc2_se_progress_fn progress;     /* optional */
    void *progress_arg;

    enum rpc2_se_file_kind file_kind;
    union {
        struct {
            const char *path;
            mode_t mode;    /* for a file the sink creates */
            int atomic;     /* sink: write a temporary name, rename on success only */
            int no_clobber; /* sink: refuse (RPC2_EEXIST) if the name exists */
            /* sink: when what it wrote reaches stable storage */
            enum rpc2_se_flush flush;
            unsigned attrs;      /* atomic sink: RPC2_SE_ATTR_* */
            int64_t mtime_sec;   /* with RPC2_SE_ATTR_MTIME */
            uint32_t mtime_nsec; /* below 1000000000 */
        } name;
        struct {
            /* The seek offset is relative to the fd's current position and
             * the transfer advances it, so transfers to one fd follow each
             * other like cat. Pipes and sockets work (in order, offset 0). */
            int fd;
            /* A regular file opened for this transfer alone, the right
             * way for its role (RPC2_EINVAL for anything but a regular
             * file): read or written at seek_offset itself, its position
             * neither read nor moved. It spares the position's lseeks and
             * the access mode's fcntl, three system calls a file: what a
             * tree of small files costs on each side (rcat -r, rcatd). An
             * fd not open for the role fails at its first read or write. */
            int positional;
            /* With positional, optional: the caller's fstat of fd, taken
             * once fd was open and describing it still. The library takes
             * the file's type, size and version from it (a source's version
             * is checked again by its own fstat once the last byte is read)
             * instead of an fstat of its own: one system call a file less
             * for a caller that has just judged the file (rcatd's FETCH).
             * Read while the transfer opens, not kept. NULL: the library's
             * own fstat. */
            const struct stat *st;
        } fd;
        struct {
            int mount_fd; /* any fd on the file's filesystem */
            int handle_type;
            unsigned handle_bytes;
            unsigned char handle[RPC2_SE_HANDLE_MAX];
        } inode;
        struct {
            void *buf;
            size_t len; /* source: bytes in buf; sink (out): bytes written */
            size_t max; /* sink: room in buf; more data is an RPC2_EOVERFLOW error */
            /* Sink: the library grows buf as the data comes (realloc), so a
             * fetch into memory need not know the size first. buf is NULL
             * (or from malloc, cap its size); max is the most it may grow
             * to, more is RPC2_EOVERFLOW (0: no limit but memory, which a
             * peer that sends for ever exhausts: give one). Afterwards,
             * whatever the outcome, buf[seek_offset .. seek_offset + len)
             * holds the data and rpc2_se_vm_free() frees it. */
            int grow;
            size_t cap; /* grow (out): bytes allocated at buf */
        } vm;
    } file;

    /* sink: the bytes to make room for before any of them move (e.g. from
     * a STAT): preallocated, or checked against the free space, so a full
     * disk fails the transfer at once with RPC2_ENOSPC. 0: only what the
     * source announces (a store's client announces its file's size). */
    uint64_t expected_size;

    /* Resume with restart points (docs/PROTOCOL.md "Restart points").
     * Sink: only an atomic sink by name (seek 0, no quota) keeps them: its
     * temporary is ".NAME.rcat-part" beside NAME, kept when the transfer
     * fails, with its restart points in ".NAME.rcat-part.rp"; a later
     * transfer with resume continues from the last point the source
     * confirms against its own bytes, else starts over from 0 (or fails,
     * resume_fail_changed). A server's sink keeps them only when the client
     * asked (its own descriptor's resume), so a server may always set it.
     * Source: any kind may set it; a regular file read from an offset (no
     * quota) confirms a point, anything else refuses it. */
    int resume;
    int resume_fail_changed;  /* sink: refused point: RPC2_ECHANGED, not a start over */
    uint64_t resume_interval; /* sink: bytes between restart points; 0: 32 MiB */
    /* out: where this transfer continued from (0: the start; the bytes
     * before it did not move again, bytes_transferred counts the rest);
     * whether an earlier attempt's partial was there but not used, and
     * why (a static sentence, NULL when nothing to say). */
    uint64_t resumed_from;
    int resume_started_over;
    const char *resume_note;
    /* a checksum users compare (md5sum ...): both ends compute it too */
    /* in (client): an extra named sum of the bytes moved, RPC2_SE_SUM_*, 0
     * none; the server's end takes the client's choice, written here by
     * rpc2_se_init. The source's sum goes to the sink, which fails the
     * transfer with RPC2_EINTEGRITY when its own differs or the peer sent
     * none. out: sum_len bytes of this end's sum (0: not computed), in the
     * byte order md5sum, sha1sum, sha256sum and `xxhsum -H2` print. */
    int sum_type;
    unsigned char sum[RPC2_SE_SUM_MAX];
    unsigned sum_len;
    /* in, optional: the sum the data must have (a published one), exactly
     * sum_type's length; 0: none. Differing, the transfer fails with
     * RPC2_EINTEGRITY and nothing is kept: a sink removes an atomic
     * temporary, a source ends before its last byte goes out. */
    unsigned char expect_sum[RPC2_SE_SUM_MAX];
    unsigned expect_sum_len;

    /* events (event.h): the transfer's callback and its arg, and the STATS
     * interval in microseconds (0: RPC2_EVENT_STATS_DEFAULT_US) */
    rpc2_event_fn event;
    void *event_arg;
    uint32_t stats_interval_us;
};

/* A descriptor for the whole file in this direction (of the SFTP type):
 * seek 0, quota RPC2_SE_NO_QUOTA, everything else zero. */
#define RPC2_SE_DESC_INIT(direction_)                                                              \
    {.type = RPC2_SE_SFTP, .direction = (direction_), .quota = RPC2_SE_NO_QUOTA}
RPC2_EXPORT void rpc2_se_desc_init(struct rpc2_se_desc *desc, enum rpc2_se_direction direction);

/* "md5", "sha1", "sha256", "xxh128"; NULL for any other type (0 too). */
RPC2_EXPORT const char *rpc2_se_sum_name(int type);
/* Bytes of a sum of type; 0 for an unknown type. */
RPC2_EXPORT unsigned rpc2_se_sum_len(int type);
/* The type named so (any case), or RPC2_EINVAL. */
RPC2_EXPORT int rpc2_se_sum_parse(const char *name);
/* desc's sum as lowercase hex, as md5sum prints it: the length written, or
 * RPC2_EINVAL when there is none or cap cannot hold it and its NUL. */
RPC2_EXPORT int rpc2_se_sum_hex(const struct rpc2_se_desc *desc, char *out, size_t cap);
/* The named sum of length bytes of fd from offset (length -1: to the end),
 * the sum a transfer asking for type computes, read with pread so fd's
 * offset stays: to compare a file with its copy without moving it. out
 * gets *len bytes; *bytes says how many were summed (fewer than length
 * when the file ends first). 0, RPC2_EINVAL (an unknown type, an offset
 * past INT64_MAX, a length below -1), RPC2_ENOMEM, or the error of a
 * failed read, with errno as the read left it. */
RPC2_EXPORT int rpc2_se_sum_fd(int fd, int type, uint64_t offset, int64_t length,
                               unsigned char out[RPC2_SE_SUM_MAX], unsigned *len,
                               uint64_t *bytes);

/* Frees the buffer a growing memory sink (file.vm.grow) got from the
 * library, and empties buf, len and cap. Harmless on any other descriptor. */
RPC2_EXPORT void rpc2_se_vm_free(struct rpc2_se_desc *desc);

/* Fills desc->file.inode for path (name_to_handle_at). */
RPC2_EXPORT int rpc2_se_inode_of(const char *path, struct rpc2_se_desc *desc);

/* Checks a descriptor before any packet is sent: 0 or RPC2_EINVAL (and
 * friends) saying what makes no sense. */
RPC2_EXPORT int rpc2_se_desc_check(const struct rpc2_se_desc *desc);

/* ---- server side: in a handler ----------------------------------------- */

/* Initialises the side effect of the request with the server's descriptor
 * (which must stay valid until the check has finished, or the reply if
 * there is no check): opens the file, checks it against what the client
 * asked for. */
RPC2_EXPORT int rpc2_se_init(rpc2_request *req, struct rpc2_se_desc *desc);

/* Async handlers: runs the transfer; done() runs on the loop thread with
 * the outcome, after which the handler replies. */
typedef void (*rpc2_se_done_fn)(rpc2_request *req, int status, void *arg);
RPC2_EXPORT int rpc2_se_check_async(rpc2_request *req, rpc2_se_done_fn done, void *arg);

/* Blocking handlers: runs the transfer and waits for its outcome. The
 * worker is held for the whole transfer, however long the peer takes:
 * rpc2_se_transfer_then frees it meanwhile. */
RPC2_EXPORT int rpc2_se_check(rpc2_request *req);

/*
 * Blocking handlers: the transfer without a worker waiting for it. The
 * handler does its blocking work (open, stat), fills in its descriptor and
 * returns what this returns:
 *
 *     return rpc2_se_transfer_then(req, &state->desc, fetch_done, state);
 *
 * The worker is then free. On the loop the side effect is initialised with
 * desc and run (as rpc2_se_init and rpc2_se_check would); when it is over,
 * then(req, status, args, result, arg) runs on a worker, as the rest of the
 * handler: status is the transfer's outcome (0, or the error; desc says
 * more), and what then returns is the reply's status, as a blocking
 * handler's. desc and arg must stay valid until then runs; then may free
 * them.
 *
 * Returns RPC2_CONTINUED, and then runs exactly once: after the transfer,
 * or at once with the reason it could not run (the call carried no side
 * effect, desc was refused, the connection went, the transfer was
 * aborted); while the context is freed, on the thread freeing it. Returns
 * RPC2_EINVAL (and then never runs) outside a blocking handler, without
 * then or desc, or when called twice.
 */
#define RPC2_CONTINUED (-1000000) /* not an error: "the reply comes later" */
typedef int (*rpc2_se_then_fn)(rpc2_request *req, int status, void *args, void *result,
                               void *arg);
RPC2_EXPORT int rpc2_se_transfer_then(rpc2_request *req, struct rpc2_se_desc *desc,
                                      rpc2_se_then_fn then, void *arg);
/*
 * The same, but then runs on the loop thread (a turn of the loop after the
 * transfer ended, never from inside it), saving the two thread hops a
 * worker costs; a server of many small files spends more on those hops
 * than on its files. For a rest that does not block: closing a file, a
 * log line, filling in the result. While the context is being freed it
 * runs on a worker as with rpc2_se_transfer_then (or, as there, on the
 * thread freeing the context).
 */
RPC2_EXPORT int rpc2_se_transfer_then_loop(rpc2_request *req, struct rpc2_se_desc *desc,
                                           rpc2_se_then_fn then, void *arg);

/*
 * Blocking handlers and their continuations: the rest waits on something
 * of the application's (a child process, say) without holding a worker.
 * The handler or continuation returns what rpc2_request_suspend returns
 * (RPC2_CONTINUED); once what it waits on is over, the application calls
 * rpc2_request_resume(req, status) on the loop thread, at most once, and
 * then(req, status, args, result, arg) runs on a worker as the rest, what
 * it returns being the reply's status. The client is kept waiting with
 * BUSY meanwhile. A resume may come before the suspending worker is back:
 * then waits for it. As with rpc2_se_transfer_then, then runs exactly
 * once; while the context is freed before a resume, with RPC2_ECLOSED on
 * the thread freeing it (and the application must not resume after that).
 * Suspend returns RPC2_EINVAL (and then never runs) outside a blocking
 * handler or its continuation, without then, or with another continuation
 * pending; resume returns RPC2_EINVAL for a request not suspended or
 * resumed already.
 */
RPC2_EXPORT int rpc2_request_suspend(rpc2_request *req, rpc2_se_then_fn then, void *arg);
RPC2_EXPORT int rpc2_request_resume(rpc2_request *req, int status);

#ifdef __cplusplus
}
#endif

#endif
