/*
 * report.h - everything rcat tells the operator: error messages, the
 * progress bar, --json events on standard error, and the stat and ls lines on
 * standard output. One module owns those streams, so a message never lands
 * in the middle of a half-drawn bar and --json output is never mixed with
 * plain text.
 */
#ifndef RCAT_REPORT_H
#define RCAT_REPORT_H

#include "pathline.h"
#include <stdint.h>
#include <rpc2/event.h>
#include <rpc2/se.h>

/* rcat's exit codes: the contract with scripts (documented in --help and
 * rcat(1)). */
enum rcat_exit {
    RCAT_EXIT_OK = 0,
    RCAT_EXIT_USAGE = 1,     /* bad arguments: nothing was attempted */
    RCAT_EXIT_NET = 2,       /* cannot reach or lost the server */
    RCAT_EXIT_REFUSED = 3,   /* the server refused (not found, permission, read-only...) */
    RCAT_EXIT_LOCAL = 4,     /* a local file could not be opened, written or replaced */
    RCAT_EXIT_INTEGRITY = 5, /* the end-to-end checksum did not match: nothing kept */
    RCAT_EXIT_CHANGED = 6,   /* the source file changed while it was sent: nothing kept */
};

struct report_config {
    int quiet;    /* -q: errors only */
    int verbose;  /* -v: more, including the library's debug log */
    int json;     /* --json: standard error carries only JSON events */
    int progress; /* draw the progress bar (the caller decided: terminal, --progress) */
};

void report_init(const struct report_config *c);
/* Writes all of buf to fd, through EINTR and short writes (a failure has
 * nowhere left to be told): for lines that must stay whole. */
void report_write_all(int fd, const char *buf, size_t len);

/* --json: events, not text, on standard error (and JSON stat/ls lines). */
int report_is_json(void);
/* The STATS interval a transfer's descriptor asks the library for: what
 * --json prints, or how often the bar is redrawn. */
uint32_t report_stats_interval_us(void);

/* Is the size of a file worth a round trip before fetching it? Only for a
 * bar's percentage and ETA, or the Size field of JSON events. */
int report_wants_size(void);

/* Which command-line operand the next events concern (1-based; 0: none). */
void report_operand(int index);

/* INIT: once, before anything else. */
void report_begin(const char *version, const char *operation, int operands,
                  const char *destination);
/* A connection to a server was made (said with -v): each transfer's
 * SESSION on it names it (SessionId, Host, Port). The strings must live
 * as long as the connection's transfers. */
void report_session(const char *session, const char *host, unsigned port);

/* An error: "rcat: FILE: text" (FILE may be NULL), or an ERROR event with the
 * exit code it stands for and a symbolic name (RCAT_NOT_FOUND, RPC2_EDEAD,
 * USAGE...). */
void report_error(int code, const char *name, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A usage error: as report_error, with the pointer to --help in text mode. */
void report_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Said only with -v (a LOG event in JSON mode). */
void report_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The library's log, passed through with -v. level: enum rpc2_log_level. */
void report_library_log(int level, const char *message);

/* A library event held until the call returns (ERROR, STOP), with
 * copies of its strings. */
struct report_kept {
    struct rpc2_event ev;
    int held;
    char policy[32], error_name[64], error_text[256], sum_type[16];
    unsigned char sum[RPC2_SE_SUM_MAX];
};

/* One file moving. The strings must outlive the transfer. */
struct report_xfer {
    const char *session;
    const char *file;  /* the remote path */
    const char *dest;  /* where the bytes go: a local name, "-", or the remote path */
    const char *label; /* what the bar shows */
    int send;
    int64_t size; /* -1: unknown */
    uint64_t start_us, last_us, last_bytes, bytes;
    double rate;                  /* smoothed, bytes per second */
    int64_t start_byte, end_byte; /* StartByte, EndByte as the library says them; -1: none */
    int resume;                   /* -C: STOP says StartedOver */
    int started_over;
    struct report_kept error, stop; /* the library's, for after the call */
    struct pathline line;           /* -v: the line per second */
};

/* The range the library moves (StartByte, EndByte: -1 to the end); a
 * resumed transfer's StartByte is where it continued. */
void report_xfer_range(struct report_xfer *x, int64_t start_byte, int64_t end_byte);
/* -C, after report_xfer_range: whether an earlier attempt's partial was
 * there but not used (note says why); -v reports it, and where it continued. */
void report_xfer_resumed(struct report_xfer *x, int started_over, const char *note);

void report_xfer_begin(struct report_xfer *x, const char *session, int send, const char *file,
                       const char *dest, int64_t size);
/* One of the library's events for this transfer, from its callback (on
 * the loop thread): printed as delivered with rcat's labels (--json), or
 * drawn (the bar); ERROR and STOP are held for report_error and
 * report_xfer_end, which add rcat's outcome. extra_retransmissions: the
 * call's own resends since the transfer began (the library's count only
 * the transfer's). */
void report_xfer_event(struct report_xfer *x, const struct rpc2_event *ev,
                       uint64_t extra_retransmissions);
/* A named sum of the bytes moved, in the order md5sum (or `xxhsum -H2`)
 * prints it; len 0: none. */
struct report_sum {
    const char *type; /* "md5", "sha1", "sha256", "xxh128" */
    const unsigned char *bytes;
    unsigned len;
};

/* STOP: the library's (held by report_xfer_event) with code, the file's
 * exit code, and result, its symbolic outcome ("OK"); without one (the
 * library never began a transfer) rcat's own from what this end resent and
 * received twice. sum (may be NULL) goes out as Checksum and ChecksumType
 * in rcat's own STOP, and with -v into the summary line. */
void report_xfer_end(struct report_xfer *x, uint64_t bytes, uint64_t retransmissions,
                     uint64_t duplicates, int code, const char *result,
                     const struct report_sum *sum);

/* RETR: the operand's last attempt failed with error (a name, as
 * RPC2_EDEAD) and is made again, attempt of attempts, after delay_us. */
void report_retry(unsigned attempt, unsigned attempts, const char *error, uint64_t delay_us);

/* DONE: once, at the end: files moved (TransfersPassed), skipped, failed,
 * and the bytes moved. */
void report_done(int code);

/* ---- trees (rcat -r): many files per operand, several at once ----------- */

/* More files (and their bytes) the run plans to move: a terminal then
 * shows one bar for the whole run, not one per file. */
void report_tree_plan(uint64_t files, uint64_t bytes);
/* The transfer whose outcome is told next (several run at once): the
 * library's ERROR that report_error adds is this one's. */
void report_xfer_focus(struct report_xfer *x);
/* SKIP: file is not moved, for reason (a word: SameSizeAndMtime,
 * SameChecksum, ...); size: its bytes. */
void report_skip(const char *file, const char *dest, const char *reason, uint64_t size);
/* A symbolic link made as a link (no bytes move): rcat's STOP with its
 * target (Link), counted as passed. */
void report_link(const char *file, const char *dest, const char *target);
/* FILEERROR: a file that failed before any transfer of it began (a name a
 * server should not send, a local directory that cannot be made): the
 * message, and counted as failed. */
void report_file_error(int code, const char *name, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* ARGSTOP: what the operand being ended (report_operand) came to. */
void report_arg_stop(const char *arg, int code);

/* ---- stat and ls output, on standard output ------------------------------ */

enum report_type { REPORT_FILE, REPORT_DIR, REPORT_LINK, REPORT_OTHER };

struct report_entry {
    enum report_type type;
    uint64_t size;
    unsigned mode; /* permission bits, 07777 */
    int64_t mtime_sec;
    unsigned mtime_nsec;
};

void report_stat(const char *path, const struct report_entry *e);
void report_list_entry(const char *name, const struct report_entry *e);
/* Flushes standard output: 0, or -1 when it could not be written. */
int report_flush_stdout(void);

#endif
