/*
 * event.h - what a transfer tells the program while it runs: one callback,
 * set on the side-effect descriptor (se.h: desc->event), receives every
 * event of that transfer, at both ends (a client's call, a server
 * handler's descriptor). Field names follow the events of the Aspera FASP
 * manager where they fit, so a program that printed those prints these.
 *
 * A transfer's events, in order:
 *
 *   INIT          the descriptor was accepted and the local file opened
 *                 (StartByte, EndByte, Size when known). Nothing has moved.
 *   SESSION       the other end has joined: for a streamed transfer, the
 *                 first packet of its machine (a START, a DATA); for a
 *                 piggybacked one, the request (server) or reply (client)
 *                 that carried the data.
 *   NOTIFICATION  streamed transfers only, right after SESSION: what the two
 *                 ends agreed (PacketSize, Window, Policy, target Rate).
 *   STATS         while bytes stream, every stats_interval_us (desc field;
 *                 0: RPC2_EVENT_STATS_DEFAULT_US), and never for a transfer
 *                 that stays silent: FileBytes so far, Rate, Delay, Loss.
 *   ERROR         the transfer failed: ErrorCode (an rpc2 error) and
 *                 ErrorDescription, always followed by its STOP.
 *   STOP          exactly once, last, whatever the outcome: Result is 0 or
 *                 the error, CallStatus what the call returns (client), the
 *                 final FileBytes, where a resumed transfer continued from
 *                 (StartByte, StartedOver), and on success the Checksum (on
 *                 a failure only when the sum differed from the one the
 *                 descriptor expected: then it is the sum of the bytes
 *                 that came, so the program can say which it was).
 *
 * A transfer refused before INIT (a descriptor that makes no sense, a file
 * that cannot be opened) has no events: the call's return says why.
 *
 * What stays with the program, not here: a job of several files is the
 * program's (rcat's INIT with its operands, SKIP for a file it decides not
 * to move, FILEERROR for a file that failed before any transfer began, DONE
 * with the job's counts); the library sees one transfer per call and never
 * a job, so it could not count one. So are the program's names for a
 * transfer (the remote path is in the program's call arguments, a session
 * id is the program's): rcat --json prints every event of a transfer as
 * delivered, with its own labels added (SessionId, File, Destination,
 * ArgIndex), and its judgement of the outcome on ERROR and STOP.
 *
 * Delivery: on the context's loop thread, from inside the library. The
 * callback must not block and must not call the library's blocking
 * functions (rpc2_call, rpc2_bind, rpc2_unbind: they return
 * RPC2_EWOULDBLOCK there); it may read the event, call
 * rpc2_sftp_transfer_info / rpc2_sftp_set_rate on the connection, and start
 * async work. The event and its strings live until the callback returns.
 *
 * Cancel: a callback that returns RPC2_EVENT_CANCEL ends the transfer (at
 * once, after it returns): a client's call then returns RPC2_ECANCELED, a
 * server handler's check hears RPC2_ECANCELED; the peer is told with an
 * ABORT, an atomic sink's temporary is removed at both ends, and the
 * connection stays usable. From another thread, rpc2_cancel(conn) does the
 * same for a client's call (rpc2.h).
 */
#ifndef RPC2_EVENT_H
#define RPC2_EVENT_H

#include <stddef.h>
#include <stdint.h>
#include <rpc2/rpc2.h>

#ifdef __cplusplus
extern "C" {
#endif

enum rpc2_event_type {
    RPC2_EVENT_INIT = 1,
    RPC2_EVENT_SESSION = 2,
    RPC2_EVENT_NOTIFICATION = 3,
    RPC2_EVENT_STATS = 4,
    RPC2_EVENT_STOP = 5,
    RPC2_EVENT_ERROR = 6,
    /* A transfer tried again (ectrans's RETR; attempt says which, result the
     * error the last one ended with): rpc2_retry_call (retry.h) says it. */
    RPC2_EVENT_RETRY = 7,
};

/* The event's Aspera-style name ("INIT", "STATS", ...), or NULL. */
RPC2_EXPORT const char *rpc2_event_name(int type);

#define RPC2_EVENT_STATS_DEFAULT_US 250000u /* four STATS a second */

/* What the callback returns: go on, or cancel the transfer. */
#define RPC2_EVENT_CONTINUE 0
#define RPC2_EVENT_CANCEL 1

/*
 * One event. The library fills every field it knows of for every type
 * (unknown: -1 for the signed ones, 0 or NULL for the rest); new fields
 * are only ever appended, and struct_size says how many bytes of the struct the
 * library that built it knows (struct_size): a program built against a newer
 * header reads a field only when offsetof(field) + sizeof(field) <= struct_size
 * (RPC2_EVENT_HAS does this).
 */
struct rpc2_event {
    size_t struct_size;
    enum rpc2_event_type type;
    int direction;   /* enum rpc2_se_direction: FETCH or STORE */
    int is_client;   /* this end asked (the call's end) */
    int is_source;   /* this end sends the bytes */
    int piggybacked; /* the bytes ride in the call or reply (known from SESSION on) */

    int64_t start_byte;  /* StartByte: where in the file the transfer starts (the seek
                          * offset; a resumed transfer's restart point) */
    int64_t end_byte;    /* EndByte: the last byte meant (a range's), -1: to the end */
    int64_t size;        /* Size: the bytes this transfer will move, -1: unknown */
    uint64_t file_bytes; /* FileBytes: moved so far (acknowledged as source, written as sink) */
    uint64_t elapsed_us; /* Elapsedusec: since INIT */

    /* the path, from a streamed transfer's machine (zero for piggybacked) */
    uint64_t rate_bps; /* Rate, bits/s: the pace as source; the arrival rate as sink */
    uint64_t target_bps, min_rate_bps; /* asked for, bits/s; 0: none */
    const char *policy;                /* Policy: "adaptive", "fixed", "background" */
    uint32_t delay_us;                 /* Delay: the smoothed round trip */
    uint32_t min_delay_us; /* MinDelay: the path's smallest round trip (source), 0: unknown */
    uint32_t loss_bp;      /* Loss: data packets resent, in hundredths of a per cent */
    uint64_t packets, packets_retransmitted, bytes_retransmitted, duplicates, timeouts;
    uint32_t packet_size, window; /* NOTIFICATION: what the machines use */

    /* ERROR and STOP */
    int result;             /* Result: 0, or the rpc2 error that ended the transfer */
    int call_status;        /* client STOP: what the call returns (< 0 error, > 0 app status) */
    const char *error_name; /* ErrorCode as a name: rpc2_errname(result), NULL on success */
    const char *error_description; /* ErrorDescription: rpc2_strerror(result), NULL on success */
    int quota_exceeded;            /* STOP: the quota cut the transfer short */

    /* STOP on success: the end-to-end checksum of the bytes moved, as the
     * descriptor holds it: the named sum when one was asked for
     * (sum_type), else the transfer's own; checksum_type names it
     * ("md5", "sha1", "sha256", "xxh128"). */
    const unsigned char *checksum;
    size_t checksum_len;
    const char *checksum_type;

    uint32_t attempt; /* RETRY: which attempt begins (2 for the first retry); else 0 */

    /* the descriptor the transfer reports into (read only; valid until
     * the callback returns) */
    const struct rpc2_se_desc *desc;

    /* Resume (every event; the outcome on STOP): whether the descriptor
     * asked to continue an earlier attempt (desc->resume), and on STOP
     * whether an earlier attempt's partial was there but not used
     * (StartedOver) and why (a static sentence, or NULL). start_byte says
     * where it continued from. */
    int resume;
    int started_over;
    const char *resume_note;
};

#define RPC2_EVENT_HAS(ev, field)                                                                  \
    ((ev)->struct_size >= offsetof(struct rpc2_event, field) + sizeof((ev)->field))

/* A transfer's callback; returns RPC2_EVENT_CONTINUE or RPC2_EVENT_CANCEL. */
typedef int (*rpc2_event_fn)(const struct rpc2_event *ev, void *arg);

#ifdef __cplusplus
}
#endif

#endif
