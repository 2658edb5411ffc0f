/*
 * wire.h - the bodies of the four SFTP packet types (PKT_SFTP_DATA, _ACK,
 * _START, _ABORT), their limits, and their codecs.
 *
 * The rpc2 header around them (seq, ts, ts_echo, PKT_F_RETRANSMIT) belongs
 * to rpc2/packet.h; docs/PROTOCOL.md is the prose of both. Decoders return
 * PKT_OK or the enum pkt_reject reason and never leave a half-decoded
 * result behind; encoders refuse what a decoder would refuse.
 */
#ifndef RPC2_SFTP_WIRE_H
#define RPC2_SFTP_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "namedsum.h"
#include "packet.h"

/* DATA flags (the body's first u32). */
#define SFTP_DATA_LAST 0x1u  /* the stream ends with this packet's last byte */
#define SFTP_DATA_ACKME 0x2u /* the source waits for an ack after this packet: ack at once */
#define SFTP_DATA_SUM 0x4u   /* with LAST: the body ends with the stream's checksum */
/* with LAST: the head goes on with the named sum the client asked for
 * (namedsum.h): u32 sum_type, opaque sum<32> of that type's length */
#define SFTP_DATA_NAMED 0x8u
#define SFTP_DATA_FLAGS_KNOWN (SFTP_DATA_LAST | SFTP_DATA_ACKME | SFTP_DATA_SUM | SFTP_DATA_NAMED)

#define SFTP_DATA_HEAD 8u /* data flags, transmission number; the data follow to the end */
#define SFTP_SUM_SIZE 16u /* XXH3-128 of every byte of the stream, high half first */
#define SFTP_NAMED_SIZE (8u + NAMEDSUM_MAX) /* the most SFTP_DATA_NAMED adds to the head */
#define SFTP_MAX_PACKET                                                                            \
    ((uint32_t)PKT_MAX_BODY - SFTP_DATA_HEAD - SFTP_SUM_SIZE - SFTP_NAMED_SIZE)

/*
 * Sequence numbers do not wrap: a transfer has at most SFTP_MAX_SEQ packets
 * (256 TiB at 64 KiB each), so seq + SFTP_MAX_WINDOW never overflows a u32.
 */
#define SFTP_MAX_SEQ 0xffff0000u

/* The largest window either side uses; an ACK's bitmap covers it. */
#define SFTP_MAX_WINDOW 16384u
#define SFTP_MAX_BITMAP (SFTP_MAX_WINDOW / 8)

/* got_them_all, window_end, delivered (u64), flags, largest_tx, ack_delay, bitmap length */
#define SFTP_ACK_HEAD 32u
#define SFTP_ACK_WISH_SIZE 20u /* policy, rate (u64), min_rate (u64), after the bitmap */
#define SFTP_MAX_ACK (SFTP_ACK_HEAD + SFTP_MAX_BITMAP)
#define SFTP_START_SIZE 8u
#define SFTP_ABORT_SIZE 4u
#define SFTP_PROBE_SIZE 4u

/* ACK flags. */
#define SFTP_ACK_COMPLETE 0x1u /* every byte is written: the stream is done */
#define SFTP_ACK_WISH 0x2u     /* the sink's rate wish follows the bitmap */
#define SFTP_ACK_FLAGS_KNOWN (SFTP_ACK_COMPLETE | SFTP_ACK_WISH)

/* Rate policies a wish can name (docs/RATE.md); 0: the source's default. */
#define SFTP_POLICY_DEFAULT 0u
#define SFTP_POLICY_ADAPTIVE 1u
#define SFTP_POLICY_FIXED 2u
#define SFTP_POLICY_BACKGROUND 3u
#define SFTP_POLICY_MAX SFTP_POLICY_BACKGROUND

/* PROBE flags. */
#define SFTP_PROBE_ANSWER_ME 0x1u /* reply with an ACK at once */
#define SFTP_PROBE_FLAGS_KNOWN SFTP_PROBE_ANSWER_ME

struct sftp_data {
    uint32_t flags;
    uint32_t tx; /* the transmission number: every send of any packet gets the next one */
    const uint8_t *bytes; /* into the body; NULL when len is 0 */
    uint32_t len;
    const uint8_t *sum;   /* SFTP_SUM_SIZE bytes into the body with SFTP_DATA_SUM, else NULL */
    uint32_t named_type;  /* with SFTP_DATA_NAMED, else 0 */
    const uint8_t *named; /* namedsum_len(named_type) bytes into the body, else NULL */
    uint32_t named_len;
};

/*
 * ACK: got_them_all is the highest seq below which the sink holds every
 * packet (0: none yet). Bit i of the bitmap, (bitmap[i / 8] >> (i % 8)) & 1,
 * says whether it holds seq got_them_all + 2 + i (got_them_all + 1 is missing
 * by definition). The last bitmap byte is never zero. delivered counts the
 * distinct data bytes the sink has received so far. window_end is the
 * highest seq the sink takes now (flow control: a sink whose writer is
 * stuck holds packets it has not written, and says how many more fit);
 * never below got_them_all, at most SFTP_MAX_WINDOW above it. COMPLETE
 * says the whole stream is written: only then is the source done.
 * largest_tx is the highest transmission number the sink has received
 * (0: none), and ack_delay the microseconds between that packet's arrival
 * and this ACK: the source knows when it sent it, so the two give an RTT
 * sample and tell losses from what is still on its way. With WISH, the
 * sink (a client fetching) asks for a rate policy and rates (bytes/s, 0:
 * no preference); the source keeps within its own limits.
 */
struct sftp_wish {
    uint32_t policy; /* SFTP_POLICY_* */
    uint64_t rate, min_rate;
};

struct sftp_ack {
    uint32_t got_them_all;
    uint32_t window_end;
    uint64_t delivered;
    uint32_t flags;
    uint32_t largest_tx;
    uint32_t ack_delay_us;
    const uint8_t *bitmap;
    uint32_t bitmap_len;
    struct sftp_wish wish; /* with SFTP_ACK_WISH */
};

/* START: what the sink accepts; the source uses the smaller of each and its own. */
struct sftp_start {
    uint32_t window;
    uint32_t packet_size;
};

int sftp_data_decode(const uint8_t *body, size_t len, struct sftp_data *d);
/* Writes the DATA head into body and returns where data_len bytes of data go
 * (followed, with SFTP_DATA_SUM, by the SFTP_SUM_SIZE checksum bytes: the
 * body is then SFTP_DATA_HEAD + data_len + SFTP_SUM_SIZE long), or NULL
 * when the flags are unknown or do not go together, or it does not fit. */
uint8_t *sftp_data_encode(uint8_t *body, size_t cap, uint32_t flags, uint32_t tx,
                          uint32_t data_len);
/* The same with SFTP_DATA_NAMED: named (its type and len valid) goes into
 * the head; the data then start after it. */
uint8_t *sftp_data_encode_named(uint8_t *body, size_t cap, uint32_t flags, uint32_t tx,
                                uint32_t data_len, const struct namedsum_value *named);

int sftp_ack_decode(const uint8_t *body, size_t len, struct sftp_ack *a);
/* Writes an ACK whose bitmap the caller fills in afterwards (so the sink can
 * write it straight from its ack map): returns where a->bitmap_len bytes go
 * (a->bitmap is ignored; a wish is written after them), or NULL when it
 * does not fit or is too long. */
uint8_t *sftp_ack_encode_head(uint8_t *body, size_t cap, const struct sftp_ack *a, size_t *out_len);
/* The same with a->bitmap copied in; refuses a bitmap ending in a zero byte. */
int sftp_ack_encode(const struct sftp_ack *a, uint8_t *body, size_t cap, size_t *out_len);
/* The longest bitmap an ACK body of cap bytes has room for (with a wish or not). */
uint32_t sftp_ack_bitmap_room(size_t cap, int wish);
/* The highest seq a decoded ACK says is held (got_them_all when the bitmap is empty). */
uint64_t sftp_ack_highest(const struct sftp_ack *a);

int sftp_start_decode(const uint8_t *body, size_t len, struct sftp_start *s);
int sftp_start_encode(const struct sftp_start *s, uint8_t *body, size_t cap, size_t *out_len);

/* PROBE (source to sink): "I am alive". With ANSWER_ME the source waits on
 * the sink (its window closed, or COMPLETE not yet said) and wants its ACK;
 * without, it answers the sink's own probe while it waits on its input. */
int sftp_probe_decode(const uint8_t *body, size_t len, uint32_t *flags);
int sftp_probe_encode(uint32_t flags, uint8_t *body, size_t cap, size_t *out_len);

/* ABORT carries a negative rpc2 error; anything else is refused. */
int sftp_abort_decode(const uint8_t *body, size_t len, int32_t *error);
int sftp_abort_encode(int32_t error, uint8_t *body, size_t cap, size_t *out_len);

#endif
