/*
 * params.c - SFTP's tuning knobs: defaults that are fast on loopback and
 * sane on a 1500-byte-MTU path, the checks that refuse nonsense, and the
 * per-transfer choices that depend on the path (packet size, window,
 * piggyback limit).
 */
#include <string.h>
#include <netinet/in.h>
#include <rpc2/sftp.h>

#include "packet.h"
#include "params.h"
#include "seblock.h"
#include "wire.h"

/* Data per packet where the path allows 64 KiB datagrams, and where it is
 * a 1500-byte Ethernet MTU less IPv6 (40), UDP (8), the rpc2 header, DATA's
 * head and the longest trailer (auth and encrypt): 1380 bytes, so that no
 * DATA datagram is fragmented at any security level, IPv6 included. */
#define LOOPBACK_PACKET (63 * 1024)
#define MTU_PACKET (1500 - 40 - 8 - PKT_HDR_SIZE - SFTP_DATA_HEAD - PKT_MAX_TRAILER)
#define MIN_PACKET 256
/* A packet no larger than an Ethernet MTU, whoever chose its size, means a
 * real network (a loopback's are near 64 KiB). */
#define ETHERNET_MTU 1500u

void rpc2_sftp_params_init(struct rpc2_sftp_params *p)
{
    memset(p, 0, sizeof *p);
    p->packet_size = 0;
    p->window = 0;
    /* 96 loopback packets: under the 128 datagrams a 4 MiB socket buffer holds */
    p->window_bytes = 6u << 20;
    p->send_ahead = 16;
    p->ack_point = 8;
    p->retry_count = 12;
    p->retry_interval_us = 200 * 1000;
    p->dup_threshold = 4;
    p->strict_quota = 0;
    p->piggyback = 1;
    p->piggyback_max = 0; /* 0: what one datagram of the path holds */
    p->memory_cap = 256u << 20;
    p->rate_max_bps = 0;
}

int rpc2_sftp_params_check(const struct rpc2_sftp_params *p)
{
    if (!p)
        return RPC2_EINVAL;
    if (p->packet_size && (p->packet_size < MIN_PACKET || p->packet_size > SFTP_MAX_PACKET))
        return RPC2_EINVAL;
    if (p->window > SFTP_MAX_WINDOW || (!p->window && p->window_bytes < MIN_PACKET * 4u))
        return RPC2_EINVAL;
    if (p->send_ahead == 0 || p->ack_point == 0 || p->retry_count == 0 ||
        p->retry_interval_us == 0 || p->dup_threshold == 0)
        return RPC2_EINVAL;
    if (p->piggyback_max > PKT_MAX_BODY || p->memory_cap < (uint64_t)SFTP_MAX_PACKET * 4)
        return RPC2_EINVAL;
    if (p->policy > RPC2_SFTP_POLICY_BACKGROUND || p->policies_allowed >= 1u << 4)
        return RPC2_EINVAL;
    return 0;
}

int sftp_path_is_loopback(const struct rpc2_addr *peer)
{
    if (peer->ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&peer->ss;
        return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
    }
    if (peer->ss.ss_family != AF_INET6)
        return 0;
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&peer->ss;
    if (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
        return 1;
    return IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) && sin6->sin6_addr.s6_addr[12] == 127;
}

uint32_t sftp_choose_packet_size(const struct rpc2_sftp_params *p, const struct rpc2_addr *peer)
{
    if (p->packet_size)
        return p->packet_size;
    return sftp_path_is_loopback(peer) ? LOOPBACK_PACKET : MTU_PACKET;
}

/* A real network's bandwidth-delay product (100 Mbit/s over 200 ms,
 * 1 Gbit/s over 20 ms: 2.5 MB) needs a window of several of them to ride
 * out a lost retransmission; loopback's 64 KiB packets keep the window
 * that fits its socket buffers. */
#define WAN_WINDOW_BYTES (16u << 20)

uint32_t sftp_choose_window(const struct rpc2_sftp_params *p, uint32_t packet_size)
{
    if (p->window)
        return p->window;
    uint32_t bytes = p->window_bytes;
    if (packet_size <= ETHERNET_MTU && bytes < WAN_WINDOW_BYTES)
        bytes = WAN_WINDOW_BYTES;
    uint32_t w = bytes / packet_size;
    return w < 4 ? 4 : w > SFTP_MAX_WINDOW ? SFTP_MAX_WINDOW : w;
}

/* The most data a CALL (store) or REPLY (fetch) can carry for this path,
 * after the rest of the datagram, and never more than the user allows. */
uint32_t sftp_choose_piggyback_max(const struct rpc2_sftp_params *p, const struct rpc2_addr *peer,
                                   size_t room)
{
    if (!p->piggyback)
        return 0;
    size_t overhead = SEBLOCK_REPLY_OVERHEAD + SEBLOCK_CALL_OVERHEAD + 8;
    size_t fits = room > overhead ? room - overhead : 0;
    size_t limit = p->piggyback_max ? p->piggyback_max
                                    : sftp_path_is_loopback(peer) ? fits : MTU_PACKET - 128;
    return (uint32_t)(limit < fits ? limit : fits);
}


/* A burst of MTU packets as large as a TSO segment (64 KiB): the source
 * sends at most a burst per wake-up, so on a busy host whose timers fire
 * late, bursts of 16 small packets would cap the rate (16 x 1400 bytes per
 * 5 ms is 36 Mbit/s) long before the path does. */
#define MTU_SEND_AHEAD 48u

struct sftp_config sftp_config_of(const struct rpc2_sftp_params *p, uint32_t packet_size,
                                  uint32_t window)
{
    uint32_t send_ahead = p->send_ahead;
    if (packet_size <= ETHERNET_MTU && send_ahead < MTU_SEND_AHEAD)
        send_ahead = MTU_SEND_AHEAD;
    return (struct sftp_config){
        .packet_size = packet_size,
        .window = window,
        .send_ahead = send_ahead,
        .ack_point = p->ack_point,
        .dup_threshold = p->dup_threshold,
        .retry_count = p->retry_count,
        .retry_initial_us = p->retry_interval_us,
        .retry_min_us = 5000, /* below this, batching on a busy host looks like loss */
        .retry_max_us = 2 * 1000 * 1000,
        .rate_max_bps = p->rate_max_bps,
        .policy = p->policy,
        .rate_bps = p->rate_bps,
        .min_rate_bps = p->min_rate_bps,
        .policies_allowed = p->policies_allowed,
    };
}

static const char *const policy_names[] = {"default", "adaptive", "fixed", "background"};

const char *rpc2_sftp_policy_name(uint32_t policy)
{
    return policy < sizeof policy_names / sizeof policy_names[0] ? policy_names[policy] : NULL;
}

int rpc2_sftp_policy_of(const char *name)
{
    for (size_t i = 0; name && i < sizeof policy_names / sizeof policy_names[0]; i++)
        if (strcmp(name, policy_names[i]) == 0)
            return (int)i;
    return -1;
}
