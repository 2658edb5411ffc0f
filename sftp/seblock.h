/*
 * seblock.h - the SFTP side-effect blocks that ride in a CALL and its REPLY
 * (the opaque se<> of docs/PROTOCOL.md): what the client asks for and
 * accepts, what the server did, and piggybacked data when the whole
 * transfer fits in the datagram.
 *
 * CALL block:  u32 direction (1 fetch, 2 store), u32 flags, hyper quota
 *              (-1: none), u32 packet_size, u32 window, u32 piggyback_max,
 *              opaque data<> (a piggybacked store), opaque checksum<16>
 *              (with a piggybacked store: its XXH3-128; else empty)
 * REPLY block: i32 status (the server's end: 0 or an rpc2 error), unsigned
 *              hyper bytes, u32 flags, opaque data<> (a piggybacked fetch),
 *              opaque checksum<16> (XXH3-128 of the bytes the server's end
 *              moved, when it ran; else empty)
 * A checksum is empty or exactly 16 bytes. With SEBLOCK_SOURCE_INFO, either
 * block ends with the source file's info: unsigned hyper size (all ones:
 * unknown), u32 mode (07777 bits), hyper mtime_sec, u32 mtime_nsec; a store's
 * client sends it in the CALL, a fetch's server in the REPLY. With
 * SEBLOCK_NAMED_SUM, either block then ends with the named sum the client
 * asked for (namedsum.h): u32 sum_type, opaque named_sum<32>, empty or
 * exactly that type's length; in the CALL the piggybacked store's sum, in
 * the REPLY the server's end's sum (when it ran).
 */
#ifndef RPC2_SFTP_SEBLOCK_H
#define RPC2_SFTP_SEBLOCK_H

#include <stdint.h>

#include "namedsum.h"
#include "packet.h"

enum seblock_flag {
    SEBLOCK_PIGGY = 0x1,    /* data holds the whole transfer */
    SEBLOCK_PIGGY_OK = 0x2, /* CALL: the client takes a piggybacked fetch */
    SEBLOCK_STRICT = 0x4,   /* CALL: the client enforces its quota strictly */
    SEBLOCK_QUOTA_HIT = 0x8, /* REPLY: the server's end was cut by a quota */
    SEBLOCK_SOURCE_INFO = 0x10, /* the block ends with the source file's info */
    SEBLOCK_NAMED_SUM = 0x20,   /* the block ends with the named sum (type, value) */
};
#define SEBLOCK_FLAGS_KNOWN                                                                        \
    (SEBLOCK_PIGGY | SEBLOCK_PIGGY_OK | SEBLOCK_STRICT | SEBLOCK_SOURCE_INFO | SEBLOCK_NAMED_SUM)
#define SEBLOCK_REPLY_FLAGS_KNOWN                                                                  \
    (SEBLOCK_PIGGY | SEBLOCK_QUOTA_HIT | SEBLOCK_SOURCE_INFO | SEBLOCK_NAMED_SUM)
#define SEBLOCK_CHECKSUM_MAX 16
/* The bytes of a CALL block around its data, and of a REPLY block around
 * its data with a full checksum: what piggybacking must leave room for. */
#define SEBLOCK_INFO_SIZE 24
#define SEBLOCK_NAMED_SIZE (8 + NAMEDSUM_MAX)
#define SEBLOCK_CALL_OVERHEAD (36 + SEBLOCK_CHECKSUM_MAX + SEBLOCK_INFO_SIZE + SEBLOCK_NAMED_SIZE)
#define SEBLOCK_REPLY_OVERHEAD (24 + SEBLOCK_CHECKSUM_MAX + SEBLOCK_INFO_SIZE + SEBLOCK_NAMED_SIZE)

/* The source file as its end knows it (with SEBLOCK_SOURCE_INFO). */
struct seblock_info {
    uint64_t size; /* UINT64_MAX: unknown */
    uint32_t mode;
    int64_t mtime_sec;
    uint32_t mtime_nsec;
};

struct seblock_call {
    uint32_t direction, flags, packet_size, window, piggyback_max;
    int64_t quota;
    const uint8_t *data;
    uint32_t data_len;
    const uint8_t *checksum;
    uint32_t checksum_len;
    struct seblock_info info;
    uint32_t sum_type; /* with SEBLOCK_NAMED_SUM */
    const uint8_t *named_sum;
    uint32_t named_sum_len;
};

struct seblock_reply {
    int32_t status;
    uint64_t bytes;
    uint32_t flags;
    const uint8_t *data;
    uint32_t data_len;
    const uint8_t *checksum;
    uint32_t checksum_len;
    struct seblock_info info;
    uint32_t sum_type; /* with SEBLOCK_NAMED_SUM */
    const uint8_t *named_sum;
    uint32_t named_sum_len;
};

void seblock_call_encode(const struct seblock_call *b, struct pkt_writer *w);
int seblock_call_decode(const uint8_t *buf, size_t len, struct seblock_call *b);
void seblock_reply_encode(const struct seblock_reply *b, struct pkt_writer *w);
int seblock_reply_decode(const uint8_t *buf, size_t len, struct seblock_reply *b);

#endif
