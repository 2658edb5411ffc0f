/*
 * fuzz_packet.c - exists because rpc2/packet.c is where every datagram
 * from the network is first believed or refused: its header and body
 * decoders must never read outside the bytes given, never hand out a
 * length above its bound, and mean exactly one thing, so whatever decodes
 * re-encodes to the very same bytes (the encoders being pkt_hdr_encode,
 * pkt_bind_req_encode, pkt_bind_ok_encode and the pkt_put_* writers the
 * engine builds the other bodies with).
 *
 * After a first byte that may ask for a valid check trailer, the rest of
 * the input is tried as a datagram and as each kind of body.
 */
#include <string.h>

#include "fuzz_input.h"
#include "packet.h"

/* Re-encoded bodies are never longer than what they were decoded from. */
static uint8_t again[PKT_MAX_DATAGRAM + FUZZ_SEAL_ROOM];

static void require_same(const struct pkt_writer *w, const uint8_t *body, size_t len)
{
    FUZZ_REQUIRE(!w->failed);
    FUZZ_REQUIRE((size_t)(w->p - again) == len);
    FUZZ_REQUIRE(len == 0 || memcmp(again, body, len) == 0);
}

static void require_inside(const uint8_t *p, uint32_t n, const uint8_t *body, size_t len)
{
    FUZZ_REQUIRE(n == 0 || (p >= body && n <= len && (size_t)(p - body) <= len - n));
}

static void try_header(const uint8_t *buf, size_t len)
{
    struct pkt_hdr h;

    if (pkt_hdr_decode(buf, len, &h) != PKT_OK)
        return;
    FUZZ_REQUIRE(h.body_len <= PKT_MAX_BODY);
    FUZZ_REQUIRE((size_t)PKT_HDR_SIZE + h.body_len + h.trailer_len == len);
    pkt_hdr_encode(&h, again);
    FUZZ_REQUIRE(memcmp(again, buf, PKT_HDR_SIZE) == 0);
}

static void try_bind_req(const uint8_t *body, size_t len)
{
    struct pkt_bind_req m;
    size_t out_len;

    if (pkt_bind_req_decode(body, len, &m) != PKT_OK)
        return;
    FUZZ_REQUIRE(m.cookie_len <= PKT_MAX_COOKIE && m.identity_len <= PKT_MAX_IDENTITY &&
                 m.hello_len <= PKT_MAX_HELLO);
    require_inside(m.cookie, m.cookie_len, body, len);
    require_inside(m.identity, m.identity_len, body, len);
    require_inside(m.hello, m.hello_len, body, len);
    FUZZ_REQUIRE(pkt_bind_req_encode(&m, again, sizeof again, &out_len) == PKT_OK);
    FUZZ_REQUIRE(out_len == len && memcmp(again, body, len) == 0);
}

static void try_cookie(const uint8_t *body, size_t len)
{
    const uint8_t *cookie;
    uint32_t cookie_len;
    struct pkt_writer w;

    if (pkt_cookie_decode(body, len, &cookie, &cookie_len) != PKT_OK)
        return;
    FUZZ_REQUIRE(cookie_len <= PKT_MAX_COOKIE);
    require_inside(cookie, cookie_len, body, len);
    pkt_writer_init(&w, again, sizeof again);
    pkt_put_opaque(&w, cookie, cookie_len);
    require_same(&w, body, len);
}

static void try_bind_ok(const uint8_t *body, size_t len)
{
    const uint8_t *hello;
    uint32_t flags, hello_len;
    size_t out_len;

    if (pkt_bind_ok_decode(body, len, &flags, &hello, &hello_len) != PKT_OK)
        return;
    FUZZ_REQUIRE(hello_len <= PKT_MAX_HELLO && (hello != NULL) == (hello_len > 0));
    require_inside(hello, hello_len, body, len);
    FUZZ_REQUIRE(pkt_bind_ok_encode(flags, hello, hello_len, again, sizeof again, &out_len) ==
                 PKT_OK);
    FUZZ_REQUIRE(out_len == len && memcmp(again, body, len) == 0);
}

static void try_i32(const uint8_t *body, size_t len)
{
    int32_t v;
    struct pkt_writer w;

    if (pkt_i32_decode(body, len, &v) != PKT_OK)
        return;
    pkt_writer_init(&w, again, sizeof again);
    pkt_put_u32(&w, (uint32_t)v);
    require_same(&w, body, len);
}

/* CALL and REPLY share their shape: a u32 head, the payload, the block. */
static void encode_head_payload(struct pkt_writer *w, uint32_t head, const uint8_t *payload,
                                uint32_t payload_len, const uint8_t *se, uint32_t se_len,
                                uint8_t flags)
{
    pkt_writer_init(w, again, sizeof again);
    pkt_put_u32(w, head);
    pkt_put_opaque(w, payload, payload_len);
    if (flags & PKT_F_SE)
        pkt_put_opaque(w, se, se_len);
}

static void try_call(const uint8_t *body, size_t len, uint8_t flags)
{
    struct pkt_call m;
    struct pkt_writer w;

    if (pkt_call_decode(body, len, flags, &m) != PKT_OK)
        return;
    FUZZ_REQUIRE((flags & PKT_F_SE) || m.se == NULL);
    require_inside(m.args, m.args_len, body, len);
    require_inside(m.se, m.se_len, body, len);
    encode_head_payload(&w, m.proc, m.args, m.args_len, m.se, m.se_len, flags);
    require_same(&w, body, len);
}

static void try_reply(const uint8_t *body, size_t len, uint8_t flags)
{
    struct pkt_reply m;
    struct pkt_writer w;

    if (pkt_reply_decode(body, len, flags, &m) != PKT_OK)
        return;
    require_inside(m.result, m.result_len, body, len);
    require_inside(m.se, m.se_len, body, len);
    encode_head_payload(&w, (uint32_t)m.status, m.result, m.result_len, m.se, m.se_len, flags);
    require_same(&w, body, len);
}

/* The reader on its own, with a bound taken from the input: a failed
 * reader stays failed, and an opaque never exceeds its bound. */
static void try_reader(const uint8_t *buf, size_t len)
{
    struct pkt_reader r;
    uint32_t max = len >= 1 ? (uint32_t)buf[0] * 64u : 0, n;

    pkt_reader_init(&r, buf, len);
    while (!r.failed && r.p != r.end) {
        const uint8_t *p = pkt_get_opaque(&r, max, &n);
        FUZZ_REQUIRE(r.failed ? p == NULL && n == 0 : n <= max);
        require_inside(p, n, buf, len);
    }
    FUZZ_REQUIRE(pkt_get_u32(&r) == 0 || !r.failed);
}

/* Random bytes almost never carry a valid check, so the first input byte
 * may ask for one (bit 0) and for a body_len that agrees with the length
 * (bit 1): then the header's own checks, and the re-encoding, are reached. */
static void try_datagram(uint8_t mode, const uint8_t *buf, size_t len)
{
    static uint8_t dgram[PKT_MAX_DATAGRAM + FUZZ_SEAL_ROOM];

    memcpy(dgram, buf, len);
    if ((mode & 2) && len >= PKT_HDR_SIZE)
        fuzz_store_u32(dgram + FUZZ_OFF_BODY_LEN, (uint32_t)(len - PKT_HDR_SIZE));
    if (mode & 1)
        len = fuzz_seal(dgram, len);
    (void)pkt_check_ok(dgram, len);
    try_header(dgram, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > PKT_MAX_DATAGRAM)
        return 0;
    try_datagram(data[0], data + 1, size - 1);
    data++;
    size--;
    try_bind_req(data, size);
    try_cookie(data, size);
    try_bind_ok(data, size);
    try_i32(data, size);
    try_call(data, size, 0);
    try_call(data, size, PKT_F_SE);
    try_reply(data, size, 0);
    try_reply(data, size, PKT_F_SE);
    try_reader(data, size);
    return 0;
}
