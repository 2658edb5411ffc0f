/*
 * fuzz_engine.h - a server engine driven the way ctx.c drives it, minus
 * the sockets: datagrams from a few fixed peer addresses, a fake clock,
 * and an outq flush that checks every datagram the engine sends and
 * remembers what a real client would learn from it (its connection id
 * from BIND_OK, the cookie of BIND_COOKIE), so fuzz inputs can say "use
 * what you were told" instead of guessing values only the server knows.
 */
#ifndef RPC2_FUZZ_ENGINE_H
#define RPC2_FUZZ_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "conntable.h"
#include "engine.h"
#include "fuzz_formats.h"
#include "fuzz_input.h"
#include "secure.h"

/* Three IPv4 peers (two on one host) and the IPv4-mapped IPv6 form of the
 * first, which must be taken for the same peer. */
#define FUZZ_PEERS 4

struct fuzz_peer {
    struct rpc2_addr addr;
    uint32_t conn_id; /* the server's id for us, from the latest BIND_OK; 0: none */
    uint8_t cookie[PKT_MAX_COOKIE];
    uint32_t cookie_len; /* from the latest BIND_COOKIE */
    uint32_t call_seq;   /* the seq of the latest CALL we sent (the transfer id) */
    /* A secure bind: the hello we sent (hs_conn: its src_conn) and, once
     * the BIND_OK's reply checks out, the session of that connection. */
    struct sec_hs hs;
    int hs_pending, secure;
    uint32_t hs_conn;
    struct sec_session session;
};

struct fuzz_engine {
    struct engine *e;
    uint64_t now;
    struct fuzz_peer peers[FUZZ_PEERS];
    uint64_t sent;
    unsigned hellos; /* genuine hellos made in this input: each its own randomness */
    /* the datagram being received: a foreign version's answer is no larger */
    size_t in_len;
    int in_foreign;
};

/* A zeroed config apart from what a server needs; id_seed fixed so runs repeat. */
void fuzz_engine_config(struct engine_config *cfg);
/* Aborts on ENOMEM: a fuzz run without an engine is no run. */
void fuzz_engine_init(struct fuzz_engine *fe, const struct engine_config *cfg,
                      const struct engine_hooks *hooks, void *env);
/* The server limits of rpc2_params (ctx.c sets them the same way), chosen
 * by one input byte (the LIM_* of fuzz_formats.h): bits 0-1 cookie
 * threshold (none, always, 1, 2), bits 2-3 connections per address (none,
 * 1, 2, 3), bits 4-5 calls running (none, 1, 2, 8), bits 6-7 saved reply
 * bytes (none, 0, 100, 64 KiB). */
void fuzz_engine_limits(struct fuzz_engine *fe, uint8_t choice);
/* fuzz_secret_for knows FUZZ_IDENTITY (fuzz_formats.h), with this secret. */
void fuzz_psk(struct sec_psk *psk);
/* An rpc2_secret_fn knowing FUZZ_IDENTITY only. */
int fuzz_secret_for(const char *identity, size_t len, unsigned char secret[RPC2_SECRET_BYTES],
                    void *arg);
/* Seals a datagram (header written, trailer not) as a client would: with
 * the session of the peer's secure connection when it is addressed to it,
 * else with the check. cap: room in buf. Returns the sealed length, or len
 * when the session refuses (the datagram then goes unsealed). */
size_t fuzz_engine_seal(struct fuzz_engine *fe, int peer, uint8_t *buf, size_t len, size_t cap);

/* The hello a client holding FUZZ_IDENTITY's secret sends in m (a BIND_REQ
 * from src_conn) at level, into out; the randomness is fixed by the input,
 * so a run can be replayed. Marks p's handshake pending; 0 on failure. */
size_t fuzz_engine_hello(struct fuzz_engine *fe, struct fuzz_peer *p, int level,
                         const struct pkt_bind_req *m, uint32_t src_conn, uint8_t *out, size_t cap);

/* Peer i's state: peer 3 (peer 0 in IPv6 clothes) shares peer 0's. */
struct fuzz_peer *fuzz_engine_peer(struct fuzz_engine *fe, int i);
/* Delivers one datagram from peer i (0 <= i < FUZZ_PEERS), then flushes. */
void fuzz_engine_receive(struct fuzz_engine *fe, int peer, const uint8_t *dgram, size_t len);
/* Moves the clock on by us and fires every timer due. */
void fuzz_engine_advance(struct fuzz_engine *fe, uint64_t us);
/* Ends every connection as rpc2_ctx_free does, then frees the engine. */
void fuzz_engine_dispose(struct fuzz_engine *fe);

#endif
