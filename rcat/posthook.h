/*
 * posthook.h - rcatd's post-store commands (rcatd --hooks FILE): after a
 * STORE has put its file in place, a command chosen by the stored path and
 * the caller's identity processes it, and the client's call succeeds only
 * if the command does (as ectrans's execCmd with execCode). This file owns
 * the rules and what one command is given; hookrun.h runs it.
 *
 *     # PATTERN        IDENTITY EXIT TIME-LIMIT COMMAND [ARG...]
 *     incoming/?*.csv  *      0     30s         /usr/local/bin/ingest --file %p
 *     private/?*       *      -     -           -
 *     *                alice  0     5m          /opt/bin/notify "%i stored %r" %s
 *
 * PATTERN is matched (fnmatch(3) without FNM_PATHNAME: '*' also matches
 * '/') against the stored path relative to the served root; IDENTITY is
 * the caller's, or '*' for anyone. The first line that matches both
 * decides; a COMMAND of '-' means none (EXIT and TIME-LIMIT are then '-'
 * too). EXIT is the exit code that counts as success (0-255), TIME-LIMIT
 * a duration (duration.h) after which the command's process group is
 * killed. COMMAND is an absolute path, run without a shell; it and the
 * arguments are words separated by blanks, a word in double quotes may
 * hold blanks (\" and \\ inside). In arguments, %p is the file's absolute
 * path, %r its path relative to the served root, %s its size in bytes,
 * %c its checksum as TYPE:HEX (empty when the store computed none), %i
 * the identity, %a the client's address, %% a '%'. '#' starts a comment.
 */
#ifndef RCAT_POSTHOOK_H
#define RCAT_POSTHOOK_H

#include <stddef.h>
#include <stdint.h>

#define POSTHOOK_FILE_MAX (1u << 20) /* the largest hooks file read */
#define POSTHOOK_ERR_MAX 4400        /* room for any error text, with a path of 4 KiB */
#define POSTHOOK_ARGS_MAX 64         /* words of a command, its path included */

struct posthook_rule {
    char *pattern, *identity; /* identity NULL: anyone */
    char **argv;              /* NULL: no command for what matches */
    size_t argc;
    int expect_exit;
    uint64_t limit_us;
    size_t line;
};

struct posthook_rules {
    struct posthook_rule *r;
    size_t n;
    char path[256]; /* the file's, for messages (cut if longer) */
};

/* What a stored file is, for the command. Strings may be empty, not NULL. */
struct posthook_file {
    const char *abs_path, *rel_path, *identity, *peer, *security;
    uint64_t size;
    const char *checksum; /* "xxh128:HEX", "sha256:HEX"...; "" when none */
};

/* One command to run: argv and envp NULL-terminated, all of it one
 * allocation's (posthook_job_free). */
struct posthook_job {
    char **argv, **envp;
    int expect_exit;
    uint64_t limit_us;
    size_t line; /* the rule's, for the log */
};

/* Parses text (len bytes); name is the file's, for messages. 0, or -1 with
 * err saying which line and why (nothing is kept). */
int posthook_parse(struct posthook_rules *rules, const char *text, size_t len, const char *name,
                   char *err, size_t errlen);
/* Reads and parses path, which conffile.h's rules apply to. */
int posthook_load(struct posthook_rules *rules, const char *path, char *err, size_t errlen);
void posthook_dispose(struct posthook_rules *rules);

/* The rule for a stored file, or NULL when no line matches or the one that
 * does names no command. */
const struct posthook_rule *posthook_match(const struct posthook_rules *rules, const char *rel_path,
                                           const char *identity);

/* The command rule gives for f: its arguments with %-words replaced, and
 * environ (without RCAT_* variables) plus RCAT_PATH, RCAT_RELPATH,
 * RCAT_SIZE, RCAT_CHECKSUM, RCAT_IDENTITY, RCAT_PEER, RCAT_SECURITY. 0 or
 * -1 (no memory). */
int posthook_job_new(const struct posthook_rule *rule, const struct posthook_file *f,
                     char *const *environ_in, struct posthook_job **out);
void posthook_job_free(struct posthook_job *job);

#endif
