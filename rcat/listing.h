/*
 * listing.h - the sorted names of the directories clients are paging
 * through. LIST asks by index (rcat_proto.x), so without a memory of the
 * directory each page would read and sort it whole, and paging a directory
 * of n entries to its end would cost n^2/page. Kept listings make each
 * page O(page): a directory is read once, and afresh only when it changed
 * (its mtime or ctime moved) or its listing is LISTING_MAX_AGE_S old.
 */
#ifndef RCAT_LISTING_H
#define RCAT_LISTING_H

#include <stddef.h>
#include <stdint.h>

#define LISTING_MAX_AGE_S 10 /* bounds how stale a page can be on a coarse clock */

struct listing {
    char **names; /* every name but "." and "..", sorted bytewise */
    size_t n;
};

struct listings;

int listings_new(struct listings **out);
void listings_free(struct listings *l);
/* The listing of the directory open at fd (which stays the caller's), kept
 * for the caller until listing_release. Returns 0, or an rcat status or
 * rpc2 error (a directory past its entry cap is RCAT_IO). Thread-safe. */
int listing_get(struct listings *l, int fd, const struct listing **out);
void listing_release(struct listings *l, const struct listing *ls);
/* Names read from directories so far: the work paging costs. */
uint64_t listings_names_read(struct listings *l);

#endif
