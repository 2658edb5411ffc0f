/*
 * source_read.c - the SFTP source's stream into packets: each packet is
 * read once, straight into its slot of the sent map, where it stays until
 * the sink holds it. A reader with readv fills many slots with one call
 * (at 1400-byte packets a read per packet was the source's largest cost).
 * The stream's end must be known when its last packet leaves (that packet
 * says LAST and carries the stream's checksum), so a full packet is
 * followed by a read of the next one.
 */
#include "source_impl.h"

#include <rpc2/rpc2.h>

#include "wire.h"

/* The end of the stream, read: the checksum and the named sum the LAST
 * packet carries. 0, or a negative error that fails the transfer. */
static int note_end(struct sftp_source *s)
{
    int named;

    s->eof = 1;
    if (s->reader.digest) {
        s->reader.digest(s->reader.arg, s->sum);
        s->have_sum = 1;
    }
    named = s->reader.named ? s->reader.named(s->reader.arg, &s->named) : 0;
    if (named < 0) /* not the data it must be: the sink never gets the end */
        return named;
    s->have_named = named;
    return 0;
}

/* Packets one read may fill from seq on: within the window in force (and
 * the one past it, read ahead to spot the end), SFTP_READV_MAX, 256 KiB and
 * the seq space; one for a reader without readv. */
#define READ_BATCH_BYTES (256u * 1024)

static uint32_t batch_room(const struct sftp_source *s, uint32_t seq)
{
    uint32_t limit = source_window_end(s) + 1, most = READ_BATCH_BYTES / s->packet_size, n;

    if (!s->reader.readv || limit <= seq)
        return 1;
    n = limit - seq + 1;
    if (most > SFTP_READV_MAX)
        most = SFTP_READV_MAX;
    if (n > most)
        n = most;
    if (n > SFTP_MAX_SEQ - seq + 1)
        n = SFTP_MAX_SEQ - seq + 1;
    return n > 0 ? n : 1;
}

static ssize_t read_into(struct sftp_source *s, struct sentmap_packet **ps, uint32_t n)
{
    struct iovec iov[SFTP_READV_MAX];

    if (n == 1 || !s->reader.readv)
        return s->reader.read(s->reader.arg, ps[0]->data, s->packet_size);
    for (uint32_t i = 0; i < n; i++)
        iov[i] = (struct iovec){.iov_base = ps[i]->data, .iov_len = s->packet_size};
    return s->reader.readv(s->reader.arg, iov, (int)n);
}

static void release_all(struct sftp_source *s, struct sentmap_packet **ps, uint32_t from,
                        uint32_t to)
{
    for (uint32_t i = from; i < to; i++)
        sentmap_release(&s->sent, ps[i]);
}

/*
 * Reads the packets from seq on, as many as batch_room allows, each
 * straight into its slot: one system call for many packets. How many bytes
 * came tells where the stream ends: a short packet is the last, and so is
 * a full one followed by nothing (an empty first packet is an empty
 * stream's LAST). Slots past the end are freed. Returns the packets read
 * (0: the reader has nothing yet, or the transfer failed).
 */
static uint32_t read_packets(struct sftp_source *s, uint32_t seq)
{
    struct sentmap_packet *ps[SFTP_READV_MAX];
    uint32_t want = batch_room(s, seq), n = 0, keep, full, rem;
    ssize_t got;
    int rc;

    while (n < want && sentmap_at(&s->sent, seq + n)->where == SENTMAP_FREE &&
           (n == 0 || !bufpool_full(&s->sent.pool)) && (ps[n] = sentmap_take(&s->sent, seq + n)))
        n++;
    if (n == 0) {
        source_fail(s, RPC2_ENOMEM, 1);
        return 0;
    }
    got = read_into(s, ps, n);
    if (got == SFTP_IO_WAIT) {
        release_all(s, ps, 0, n);
        s->input_waiting = 1;
        return 0;
    }
    if (got < 0 || (uint64_t)got > (uint64_t)n * s->packet_size) {
        release_all(s, ps, 0, n);
        source_fail(s, got < 0 ? (int)got : RPC2_EIO, 1);
        return 0;
    }
    s->bytes_read += (uint64_t)got;
    full = (uint32_t)((uint64_t)got / s->packet_size);
    rem = (uint32_t)((uint64_t)got % s->packet_size);
    keep = rem > 0 || full == 0 ? full + 1 : full;
    if (keep > n)
        keep = n;
    for (uint32_t i = 0; i < keep; i++)
        ps[i]->len = i < full ? s->packet_size : rem;
    release_all(s, ps, keep, n);
    if ((uint64_t)got < (uint64_t)n * s->packet_size) {
        ps[keep - 1]->last = 1;
        rc = note_end(s);
        if (rc < 0) {
            release_all(s, ps, 0, keep);
            source_fail(s, rc, 1);
            return 0;
        }
    }
    return keep;
}

/* seq's packet, read (with those after it) if it has not been; NULL when
 * the reader has nothing yet or the transfer failed. */
static struct sentmap_packet *read_at(struct sftp_source *s, uint32_t seq)
{
    struct sentmap_packet *p = sentmap_at(&s->sent, seq);

    if (p->where == SENTMAP_FREE && read_packets(s, seq) == 0)
        return NULL;
    return p;
}

/*
 * The packet for seq, read if it has not been, and with the one after it
 * read ahead when needed to know whether seq is the last: a full packet
 * followed by the end of the stream is the last one. A reader that cannot
 * tell yet (a pipe, quiet for now) does not hold seq back: if the end
 * comes next, an empty LAST packet follows.
 */
struct sentmap_packet *source_fetch_new(struct sftp_source *s, uint32_t seq)
{
    struct sentmap_packet *p = read_at(s, seq);
    struct sentmap_packet *ahead;

    if (p == NULL)
        return NULL;
    if (!p->last && !s->eof) {
        if (seq >= SFTP_MAX_SEQ) {
            source_fail(s, RPC2_ELIMIT, 1);
            return NULL;
        }
        ahead = read_at(s, seq + 1);
        if (ahead == NULL)
            return s->state == SFTP_RUNNING ? p : NULL;
        if (ahead->len == 0) {
            sentmap_release(&s->sent, ahead);
            p->last = 1;
        }
    }
    if (p->last)
        s->last_seq = seq;
    return p;
}
