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
     * loopback (whose MTU allows it), 1380 elsewhere (what a 1500-byte MTU
     * holds at every security level, over IPv6 too). */
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
    /* Packet buffer memory of all transfers of the context (default 256 MiB).
     * Each transfer gets its whole window while the cap has room; beyond
     * that the windows are shared fairly (the largest lowered to an equal
     * share, raised again as transfers end), and a transfer that cannot
     * have even 4 packets fails with RPC2_ELIMIT. A sink writing to a file
     * holds no packets and takes nothing from the cap. */
    uint64_t memory_cap;
    uint64_t rate_max_bps;     /* pacing ceiling, bytes per second; 0: none */
    /* Rate control (docs/RATE.md). As a source, the policy and rates this
     * end sends with; as a client fetching, what it asks the server's
     * source for. rate_bps is the target (a ceiling, or fixed's rate),
     * min_rate_bps a floor; 0: none. policies_allowed caps what a peer may
     * ask of this end's source: a mask of 1 << RPC2_SFTP_POLICY_* (0: any). */
    uint32_t policy; /* enum rpc2_sftp_policy */
    uint64_t rate_bps, min_rate_bps;
    uint32_t policies_allowed;
};

enum rpc2_sftp_policy {
    RPC2_SFTP_POLICY_DEFAULT = 0,    /* the sending end's own choice (adaptive) */
    RPC2_SFTP_POLICY_ADAPTIVE = 1,   /* model the bottleneck, share fairly, tolerate random loss */
    RPC2_SFTP_POLICY_FIXED = 2,      /* the target rate, whatever happens */
    RPC2_SFTP_POLICY_BACKGROUND = 3, /* yield to any other traffic */
};

/* The policy's name ("adaptive", "fixed", "background"), or NULL. */
RPC2_EXPORT const char *rpc2_sftp_policy_name(uint32_t policy);
/* The policy named (also "default"), or -1. */
RPC2_EXPORT int rpc2_sftp_policy_of(const char *name);

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

/*
 * The transfer running on a connection now (the client's call in flight,
 * or the request a server handles): changing its rate, and watching it.
 * Call from the context's loop thread (a callback, a timer, a watcher).
 * Both return RPC2_ENOENT when no streamed transfer runs on the connection.
 */
struct rpc2_sftp_rate {
    uint32_t policy;       /* enum rpc2_sftp_policy; DEFAULT: keep the current one */
    uint64_t rate_bps;     /* target, bytes/s; 0: none */
    uint64_t min_rate_bps; /* floor, bytes/s; 0: none */
};

/* At this end's source: applied at once (RPC2_EINVAL for a policy its
 * params do not allow). At this end's sink (a client fetching): sent to the
 * server's source with every ACK, which applies it within its own limits. */
RPC2_EXPORT int rpc2_sftp_set_rate(rpc2_conn *conn, const struct rpc2_sftp_rate *rate);

struct rpc2_sftp_transfer_info {
    int is_source;           /* this end sends the data */
    const char *policy;      /* as source: the policy in force; as sink: the one asked for */
    uint64_t bytes;          /* data bytes acknowledged (source) or received (sink) so far */
    uint64_t rate_bps;       /* as source: the pace now; as sink: 0 (measure bytes over time) */
    uint64_t target_bps, min_rate_bps; /* asked for; 0: none */
    uint32_t srtt_us;        /* this end's smoothed RTT */
    uint32_t min_rtt_us;     /* as source: the path's smallest RTT */
    uint64_t packets;        /* DATA sent (source) or received (sink), resends included */
    uint64_t packets_retransmitted, bytes_retransmitted; /* resends sent, or received */
    uint64_t packets_lost;   /* as source: judged lost from ACKs */
    uint64_t timeouts;
};

RPC2_EXPORT int rpc2_sftp_transfer_info(rpc2_conn *conn, struct rpc2_sftp_transfer_info *out);

#ifdef __cplusplus
}
#endif

#endif
