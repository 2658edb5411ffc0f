/*
 * access.c - the access file: parsed into a table sorted by identity, and
 * the rule that turns (identity, level) into rights and a root (access.h).
 * The table is plain data: rcatd swaps whole tables on SIGHUP, and a call
 * copies its grant out, so nothing here locks or counts references.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "access.h"
#include "conffile.h"
#include "level.h"
#include "root.h"

static void say(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- one line ------------------------------------------------------------ */

#define MAX_WORDS 4

struct words {
    const char *w[MAX_WORDS];
    size_t len[MAX_WORDS];
    size_t n; /* all the words, those past MAX_WORDS counted only */
};

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* Words up to a '#' that starts one. */
static void split(const char *p, size_t len, struct words *ws)
{
    size_t i = 0;

    memset(ws, 0, sizeof *ws);
    while (i < len) {
        while (i < len && is_blank(p[i]))
            i++;
        if (i == len || p[i] == '#')
            return;
        size_t start = i;
        while (i < len && !is_blank(p[i]))
            i++;
        if (ws->n < MAX_WORDS) {
            ws->w[ws->n] = p + start;
            ws->len[ws->n] = i - start;
        }
        ws->n++;
    }
}

static int identity_ok(const char *p, size_t len)
{
    if (len == 0 || len > ACCESS_IDENTITY_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
            return 0;
    return 1;
}

static int parse_rights(const char *p, size_t len, unsigned *out)
{
    *out = 0;
    if (len == 1 && p[0] == '-')
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned bit = p[i] == 'r'   ? ACCESS_READ
                       : p[i] == 'w' ? ACCESS_WRITE
                       : p[i] == 'l' ? ACCESS_LIST
                       : p[i] == 'd' ? ACCESS_DELETE
                                     : 0;
        if (!bit || (*out & bit))
            return -1;
        *out |= bit;
    }
    return len ? 0 : -1;
}

static int parse_level(const struct words *ws, enum rpc2_security *out)
{
    *out = RPC2_SEC_AUTH;
    if (ws->n < 4)
        return 0;
    return level_parse(ws->w[3], ws->len[3], out);
}

struct parse {
    struct access *a;
    const char *path;
    size_t line;
    char *err;
    size_t errlen;
};

static int bad(struct parse *ps, const char *why)
{
    say(ps->err, ps->errlen, "%s:%zu: %s", ps->path, ps->line, why);
    return RPC2_EINVAL;
}

static int parse_root(struct parse *ps, const struct words *ws, char **out)
{
    char root[PATH_MAX];

    if (ws->len[2] >= sizeof root)
        return bad(ps, "the root is too long");
    memcpy(root, ws->w[2], ws->len[2]);
    root[ws->len[2]] = '\0';
    if (root[0] == '/')
        return bad(ps, "the root is a directory beneath the served one, written relative to it "
                       "(\".\" for all of it)");
    if (root_check(root, strlen(root)) != 0)
        return bad(ps, "the root must stay beneath the served one (no \"..\")");
    *out = strdup(root);
    if (!*out) {
        say(ps->err, ps->errlen, "%s: out of memory", ps->path);
        return RPC2_ENOMEM;
    }
    return 0;
}

static int parse_entry(struct parse *ps, const struct words *ws, struct access_entry *e)
{
    if (ws->n < 3 || ws->n > 4)
        return bad(ps, "expected IDENTITY RIGHTS ROOT [LOWEST-LEVEL]");
    if (!identity_ok(ws->w[0], ws->len[0]))
        return bad(ps, "the identity must be 1 to 255 bytes without control characters");
    if (parse_rights(ws->w[1], ws->len[1], &e->rights) != 0)
        return bad(ps, "the rights are letters from r, w and l, or - for none");
    if (parse_level(ws, &e->lowest) != 0)
        return bad(ps, "the lowest level is none, auth or encrypt");
    memcpy(e->identity, ws->w[0], ws->len[0]);
    e->identity[ws->len[0]] = '\0';
    e->line = ps->line;
    return parse_root(ps, ws, &e->root);
}

/* ---- the file -------------------------------------------------------------- */

static int by_identity(const void *x, const void *y)
{
    const struct access_entry *a = x, *b = y;
    int c = strcmp(a->identity, b->identity);

    return c ? c : (a->line > b->line) - (a->line < b->line);
}

static int no_duplicates(struct parse *ps)
{
    const struct access *a = ps->a;

    for (size_t i = 1; i < a->n; i++) {
        if (!strcmp(a->e[i - 1].identity, a->e[i].identity)) {
            ps->line = a->e[i].line;
            say(ps->err, ps->errlen, "%s:%zu: the identity is already listed on line %zu", ps->path,
                a->e[i].line, a->e[i - 1].line);
            return RPC2_EINVAL;
        }
    }
    return 0;
}

static int add_line(struct parse *ps, const char *p, size_t len, size_t *cap)
{
    struct words ws;

    split(p, len, &ws);
    if (ws.n == 0)
        return 0;
    if (ps->a->n == *cap) {
        size_t more = *cap ? *cap * 2 : 16;
        struct access_entry *e = realloc(ps->a->e, more * sizeof *e);
        if (!e) {
            say(ps->err, ps->errlen, "%s: out of memory", ps->path);
            return RPC2_ENOMEM;
        }
        ps->a->e = e;
        *cap = more;
    }
    struct access_entry *e = &ps->a->e[ps->a->n];
    memset(e, 0, sizeof *e);
    int rc = parse_entry(ps, &ws, e);
    if (rc == 0)
        ps->a->n++;
    return rc;
}

int access_parse(struct access *a, const char *text, size_t len, const char *path, char *err,
                 size_t errlen)
{
    struct parse ps = {a, path, 0, err, errlen};
    const char *p = text, *end = text + len;
    size_t cap = 0;
    int rc = 0;

    *a = (struct access){0};
    say(err, errlen, "%s", "");
    if (memchr(text, '\0', len)) {
        say(err, errlen, "%s: a NUL byte: not a text file", path);
        return RPC2_EINVAL;
    }
    while (rc == 0 && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);

        ps.line++;
        rc = add_line(&ps, p, n, &cap);
        p += n + (nl ? 1 : 0);
    }
    if (rc == 0 && a->n > 1)
        qsort(a->e, a->n, sizeof *a->e, by_identity);
    if (rc == 0)
        rc = no_duplicates(&ps);
    if (rc != 0)
        access_dispose(a);
    return rc;
}

/* The file may be read by anyone (it holds no secret) but written only by
 * its owner, who is the caller or root: who can write it can grant. */
int access_load(struct access *a, const char *path, char *err, size_t errlen)
{
    char *buf = NULL;
    size_t len = 0;
    char why[ACCESS_ERR_MAX];

    *a = (struct access){0};
    why[0] = '\0';
    int rc = conffile_read(path, ACCESS_FILE_MAX, &buf, &len, why, sizeof why);
    if (rc != 0) {
        say(err, errlen, "%s", why);
        return rc;
    }
    rc = access_parse(a, buf, len, path, err, errlen);
    free(buf);
    return rc;
}

void access_dispose(struct access *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n; i++)
        free(a->e[i].root);
    free(a->e);
    *a = (struct access){0};
}

const struct access_entry *access_find(const struct access *a, const char *identity)
{
    struct access_entry key;

    if (!a || !identity || strlen(identity) > ACCESS_IDENTITY_MAX)
        return NULL;
    strcpy(key.identity, identity);
    key.line = 0;
    /* by identity alone: no two entries share one */
    for (size_t lo = 0, hi = a->n; lo < hi;) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(key.identity, a->e[mid].identity);
        if (c == 0)
            return &a->e[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* ---- the rule -------------------------------------------------------------- */

enum access_verdict access_decide(const struct access *a, const char *identity,
                                  enum rpc2_security level, unsigned defaults,
                                  struct access_grant *g)
{
    const struct access_entry *e = a ? access_find(a, identity ? identity : "") : NULL;

    g->rights = 0;
    strcpy(g->root, ".");
    if (!e && (!a || level == RPC2_SEC_NONE)) {
        g->rights = defaults; /* anonymous, or no access file at all */
        return ACCESS_GRANTED;
    }
    if (!e)
        return ACCESS_UNLISTED;
    if (level < e->lowest)
        return ACCESS_TOO_LOW;
    g->rights = e->rights;
    snprintf(g->root, sizeof g->root, "%s", e->root);
    return ACCESS_GRANTED;
}

int access_narrowed(const struct access *old_a, const struct access *new_a, const char *identity,
                    enum rpc2_security level, unsigned defaults)
{
    struct access_grant was, now;

    access_decide(old_a, identity, level, defaults, &was);
    access_decide(new_a, identity, level, defaults, &now);
    if (was.rights == 0)
        return 0; /* nothing to lose */
    return (was.rights & ~now.rights) != 0 || strcmp(was.root, now.root) != 0;
}
