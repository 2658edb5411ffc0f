/*
 * access.h - who may do what on rcatd: the access file (rcatd --access)
 * gives each identity its rights and a root of its own beneath the served
 * one. Without the file every caller gets the server's defaults.
 *
 *     # IDENTITY  RIGHTS  ROOT     [LOWEST-LEVEL]
 *     alice       rwl     .
 *     bob         r       bob
 *     carol       rl      pub      none
 *
 * RIGHTS are letters: r (FETCH, STAT, SUM, READLINK), w (STORE, MKDIR,
 * RENAME, SYMLINK, SETATTR, SYNC), l (LIST, STAT, GLOB), d (DELETE: a right of its
 * own, so a line written before it existed gives no one the power to
 * remove), or "-" for none. ROOT is a directory beneath the served root, as a client
 * path names one (relative, no ".."; "." is the whole root). LOWEST-LEVEL is
 * the lowest security level the identity may use: auth (the default),
 * encrypt, or none, which lets anyone who claims the name have its rights.
 * '#' starts a comment, to the end of the line.
 *
 * Who gets what: an identity the file lists gets its line (at a level its
 * line allows); one it does not list gets nothing above level none, and the
 * defaults at level none, as anonymous clients do.
 */
#ifndef RCAT_ACCESS_H
#define RCAT_ACCESS_H

#include <limits.h>
#include <stddef.h>

#include <rpc2/rpc2.h>

enum {
    ACCESS_READ = 1,
    ACCESS_WRITE = 2,
    ACCESS_LIST = 4,
    ACCESS_DELETE = 8,
};

#define ACCESS_IDENTITY_MAX 255
#define ACCESS_FILE_MAX (4u << 20) /* the largest access file read */
#define ACCESS_ERR_MAX 4400        /* room for any error text, with a path of 4 KiB */

struct access_entry {
    char identity[ACCESS_IDENTITY_MAX + 1];
    unsigned rights;           /* ACCESS_* */
    enum rpc2_security lowest; /* the lowest level it may bind at */
    char *root;                /* beneath the served root; "." for all of it */
    size_t line;
};

/* The file's lines, sorted by identity. */
struct access {
    struct access_entry *e;
    size_t n;
};

/* Parses text[0 .. len) read from path (named in errors: "PATH:LINE:
 * why"). 0, or RPC2_EINVAL / RPC2_ENOMEM with a empty *a. */
int access_parse(struct access *a, const char *text, size_t len, const char *path, char *err,
                 size_t errlen);
/* Reads and parses path: a regular file (opened without blocking) that
 * neither group nor others may write, owned by the caller or root. 0, or an
 * rpc2 error with err saying why. */
int access_load(struct access *a, const char *path, char *err, size_t errlen);
void access_dispose(struct access *a);
const struct access_entry *access_find(const struct access *a, const char *identity);

/* What one caller may do, copied out of the table. */
struct access_grant {
    unsigned rights;
    char root[PATH_MAX];
};

enum access_verdict {
    ACCESS_GRANTED,  /* g says what (it may be nothing: rights "-") */
    ACCESS_UNLISTED, /* above level none, an identity the file does not list */
    ACCESS_TOO_LOW,  /* a level below the identity's lowest */
};

/* The rights of identity (NULL: "") bound at level: a is NULL when there
 * is no access file, defaults are what anonymous callers get. */
enum access_verdict access_decide(const struct access *a, const char *identity,
                                  enum rpc2_security level, unsigned defaults,
                                  struct access_grant *g);

/* Whether a caller loses anything when the table old is replaced by new
 * (a right, or its root moves): its connections end at the reload. */
int access_narrowed(const struct access *old_a, const struct access *new_a, const char *identity,
                    enum rpc2_security level, unsigned defaults);

#endif
