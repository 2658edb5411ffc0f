/*
 * wire.c - the SFTP body codecs.
 *
 * Bodies arrive from the network, so this is where a hostile SFTP packet
 * stops: every field is read through the bounded pkt_reader, every value
 * that would later index memory or size an allocation (bitmap length,
 * window, packet size) is checked against its bound here, and a body means
 * exactly one thing (no trailing bytes, no trailing zero bitmap bytes), so
 * two different datagrams never carry the same message.
 */
#include "wire.h"

#include <string.h>

/* The reader's own reason, or ELENGTH for bytes left over. */
static int reader_result(const struct pkt_reader *r)
{
    if (r->failed)
        return r->failed;
    return r->p == r->end ? PKT_OK : PKT_ELENGTH;
}

/* Two's complement by arithmetic: casting a u32 above INT32_MAX is
 * implementation-defined. */
static int32_t as_i32(uint32_t u)
{
    return u <= INT32_MAX ? (int32_t)u : -(int32_t)(UINT32_MAX - u) - 1;
}

/* ---- DATA ---------------------------------------------------------------- */

/* Only the last packet carries the stream's checksum. */
static int data_flags_valid(uint32_t flags)
{
    if (flags & ~SFTP_DATA_FLAGS_KNOWN)
        return 0;
    return !(flags & (SFTP_DATA_SUM | SFTP_DATA_NAMED)) || (flags & SFTP_DATA_LAST);
}

/* A named sum of a type this end knows, exactly that type's length. */
static int get_named(struct pkt_reader *r, struct sftp_data *d)
{
    d->named_type = pkt_get_u32(r);
    d->named = pkt_get_opaque(r, NAMEDSUM_MAX, &d->named_len);
    if (r->failed)
        return r->failed;
    if (!namedsum_len(d->named_type))
        return PKT_EFLAGS;
    return d->named_len == namedsum_len(d->named_type) ? PKT_OK : PKT_ELENGTH;
}

int sftp_data_decode(const uint8_t *body, size_t len, struct sftp_data *d)
{
    struct pkt_reader r;
    size_t data_len;

    memset(d, 0, sizeof(*d));
    pkt_reader_init(&r, body, len);
    uint32_t flags = pkt_get_u32(&r);
    uint32_t tx = pkt_get_u32(&r);

    if (r.failed)
        return r.failed;
    if (!data_flags_valid(flags))
        return PKT_EFLAGS;
    if (flags & SFTP_DATA_NAMED) {
        int rc = get_named(&r, d);
        if (rc != PKT_OK) {
            memset(d, 0, sizeof(*d));
            return rc;
        }
    }
    data_len = (size_t)(r.end - r.p);
    if (flags & SFTP_DATA_SUM) {
        if (data_len < SFTP_SUM_SIZE)
            return PKT_ELENGTH;
        data_len -= SFTP_SUM_SIZE;
        d->sum = r.p + data_len;
    }
    if (data_len > SFTP_MAX_PACKET) {
        memset(d, 0, sizeof(*d));
        return PKT_ELENGTH;
    }
    d->flags = flags;
    d->tx = tx;
    d->len = (uint32_t)data_len;
    d->bytes = data_len > 0 ? r.p : NULL;
    return PKT_OK;
}

uint8_t *sftp_data_encode_named(uint8_t *body, size_t cap, uint32_t flags, uint32_t tx,
                                uint32_t data_len, const struct namedsum_value *named)
{
    struct pkt_writer w;

    size_t sum = (flags & SFTP_DATA_SUM) ? SFTP_SUM_SIZE : 0;
    size_t head = SFTP_DATA_HEAD + ((flags & SFTP_DATA_NAMED) ? 8 + (named ? named->len : 0) : 0);

    if (!data_flags_valid(flags) || data_len > SFTP_MAX_PACKET)
        return NULL;
    if (!(flags & SFTP_DATA_NAMED) != !named || (named && !namedsum_value_valid(named)))
        return NULL;
    if (cap < head + data_len + sum)
        return NULL;
    pkt_writer_init(&w, body, cap);
    pkt_put_u32(&w, flags);
    pkt_put_u32(&w, tx);
    if (named) {
        pkt_put_u32(&w, named->type);
        pkt_put_opaque(&w, named->bytes, named->len);
    }
    return w.failed ? NULL : w.p;
}

uint8_t *sftp_data_encode(uint8_t *body, size_t cap, uint32_t flags, uint32_t tx,
                          uint32_t data_len)
{
    return sftp_data_encode_named(body, cap, flags, tx, data_len, NULL);
}

/* ---- ACK ----------------------------------------------------------------- */

static uint64_t get_u64(struct pkt_reader *r)
{
    uint64_t hi = pkt_get_u32(r);

    return hi << 32 | pkt_get_u32(r);
}

static void put_u64(struct pkt_writer *w, uint64_t v)
{
    pkt_put_u32(w, (uint32_t)(v >> 32));
    pkt_put_u32(w, (uint32_t)v);
}

static int ack_window_valid(const struct sftp_ack *a)
{
    return a->window_end >= a->got_them_all && a->window_end - a->got_them_all <= SFTP_MAX_WINDOW;
}

int sftp_ack_decode(const uint8_t *body, size_t len, struct sftp_ack *a)
{
    struct pkt_reader r;
    int rc;

    pkt_reader_init(&r, body, len);
    a->got_them_all = pkt_get_u32(&r);
    a->window_end = pkt_get_u32(&r);
    a->delivered = get_u64(&r);
    a->flags = pkt_get_u32(&r);
    a->largest_tx = pkt_get_u32(&r);
    a->ack_delay_us = pkt_get_u32(&r);
    a->bitmap = pkt_get_opaque(&r, SFTP_MAX_BITMAP, &a->bitmap_len);
    memset(&a->wish, 0, sizeof(a->wish));
    if (a->flags & SFTP_ACK_WISH) {
        a->wish.policy = pkt_get_u32(&r);
        a->wish.rate = get_u64(&r);
        a->wish.min_rate = get_u64(&r);
    }
    rc = reader_result(&r);
    if (rc == PKT_OK && a->wish.policy > SFTP_POLICY_MAX)
        rc = PKT_EFLAGS;
    if (rc == PKT_OK && (a->flags & ~SFTP_ACK_FLAGS_KNOWN))
        rc = PKT_EFLAGS;
    if (rc == PKT_OK && !ack_window_valid(a))
        rc = PKT_ELENGTH;
    /* A trailing zero byte says nothing: refusing it keeps one encoding. */
    if (rc == PKT_OK && a->bitmap_len > 0 && a->bitmap[a->bitmap_len - 1] == 0)
        rc = PKT_ELENGTH;
    if (rc != PKT_OK)
        memset(a, 0, sizeof(*a));
    return rc;
}

uint8_t *sftp_ack_encode_head(uint8_t *body, size_t cap, const struct sftp_ack *a, size_t *out_len)
{
    struct pkt_writer w;
    uint8_t *bitmap;

    *out_len = 0;
    if (a->bitmap_len > SFTP_MAX_BITMAP || (a->flags & ~SFTP_ACK_FLAGS_KNOWN) ||
        !ack_window_valid(a) ||
        ((a->flags & SFTP_ACK_WISH) && a->wish.policy > SFTP_POLICY_MAX))
        return NULL;
    pkt_writer_init(&w, body, cap);
    pkt_put_u32(&w, a->got_them_all);
    pkt_put_u32(&w, a->window_end);
    put_u64(&w, a->delivered);
    pkt_put_u32(&w, a->flags);
    pkt_put_u32(&w, a->largest_tx);
    pkt_put_u32(&w, a->ack_delay_us);
    pkt_put_u32(&w, a->bitmap_len);
    bitmap = pkt_put_space(&w, a->bitmap_len);
    if (a->flags & SFTP_ACK_WISH) {
        pkt_put_u32(&w, a->wish.policy);
        put_u64(&w, a->wish.rate);
        put_u64(&w, a->wish.min_rate);
    }
    if (w.failed)
        return NULL;
    *out_len = (size_t)(w.p - body);
    return bitmap;
}

int sftp_ack_encode(const struct sftp_ack *a, uint8_t *body, size_t cap, size_t *out_len)
{
    uint8_t *bitmap;

    *out_len = 0;
    if (a->bitmap_len > 0 && a->bitmap[a->bitmap_len - 1] == 0)
        return PKT_ELENGTH;
    bitmap = sftp_ack_encode_head(body, cap, a, out_len);
    if (bitmap == NULL)
        return PKT_ELENGTH;
    if (a->bitmap_len > 0)
        memcpy(bitmap, a->bitmap, a->bitmap_len);
    return PKT_OK;
}

uint32_t sftp_ack_bitmap_room(size_t cap, int wish)
{
    size_t head = SFTP_ACK_HEAD + (wish ? SFTP_ACK_WISH_SIZE : 0);
    size_t room;

    if (cap < head)
        return 0;
    room = (cap - head) & ~(size_t)3; /* the padding must fit too */
    return room < SFTP_MAX_BITMAP ? (uint32_t)room : SFTP_MAX_BITMAP;
}

/* Index of the highest set bit of a nonzero byte. */
static unsigned top_bit(uint8_t b)
{
    return 31u - (unsigned)__builtin_clz(b);
}

uint64_t sftp_ack_highest(const struct sftp_ack *a)
{
    uint64_t last_bit;

    if (a->bitmap_len == 0)
        return a->got_them_all;
    last_bit = (uint64_t)(a->bitmap_len - 1) * 8 + top_bit(a->bitmap[a->bitmap_len - 1]);
    return (uint64_t)a->got_them_all + 2 + last_bit;
}

/* ---- START --------------------------------------------------------------- */

int sftp_start_decode(const uint8_t *body, size_t len, struct sftp_start *s)
{
    struct pkt_reader r;
    int rc;

    pkt_reader_init(&r, body, len);
    s->window = pkt_get_u32(&r);
    s->packet_size = pkt_get_u32(&r);
    rc = reader_result(&r);
    /* Zero would stop the transfer before it starts; larger values than the
     * source's own are fine, it takes the smaller. */
    if (rc == PKT_OK && (s->window == 0 || s->packet_size == 0))
        rc = PKT_ELENGTH;
    if (rc != PKT_OK)
        memset(s, 0, sizeof(*s));
    return rc;
}

int sftp_start_encode(const struct sftp_start *s, uint8_t *body, size_t cap, size_t *out_len)
{
    struct pkt_writer w;

    *out_len = 0;
    if (s->window == 0 || s->packet_size == 0)
        return PKT_ELENGTH;
    pkt_writer_init(&w, body, cap);
    pkt_put_u32(&w, s->window);
    pkt_put_u32(&w, s->packet_size);
    if (w.failed)
        return w.failed;
    *out_len = (size_t)(w.p - body);
    return PKT_OK;
}

/* ---- PROBE --------------------------------------------------------------- */

int sftp_probe_decode(const uint8_t *body, size_t len, uint32_t *flags)
{
    struct pkt_reader r;
    int rc;

    pkt_reader_init(&r, body, len);
    *flags = pkt_get_u32(&r);
    rc = reader_result(&r);
    if (rc == PKT_OK && (*flags & ~SFTP_PROBE_FLAGS_KNOWN))
        rc = PKT_EFLAGS;
    if (rc != PKT_OK)
        *flags = 0;
    return rc;
}

int sftp_probe_encode(uint32_t flags, uint8_t *body, size_t cap, size_t *out_len)
{
    struct pkt_writer w;

    *out_len = 0;
    if (flags & ~SFTP_PROBE_FLAGS_KNOWN)
        return PKT_EFLAGS;
    pkt_writer_init(&w, body, cap);
    pkt_put_u32(&w, flags);
    if (w.failed)
        return w.failed;
    *out_len = (size_t)(w.p - body);
    return PKT_OK;
}

/* ---- ABORT --------------------------------------------------------------- */

int sftp_abort_decode(const uint8_t *body, size_t len, int32_t *error)
{
    struct pkt_reader r;
    int rc;

    pkt_reader_init(&r, body, len);
    *error = as_i32(pkt_get_u32(&r));
    rc = reader_result(&r);
    /* An abort that reports success or a status would make the receiver
     * fail with a non-error: the value is out of its range. */
    if (rc == PKT_OK && *error >= 0)
        rc = PKT_EFLAGS;
    if (rc != PKT_OK)
        *error = 0;
    return rc;
}

int sftp_abort_encode(int32_t error, uint8_t *body, size_t cap, size_t *out_len)
{
    struct pkt_writer w;

    *out_len = 0;
    if (error >= 0)
        return PKT_EFLAGS;
    pkt_writer_init(&w, body, cap);
    pkt_put_u32(&w, (uint32_t)error);
    if (w.failed)
        return w.failed;
    *out_len = (size_t)(w.p - body);
    return PKT_OK;
}
