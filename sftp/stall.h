/*
 * stall.h - the bound on how long a server's transfer may go without
 * moving a byte. Waiting is legitimate (a peer's window kept closed, a
 * pipe with nothing in it) and every wait answers the peer's probes, so
 * neither end ever takes it for a dead peer: only this bound, which the
 * operator sets (rpc2_params.stall_timeout_us), ends it.
 */
#ifndef RPC2_SFTP_STALL_H
#define RPC2_SFTP_STALL_H

#include <stdint.h>

#include "engine.h"

struct stall {
    struct engine_timer timer;
    struct engine *engine;
    uint64_t timeout;  /* 0: not watching */
    uint64_t bytes;    /* progress as last seen */
    uint64_t started_at; /* when watching began */
    uint64_t moved_at;   /* when the count last changed */
    void (*expired)(struct stall *s, uint64_t now);
};

/* Starts watching, with bytes moved so far; expired runs once the count
 * stays the same for timeout microseconds (0: never). */
void stall_start(struct stall *s, struct engine *e, uint64_t timeout, uint64_t bytes, uint64_t now,
                 void (*expired)(struct stall *s, uint64_t now));
/* The transfer's bytes now (acknowledged, written): any change is progress. */
void stall_progress(struct stall *s, uint64_t bytes, uint64_t now);
void stall_stop(struct stall *s);

#endif
