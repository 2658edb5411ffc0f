/*
 * seblock.c - encoding and checking the SFTP blocks of CALL and REPLY.
 * Decoding refuses unknown flags, impossible values and trailing bytes, so
 * nothing the rest of SFTP reads from a block is unchecked.
 */
#include "seblock.h"

static void put_u64(struct pkt_writer *w, uint64_t v)
{
    pkt_put_u32(w, (uint32_t)(v >> 32));
    pkt_put_u32(w, (uint32_t)v);
}

static uint64_t get_u64(struct pkt_reader *r)
{
    uint64_t high = pkt_get_u32(r);
    return high << 32 | pkt_get_u32(r);
}

static void put_info(struct pkt_writer *w, uint32_t flags, const struct seblock_info *i)
{
    if (!(flags & SEBLOCK_SOURCE_INFO))
        return;
    put_u64(w, i->size);
    pkt_put_u32(w, i->mode);
    put_u64(w, (uint64_t)i->mtime_sec);
    pkt_put_u32(w, i->mtime_nsec);
}

/* Nothing a mode or a time could not be. */
static int get_info(struct pkt_reader *r, uint32_t flags, struct seblock_info *i)
{
    if (!(flags & SEBLOCK_SOURCE_INFO))
        return 1;
    i->size = get_u64(r);
    i->mode = pkt_get_u32(r);
    i->mtime_sec = (int64_t)get_u64(r);
    i->mtime_nsec = pkt_get_u32(r);
    return i->mode <= 07777 && i->mtime_nsec < 1000000000u;
}

static void put_named(struct pkt_writer *w, uint32_t flags, uint32_t type, const uint8_t *sum,
                      uint32_t len)
{
    if (!(flags & SEBLOCK_NAMED_SUM))
        return;
    pkt_put_u32(w, type);
    pkt_put_opaque(w, sum, len);
}

/* A type this end knows, and a sum that is empty or exactly its length. */
static int get_named(struct pkt_reader *r, uint32_t flags, uint32_t *type, const uint8_t **sum,
                     uint32_t *len)
{
    *type = 0;
    *sum = NULL;
    *len = 0;
    if (!(flags & SEBLOCK_NAMED_SUM))
        return 1;
    *type = pkt_get_u32(r);
    *sum = pkt_get_opaque(r, NAMEDSUM_MAX, len);
    return namedsum_len(*type) && (*len == 0 || *len == namedsum_len(*type));
}

void seblock_call_encode(const struct seblock_call *b, struct pkt_writer *w)
{
    pkt_put_u32(w, b->direction);
    pkt_put_u32(w, b->flags);
    put_u64(w, (uint64_t)b->quota);
    pkt_put_u32(w, b->packet_size);
    pkt_put_u32(w, b->window);
    pkt_put_u32(w, b->piggyback_max);
    pkt_put_opaque(w, b->data, b->data_len);
    pkt_put_opaque(w, b->checksum, b->checksum_len);
    put_info(w, b->flags, &b->info);
    put_named(w, b->flags, b->sum_type, b->named_sum, b->named_sum_len);
}

static int checksum_len_valid(uint32_t len)
{
    return len == 0 || len == SEBLOCK_CHECKSUM_MAX;
}

int seblock_call_decode(const uint8_t *buf, size_t len, struct seblock_call *b)
{
    struct pkt_reader r;
    pkt_reader_init(&r, buf, len);
    b->direction = pkt_get_u32(&r);
    b->flags = pkt_get_u32(&r);
    b->quota = (int64_t)get_u64(&r);
    b->packet_size = pkt_get_u32(&r);
    b->window = pkt_get_u32(&r);
    b->piggyback_max = pkt_get_u32(&r);
    b->data = pkt_get_opaque(&r, PKT_MAX_BODY, &b->data_len);
    b->checksum = pkt_get_opaque(&r, SEBLOCK_CHECKSUM_MAX, &b->checksum_len);
    int info_ok = get_info(&r, b->flags, &b->info);
    int named_ok = get_named(&r, b->flags, &b->sum_type, &b->named_sum, &b->named_sum_len);
    if (!pkt_reader_done(&r) || !checksum_len_valid(b->checksum_len))
        return PKT_ELENGTH;
    if ((b->direction != 1 && b->direction != 2) || (b->flags & ~SEBLOCK_FLAGS_KNOWN) ||
        b->quota < -1 || !info_ok || !named_ok)
        return PKT_EFLAGS;
    /* the client's sum rides only with the data it is the sum of */
    if (b->named_sum_len && !(b->flags & SEBLOCK_PIGGY))
        return PKT_EFLAGS;
    /* only a store's client is the source when the CALL is sent */
    if (b->direction == 1 && (b->flags & SEBLOCK_SOURCE_INFO))
        return PKT_EFLAGS;
    if ((b->data_len || b->checksum_len) && !(b->flags & SEBLOCK_PIGGY))
        return PKT_EFLAGS;
    /* Data rides in a CALL only for a store, and only a fetch takes it in
     * the REPLY: anything else is a second meaning for one block. */
    if ((b->direction == 1 && (b->flags & SEBLOCK_PIGGY)) ||
        (b->direction == 2 && (b->flags & SEBLOCK_PIGGY_OK)))
        return PKT_EFLAGS;
    return PKT_OK;
}

void seblock_reply_encode(const struct seblock_reply *b, struct pkt_writer *w)
{
    pkt_put_u32(w, (uint32_t)b->status);
    put_u64(w, b->bytes);
    pkt_put_u32(w, b->flags);
    pkt_put_opaque(w, b->data, b->data_len);
    pkt_put_opaque(w, b->checksum, b->checksum_len);
    put_info(w, b->flags, &b->info);
    put_named(w, b->flags, b->sum_type, b->named_sum, b->named_sum_len);
}

int seblock_reply_decode(const uint8_t *buf, size_t len, struct seblock_reply *b)
{
    struct pkt_reader r;
    pkt_reader_init(&r, buf, len);
    b->status = (int32_t)pkt_get_u32(&r);
    b->bytes = get_u64(&r);
    b->flags = pkt_get_u32(&r);
    b->data = pkt_get_opaque(&r, PKT_MAX_BODY, &b->data_len);
    b->checksum = pkt_get_opaque(&r, SEBLOCK_CHECKSUM_MAX, &b->checksum_len);
    int info_ok = get_info(&r, b->flags, &b->info);
    int named_ok = get_named(&r, b->flags, &b->sum_type, &b->named_sum, &b->named_sum_len);
    if (!pkt_reader_done(&r) || !checksum_len_valid(b->checksum_len))
        return PKT_ELENGTH;
    if (!info_ok || !named_ok || (b->flags & ~SEBLOCK_REPLY_FLAGS_KNOWN) || b->status > 0 || (b->data_len && !(b->flags & SEBLOCK_PIGGY)))
        return PKT_EFLAGS;
    return PKT_OK;
}
