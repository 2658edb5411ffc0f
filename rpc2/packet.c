/*
 * packet.c - the version 1 wire codec: the 40-byte header, the trailer
 * that proves a datagram intact, bounded XDR readers and writers, and the
 * message bodies.
 *
 * Every datagram a peer sends passes through here before anything else
 * looks at it, so this file is where hostile input stops: no byte is read
 * before it is known to lie inside the buffer, every length is compared
 * with its bound before it is used, and integers are assembled by shifts
 * (never by overlaying a struct) so alignment and host byte order play no
 * part.
 */
#include "packet.h"

#include <string.h>

#include <rpc2/rpc2.h>

#include "bytes.h"
#include "hash.h"

/* Byte offsets of the header fields; packet.h draws the layout. */
enum {
    OFF_VERSION = 0,
    OFF_TYPE = 1,
    OFF_FLAGS = 2,
    OFF_SECURITY = 3,
    OFF_KEY_EPOCH = 4,
    OFF_DST_CONN = 8,
    OFF_SRC_CONN = 12,
    OFF_SEQ = 16,
    OFF_TRANSFER = 20,
    OFF_TS = 24,
    OFF_TS_ECHO = 28,
    OFF_BODY_LEN = 32,
    OFF_TRAILER_LEN = 36,
    OFF_RESERVED = 38,
};

/* Two's complement by arithmetic: the cast of a value above INT32_MAX is
 * implementation-defined. Error codes travel as negative i32s. */
static int32_t as_i32(uint32_t u)
{
    return u <= INT32_MAX ? (int32_t)u : -(int32_t)(UINT32_MAX - u) - 1;
}

/* 64-bit so that a hostile length such as 0xFFFFFFFF cannot wrap to 0. */
static uint64_t padded(uint32_t len)
{
    return ((uint64_t)len + 3) & ~(uint64_t)3;
}

/* ---- trailer ------------------------------------------------------------ */

/*
 * The check is unkeyed: it catches damage on the path (a flipped bit, a
 * truncation the kernel missed), not forgery; forgery is what the MAC of
 * the higher security levels is for. XXH3 runs at tens of GB/s, so even a
 * full 64 KiB datagram costs about a microsecond, and it is computed in
 * place: no datagram is ever copied for it.
 */
void pkt_check_write(uint8_t *datagram, size_t len_without_trailer)
{
    store_u64(datagram + len_without_trailer, XXH3_64bits(datagram, len_without_trailer));
}

int pkt_check_ok(const uint8_t *datagram, size_t len)
{
    if (!datagram || len < PKT_CHECK_SIZE)
        return 0;
    len -= PKT_CHECK_SIZE;
    return XXH3_64bits(datagram, len) == load_u64(datagram + len);
}

/* seal and ok are NULL for a keyed trailer: the connection's session seals
 * and verifies it (rpc2/secure.c), not this file. */
struct trailer {
    size_t size;
    void (*seal)(uint8_t *datagram, size_t len_without_trailer);
    int (*ok)(const uint8_t *datagram, size_t len);
};

static const struct trailer check_trailer = {PKT_CHECK_SIZE, pkt_check_write, pkt_check_ok};
static const struct trailer mac_trailer = {PKT_MAC_SIZE, NULL, NULL};

/*
 * The one place where a security level chooses its trailer, for senders and
 * receivers alike: the check at "none", the MAC at "auth" and "encrypt". A
 * level no version defines has none: such a datagram is never believed.
 */
static const struct trailer *trailer_of(uint8_t security)
{
    switch (security) {
    case RPC2_SEC_NONE:
        return &check_trailer;
    case RPC2_SEC_AUTH:
    case RPC2_SEC_ENCRYPT:
        return &mac_trailer;
    }
    return NULL;
}

size_t pkt_trailer_size(uint8_t security)
{
    const struct trailer *t = trailer_of(security);
    return t ? t->size : 0;
}

size_t pkt_seal(uint8_t *datagram, size_t len_without_trailer)
{
    const struct trailer *t = trailer_of(datagram[OFF_SECURITY]);

    if (!t || !t->seal)
        return 0; /* a keyed level: only the connection's session seals it */
    t->seal(datagram, len_without_trailer);
    return len_without_trailer + t->size;
}

static int damaged_security(const uint8_t *buf, size_t len);

/* Reads nothing but the security byte and the datagram's own length: the
 * trailer of the level is the datagram's last bytes whatever the length
 * fields claim, so damage to those fields is caught here too. */
static int trailer_verify(const uint8_t *buf, size_t len)
{
    const struct trailer *t = trailer_of(buf[OFF_SECURITY]);

    if (!t)
        return PKT_ECHECK;
    if (len < PKT_HDR_SIZE + t->size)
        return PKT_ESHORT;
    if (!t->ok)
        return PKT_OK; /* keyed: the receiver's session verifies it */
    return t->ok(buf, len) ? PKT_OK : PKT_ECHECK;
}

/*
 * Whether the datagram's last 8 bytes are the check of the bytes before
 * them once the byte at offset reads value: a level-none datagram damaged
 * in exactly that byte. The state is allocated (rather than kept on the
 * stack) because its layout belongs to the shared library; this runs only
 * for datagrams that are refused anyway.
 */
static int check_ok_with(const uint8_t *buf, size_t len, size_t offset, uint8_t value)
{
    XXH3_state_t *st;
    int ok;

    if (len < PKT_HDR_SIZE + PKT_CHECK_SIZE)
        return 0;
    st = XXH3_createState();
    if (!st)
        return 0;
    len -= PKT_CHECK_SIZE;
    ok = XXH3_64bits_reset(st) == XXH_OK && XXH3_64bits_update(st, buf, offset) == XXH_OK &&
         XXH3_64bits_update(st, &value, 1) == XXH_OK &&
         XXH3_64bits_update(st, buf + offset + 1, len - offset - 1) == XXH_OK &&
         XXH3_64bits_digest(st) == load_u64(buf + len);
    XXH3_freeState(st);
    return ok;
}

/* A foreign version byte on one of ours is damage, refused as such, not
 * answered with a VERSION_ERR: that would tell the peer we do not speak the
 * version we both speak. */
static int damaged_version(const uint8_t *buf, size_t len)
{
    return buf[OFF_SECURITY] == RPC2_SEC_NONE && check_ok_with(buf, len, OFF_VERSION, PKT_VERSION);
}

/* A keyed level on a datagram whose check is right at none is damage too:
 * counted as such, not as a short or malformed protected packet. */
static int damaged_security(const uint8_t *buf, size_t len)
{
    return check_ok_with(buf, len, OFF_SECURITY, RPC2_SEC_NONE);
}

/* ---- header ------------------------------------------------------------ */

static int type_known(uint8_t type)
{
    return (type >= PKT_BIND_REQ && type <= PKT_ANNOUNCE) ||
           (type >= PKT_SFTP_DATA && type <= PKT_TYPE_MAX);
}

static void hdr_load(const uint8_t *buf, struct pkt_hdr *h)
{
    h->version = buf[OFF_VERSION];
    h->type = buf[OFF_TYPE];
    h->flags = buf[OFF_FLAGS];
    h->security = buf[OFF_SECURITY];
    h->key_epoch = load_u32(buf + OFF_KEY_EPOCH);
    h->dst_conn = load_u32(buf + OFF_DST_CONN);
    h->src_conn = load_u32(buf + OFF_SRC_CONN);
    h->seq = load_u32(buf + OFF_SEQ);
    h->transfer = load_u32(buf + OFF_TRANSFER);
    h->ts = load_u32(buf + OFF_TS);
    h->ts_echo = load_u32(buf + OFF_TS_ECHO);
    h->body_len = load_u32(buf + OFF_BODY_LEN);
    h->trailer_len = load_u16(buf + OFF_TRAILER_LEN);
}

/* Once the trailer is verified, the lengths are what the sender wrote: a
 * disagreement is the sender's lie or bug, not damage on the path. */
static int lengths_agree(const struct pkt_hdr *h, size_t len)
{
    if (h->trailer_len != pkt_trailer_size(h->security) || h->body_len > PKT_MAX_BODY)
        return 0;
    return (uint64_t)PKT_HDR_SIZE + h->body_len + h->trailer_len == len;
}

/* The datagram's form at its own level: trailer, type, flags, lengths. */
static int form_check(const uint8_t *buf, size_t len, const struct pkt_hdr *h)
{
    int rc = trailer_verify(buf, len);

    if (rc != PKT_OK)
        return rc;
    if (!type_known(h->type))
        return PKT_ETYPE;
    if ((h->flags & ~PKT_FLAGS_KNOWN) != 0 || load_u16(buf + OFF_RESERVED) != 0)
        return PKT_EFLAGS;
    return lengths_agree(h, len) ? PKT_OK : PKT_ELENGTH;
}

/*
 * The checks run in a fixed order so each datagram has exactly one reason
 * (one counter), and the trailer comes before everything a damaged byte
 * could fake: only the version (to tell a foreign peer which versions we
 * speak) and the security level (which chooses the trailer) are read
 * before it. Whenever len >= PKT_HDR_SIZE, *h holds the raw fields even on
 * failure: the receiver needs the version, type and src_conn of a
 * foreign-version datagram to address its VERSION_ERR (and to avoid
 * answering a VERSION_ERR with one). Nothing else in a refused header may
 * be believed.
 */
int pkt_hdr_decode(const uint8_t *buf, size_t len, struct pkt_hdr *h)
{
    int rc;

    if (len < PKT_HDR_SIZE) {
        memset(h, 0, sizeof(*h));
        return PKT_ESHORT;
    }
    hdr_load(buf, h);
    if (h->version != PKT_VERSION)
        return damaged_version(buf, len) ? PKT_ECHECK : PKT_EVERSION;
    rc = form_check(buf, len, h);
    /* A level-none datagram damaged into a keyed level keeps its 8-byte
     * trailer_len, so it always fails the form of its new level: only such
     * refused datagrams pay the (allocating) test for that damage, never a
     * good protected one. */
    if (rc != PKT_OK && rc != PKT_ECHECK && pkt_trailer_size(h->security) == PKT_MAC_SIZE &&
        damaged_security(buf, len))
        return PKT_ECHECK;
    return rc;
}

void pkt_hdr_encode(const struct pkt_hdr *h, uint8_t *buf)
{
    buf[OFF_VERSION] = PKT_VERSION;
    buf[OFF_TYPE] = h->type;
    buf[OFF_FLAGS] = h->flags;
    buf[OFF_SECURITY] = h->security;
    store_u32(buf + OFF_KEY_EPOCH, h->key_epoch);
    store_u32(buf + OFF_DST_CONN, h->dst_conn);
    store_u32(buf + OFF_SRC_CONN, h->src_conn);
    store_u32(buf + OFF_SEQ, h->seq);
    store_u32(buf + OFF_TRANSFER, h->transfer);
    store_u32(buf + OFF_TS, h->ts);
    store_u32(buf + OFF_TS_ECHO, h->ts_echo);
    store_u32(buf + OFF_BODY_LEN, h->body_len);
    store_u16(buf + OFF_TRAILER_LEN, h->trailer_len);
    store_u16(buf + OFF_RESERVED, 0);
}

/* ---- reader -------------------------------------------------------------- */

/* `failed` keeps the first reason (a negative enum pkt_reject), so a body
 * decoder can report why without checking after every field. */
static void reader_fail(struct pkt_reader *r, int why)
{
    if (!r->failed)
        r->failed = why;
}

static size_t reader_left(const struct pkt_reader *r)
{
    return (size_t)(r->end - r->p);
}

void pkt_reader_init(struct pkt_reader *r, const uint8_t *buf, size_t len)
{
    r->p = buf;
    /* NULL + 0 is undefined behaviour, and an empty body may come as NULL. */
    r->end = buf ? buf + len : buf;
    r->failed = 0;
}

uint32_t pkt_get_u32(struct pkt_reader *r)
{
    uint32_t v;

    if (r->failed)
        return 0;
    if (reader_left(r) < 4) {
        reader_fail(r, PKT_ESHORT);
        return 0;
    }
    v = load_u32(r->p);
    r->p += 4;
    return v;
}

static int all_zero(const uint8_t *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (p[i] != 0)
            return 0;
    return 1;
}

/*
 * The bound is checked before the length is compared with the buffer, so an
 * absurd length is an ELENGTH (a lie) rather than an ESHORT (a truncation).
 * Non-zero padding is refused as PKT_EFLAGS: the padding is reserved bits,
 * and accepting it would let two different datagrams mean the same thing.
 */
const uint8_t *pkt_get_opaque(struct pkt_reader *r, uint32_t max, uint32_t *len)
{
    const uint8_t *data;
    uint32_t n;

    *len = 0;
    n = pkt_get_u32(r);
    if (r->failed)
        return NULL;
    if (n > max) {
        reader_fail(r, PKT_ELENGTH);
        return NULL;
    }
    if (padded(n) > reader_left(r)) {
        reader_fail(r, PKT_ESHORT);
        return NULL;
    }
    if (!all_zero(r->p + n, (size_t)(padded(n) - n))) {
        reader_fail(r, PKT_EFLAGS);
        return NULL;
    }
    data = r->p;
    r->p += padded(n);
    *len = n;
    return data;
}

int pkt_reader_done(const struct pkt_reader *r)
{
    return !r->failed && r->p == r->end;
}

/* What a body decoder returns: the reader's reason, or ELENGTH for bytes
 * left over (a body means exactly one thing, or nothing). */
static int reader_finish(const struct pkt_reader *r)
{
    if (r->failed)
        return r->failed;
    return r->p == r->end ? PKT_OK : PKT_ELENGTH;
}

/* ---- writer -------------------------------------------------------------- */

/* A writer fails when the message does not fit its buffer; it then writes
 * nothing more, and reports PKT_ELENGTH through `failed`. */
static void writer_fail(struct pkt_writer *w)
{
    if (!w->failed)
        w->failed = PKT_ELENGTH;
}

static size_t writer_left(const struct pkt_writer *w)
{
    return (size_t)(w->end - w->p);
}

void pkt_writer_init(struct pkt_writer *w, uint8_t *buf, size_t cap)
{
    w->p = buf;
    w->end = buf ? buf + cap : buf;
    w->failed = 0;
}

void pkt_put_u32(struct pkt_writer *w, uint32_t v)
{
    if (w->failed)
        return;
    if (writer_left(w) < 4) {
        writer_fail(w);
        return;
    }
    store_u32(w->p, v);
    w->p += 4;
}

/* Only the padding is zeroed here; the caller fills the len bytes. Zeroing
 * the padding matters: buffers are pooled, and stale bytes must not leak
 * onto the wire (or make the peer's reader refuse the body). */
uint8_t *pkt_put_space(struct pkt_writer *w, uint32_t len)
{
    uint8_t *space;

    if (w->failed)
        return NULL;
    if (padded(len) > writer_left(w)) {
        writer_fail(w);
        return NULL;
    }
    space = w->p;
    memset(space + len, 0, (size_t)(padded(len) - len));
    w->p += padded(len);
    return space;
}

void pkt_put_opaque(struct pkt_writer *w, const void *data, uint32_t len)
{
    uint8_t *space;

    pkt_put_u32(w, len);
    space = pkt_put_space(w, len);
    if (space && len > 0)
        memcpy(space, data, len);
}

/* ---- bodies ---------------------------------------------------------------- */

int pkt_bind_req_decode(const uint8_t *body, size_t len, struct pkt_bind_req *m)
{
    struct pkt_reader r;
    int rc;

    pkt_reader_init(&r, body, len);
    m->subsystem = pkt_get_u32(&r);
    m->se_type = pkt_get_u32(&r);
    m->cookie = pkt_get_opaque(&r, PKT_MAX_COOKIE, &m->cookie_len);
    m->identity = pkt_get_opaque(&r, PKT_MAX_IDENTITY, &m->identity_len);
    m->hello = NULL;
    m->hello_len = 0;
    if (r.end - r.p >= 4 && !r.failed) { /* only a bind above none has one, never empty */
        m->hello = pkt_get_opaque(&r, PKT_MAX_HELLO, &m->hello_len);
        if (m->hello_len == 0 && !r.failed)
            r.failed = PKT_ELENGTH;
    }
    rc = reader_finish(&r);
    /* No half-decoded pointers for a caller that forgets to check. */
    if (rc != PKT_OK)
        memset(m, 0, sizeof(*m));
    return rc;
}

int pkt_bind_req_encode(const struct pkt_bind_req *m, uint8_t *body, size_t cap, size_t *out_len)
{
    struct pkt_writer w;

    *out_len = 0;
    /* The sender enforces the same bounds as the receiver, so a bind the
     * peer would refuse never leaves. */
    if (m->cookie_len > PKT_MAX_COOKIE || m->identity_len > PKT_MAX_IDENTITY ||
        m->hello_len > PKT_MAX_HELLO)
        return PKT_ELENGTH;
    pkt_writer_init(&w, body, cap);
    pkt_put_u32(&w, m->subsystem);
    pkt_put_u32(&w, m->se_type);
    pkt_put_opaque(&w, m->cookie, m->cookie_len);
    pkt_put_opaque(&w, m->identity, m->identity_len);
    if (m->hello_len > 0)
        pkt_put_opaque(&w, m->hello, m->hello_len);
    if (w.failed)
        return w.failed;
    *out_len = (size_t)(w.p - body);
    return PKT_OK;
}

int pkt_bind_ok_decode(const uint8_t *body, size_t len, uint32_t *flags, const uint8_t **hello,
                       uint32_t *hello_len)
{
    struct pkt_reader r;
    int rc;

    pkt_reader_init(&r, body, len);
    *flags = pkt_get_u32(&r);
    *hello = NULL;
    *hello_len = 0;
    if (r.end - r.p >= 4 && !r.failed) {
        *hello = pkt_get_opaque(&r, PKT_MAX_HELLO, hello_len);
        if (*hello_len == 0 && !r.failed)
            r.failed = PKT_ELENGTH;
    }
    rc = reader_finish(&r);
    if (rc != PKT_OK) {
        *hello = NULL;
        *hello_len = 0;
    }
    return rc;
}

int pkt_bind_ok_encode(uint32_t flags, const uint8_t *hello, uint32_t hello_len, uint8_t *body,
                       size_t cap, size_t *out_len)
{
    struct pkt_writer w;

    *out_len = 0;
    if (hello_len > PKT_MAX_HELLO)
        return PKT_ELENGTH;
    pkt_writer_init(&w, body, cap);
    pkt_put_u32(&w, flags);
    if (hello_len > 0)
        pkt_put_opaque(&w, hello, hello_len);
    if (w.failed)
        return w.failed;
    *out_len = (size_t)(w.p - body);
    return PKT_OK;
}

int pkt_cookie_decode(const uint8_t *body, size_t len, const uint8_t **cookie, uint32_t *cookie_len)
{
    struct pkt_reader r;
    int rc;

    pkt_reader_init(&r, body, len);
    *cookie = pkt_get_opaque(&r, PKT_MAX_COOKIE, cookie_len);
    rc = reader_finish(&r);
    if (rc != PKT_OK) {
        *cookie = NULL;
        *cookie_len = 0;
    }
    return rc;
}

int pkt_i32_decode(const uint8_t *body, size_t len, int32_t *v)
{
    struct pkt_reader r;
    uint32_t u;
    int rc;

    pkt_reader_init(&r, body, len);
    u = pkt_get_u32(&r);
    rc = reader_finish(&r);
    *v = rc == PKT_OK ? as_i32(u) : 0;
    return rc;
}

/*
 * CALL and REPLY share one shape: a 32-bit head (proc or status), an opaque
 * payload (XDR arguments or result), and the side-effect block when the
 * header says PKT_F_SE.
 */
struct head_payload {
    uint32_t head;
    const uint8_t *payload, *se;
    uint32_t payload_len, se_len;
};

static int head_payload_decode(const uint8_t *body, size_t len, uint8_t flags,
                               struct head_payload *m)
{
    struct pkt_reader r;
    int rc;

    pkt_reader_init(&r, body, len);
    m->head = pkt_get_u32(&r);
    m->payload = pkt_get_opaque(&r, PKT_MAX_BODY, &m->payload_len);
    m->se = NULL;
    m->se_len = 0;
    if (flags & PKT_F_SE)
        m->se = pkt_get_opaque(&r, PKT_MAX_BODY, &m->se_len);
    rc = reader_finish(&r);
    if (rc != PKT_OK)
        memset(m, 0, sizeof(*m));
    return rc;
}

int pkt_call_decode(const uint8_t *body, size_t len, uint8_t flags, struct pkt_call *m)
{
    struct head_payload hp;
    int rc;

    rc = head_payload_decode(body, len, flags, &hp);
    m->proc = hp.head;
    m->args = hp.payload;
    m->args_len = hp.payload_len;
    m->se = hp.se;
    m->se_len = hp.se_len;
    return rc;
}

int pkt_reply_decode(const uint8_t *body, size_t len, uint8_t flags, struct pkt_reply *m)
{
    struct head_payload hp;
    int rc;

    rc = head_payload_decode(body, len, flags, &hp);
    m->status = as_i32(hp.head);
    m->result = hp.payload;
    m->result_len = hp.payload_len;
    m->se = hp.se;
    m->se_len = hp.se_len;
    return rc;
}
