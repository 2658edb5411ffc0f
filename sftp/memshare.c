/*
 * memshare.c - sharing the packet-memory cap fairly (see memshare.h).
 *
 * Lists are short (one member per running transfer, bounded by the
 * server's running-call limits), so every decision walks them whole.
 */
#include "memshare.h"

#include <rpc2/rpc2.h>

#include <stddef.h>

void memshare_init(struct memshare *ms, uint64_t cap)
{
    *ms = (struct memshare){.cap = cap};
}

static uint64_t bytes_of(const struct memshare_member *m, uint32_t packets)
{
    return (uint64_t)packets * m->packet_size;
}

static uint32_t least_of(const struct memshare_member *m)
{
    return m->wanted < MEMSHARE_MIN_PACKETS ? m->wanted : MEMSHARE_MIN_PACKETS;
}

/* m's share of the cap split `ways` ways, in whole packets: never under
 * the minimum, never over what m wants. */
static uint32_t share_of(const struct memshare *ms, const struct memshare_member *m, uint32_t ways)
{
    uint64_t share = ms->cap / ways / m->packet_size;

    if (share < least_of(m))
        share = least_of(m);
    return share < m->wanted ? (uint32_t)share : m->wanted;
}

/* Whole packets of m's size that the cap still has room for. */
static uint64_t room_for(const struct memshare *ms, const struct memshare_member *m)
{
    return (ms->cap - ms->in_use) / m->packet_size;
}

static void regrant(struct memshare *ms, struct memshare_member *m, uint32_t packets)
{
    ms->in_use = ms->in_use - bytes_of(m, m->granted) + bytes_of(m, packets);
    m->granted = packets;
    if (m->limit)
        m->limit(m->arg, packets);
}

int memshare_join(struct memshare *ms, struct memshare_member *m)
{
    uint64_t room;
    struct memshare_member *o;

    if (m->packet_size == 0 || m->wanted == 0)
        return RPC2_EINVAL;
    if (room_for(ms, m) < m->wanted) {
        for (o = ms->head; o != NULL; o = o->next) {
            uint32_t share = share_of(ms, o, ms->count + 1);
            if (o->granted > share) {
                regrant(ms, o, share);
                ms->lowered++;
            }
        }
    }
    room = room_for(ms, m);
    if (room < least_of(m))
        return RPC2_ELIMIT;
    m->granted = room < m->wanted ? (uint32_t)room : m->wanted;
    ms->in_use += bytes_of(m, m->granted);
    m->prev = NULL;
    m->next = ms->head;
    if (ms->head != NULL)
        ms->head->prev = m;
    ms->head = m;
    ms->count++;
    return 0;
}

/* Raises members below their share of the cap split `ways` ways, as far
 * as the room goes. */
static void raise_to_share(struct memshare *ms, uint32_t ways)
{
    struct memshare_member *o;

    for (o = ms->head; o != NULL; o = o->next) {
        uint32_t share = share_of(ms, o, ways);
        uint64_t room = room_for(ms, o);
        uint64_t more = share > o->granted ? share - o->granted : 0;

        if (more > room)
            more = room;
        if (more > 0)
            regrant(ms, o, o->granted + (uint32_t)more);
    }
}

void memshare_leave(struct memshare *ms, struct memshare_member *m)
{
    if (m->granted == 0)
        return;
    ms->in_use -= bytes_of(m, m->granted);
    m->granted = 0;
    if (m->prev != NULL)
        m->prev->next = m->next;
    else
        ms->head = m->next;
    if (m->next != NULL)
        m->next->prev = m->prev;
    m->prev = m->next = NULL;
    ms->count--;
    if (ms->count == 0)
        return;
    raise_to_share(ms, ms->count); /* fair shares first */
    raise_to_share(ms, 1);         /* then what is left, to whoever wants it */
}
