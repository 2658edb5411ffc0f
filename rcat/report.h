/*
 * report.h - everything rcat tells the operator: error messages, the
 * progress bar, --json events on standard error, and the stat and ls lines on
 * standard output. One module owns those streams, so a message never lands
 * in the middle of a half-drawn bar and --json output is never mixed with
 * plain text.
 */
#ifndef RCAT_REPORT_H
#define RCAT_REPORT_H

#include <stdint.h>

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

/* Is the size of a file worth a round trip before fetching it? Only for a
 * bar's percentage and ETA, or the Size field of JSON events. */
int report_wants_size(void);

/* Which command-line operand the next events concern (1-based; 0: none). */
void report_operand(int index);

/* INIT: once, before anything else. */
void report_begin(const char *version, const char *operation, int operands,
                  const char *destination);
/* SESSION: a connection to a server was made. */
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

/* One file moving. The strings must outlive the transfer. */
/* What the library says of the path while a transfer runs: STATS carries
 * it as Rate (bits/s), Delay (ms) and Loss (hundredths of a per cent), as
 * Aspera names them. */
struct report_path {
    uint64_t rate_bps;      /* the pace, bits/s (this end sends); 0: the measured rate */
    uint32_t delay_us;      /* smoothed RTT */
    uint32_t min_delay_us;  /* the path's smallest RTT; 0: unknown */
    uint64_t packets, packets_retransmitted, bytes_retransmitted;
    const char *policy;
};

struct report_xfer {
    const char *session;
    const char *file;  /* the remote path */
    const char *dest;  /* where the bytes go: a local name, "-", or the remote path */
    const char *label; /* what the bar shows */
    int send;
    int64_t size; /* -1: unknown */
    uint64_t start_us, last_us, last_bytes, bytes;
    double rate; /* smoothed, bytes per second */
    struct report_path path;
    int have_path;
    int64_t start_byte, end_byte; /* StartByte, EndByte as the library says them; -1: none */
    int resume;                   /* -C: STOP says StartedOver */
    int started_over;
};

/* The range the library moves (StartByte, EndByte: -1 to the end); a
 * resumed transfer's StartByte is where it continued. */
void report_xfer_range(struct report_xfer *x, int64_t start_byte, int64_t end_byte);
/* -C, after report_xfer_range: whether an earlier attempt's partial was
 * there but not used (note says why); -v reports it, and where it continued. */
void report_xfer_resumed(struct report_xfer *x, int started_over, const char *note);

/* The path as the library sees it now, for the next STATS. */
void report_xfer_path(struct report_xfer *x, const struct report_path *p);

void report_xfer_begin(struct report_xfer *x, const char *session, int send, const char *file,
                       const char *dest, int64_t size);
/* Cheap enough for every packet: is a redraw or a STATS event due now? */
int report_xfer_due(const struct report_xfer *x);
/* Bytes so far; total from the library (-1 unknown) replaces an unknown size. */
void report_xfer_progress(struct report_xfer *x, uint64_t bytes, int64_t total,
                          uint64_t retransmissions);
/* A named sum of the bytes moved, in the order md5sum (or `xxhsum -H2`)
 * prints it; len 0: none. */
struct report_sum {
    const char *type; /* "md5", "sha1", "sha256", "xxh128" */
    const unsigned char *bytes;
    unsigned len;
};

/* STOP: what this end resent and received twice; code is the file's exit
 * code, result its symbolic outcome ("OK"); sum (may be NULL) goes out as
 * Checksum and ChecksumType, and with -v into the summary line. */
void report_xfer_end(struct report_xfer *x, uint64_t bytes, uint64_t retransmissions,
                     uint64_t duplicates, int code, const char *result,
                     const struct report_sum *sum);

/* RETR: the operand's last attempt failed with error (a name, as
 * RPC2_EDEAD) and is made again, attempt of attempts, after delay_us. */
void report_retry(unsigned attempt, unsigned attempts, const char *error, uint64_t delay_us);

/* DONE: once, at the end. */
void report_done(int code);

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
