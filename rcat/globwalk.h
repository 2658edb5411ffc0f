/*
 * globwalk.h - a wildcard pattern resolved beneath a root, for rcatd's
 * GLOB: the side that has the files expands a pattern such as
 * logs/day-*.gz, within what the caller may see. Shell wildcards (* ? [...], \ escapes) may stand
 * in any component and match within it (fnmatch(3) with FNM_PERIOD: a leading '.' only by a '.' in
 * the pattern); "." and ".." never match. Components without one are looked up, not listed.
 *
 * Matches come in bytewise order of their components, so a page can
 * continue after the last path the client received: stateless, nothing
 * skipped or repeated when entries come and go between pages, and each page
 * costs a binary search per directory level rather than the pages before.
 */
#ifndef RCAT_GLOBWALK_H
#define RCAT_GLOBWALK_H

#include <stddef.h>
#include <sys/stat.h>

#include "listing.h"
#include "root.h"

#define GLOB_WILD_MAX 16 /* components with a wildcard in one pattern (one open dir each) */

/* One match: its path relative to the root and what it is (a symlink
 * described, not followed). Returns 0 to go on, 1 to stop the walk there
 * (glob_walk then returns 0), or a status that ends it. */
typedef int (*glob_found_fn)(const char *path, const struct stat *st, void *arg);

/* Whether a pattern component is one fnmatch must match (1), or a name. */
int glob_has_wildcard(const char *component, size_t len);

/* Calls fn for each match of pattern (len: the wire's length) that comes
 * after the path after ("" or NULL: from the first). Directories that are
 * missing, not directories, refused or outside the root hold no match.
 * 0, or an rcat_status / rpc2 error: RCAT_BAD_PATH for a pattern with more
 * than GLOB_WILD_MAX wildcard components, RCAT_OUTSIDE_ROOT for one that
 * would leave the root. */
int glob_walk(const struct root *r, struct listings *ls, const char *pattern, size_t len,
              const char *after, glob_found_fn fn, void *arg);

#endif
