/*
 * packet.h - every wire constant, limit and message layout of protocol
 * version 1, in one place (docs/PROTOCOL.md is the prose of this file).
 *
 * All integers are big-endian. A datagram is a 40-byte header, a body of
 * body_len bytes and a trailer of trailer_len bytes, and nothing else: a
 * datagram whose length is not exactly that is refused. The trailer proves
 * the datagram intact (at security "none" a check, later a MAC); it is
 * verified before any field but the version and security level is believed.
 */
#ifndef RPC2_PACKET_H
#define RPC2_PACKET_H

#include <stddef.h>
#include <stdint.h>

#define PKT_VERSION 1
#define PKT_HDR_SIZE 40
/* The largest datagram either side sends or accepts (fits IPv4 and IPv6 UDP). */
#define PKT_MAX_DATAGRAM 65000
/* The trailer at security "none": XXH3-64 of every byte before it, big-endian. */
#define PKT_CHECK_SIZE 8
/* The trailer at security "auth" and "encrypt": a u64 packet number and a
 * 16-byte AEAD tag (rpc2/secure.h, SEC_TRAILER_LEN). */
#define PKT_MAC_SIZE 24
/* The longest trailer of any level; bodies leave room for it at every level,
 * so a body's limit does not depend on the connection's. */
#define PKT_MAX_TRAILER PKT_MAC_SIZE
/* The largest body: what a datagram holds after its header and trailer. */
#define PKT_MAX_BODY (PKT_MAX_DATAGRAM - PKT_HDR_SIZE - PKT_MAX_TRAILER)
#define PKT_MAX_IDENTITY 255
#define PKT_MAX_COOKIE 64
/* The longest handshake hello in a BIND_REQ or BIND_OK (secure.h, SEC_HELLO_MAX). */
#define PKT_MAX_HELLO 512

/*
 * Header layout (offsets in bytes). The first 16 bytes keep this layout in
 * every protocol version, so a peer can always answer a version it does not
 * speak with a VERSION_ERR addressed to the sender's connection.
 *
 *   0  u8  version       PKT_VERSION
 *   1  u8  type          enum pkt_type
 *   2  u8  flags         enum pkt_flag; unknown bits are refused
 *   3  u8  security      enum rpc2_security of the connection
 *   4  u32 key_epoch     key generation (0 at security "none")
 *   8  u32 dst_conn      the receiver's connection id (0 in BIND_REQ)
 *  12  u32 src_conn      the sender's connection id
 *  16  u32 seq           call sequence number; SFTP: packet sequence number
 *  20  u32 transfer      side-effect transfer id (0: none)
 *  24  u32 ts            sender's clock in microseconds (wraps)
 *  28  u32 ts_echo       latest ts received from the peer (0: none yet)
 *  32  u32 body_len
 *  36  u16 trailer_len   PKT_CHECK_SIZE at security "none"
 *  38  u16 reserved      must be 0
 */
enum pkt_type {
    PKT_BIND_REQ = 1,     /* client -> server: open a connection */
    PKT_BIND_COOKIE = 2,  /* server -> client: prove your address, send BIND_REQ again with this */
    PKT_BIND_OK = 3,      /* server -> client: bound; src_conn is the server's id */
    PKT_BIND_ERR = 4,     /* server -> client: refused; body: i32 error */
    PKT_UNBIND = 5,       /* client -> server: connection over */
    PKT_UNBIND_ACK = 6,   /* server -> client */
    PKT_CALL = 7,         /* client -> server: a request */
    PKT_REPLY = 8,        /* server -> client: the outcome of call seq */
    PKT_BUSY = 9,         /* server -> client: call seq is running, keep waiting */
    PKT_UNKNOWN_CONN = 10, /* server -> client: dst_conn is not known here */
    PKT_VERSION_ERR = 11, /* either way: seq = highest version spoken, transfer = lowest */
    PKT_ANNOUNCE = 12,    /* server -> client: a server the client cannot reach is here */
    PKT_SFTP_DATA = 16,   /* reserved for the SFTP side effect */
    PKT_SFTP_ACK = 17,
    PKT_SFTP_START = 18,
    PKT_SFTP_ABORT = 19,
    PKT_SFTP_PROBE = 20,
};
#define PKT_TYPE_MAX 20

enum pkt_flag {
    PKT_F_RETRANSMIT = 0x01, /* this packet was sent before */
    PKT_F_SE = 0x02,         /* CALL/REPLY body ends with a side-effect block */
};
#define PKT_FLAGS_KNOWN (PKT_F_RETRANSMIT | PKT_F_SE)

/* Why a datagram was refused; each reason has its own counter. */
enum pkt_reject {
    PKT_OK = 0,
    PKT_ESHORT = -1,    /* shorter than the header or than its fields say */
    PKT_EVERSION = -2,  /* version other than PKT_VERSION */
    PKT_ETYPE = -3,     /* unknown type */
    PKT_EFLAGS = -4,    /* unknown flag bits, reserved bits or XDR padding set */
    PKT_ELENGTH = -5,   /* lengths disagree with the datagram or exceed a bound */
    PKT_ECHECK = -6,    /* the trailer does not prove the datagram intact */
};

struct pkt_hdr {
    uint8_t version, type, flags, security;
    uint32_t key_epoch, dst_conn, src_conn, seq, transfer, ts, ts_echo, body_len;
    uint16_t trailer_len;
};

/* Decodes and validates the header of a whole datagram, its trailer
 * included; on success the body is buf[PKT_HDR_SIZE .. PKT_HDR_SIZE + body_len). */
int pkt_hdr_decode(const uint8_t *buf, size_t len, struct pkt_hdr *h);
/* Writes the 40 header bytes (version forced to PKT_VERSION, reserved 0). */
void pkt_hdr_encode(const struct pkt_hdr *h, uint8_t *buf);

/*
 * The trailer. Which one a datagram carries is chosen by its security level
 * in one place (packet.c, trailer_of), for sealing and verifying alike:
 *   none           PKT_CHECK_SIZE bytes, the check below
 *   auth, encrypt  PKT_MAC_SIZE bytes, keyed: only the connection's session
 *                  (rpc2/secure.c) seals and verifies them, so pkt_seal()
 *                  refuses these levels and pkt_hdr_decode() checks their
 *                  form only; engine_receive() verifies before believing
 *                  anything but the connection id
 */
/* Writes the check of datagram[0 .. len_without_trailer) right after it:
 * XXH3-64, big-endian. The header must already say trailer_len 8. */
void pkt_check_write(uint8_t *datagram, size_t len_without_trailer);
/* True when the last PKT_CHECK_SIZE bytes of the len-byte datagram are the
 * check of the bytes before them. */
int pkt_check_ok(const uint8_t *datagram, size_t len);
/* Bytes of trailer at this security level; 0: this version seals none. */
size_t pkt_trailer_size(uint8_t security);
/* Appends the trailer of the datagram's own security level (header and body
 * written, trailer_len as pkt_trailer_size says); returns the whole length,
 * or 0 when the level has no trailer here (the datagram must not be sent). */
size_t pkt_seal(uint8_t *datagram, size_t len_without_trailer);

/*
 * Bounded readers and writers for bodies. XDR encoding: u32 big-endian;
 * opaque/string = u32 length, bytes, zero padding to a multiple of 4.
 * A reader that runs past its end, or meets a length above its bound, fails
 * and stays failed; callers check once at the end.
 */
struct pkt_reader {
    const uint8_t *p, *end;
    int failed;
};
struct pkt_writer {
    uint8_t *p, *end;
    int failed;
};

void pkt_reader_init(struct pkt_reader *r, const uint8_t *buf, size_t len);
uint32_t pkt_get_u32(struct pkt_reader *r);
/* Returns a pointer into the buffer; *len <= max or the reader fails. */
const uint8_t *pkt_get_opaque(struct pkt_reader *r, uint32_t max, uint32_t *len);
/* True when the reader consumed exactly its buffer without failing. */
int pkt_reader_done(const struct pkt_reader *r);

void pkt_writer_init(struct pkt_writer *w, uint8_t *buf, size_t cap);
void pkt_put_u32(struct pkt_writer *w, uint32_t v);
void pkt_put_opaque(struct pkt_writer *w, const void *data, uint32_t len);
/* Reserves len bytes (padded to 4) and returns where to write them. */
uint8_t *pkt_put_space(struct pkt_writer *w, uint32_t len);

/*
 * Bodies.
 *
 * BIND_REQ:  u32 subsystem, u32 se_type, opaque cookie<PKT_MAX_COOKIE>,
 *            string identity<PKT_MAX_IDENTITY>   (security is in the header)
 * BIND_COOKIE: opaque cookie<PKT_MAX_COOKIE>
 * BIND_OK:   u32 server_flags (0 in version 1)
 * BIND_ERR:  i32 error (an rpc2 error code)
 * CALL:      u32 proc, opaque args<PKT_MAX_BODY> [, opaque se<PKT_MAX_BODY> if PKT_F_SE]
 * REPLY:     i32 status, opaque result<PKT_MAX_BODY> [, opaque se<PKT_MAX_BODY> if PKT_F_SE]
 * all others: empty body
 */
struct pkt_bind_req {
    uint32_t subsystem, se_type;
    const uint8_t *cookie;
    uint32_t cookie_len;
    const uint8_t *identity;
    uint32_t identity_len;
    const uint8_t *hello; /* the security handshake's client hello; NULL at level none */
    uint32_t hello_len;
};
struct pkt_call {
    uint32_t proc;
    const uint8_t *args;
    uint32_t args_len;
    const uint8_t *se; /* NULL without PKT_F_SE */
    uint32_t se_len;
};
struct pkt_reply {
    int32_t status;
    const uint8_t *result;
    uint32_t result_len;
    const uint8_t *se;
    uint32_t se_len;
};

int pkt_bind_req_decode(const uint8_t *body, size_t len, struct pkt_bind_req *m);
int pkt_bind_req_encode(const struct pkt_bind_req *m, uint8_t *body, size_t cap, size_t *out_len);
int pkt_cookie_decode(const uint8_t *body, size_t len, const uint8_t **cookie, uint32_t *cookie_len);
/* BIND_OK: u32 server_flags [, opaque hello<PKT_MAX_HELLO>]: the server's
 * half of the handshake, present exactly when the bind is above none. */
int pkt_bind_ok_decode(const uint8_t *body, size_t len, uint32_t *flags, const uint8_t **hello,
                       uint32_t *hello_len);
int pkt_bind_ok_encode(uint32_t flags, const uint8_t *hello, uint32_t hello_len, uint8_t *body,
                       size_t cap, size_t *out_len);
int pkt_i32_decode(const uint8_t *body, size_t len, int32_t *v);
/* flags is the header's: PKT_F_SE says whether a side-effect block follows. */
int pkt_call_decode(const uint8_t *body, size_t len, uint8_t flags, struct pkt_call *m);
int pkt_reply_decode(const uint8_t *body, size_t len, uint8_t flags, struct pkt_reply *m);

#endif
