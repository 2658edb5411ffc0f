/*
 * tree.h - the walk plan of rcat -r: the entries a copy of a tree moves
 * (directories before what they hold, files, symbolic links), each with
 * its path on the source side and its path beneath the destination, built
 * from a local walk (never following a link) or added one by one from a
 * server's listing. A name that comes from a peer is checked here before
 * it becomes part of a local path, so a hostile server cannot make rcat
 * write outside the destination directory.
 */
#ifndef RCAT_TREE_H
#define RCAT_TREE_H

#include <stddef.h>
#include <stdint.h>

enum tree_kind { TREE_FILE, TREE_DIR, TREE_LINK };

struct tree_attr {
    uint64_t size;
    unsigned mode; /* permission bits, 07777 */
    int64_t mtime_sec;
    unsigned mtime_nsec;
};

struct tree_entry {
    char *src;    /* where it is on the source side (a local path or a remote one) */
    char *rel;    /* beneath the destination top; "" is the top itself */
    char *target; /* a link's target, when known */
    enum tree_kind kind;
    struct tree_attr attr;
    int arg;          /* the operand it came from (1-based) */
    const char *skip; /* decided before the run: not moved, for this reason (SKIP's) */
};

struct tree {
    struct tree_entry *v;
    size_t n, cap;
    size_t files;        /* entries of kind TREE_FILE */
    uint64_t file_bytes; /* their sizes together */
};

void tree_init(struct tree *t);
void tree_free(struct tree *t);
/* The regular files of t, the lanes' tasks: their indices in t->v in
 * order (t->files of them) and each one's size, both to free. 0, or -1
 * without memory (then neither is allocated). */
int tree_file_list(const struct tree *t, size_t **files, uint64_t **sizes);
/* Adds an entry (the strings are copied; target may be NULL). 0 or -ENOMEM. */
int tree_add(struct tree *t, const char *src, const char *rel, enum tree_kind kind,
             const struct tree_attr *a, const char *target, int arg);

/* A name one listing entry may have: not empty, not "." or "..", no '/'.
 * What a peer sends is refused otherwise. */
int tree_name_ok(const char *name);
/* a + "/" + b (a "" gives b alone); NULL when out of memory. */
char *tree_join(const char *a, const char *b);
/* The last component of a path (trailing slashes ignored), into out
 * (cap bytes); "" when there is none a copy could be named after. */
void tree_basename(const char *path, char *out, size_t cap);

/*
 * Adds the local path (lstat: a link is a link) as rel, and with recursive
 * everything beneath it when it is a directory, directories before their
 * contents. Entries that vanish meanwhile are left out. 0, or -errno with
 * where (cap bytes) naming the path that could not be read.
 */
int tree_walk_local(struct tree *t, const char *path, const char *rel, int recursive, int arg,
                    char *where, size_t cap);

/*
 * The directory rel beneath the directory open at topfd, opened (O_PATH is
 * not enough: the caller creates files in it) without following any
 * symbolic link on the way; with create, the missing ones are made (mode
 * 0777 under the umask, as mkdir -p). Returns the fd, or -errno
 * (-ELOOP: a component is a symbolic link, which would lead out).
 */
int tree_open_dir(int topfd, const char *rel, int create);

/*
 * The directories a run writes into, kept open: a tree of small files
 * would otherwise open (and close) each file's directory, component by
 * component, once per file. A few are kept, the least recently used given
 * up first when none is free; each is opened once with tree_open_dir, so a
 * link planted later changes nothing for the run (the fd is the directory
 * it found). tree_dirs_get lends an fd until tree_dirs_put; -errno as
 * tree_open_dir.
 */
#define TREE_DIRS_MAX 16
struct tree_dirs {
    int topfd;
    unsigned long clock;
    struct {
        char *rel;
        int fd;
        unsigned lent;
        unsigned long used;
    } v[TREE_DIRS_MAX];
};
void tree_dirs_init(struct tree_dirs *c, int topfd);
int tree_dirs_get(struct tree_dirs *c, const char *rel);
void tree_dirs_put(struct tree_dirs *c, int fd);
/* Closes them all (none may be lent). */
void tree_dirs_free(struct tree_dirs *c);

/* Splits rel into its directory part (into dir, cap bytes) and returns its
 * last component (within rel). */
const char *tree_split(const char *rel, char *dir, size_t cap);

#endif
