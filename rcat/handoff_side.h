/*
 * handoff_side.h - one side of a handoff (a local spool directory or one on
 * a server) behind the few things the handoff does with it: look at an
 * entry, list the batches, rename without replacing, remove a tree. The
 * run (handoff.c) then reads the same whichever way the batches go.
 */
#ifndef RCAT_HANDOFF_SIDE_H
#define RCAT_HANDOFF_SIDE_H

#include "ops.h"
#include "url.h"

/* The hidden names a handoff keeps beside the batches: a copy still being
 * made, and a batch being removed. Entries whose name begins with '.' are
 * never batches. */
#define HANDOFF_PREFIX ".rcat-handoff."
#define HANDOFF_INCOMING ".incoming"
#define HANDOFF_TRASH ".trash"

struct side {
    int remote;
    struct url url;      /* remote: the spool on the server */
    const char *dir;     /* local: the spool */
    const char *archive; /* where a cleared batch goes (on this side); NULL: removed */
    struct ops *o;
};

enum side_kind { SIDE_NONE, SIDE_DIR, SIDE_FILE, SIDE_OTHER };

/* The side's path of rel (beneath the spool), malloc'd; NULL out of memory. */
char *side_path(const struct side *s, const char *rel);
/* A remote path as a url on the side's server. */
void side_url(const struct side *s, const char *path, struct url *out);

/* What rel is: 0 with *kind (SIDE_NONE when nothing is there), or an exit
 * code, reported. */
int side_kind(const struct side *s, const char *rel, enum side_kind *kind);

/* Names of the directories in the spool that may be batches (no leading
 * '.'), added to *names (*n of them, malloc'd strings) unless there already.
 * 0 or an exit code, reported. */
int side_batches(const struct side *s, char ***names, size_t *n);

/* The names in the directory rel (hidden ones too), added to *names as
 * side_batches does. */
int side_list(const struct side *s, const char *rel, char ***names, size_t *n);

/* Renames rel to the side's path to (absolute for a local side, from the
 * server's root for a remote one) unless to exists: 0, 1 when it does, or
 * an exit code, reported. */
int side_rename(const struct side *s, const char *rel, const char *to);

/* Removes rel and everything beneath it; nothing there is no error. */
int side_remove(const struct side *s, const char *rel);

/* Removes what a killed run left being removed (HANDOFF_PREFIX...TRASH). */
int side_sweep(const struct side *s);

#endif
