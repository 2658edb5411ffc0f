/*
 * xfer.h - one SFTP transfer (struct xfer), shared by the three files
 * that make the side-effect type: xfer.c runs it (the machines, the local
 * file, events, piggybacked data), sftp_client.c and sftp_server.c are the
 * hooks rpc2 calls at each end, and sftp.c registers the hook table.
 *
 * One transfer lives per call with a descriptor: on the client from the
 * call's send to its end, on the server from the request's arrival to its
 * reply. The client is always the one who asked; the direction says who is
 * the source.
 */
#ifndef RPC2_SFTP_XFER_H
#define RPC2_SFTP_XFER_H

#include <stddef.h>
#include <stdint.h>

#include <rpc2/sftp.h>

#include "ctx.h"
#include "engine.h"
#include "events.h"
#include "fileio.h"
#include "link.h"
#include "machine.h"
#include "memshare.h"
#include "params.h"
#include "seblock.h"
#include "stall.h"
#include "wire.h"

/* The room a piggybacked fetch leaves for the procedure's own result. */
#define RESULT_ROOM 8192

struct sftp_type {
    struct rpc2_sftp_params params;
    struct rpc2_sftp_stats stats;
    struct memshare memory; /* params.memory_cap, shared among the transfers */
};

struct xfer {
    struct sftp_type *type;
    struct engine *engine;
    rpc2_conn *conn;   /* NULL once the connection is gone */
    rpc2_request *req; /* server end */
    uint32_t id;       /* the call's seq: the header's transfer id */
    int is_client;
    enum rpc2_se_direction direction;
    struct rpc2_se_desc *desc;
    struct fileio *file;
    struct sftp_config cfg;
    struct sftp_source *source;
    struct sftp_sink *sink;
    struct memshare_member memory; /* packet memory lent from the type's cap */
    struct engine_timer timer;
    struct engine_deferred batch; /* sink: the receive batch's end (engine.h) */
    struct stall stall;          /* server: the bound on a transfer that moves nothing */
    struct engine_fdwatch watch; /* the local file, while a machine waits on it */
    int watch_fd, watch_events;  /* what watch watches; 0 events: nothing */
    uint64_t now;                /* the time of the event being handled */
    /* what the peer asked for (server) or what we asked for (client) */
    int64_t peer_quota;
    uint32_t peer_flags, piggyback_max;
    uint8_t *piggy; /* piggybacked data: a store's, or a fetch's reply */
    size_t piggy_len;
    uint8_t piggy_sum[FILEIO_SUM_BYTES]; /* a piggybacked store's checksum */
    uint32_t piggy_sum_len;
    uint32_t sum_type;                 /* server: the named sum the client asked for */
    struct namedsum_value piggy_named; /* a piggybacked store's named sum (len 0: none) */
    struct seblock_info peer_info;     /* server: the store's source, as the CALL said */
    int have_peer_info;
    int piggy_reply;       /* server: the reply carries the data */
    int result;            /* this end: 1 running, 0 done, < 0 failed */
    struct sftp_events ev; /* events.c: the descriptor's callbacks */
    se_check_done_fn done;
    struct sftp_wish wish; /* a client sink's: what it asks the server's source for */
    int has_wish;
    int restart_offered; /* server source: the CALL carried the sink's restart point */
    uint64_t restart;
    uint8_t restart_sum[FILEIO_SUM_BYTES];
};

/* ---- the transfer (xfer.c) ---------------------------------------------- */

/* This end sends the file. */
int xfer_is_source(const struct xfer *x);
struct xfer *xfer_new(struct sftp_type *t, rpc2_conn *c, uint32_t id, int is_client);
/* Stops the machines; an unfinished file is a failure, left at no name. */
void xfer_free(struct xfer *x);
/* Folds the machine's counters into the type's and the descriptor's, and
 * gives its packet memory back. */
void xfer_stop_machines(struct xfer *x);
/* The source or sink machine, with packet memory lent from the cap. */
int xfer_start_machine(struct xfer *x);
/* SFTP_RUNNING, SFTP_DONE or the machine's error. */
int xfer_machine_state(const struct xfer *x);
/* This end's machine failed by its own doing (not by the peer's ABORT). */
int xfer_failed_here(const struct xfer *x);
/* Bytes acknowledged (source) or written (sink): what the stall bound counts. */
uint64_t xfer_bytes_moved(const struct xfer *x);
/* After any event: progress, the file watch, and a server's completion. */
void xfer_after_event(struct xfer *x);
/* The packet hook: SFTP packets of a transfer on the connection. */
void xfer_receive(void *type, rpc2_conn *c, const struct pkt_hdr *h, const uint8_t *body,
                  uint64_t now);
/* The peer hears ABORT with status: nothing is left of the machine. */
void xfer_link_abort(struct xfer *x, int status);

/* The server's end finished: the handler hears the outcome. */
void xfer_server_complete(struct xfer *x, int status);
/* Ends the server's end now (the abort hook). */
void xfer_server_abort(void *type, rpc2_request *req, void *transfer, int status, uint64_t now);

/* INIT, once the local end is open; RPC2_ECANCELED when the callback cancelled. */
int xfer_report_init(struct xfer *x, struct rpc2_se_desc *d);
/* SESSION: the peer's end has joined. */
void xfer_report_session(struct xfer *x, int piggybacked);
/* The machine's path as rpc2_sftp_transfer_info tells it. */
int xfer_info(const struct xfer *x, struct rpc2_sftp_transfer_info *out);

/* The descriptor's outcome fields, reset for a new transfer. */
void xfer_desc_start(struct rpc2_se_desc *d);
/* Opens this end's stream (fileio.c) on the descriptor. */
int xfer_open_local(struct xfer *x, struct rpc2_se_desc *d, int as_source);
/* 1 with the whole source in x->piggy if it holds at most max bytes, 0 if
 * it streams, or an error. */
int xfer_read_piggy(struct xfer *x, uint32_t max);
/* Writes piggybacked data and checks it against the sums that came with it. */
int xfer_write_piggy(struct xfer *x, const uint8_t *data, size_t len, const uint8_t *sum,
                     uint32_t sum_len, const struct namedsum_value *named);
/* The source file's attributes into a block (SEBLOCK_SOURCE_INFO), and
 * from one into the sink's file. */
void xfer_info_out(const struct xfer *x, uint32_t *flags, struct seblock_info *out);
void xfer_info_in(struct xfer *x, const struct seblock_info *in);

/* ---- the hooks at each end (sftp_client.c, sftp_server.c) --------------- */

int sftp_client_call_before(void *type, rpc2_conn *c, struct rpc2_se_desc *d, uint32_t seq,
                            struct pkt_writer *w, void **transfer, uint64_t now);
void sftp_client_call_after(void *type, rpc2_conn *c, void *transfer, int *status,
                            const uint8_t *se, uint32_t se_len, uint64_t now);
void sftp_client_call_abandon(void *type, rpc2_conn *c, void *transfer, int status, uint64_t now);

int sftp_server_request(void *type, rpc2_request *req, const uint8_t *se, uint32_t se_len,
                        void **transfer);
int sftp_server_init(void *type, rpc2_request *req, void *transfer, struct rpc2_se_desc *d,
                     uint64_t now);
int sftp_server_check(void *type, rpc2_request *req, void *transfer, se_check_done_fn done,
                      uint64_t now);
int sftp_server_reply(void *type, rpc2_request *req, void *transfer, int status,
                      struct pkt_writer *w);
void sftp_server_request_free(void *type, rpc2_request *req, void *transfer);
void sftp_server_unbind(void *type, rpc2_conn *c);

#endif
