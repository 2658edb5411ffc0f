/*
 * memshare.h - the context's cap on packet memory, shared among the
 * transfers running under it.
 *
 * A transfer holds up to a window of packets (a source keeps what it sent
 * until it is acknowledged; an in-order sink keeps what arrived ahead of
 * its writer). Handing each newcomer whatever was left let the first
 * transfers take the whole cap: a few dozen readers that never drain,
 * each holding a loopback window, and every later transfer was refused.
 * Here a transfer gets its whole window while the cap has room for it;
 * once it has not, every transfer above its fair share (the cap split
 * among all, newcomer included) is lowered to that share, and raised
 * again as others end. A lowered transfer gives the memory back as its
 * peer acknowledges or its writer drains, so for a while the bytes held
 * can exceed the cap by what the lowered transfers still hold; the
 * accounting, and so every new grant, stays within it.
 */
#ifndef RPC2_SFTP_MEMSHARE_H
#define RPC2_SFTP_MEMSHARE_H

#include <stdint.h>

/* Below this a window cannot keep a transfer moving: a newcomer that
 * cannot have it is refused (RPC2_ELIMIT) and nobody goes lower. */
#define MEMSHARE_MIN_PACKETS 4u

struct memshare_member {
    struct memshare_member *prev, *next;
    uint32_t packet_size;
    uint32_t wanted;  /* packets: the window the transfer would use */
    uint32_t granted; /* packets it may hold now; 0: not a member */
    /* Told each later change of granted (not the first grant). */
    void (*limit)(void *arg, uint32_t packets);
    void *arg;
};

struct memshare {
    uint64_t cap, in_use; /* bytes */
    uint32_t count;
    struct memshare_member *head;
    uint64_t lowered; /* times a member was lowered to make room */
};

void memshare_init(struct memshare *ms, uint64_t cap);
/* m's packet_size, wanted, limit and arg are set: 0 with m->granted set
 * (at most wanted), or RPC2_ELIMIT when even the minimum does not fit. */
int memshare_join(struct memshare *ms, struct memshare_member *m);
/* Gives back m's grant (nothing when it has none) and raises the others. */
void memshare_leave(struct memshare *ms, struct memshare_member *m);

#endif
