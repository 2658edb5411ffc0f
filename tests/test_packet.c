/*
 * test_packet.c - unit tests of rpc2/packet.c, the wire codec.
 *
 * The codec is the only thing between a hostile datagram and the protocol
 * state, so besides round trips these tests feed it every malformed header
 * we can name, every single-bit flip of a datagram, and every truncation of
 * every body, in buffers allocated to the exact length so that
 * AddressSanitizer catches a read one byte past.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>
#include <rpc2/rpc2.h>

#include "packet.h"
#include "check_run.h"

/* A copy of bytes in a heap block of exactly n bytes (at least 1 for malloc). */
static uint8_t *exact_copy(const uint8_t *src, size_t n)
{
    uint8_t *p = malloc(n ? n : 1);

    ck_assert_ptr_nonnull(p);
    if (n > 0)
        memcpy(p, src, n);
    return p;
}

static void put_be(uint8_t *p, unsigned width, uint64_t v)
{
    unsigned i;

    for (i = 0; i < width; i++)
        p[i] = (uint8_t)(v >> (8 * (width - 1 - i)));
}

/* ---- header ---------------------------------------------------------------- */

/* A valid header at security "none"; distinct bytes show where each field lands. */
static const struct pkt_hdr sample_hdr = {
    .version = PKT_VERSION,
    .type = PKT_CALL,
    .flags = PKT_F_RETRANSMIT | PKT_F_SE,
    .security = 0,
    .key_epoch = 0x04050607,
    .dst_conn = 0x08090a0b,
    .src_conn = 0x0c0d0e0f,
    .seq = 0x10111213,
    .transfer = 0x14151617,
    .ts = 0x18191a1b,
    .ts_echo = 0x1c1d1e1f,
    .body_len = 8,
    .trailer_len = PKT_CHECK_SIZE,
};

/* The sample datagram: header, an 8-byte body, the check. */
#define SAMPLE_LEN (PKT_HDR_SIZE + 8 + PKT_CHECK_SIZE)

static void assert_hdr_eq(const struct pkt_hdr *a, const struct pkt_hdr *b)
{
    ck_assert_uint_eq(a->version, b->version);
    ck_assert_uint_eq(a->type, b->type);
    ck_assert_uint_eq(a->flags, b->flags);
    ck_assert_uint_eq(a->security, b->security);
    ck_assert_uint_eq(a->key_epoch, b->key_epoch);
    ck_assert_uint_eq(a->dst_conn, b->dst_conn);
    ck_assert_uint_eq(a->src_conn, b->src_conn);
    ck_assert_uint_eq(a->seq, b->seq);
    ck_assert_uint_eq(a->transfer, b->transfer);
    ck_assert_uint_eq(a->ts, b->ts);
    ck_assert_uint_eq(a->ts_echo, b->ts_echo);
    ck_assert_uint_eq(a->body_len, b->body_len);
    ck_assert_uint_eq(a->trailer_len, b->trailer_len);
}

/* Encodes h over buf (whose body is already there, if any) and appends the
 * check: a datagram as the engine sends it. Returns its length. */
static size_t seal(uint8_t *buf, const struct pkt_hdr *h)
{
    size_t len = PKT_HDR_SIZE + h->body_len;

    pkt_hdr_encode(h, buf);
    pkt_check_write(buf, len);
    return len + PKT_CHECK_SIZE;
}

/* The sample datagram, body bytes 0xb0.. so that no two bytes agree by chance. */
static size_t sample_datagram(uint8_t *buf)
{
    for (unsigned i = 0; i < 8; i++)
        buf[PKT_HDR_SIZE + i] = (uint8_t)(0xb0 + i);
    return seal(buf, &sample_hdr);
}

START_TEST(hdr_encodes_big_endian_layout)
{
    static const uint8_t want[PKT_HDR_SIZE] = {
        0x01, 0x07, 0x03, 0x02, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d,
        0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b,
        0x1c, 0x1d, 0x1e, 0x1f, 0x00, 0x00, 0x00, 0x08, 0x20, 0x21, 0x00, 0x00,
    };
    struct pkt_hdr h = sample_hdr;
    uint8_t buf[PKT_HDR_SIZE];

    h.version = 9; /* encode forces PKT_VERSION */
    h.security = 2;
    h.trailer_len = 0x2021;
    memset(buf, 0xAA, sizeof(buf));
    pkt_hdr_encode(&h, buf);
    ck_assert_mem_eq(buf, want, sizeof(want));
}
END_TEST

START_TEST(hdr_round_trip)
{
    uint8_t buf[SAMPLE_LEN];
    struct pkt_hdr out;

    ck_assert_uint_eq(sample_datagram(buf), sizeof(buf));
    ck_assert_int_eq(pkt_hdr_decode(buf, sizeof(buf), &out), PKT_OK);
    assert_hdr_eq(&out, &sample_hdr);
}
END_TEST

/* Every defined type and every combination of known flags, sealed. */
START_TEST(hdr_accepts_every_known_type_and_flag)
{
    static const uint8_t types[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 16, 17, 18, 19, 20};
    uint8_t buf[PKT_HDR_SIZE + PKT_CHECK_SIZE];
    struct pkt_hdr h = sample_hdr, out;
    size_t i;
    unsigned flags;

    h.body_len = 0;
    for (i = 0; i < sizeof(types); i++) {
        for (flags = 0; flags <= PKT_FLAGS_KNOWN; flags++) {
            h.type = types[i];
            h.flags = (uint8_t)flags;
            ck_assert_uint_eq(seal(buf, &h), sizeof(buf));
            ck_assert_int_eq(pkt_hdr_decode(buf, sizeof(buf), &out), PKT_OK);
            assert_hdr_eq(&out, &h);
        }
    }
}
END_TEST

START_TEST(hdr_short_datagrams_refused)
{
    uint8_t full[SAMPLE_LEN];
    struct pkt_hdr out;
    size_t len;
    int v;

    /* Short is short whatever the version says: no VERSION_ERR for these. */
    for (v = 0; v < 3; v++) {
        sample_datagram(full);
        full[0] = (uint8_t)v;
        for (len = 0; len < PKT_HDR_SIZE; len++) {
            uint8_t *p = exact_copy(full, len);

            ck_assert_int_eq(pkt_hdr_decode(p, len, &out), PKT_ESHORT);
            free(p);
        }
    }
    ck_assert_int_eq(pkt_hdr_decode(NULL, 0, &out), PKT_ESHORT);
    /* A version-1 header with no room for its check after it. */
    sample_datagram(full);
    for (len = PKT_HDR_SIZE; len < PKT_HDR_SIZE + PKT_CHECK_SIZE; len++) {
        uint8_t *p = exact_copy(full, len);

        ck_assert_int_eq(pkt_hdr_decode(p, len, &out), PKT_ESHORT);
        free(p);
    }
}
END_TEST

/*
 * Malformed headers: one field of the valid sample datagram overwritten,
 * optionally with the datagram lengthened or shortened, and then sealed
 * again (the check of every byte but the last 8 written over those 8): the
 * refusals a sender's lie or bug earns once the check has proven the bytes
 * are what it sent. Rows with `raw` are not sealed again: damage.
 */
struct mutation {
    const char *name;
    unsigned off, width; /* width up to 8: a row may span two fields */
    uint64_t value;
    int len_delta;
    int raw;
    int want;
};

static const struct mutation mutations[] = {
    {"version 0", 0, 1, 0, 0, 0, PKT_EVERSION},
    {"version 2", 0, 1, 2, 0, 0, PKT_EVERSION},
    {"version 255", 0, 1, 255, 0, 0, PKT_EVERSION},
    {"version 2 and unknown type", 0, 2, 0x0200, 0, 0, PKT_EVERSION},
    {"version 2, damaged in the version byte", 0, 1, 2, 0, 1, PKT_ECHECK},
    {"version 2, damaged there and elsewhere", 0, 2, 0x0208, 0, 1, PKT_EVERSION},
    {"type 0", 1, 1, 0, 0, 0, PKT_ETYPE},
    {"type 13", 1, 1, 13, 0, 0, PKT_ETYPE},
    {"type 15", 1, 1, 15, 0, 0, PKT_ETYPE},
    {"type 21", 1, 1, 21, 0, 0, PKT_ETYPE},
    {"type 255", 1, 1, 255, 0, 0, PKT_ETYPE},
    {"unknown type before bad flags", 1, 2, 0x0dff, 0, 0, PKT_ETYPE},
    {"flag 0x04", 2, 1, 0x04, 0, 0, PKT_EFLAGS},
    {"flag 0x80", 2, 1, 0x80, 0, 0, PKT_EFLAGS},
    {"known and unknown flags", 2, 1, 0x13, 0, 0, PKT_EFLAGS},
    {"security 1: too short for its MAC", 3, 1, 1, 0, 0, PKT_ESHORT},
    {"security 2: too short for its MAC", 3, 1, 2, 0, 0, PKT_ESHORT},
    {"security 1: damage (the check holds at none)", 3, 1, 1, 0, 1, PKT_ECHECK},
    {"security 2: damage (the check holds at none)", 3, 1, 2, 0, 1, PKT_ECHECK},
    {"security 3", 3, 1, 3, 0, 0, PKT_ECHECK},
    {"security 255", 3, 1, 255, 0, 0, PKT_ECHECK},
    {"reserved high bit", 38, 2, 0x8000, 0, 0, PKT_EFLAGS},
    {"reserved low bit", 38, 2, 0x0001, 0, 0, PKT_EFLAGS},
    {"reserved bit, damage", 38, 2, 0x0001, 0, 1, PKT_ECHECK},
    {"trailer 0 (no check announced)", 36, 2, 0, 0, 0, PKT_ELENGTH},
    {"trailer 0, datagram agrees", 36, 2, 0, -8, 0, PKT_ELENGTH},
    {"trailer 4, datagram agrees", 36, 2, 4, -4, 0, PKT_ELENGTH},
    {"trailer 16, datagram agrees", 36, 2, 16, 8, 0, PKT_ELENGTH},
    {"trailer 9, datagram does not", 36, 2, 9, 0, 0, PKT_ELENGTH},
    {"trailer 0xffff", 36, 2, 0xffff, 0, 0, PKT_ELENGTH},
    {"trailer 0, damage", 36, 2, 0, 0, 1, PKT_ECHECK},
    {"body_len says more than sent", 32, 4, 9, 0, 0, PKT_ELENGTH},
    {"body_len says less than sent", 32, 4, 7, 0, 0, PKT_ELENGTH},
    {"body_len damaged", 32, 4, 9, 0, 1, PKT_ECHECK},
    {"datagram one byte long", 0, 0, 0, 1, 0, PKT_ELENGTH},
    {"datagram one byte short", 0, 0, 0, -1, 0, PKT_ELENGTH},
    {"datagram one byte long, unsealed", 0, 0, 0, 1, 1, PKT_ECHECK},
    {"datagram is the header and a check", 0, 0, 0, -8, 0, PKT_ELENGTH},
    {"body_len 0xffffffff", 32, 4, 0xffffffff, 0, 0, PKT_ELENGTH},
    {"body_len wraps 40 + len + 8 to 8", 32, 4, 0xffffffe0, 0, 0, PKT_ELENGTH},
    {"body_len and trailer wrap to 56", 32, 6, 0xffffffff0011, 0, 0, PKT_ELENGTH},
};

START_TEST(hdr_malformed_refused)
{
    const struct mutation *m = &mutations[_i];
    struct pkt_hdr out;
    uint8_t full[SAMPLE_LEN + 16] = {0};
    size_t len = (size_t)(SAMPLE_LEN + m->len_delta);
    uint8_t *p;

    sample_datagram(full);
    put_be(full + m->off, m->width, m->value);
    if (!m->raw)
        pkt_check_write(full, len - PKT_CHECK_SIZE);
    p = exact_copy(full, len);
    ck_assert_msg(pkt_hdr_decode(p, len, &out) == m->want, "%s: %d", m->name,
                  pkt_hdr_decode(p, len, &out));
    free(p);
}
END_TEST

/* A foreign version still yields the stable first 16 bytes, for VERSION_ERR. */
START_TEST(hdr_foreign_version_keeps_addressing_fields)
{
    uint8_t buf[SAMPLE_LEN];
    struct pkt_hdr out;

    sample_datagram(buf);
    buf[0] = 2;
    pkt_check_write(buf, sizeof(buf) - PKT_CHECK_SIZE); /* a genuine version 2 */
    ck_assert_int_eq(pkt_hdr_decode(buf, sizeof(buf), &out), PKT_EVERSION);
    ck_assert_uint_eq(out.version, 2);
    ck_assert_uint_eq(out.type, sample_hdr.type);
    ck_assert_uint_eq(out.dst_conn, sample_hdr.dst_conn);
    ck_assert_uint_eq(out.src_conn, sample_hdr.src_conn);
}
END_TEST

START_TEST(hdr_body_len_bound)
{
    size_t len = PKT_HDR_SIZE + (size_t)PKT_MAX_BODY + PKT_CHECK_SIZE;
    uint8_t *buf = calloc(1, len + 1);
    struct pkt_hdr h = sample_hdr, out;

    ck_assert_ptr_nonnull(buf);
    /* the largest body with the longest trailer (a MAC) fills a datagram */
    ck_assert_uint_eq(len - PKT_CHECK_SIZE + PKT_MAC_SIZE, PKT_MAX_DATAGRAM);
    h.body_len = PKT_MAX_BODY;
    ck_assert_uint_eq(seal(buf, &h), len);
    ck_assert_int_eq(pkt_hdr_decode(buf, len, &out), PKT_OK);
    h.body_len = PKT_MAX_BODY + 1;
    ck_assert_uint_eq(seal(buf, &h), len + 1);
    ck_assert_int_eq(pkt_hdr_decode(buf, len + 1, &out), PKT_ELENGTH);
    free(buf);
}
END_TEST

/* ---- the trailer ------------------------------------------------------------- */

/* The check is XXH3-64 of the bytes before it, big-endian, written right
 * after them and nowhere else. */
START_TEST(check_write_and_verify)
{
    uint8_t buf[SAMPLE_LEN + 4];
    size_t n = PKT_HDR_SIZE + 8;
    uint64_t want;
    unsigned i;

    memset(buf, 0xAA, sizeof(buf));
    sample_datagram(buf);
    want = XXH3_64bits(buf, n);
    for (i = 0; i < PKT_CHECK_SIZE; i++)
        ck_assert_uint_eq(buf[n + i], (uint8_t)(want >> (56 - 8 * i)));
    for (i = SAMPLE_LEN; i < sizeof(buf); i++)
        ck_assert_uint_eq(buf[i], 0xAA);
    ck_assert(pkt_check_ok(buf, SAMPLE_LEN));
    ck_assert(!pkt_check_ok(buf, SAMPLE_LEN - 1));
    ck_assert(!pkt_check_ok(buf, SAMPLE_LEN + 1));
    /* The known answer docs/PROTOCOL.md gives: the check of nothing. */
    pkt_check_write(buf, 0);
    ck_assert_uint_eq(XXH3_64bits(buf, 0), 0x2d06800538d394c2ull);
    ck_assert_uint_eq(buf[0], 0x2d);
    ck_assert_uint_eq(buf[7], 0xc2);
    ck_assert(pkt_check_ok(buf, PKT_CHECK_SIZE));
    ck_assert(!pkt_check_ok(buf, PKT_CHECK_SIZE - 1));
    ck_assert(!pkt_check_ok(NULL, 0));
}
END_TEST

/* Damage anywhere, one bit at a time: header, body, trailer. Every flip is
 * refused as damage, the version and security bytes included. */
START_TEST(check_every_single_bit_flip_refused)
{
    uint8_t clean[SAMPLE_LEN];
    struct pkt_hdr out;
    size_t len = sample_datagram(clean);

    for (size_t byte = 0; byte < len; byte++) {
        for (unsigned bit = 0; bit < 8; bit++) {
            uint8_t *p = exact_copy(clean, len);

            p[byte] ^= (uint8_t)(1u << bit);
            ck_assert_msg(!pkt_check_ok(p, len), "byte %zu bit %u passes the check", byte, bit);
            int rc = pkt_hdr_decode(p, len, &out);
            ck_assert_msg(rc == PKT_ECHECK, "byte %zu bit %u: %d", byte, bit, rc);
            free(p);
        }
    }
}
END_TEST

START_TEST(seal_by_security_level)
{
    uint8_t buf[SAMPLE_LEN];
    struct pkt_hdr h = sample_hdr, out;

    ck_assert_uint_eq(pkt_trailer_size(RPC2_SEC_NONE), PKT_CHECK_SIZE);
    ck_assert_uint_eq(pkt_trailer_size(RPC2_SEC_AUTH), PKT_MAC_SIZE);
    ck_assert_uint_eq(pkt_trailer_size(RPC2_SEC_ENCRYPT), PKT_MAC_SIZE);
    ck_assert_uint_eq(pkt_trailer_size(3), 0);
    pkt_hdr_encode(&h, buf);
    ck_assert_uint_eq(pkt_seal(buf, PKT_HDR_SIZE + 8), SAMPLE_LEN);
    ck_assert(pkt_check_ok(buf, SAMPLE_LEN));
    ck_assert_int_eq(pkt_hdr_decode(buf, SAMPLE_LEN, &out), PKT_OK);
    /* Keyed levels are sealed by the connection's session, never here. */
    h.security = RPC2_SEC_AUTH;
    pkt_hdr_encode(&h, buf);
    ck_assert_uint_eq(pkt_seal(buf, PKT_HDR_SIZE + 8), 0);
    h.security = RPC2_SEC_ENCRYPT;
    pkt_hdr_encode(&h, buf);
    ck_assert_uint_eq(pkt_seal(buf, PKT_HDR_SIZE + 8), 0);
}
END_TEST

/* ---- readers and writers ---------------------------------------------------- */

START_TEST(reader_u32_and_done)
{
    static const uint8_t b[] = {0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0};
    struct pkt_reader r;

    pkt_reader_init(&r, b, sizeof(b));
    ck_assert_uint_eq(pkt_get_u32(&r), 0x12345678);
    ck_assert(!pkt_reader_done(&r));
    ck_assert_uint_eq(pkt_get_u32(&r), 0x9abcdef0);
    ck_assert(pkt_reader_done(&r));
    /* Reading past the end fails, and the reader stays failed. */
    ck_assert_uint_eq(pkt_get_u32(&r), 0);
    ck_assert_int_eq(r.failed, PKT_ESHORT);
    ck_assert(!pkt_reader_done(&r));

    pkt_reader_init(&r, NULL, 0);
    ck_assert(pkt_reader_done(&r));
    pkt_get_u32(&r);
    ck_assert(!pkt_reader_done(&r));
}
END_TEST

START_TEST(reader_opaque_padding)
{
    static const uint8_t ok[] = {0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o', 0, 0, 0};
    uint8_t bad[sizeof(ok)];
    struct pkt_reader r;
    const uint8_t *d;
    uint32_t n;
    unsigned i;

    pkt_reader_init(&r, ok, sizeof(ok));
    d = pkt_get_opaque(&r, 5, &n);
    ck_assert_ptr_eq(d, ok + 4);
    ck_assert_uint_eq(n, 5);
    ck_assert(pkt_reader_done(&r));

    /* One over the bound. */
    pkt_reader_init(&r, ok, sizeof(ok));
    ck_assert_ptr_null(pkt_get_opaque(&r, 4, &n));
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(r.failed, PKT_ELENGTH);

    /* Each padding byte must be zero. */
    for (i = 9; i < sizeof(bad); i++) {
        memcpy(bad, ok, sizeof(ok));
        bad[i] = 1;
        pkt_reader_init(&r, bad, sizeof(bad));
        ck_assert_ptr_null(pkt_get_opaque(&r, 5, &n));
        ck_assert_int_eq(r.failed, PKT_EFLAGS);
    }

    /* The padding itself missing is a truncation. */
    pkt_reader_init(&r, ok, 9);
    ck_assert_ptr_null(pkt_get_opaque(&r, 5, &n));
    ck_assert_int_eq(r.failed, PKT_ESHORT);
}
END_TEST

/* A length near 2^32 is refused from the 4 bytes that claim it: the exact
 * size allocation makes any read past them an ASan error. */
START_TEST(reader_huge_opaque_refused_without_reading)
{
    static const uint8_t claims[][4] = {
        {0xff, 0xff, 0xff, 0xf0},
        {0xff, 0xff, 0xff, 0xff},
        {0xff, 0xff, 0xff, 0xfd},
    };
    struct pkt_reader r;
    struct pkt_call call;
    uint32_t n;
    size_t i;

    for (i = 0; i < sizeof(claims) / sizeof(claims[0]); i++) {
        uint8_t *p = exact_copy(claims[i], 4);
        uint8_t *body = malloc(8);

        ck_assert_ptr_nonnull(body);
        /* With a bound, the bound refuses it. */
        pkt_reader_init(&r, p, 4);
        ck_assert_ptr_null(pkt_get_opaque(&r, PKT_MAX_BODY, &n));
        ck_assert_int_eq(r.failed, PKT_ELENGTH);
        /* With no bound at all, the buffer does (padding must not wrap). */
        pkt_reader_init(&r, p, 4);
        ck_assert_ptr_null(pkt_get_opaque(&r, UINT32_MAX, &n));
        ck_assert_int_eq(r.failed, PKT_ESHORT);
        /* And through a body decoder: proc 7, then the lying args length. */
        put_be(body, 4, 7);
        memcpy(body + 4, claims[i], 4);
        ck_assert_int_eq(pkt_call_decode(body, 8, 0, &call), PKT_ELENGTH);
        ck_assert_ptr_null(call.args);
        free(body);
        free(p);
    }
}
END_TEST

START_TEST(writer_basics)
{
    static const uint8_t want[] = {0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 3, 'a', 'b', 'c', 0};
    uint8_t buf[16];
    struct pkt_writer w;

    memset(buf, 0xAA, sizeof(buf));
    pkt_writer_init(&w, buf, sizeof(buf));
    pkt_put_u32(&w, 0xdeadbeef);
    pkt_put_opaque(&w, "abc", 3);
    ck_assert_int_eq(w.failed, 0);
    ck_assert_int_eq(w.p - buf, 12);
    ck_assert_mem_eq(buf, want, sizeof(want));

    /* Space: padding zeroed, the rest left to the caller. */
    pkt_writer_init(&w, buf, sizeof(buf));
    memset(buf, 0xAA, sizeof(buf));
    ck_assert_ptr_eq(pkt_put_space(&w, 1), buf);
    ck_assert_uint_eq(buf[0], 0xAA);
    ck_assert_uint_eq(buf[1] | buf[2] | buf[3], 0);
    ck_assert_ptr_eq(pkt_put_space(&w, 0), buf + 4);
    ck_assert_ptr_eq(pkt_put_space(&w, 12), buf + 4);
    ck_assert_int_eq(w.p - buf, 16);

    /* Overflow fails, writes nothing, and stays failed. */
    ck_assert_ptr_null(pkt_put_space(&w, 1));
    ck_assert_int_eq(w.failed, PKT_ELENGTH);
    pkt_writer_init(&w, buf, 6);
    memset(buf, 0xAA, sizeof(buf));
    pkt_put_u32(&w, 1);
    pkt_put_u32(&w, 2);
    pkt_put_opaque(&w, "", 0);
    ck_assert(w.failed);
    ck_assert_int_eq(w.p - buf, 4);
    ck_assert_uint_eq(buf[4], 0xAA);
    /* Unbounded space lengths must not wrap the padding. */
    pkt_writer_init(&w, buf, sizeof(buf));
    ck_assert_ptr_null(pkt_put_space(&w, UINT32_MAX));
}
END_TEST

/* ---- bodies ------------------------------------------------------------------ */

/* Writes a CALL or REPLY body: head, payload, and se when se is non-NULL. */
static size_t put_head_payload(uint8_t *buf, size_t cap, uint32_t head, const void *payload,
                               uint32_t payload_len, const void *se, uint32_t se_len)
{
    struct pkt_writer w;

    pkt_writer_init(&w, buf, cap);
    pkt_put_u32(&w, head);
    pkt_put_opaque(&w, payload, payload_len);
    if (se)
        pkt_put_opaque(&w, se, se_len);
    ck_assert_int_eq(w.failed, 0);
    return (size_t)(w.p - buf);
}

START_TEST(bind_req_round_trip)
{
    /* clang-format off */
    static const uint8_t want[] = {
        0, 0, 0, 42, 0, 0, 0, 1, 0, 0, 0, 2, 0xc0, 0x0c, 0, 0,
        0, 0, 0, 5, 'a', 'l', 'i', 'c', 'e', 0, 0, 0,
    };
    /* clang-format on */
    struct pkt_bind_req m = {.subsystem = 42,
                             .se_type = 1,
                             .cookie = (const uint8_t *)"\xc0\x0c",
                             .cookie_len = 2,
                             .identity = (const uint8_t *)"alice",
                             .identity_len = 5};
    struct pkt_bind_req out;
    uint8_t buf[64];
    size_t len;

    ck_assert_int_eq(pkt_bind_req_encode(&m, buf, sizeof(buf), &len), PKT_OK);
    ck_assert_uint_eq(len, sizeof(want));
    ck_assert_mem_eq(buf, want, sizeof(want));
    ck_assert_int_eq(pkt_bind_req_decode(buf, len, &out), PKT_OK);
    ck_assert_uint_eq(out.subsystem, 42);
    ck_assert_uint_eq(out.se_type, 1);
    ck_assert_uint_eq(out.cookie_len, 2);
    ck_assert_mem_eq(out.cookie, "\xc0\x0c", 2);
    ck_assert_uint_eq(out.identity_len, 5);
    ck_assert_mem_eq(out.identity, "alice", 5);
    ck_assert_ptr_null(out.hello); /* level none: no handshake */
    /* Above none, a hello follows; an empty one would be a second encoding
     * of "none", and is refused. */
    m.hello = (const uint8_t *)"hello";
    m.hello_len = 5;
    ck_assert_int_eq(pkt_bind_req_encode(&m, buf, sizeof(buf), &len), PKT_OK);
    ck_assert_uint_eq(len, sizeof(want) + 12);
    ck_assert_int_eq(pkt_bind_req_decode(buf, len, &out), PKT_OK);
    ck_assert_uint_eq(out.hello_len, 5);
    ck_assert_mem_eq(out.hello, "hello", 5);
    memcpy(buf + sizeof(want), "\0\0\0\0", 4);
    ck_assert_int_ne(pkt_bind_req_decode(buf, sizeof(want) + 4, &out), PKT_OK);
}
END_TEST

START_TEST(bind_ok_with_and_without_hello)
{
    uint8_t buf[64];
    size_t len;
    uint32_t flags;
    const uint8_t *hello;
    uint32_t hello_len;

    ck_assert_int_eq(pkt_bind_ok_encode(0, NULL, 0, buf, sizeof buf, &len), PKT_OK);
    ck_assert_uint_eq(len, 4);
    ck_assert_int_eq(pkt_bind_ok_decode(buf, len, &flags, &hello, &hello_len), PKT_OK);
    ck_assert_ptr_null(hello);
    ck_assert_int_eq(pkt_bind_ok_encode(0, (const uint8_t *)"abc", 3, buf, sizeof buf, &len),
                     PKT_OK);
    ck_assert_uint_eq(len, 12);
    ck_assert_int_eq(pkt_bind_ok_decode(buf, len, &flags, &hello, &hello_len), PKT_OK);
    ck_assert_uint_eq(hello_len, 3);
    ck_assert_mem_eq(hello, "abc", 3);
    ck_assert_int_ne(pkt_bind_ok_decode(buf, 8, &flags, &hello, &hello_len), PKT_OK);
    ck_assert_int_ne(pkt_bind_ok_decode(buf, 11, &flags, &hello, &hello_len), PKT_OK);
}
END_TEST

START_TEST(bind_req_bounds)
{
    uint8_t cookie[PKT_MAX_COOKIE + 1] = {0}, identity[PKT_MAX_IDENTITY + 1] = {0};
    uint8_t buf[512];
    struct pkt_bind_req m = {.subsystem = 1,
                             .cookie = cookie,
                             .cookie_len = PKT_MAX_COOKIE,
                             .identity = identity,
                             .identity_len = PKT_MAX_IDENTITY};
    struct pkt_bind_req out;
    struct pkt_writer w;
    size_t len, need, cap;

    /* Empty cookie and identity. */
    m.cookie_len = m.identity_len = 0;
    ck_assert_int_eq(pkt_bind_req_encode(&m, buf, sizeof(buf), &len), PKT_OK);
    ck_assert_uint_eq(len, 16);
    ck_assert_int_eq(pkt_bind_req_decode(buf, len, &out), PKT_OK);
    ck_assert_uint_eq(out.cookie_len + out.identity_len, 0);

    /* At the bounds: accepted; the smallest buffer that holds it suffices. */
    m.cookie_len = PKT_MAX_COOKIE;
    m.identity_len = PKT_MAX_IDENTITY;
    ck_assert_int_eq(pkt_bind_req_encode(&m, buf, sizeof(buf), &need), PKT_OK);
    ck_assert_int_eq(pkt_bind_req_decode(buf, need, &out), PKT_OK);
    ck_assert_uint_eq(out.identity_len, PKT_MAX_IDENTITY);
    for (cap = 0; cap < need; cap++)
        ck_assert_int_eq(pkt_bind_req_encode(&m, buf, cap, &len), PKT_ELENGTH);

    /* One over: the encoder will not send it, the decoder will not take it. */
    m.cookie_len = PKT_MAX_COOKIE + 1;
    ck_assert_int_eq(pkt_bind_req_encode(&m, buf, sizeof(buf), &len), PKT_ELENGTH);
    ck_assert_uint_eq(len, 0);
    m.cookie_len = 0;
    m.identity_len = PKT_MAX_IDENTITY + 1;
    ck_assert_int_eq(pkt_bind_req_encode(&m, buf, sizeof(buf), &len), PKT_ELENGTH);

    pkt_writer_init(&w, buf, sizeof(buf));
    pkt_put_u32(&w, 1);
    pkt_put_u32(&w, 0);
    pkt_put_opaque(&w, cookie, PKT_MAX_COOKIE + 1);
    pkt_put_opaque(&w, identity, 0);
    ck_assert_int_eq(pkt_bind_req_decode(buf, (size_t)(w.p - buf), &out), PKT_ELENGTH);
    ck_assert_ptr_null(out.cookie);

    pkt_writer_init(&w, buf, sizeof(buf));
    pkt_put_u32(&w, 1);
    pkt_put_u32(&w, 0);
    pkt_put_opaque(&w, cookie, 0);
    pkt_put_opaque(&w, identity, PKT_MAX_IDENTITY + 1);
    ck_assert_int_eq(pkt_bind_req_decode(buf, (size_t)(w.p - buf), &out), PKT_ELENGTH);
    /* A refused body leaves no half-decoded pointers behind. */
    ck_assert_ptr_null(out.cookie);
    ck_assert_uint_eq(out.subsystem, 0);
}
END_TEST

START_TEST(call_round_trip_without_se)
{
    static const uint8_t args[] = {0, 0, 0, 7, 0, 0, 0, 35};
    uint8_t buf[64];
    struct pkt_call out;
    size_t len = put_head_payload(buf, sizeof(buf), 2, args, sizeof(args), NULL, 0);

    ck_assert_uint_eq(len, 16);
    ck_assert_int_eq(pkt_call_decode(buf, len, PKT_F_RETRANSMIT, &out), PKT_OK);
    ck_assert_uint_eq(out.proc, 2);
    ck_assert_uint_eq(out.args_len, sizeof(args));
    ck_assert_mem_eq(out.args, args, sizeof(args));
    ck_assert_ptr_null(out.se);
    ck_assert_uint_eq(out.se_len, 0);
    /* The header claims a side-effect block the body does not have. */
    ck_assert_int_eq(pkt_call_decode(buf, len, PKT_F_SE, &out), PKT_ESHORT);
}
END_TEST

START_TEST(call_round_trip_with_se)
{
    static const uint8_t se[] = {1, 2, 3, 4, 5, 6};
    uint8_t buf[64];
    struct pkt_call out;
    size_t len = put_head_payload(buf, sizeof(buf), 0xfffffffe, "xyz", 3, se, sizeof(se));

    ck_assert_uint_eq(len, 4 + 8 + 12);
    ck_assert_int_eq(pkt_call_decode(buf, len, PKT_F_SE, &out), PKT_OK);
    ck_assert_uint_eq(out.proc, 0xfffffffe);
    ck_assert_uint_eq(out.args_len, 3);
    ck_assert_mem_eq(out.args, "xyz", 3);
    ck_assert_uint_eq(out.se_len, sizeof(se));
    ck_assert_mem_eq(out.se, se, sizeof(se));
    /* Without the flag the block is trailing garbage. */
    ck_assert_int_eq(pkt_call_decode(buf, len, 0, &out), PKT_ELENGTH);

    /* An empty side-effect block is still present (non-NULL). */
    len = put_head_payload(buf, sizeof(buf), 1, "", 0, "", 0);
    ck_assert_int_eq(pkt_call_decode(buf, len, PKT_F_SE, &out), PKT_OK);
    ck_assert_ptr_nonnull(out.se);
    ck_assert_uint_eq(out.se_len, 0);
}
END_TEST

START_TEST(reply_round_trip)
{
    static const struct {
        int32_t status;
        int with_se;
    } rows[] = {{0, 0}, {0, 1}, {17, 0}, {-10, 0}, {-20, 1}, {INT32_MIN, 0}, {INT32_MAX, 1}};
    static const uint8_t result[] = {0, 0, 0, 42};
    uint8_t buf[64];
    struct pkt_reply out;
    size_t i, len;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        len = put_head_payload(buf, sizeof(buf), (uint32_t)rows[i].status, result, sizeof(result),
                               rows[i].with_se ? "se" : NULL, 2);
        ck_assert_int_eq(pkt_reply_decode(buf, len, rows[i].with_se ? PKT_F_SE : 0, &out), PKT_OK);
        ck_assert_int_eq(out.status, rows[i].status);
        ck_assert_uint_eq(out.result_len, sizeof(result));
        ck_assert_mem_eq(out.result, result, sizeof(result));
        if (rows[i].with_se) {
            ck_assert_uint_eq(out.se_len, 2);
            ck_assert_mem_eq(out.se, "se", 2);
        } else {
            ck_assert_ptr_null(out.se);
        }
    }
}
END_TEST

START_TEST(bind_err_round_trip)
{
    static const int32_t codes[] = {-9, -17, -19, -24, 0, 1, INT32_MIN, INT32_MAX};
    uint8_t buf[8] = {0};
    struct pkt_writer w;
    int32_t v;
    size_t i;

    for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        pkt_writer_init(&w, buf, 4);
        pkt_put_u32(&w, (uint32_t)codes[i]);
        ck_assert_int_eq(pkt_i32_decode(buf, 4, &v), PKT_OK);
        ck_assert_int_eq(v, codes[i]);
    }
    ck_assert_int_eq(pkt_i32_decode(buf, 5, &v), PKT_ELENGTH);
    ck_assert_int_eq(pkt_i32_decode(buf, 8, &v), PKT_ELENGTH);
    ck_assert_int_eq(pkt_i32_decode(buf, 3, &v), PKT_ESHORT);
}
END_TEST

START_TEST(cookie_round_trip)
{
    uint8_t cookie[PKT_MAX_COOKIE + 1], buf[128];
    struct pkt_writer w;
    const uint8_t *c;
    uint32_t n;
    unsigned i;

    for (i = 0; i < sizeof(cookie); i++)
        cookie[i] = (uint8_t)(i * 7 + 1);
    for (i = 0; i <= PKT_MAX_COOKIE; i++) {
        pkt_writer_init(&w, buf, sizeof(buf));
        pkt_put_opaque(&w, cookie, i);
        ck_assert_int_eq(pkt_cookie_decode(buf, (size_t)(w.p - buf), &c, &n), PKT_OK);
        ck_assert_uint_eq(n, i);
        ck_assert_mem_eq(c, cookie, i);
    }
    pkt_writer_init(&w, buf, sizeof(buf));
    pkt_put_opaque(&w, cookie, PKT_MAX_COOKIE + 1);
    ck_assert_int_eq(pkt_cookie_decode(buf, (size_t)(w.p - buf), &c, &n), PKT_ELENGTH);
    ck_assert_ptr_null(c);
    ck_assert_uint_eq(n, 0);
}
END_TEST

/* ---- truncation: every prefix of every body ------------------------------------ */

/* Decoders behind one signature, so a table can drive them. */
static int dec_bind_req(const uint8_t *b, size_t n, uint8_t flags)
{
    struct pkt_bind_req m;

    (void)flags;
    return pkt_bind_req_decode(b, n, &m);
}

static int dec_cookie(const uint8_t *b, size_t n, uint8_t flags)
{
    const uint8_t *c;
    uint32_t len;

    (void)flags;
    return pkt_cookie_decode(b, n, &c, &len);
}

static int dec_i32(const uint8_t *b, size_t n, uint8_t flags)
{
    int32_t v;

    (void)flags;
    return pkt_i32_decode(b, n, &v);
}

static int dec_call(const uint8_t *b, size_t n, uint8_t flags)
{
    struct pkt_call m;

    return pkt_call_decode(b, n, flags, &m);
}

static int dec_reply(const uint8_t *b, size_t n, uint8_t flags)
{
    struct pkt_reply m;

    return pkt_reply_decode(b, n, flags, &m);
}

/* Rows of wire bytes read best grouped by field. */
/* clang-format off */
static const struct body_case {
    const char *name;
    int (*decode)(const uint8_t *b, size_t n, uint8_t flags);
    uint8_t flags;
    size_t len;
    uint8_t bytes[40];
} body_cases[] = {
    {"BIND_REQ", dec_bind_req, 0, 28,
     {0, 0, 0, 42,  0, 0, 0, 1,  0, 0, 0, 2,  0xc0, 0x0c, 0, 0,
      0, 0, 0, 5,  'a', 'l', 'i', 'c',  'e', 0, 0, 0}},
    {"BIND_REQ empty", dec_bind_req, 0, 16, {0, 0, 0, 1}},
    {"BIND_COOKIE", dec_cookie, 0, 12, {0, 0, 0, 5,  1, 2, 3, 4,  5, 0, 0, 0}},
    {"BIND_ERR", dec_i32, 0, 4, {0xff, 0xff, 0xff, 0xf7}},
    {"BIND_OK", dec_i32, 0, 4, {0, 0, 0, 0}},
    {"CALL", dec_call, 0, 16, {0, 0, 0, 2,  0, 0, 0, 8,  0, 0, 0, 7,  0, 0, 0, 35}},
    {"CALL+SE", dec_call, PKT_F_SE, 20,
     {0, 0, 0, 2,  0, 0, 0, 1,  9, 0, 0, 0,  0, 0, 0, 3,  'a', 'b', 'c', 0}},
    {"REPLY", dec_reply, 0, 12, {0, 0, 0, 0,  0, 0, 0, 4,  0, 0, 0, 42}},
    {"REPLY+SE", dec_reply, PKT_F_SE, 16,
     {0xff, 0xff, 0xff, 0xf6,  0, 0, 0, 0,  0, 0, 0, 2,  's', 'e', 0, 0}},
};
/* clang-format on */

START_TEST(body_every_prefix_refused)
{
    const struct body_case *c = &body_cases[_i];
    uint8_t *p;
    size_t n;

    p = exact_copy(c->bytes, c->len);
    ck_assert_msg(c->decode(p, c->len, c->flags) == PKT_OK, "%s whole", c->name);
    free(p);
    for (n = 0; n < c->len; n++) {
        p = exact_copy(c->bytes, n);
        ck_assert_msg(c->decode(p, n, c->flags) == PKT_ESHORT, "%s prefix %zu", c->name, n);
        free(p);
    }
    /* And one byte (then four) too many. */
    for (n = c->len + 1; n <= c->len + 4; n += 3) {
        p = calloc(1, n);
        ck_assert_ptr_nonnull(p);
        memcpy(p, c->bytes, c->len);
        ck_assert_msg(c->decode(p, n, c->flags) == PKT_ELENGTH, "%s + %zu", c->name, n - c->len);
        free(p);
    }
}
END_TEST

/* Every prefix of a whole datagram: short below the header and its check,
 * damage from there on (the last 8 bytes are not the check of the rest);
 * and every truncated body sealed again, a length mismatch. */
START_TEST(datagram_every_prefix_refused)
{
    const struct body_case *c = &body_cases[0];
    uint8_t full[PKT_HDR_SIZE + sizeof(c->bytes) + PKT_CHECK_SIZE];
    struct pkt_hdr h = sample_hdr, out;
    size_t n, total;

    h.type = PKT_BIND_REQ;
    h.flags = 0;
    h.body_len = (uint32_t)c->len;
    memcpy(full + PKT_HDR_SIZE, c->bytes, c->len);
    total = seal(full, &h);
    for (n = 0; n <= total; n++) {
        uint8_t *p = exact_copy(full, n);
        int want = n < PKT_HDR_SIZE + PKT_CHECK_SIZE ? PKT_ESHORT : n < total ? PKT_ECHECK : PKT_OK;

        ck_assert_msg(pkt_hdr_decode(p, n, &out) == want, "prefix %zu", n);
        if (want == PKT_OK)
            ck_assert_int_eq(c->decode(p + PKT_HDR_SIZE, out.body_len, out.flags), PKT_OK);
        free(p);
    }
    for (n = PKT_HDR_SIZE; n < PKT_HDR_SIZE + c->len; n++) {
        uint8_t resealed[sizeof(full)];

        memcpy(resealed, full, n);
        pkt_check_write(resealed, n);
        ck_assert_msg(pkt_hdr_decode(resealed, n + PKT_CHECK_SIZE, &out) == PKT_ELENGTH,
                      "body cut to %zu, sealed", n - PKT_HDR_SIZE);
    }
}
END_TEST

static Suite *packet_suite(void)
{
    Suite *s = suite_create("packet");
    TCase *hdr = tcase_create("header");
    TCase *trailer = tcase_create("trailer");
    TCase *rw = tcase_create("reader-writer");
    TCase *body = tcase_create("bodies");

    tcase_add_test(hdr, hdr_encodes_big_endian_layout);
    tcase_add_test(hdr, hdr_round_trip);
    tcase_add_test(hdr, hdr_accepts_every_known_type_and_flag);
    tcase_add_test(hdr, hdr_short_datagrams_refused);
    tcase_add_loop_test(hdr, hdr_malformed_refused, 0,
                        (int)(sizeof(mutations) / sizeof(mutations[0])));
    tcase_add_test(hdr, hdr_foreign_version_keeps_addressing_fields);
    tcase_add_test(hdr, hdr_body_len_bound);
    suite_add_tcase(s, hdr);

    tcase_add_test(trailer, check_write_and_verify);
    tcase_add_test(trailer, check_every_single_bit_flip_refused);
    tcase_add_test(trailer, seal_by_security_level);
    suite_add_tcase(s, trailer);

    tcase_add_test(rw, reader_u32_and_done);
    tcase_add_test(rw, reader_opaque_padding);
    tcase_add_test(rw, reader_huge_opaque_refused_without_reading);
    tcase_add_test(rw, writer_basics);
    suite_add_tcase(s, rw);

    tcase_add_test(body, bind_req_round_trip);
    tcase_add_test(body, bind_req_bounds);
    tcase_add_test(body, bind_ok_with_and_without_hello);
    tcase_add_test(body, call_round_trip_without_se);
    tcase_add_test(body, call_round_trip_with_se);
    tcase_add_test(body, reply_round_trip);
    tcase_add_test(body, bind_err_round_trip);
    tcase_add_test(body, cookie_round_trip);
    tcase_add_loop_test(body, body_every_prefix_refused, 0,
                        (int)(sizeof(body_cases) / sizeof(body_cases[0])));
    tcase_add_test(body, datagram_every_prefix_refused);
    suite_add_tcase(s, body);
    return s;
}

int main(void)
{
    return check_run(packet_suite());
}
