/*
 * sftp.h - the SFTP side effect: files, byte ranges and memory buffers
 * moved with a call (after Coda's RPC2; not the SSH file protocol).
 *
 * Activate it on both the client's and the server's context, bind with
 * se_type = RPC2_SE_SFTP, and attach a descriptor (se.h) to calls. Small
 * transfers ride inside the request or reply datagram (piggybacking); large
 * ones stream on a windowed sub-protocol with selective acks, RTT-based
 * retransmission and pacing — invisible to the caller either way.
 */
#ifndef RPC2_SFTP_H
#define RPC2_SFTP_H

#include <stddef.h>
#include <stdint.h>
#include <rpc2/rpc2.h>
#include <rpc2/se.h>

#ifdef __cplusplus
extern "C" {
#endif

struct rpc2_sftp_params {
    /* Data bytes per DATA packet; 0: chosen per peer — near 64 KiB on
     * loopback (whose MTU allows it), 1400 elsewhere (a 1500-byte MTU). */
    uint32_t packet_size;
    /* Most packets in flight; 0: enough for window_bytes. */
    uint32_t window;
    uint32_t window_bytes;     /* used when window is 0 */
    uint32_t send_ahead;       /* most packets sent back to back */
    uint32_t ack_point;        /* the sink acks every ack_point new packets */
    uint32_t retry_count;      /* timeouts without progress before the transfer fails */
    uint32_t retry_interval_us; /* first retransmission timeout, before any RTT sample */
    uint32_t dup_threshold;    /* duplicates after which the sink acks at once */
    int strict_quota;          /* moving more than the quota fails the call (RPC2_EQUOTA) */
    int piggyback;             /* small transfers ride in the call or reply; 0: never */
    uint32_t piggyback_max;    /* the largest piggybacked transfer, bytes */
    uint64_t memory_cap;       /* packet buffer memory of all transfers of the context */
    uint64_t rate_max_bps;     /* pacing ceiling, bytes per second; 0: none */
};

RPC2_EXPORT void rpc2_sftp_params_init(struct rpc2_sftp_params *p);
/* 0, or RPC2_EINVAL when a value makes no sense (the log says which). */
RPC2_EXPORT int rpc2_sftp_params_check(const struct rpc2_sftp_params *p);

/* Registers the SFTP side-effect type on the context. Call before binds. */
RPC2_EXPORT int rpc2_sftp_activate(rpc2_ctx *ctx, const struct rpc2_sftp_params *p);

struct rpc2_sftp_stats {
    uint64_t transfers, piggybacked, failed;
    uint64_t data_sent, data_received, data_retransmitted, data_duplicates;
    uint64_t acks_sent, acks_received, starts_sent, timeouts;
    uint64_t bytes_sent, bytes_received;
};

/* Sums over every transfer the context ran. */
RPC2_EXPORT int rpc2_sftp_stats(const rpc2_ctx *ctx, struct rpc2_sftp_stats *out);

#ifdef __cplusplus
}
#endif

#endif
