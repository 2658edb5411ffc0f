/*
 * source_read.c - the SFTP source's stream into packets: each packet is
 * read once, straight into its slot of the sent map, where it stays until
 * the sink holds it. The stream's end must be known when its last packet
 * leaves (that packet says LAST and carries the stream's checksum), so a
 * full packet is followed by a read of the next one.
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

/* Reads one packet into seq's slot; its length tells whether it ends the stream. */
static struct sentmap_packet *read_packet(struct sftp_source *s, uint32_t seq)
{
    struct sentmap_packet *p = sentmap_take(&s->sent, seq);
    ssize_t n;
    int rc;

    if (p == NULL) {
        source_fail(s, RPC2_ENOMEM, 1);
        return NULL;
    }
    n = s->reader.read(s->reader.arg, p->data, s->packet_size);
    if (n == SFTP_IO_WAIT) {
        sentmap_release(&s->sent, p);
        s->input_waiting = 1;
        return NULL;
    }
    if (n < 0 || (size_t)n > s->packet_size) {
        sentmap_release(&s->sent, p);
        source_fail(s, n < 0 ? (int)n : RPC2_EIO, 1);
        return NULL;
    }
    p->len = (uint32_t)n;
    s->bytes_read += (uint64_t)n;
    if (p->len < s->packet_size) {
        p->last = 1;
        rc = note_end(s);
        if (rc < 0) {
            sentmap_release(&s->sent, p);
            source_fail(s, rc, 1);
            return NULL;
        }
    }
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
    struct sentmap_packet *p = sentmap_at(&s->sent, seq);
    struct sentmap_packet *ahead;

    if (p->where == SENTMAP_FREE) {
        p = read_packet(s, seq);
        if (p == NULL)
            return NULL;
    }
    if (!p->last && !s->eof) {
        if (seq >= SFTP_MAX_SEQ) {
            source_fail(s, RPC2_ELIMIT, 1);
            return NULL;
        }
        ahead = read_packet(s, seq + 1);
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
