/*
 * keyfile.c - reads pre-shared secrets from files with tight permissions.
 *
 * The permission check runs on the descriptor that is then read (fstat, not
 * stat then open), so the file judged is the file used. The whole file is
 * read into one buffer that is wiped before it is freed; no secret is ever
 * copied into an error message: messages carry the path, the line number
 * and a reason, never a byte of the file.
 */
#include "keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>

#include <rpc2/rpc2.h>

#define CLIENT_MAX_SIZE 4096

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

/* ---- reading ------------------------------------------------------------- */

struct text {
    char *p;
    size_t len;
};

static void text_wipe(struct text *t)
{
    if (t->p) {
        sodium_memzero(t->p, t->len);
        free(t->p);
    }
    t->p = NULL;
    t->len = 0;
}

static int open_error(const char *path, char *err, size_t errlen)
{
    int e = errno;

    say(err, errlen, "%s: cannot open: %s", path, strerror(e));
    if (e == ENOENT)
        return RPC2_ENOENT;
    return e == EACCES || e == EPERM ? RPC2_EACCES : RPC2_ESYSTEM;
}

/* Owned by the caller (or root) and unreadable, unwritable by anyone else. */
static int mode_ok(const char *path, const struct stat *st, char *err, size_t errlen)
{
    if (!S_ISREG(st->st_mode)) {
        say(err, errlen, "%s: not a regular file", path);
        return RPC2_EINVAL;
    }
    if (st->st_mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH)) {
        say(err, errlen,
            "%s: readable or writable by group or others (mode %04o); a key file must be "
            "private: chmod 600 %s",
            path, (unsigned)(st->st_mode & 07777), path);
        return RPC2_EACCES;
    }
    if (st->st_uid != geteuid() && st->st_uid != 0) {
        say(err, errlen, "%s: owned by uid %lu, not by this user (uid %lu) or root", path,
            (unsigned long)st->st_uid, (unsigned long)geteuid());
        return RPC2_EACCES;
    }
    return 0;
}

static int read_all(int fd, size_t max, struct text *t, const char *path, char *err, size_t errlen)
{
    size_t cap = max + 1; /* one more, to see a file that is too large */
    ssize_t n;

    t->p = malloc(cap);
    if (!t->p) {
        say(err, errlen, "%s: out of memory", path);
        return RPC2_ENOMEM;
    }
    t->len = 0;
    while (t->len < cap) {
        n = read(fd, t->p + t->len, cap - t->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            say(err, errlen, "%s: cannot read: %s", path, strerror(errno));
            return RPC2_ESYSTEM;
        }
        if (n == 0)
            return 0;
        t->len += (size_t)n;
    }
    say(err, errlen, "%s: larger than %zu bytes", path, max);
    return RPC2_EINVAL;
}

/* Opens, judges and reads a key file; on failure t is empty. */
static int load_text(const char *path, size_t max, struct text *t, char *err, size_t errlen)
{
    struct stat st;
    int fd, rc;

    t->p = NULL;
    t->len = 0;
    if (!path) {
        say(err, errlen, "no key file given");
        return RPC2_EINVAL;
    }
    /* O_NONBLOCK: a FIFO put at the path must not hang the caller (a
     * server's SIGHUP) until someone writes to it; fstat then refuses it. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return open_error(path, err, errlen);
    if (fstat(fd, &st) != 0) {
        say(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
        rc = RPC2_ESYSTEM;
    } else {
        rc = mode_ok(path, &st, err, errlen);
    }
    if (rc == 0)
        rc = read_all(fd, max, t, path, err, errlen);
    close(fd);
    if (rc != 0)
        text_wipe(t);
    return rc;
}

/* ---- parsing ------------------------------------------------------------- */

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* The secret in b64[0 .. len), with a reason that quotes nothing. */
static int decode_secret(const char *b64, size_t len, struct sec_psk *psk, const char *path,
                         size_t line, char *err, size_t errlen)
{
    uint8_t bin[SEC_KEY_LEN * 2];
    size_t n = 0;
    int rc = 0;

    /* Judged by its length first: libsodium's errno does not always say why. */
    if (len / 4 * 3 > sizeof(bin)) {
        say(err, errlen, "%s:%zu: the secret is longer than %d bytes", path, line, SEC_KEY_LEN);
        rc = RPC2_EINVAL;
    } else if (sodium_base642bin(bin, sizeof(bin), b64, len, NULL, &n, NULL,
                                 sodium_base64_VARIANT_ORIGINAL) != 0) {
        say(err, errlen, "%s:%zu: the secret is not valid base64 (standard, with padding)", path,
            line);
        rc = RPC2_EINVAL;
    } else if (n != SEC_KEY_LEN) {
        say(err, errlen, "%s:%zu: the secret is %zu bytes, not %d", path, line, n, SEC_KEY_LEN);
        rc = RPC2_EINVAL;
    } else {
        memcpy(psk->key, bin, SEC_KEY_LEN);
    }
    sodium_memzero(bin, sizeof(bin));
    return rc;
}

/* A line split into its words: at most 2 are kept, more are counted. */
struct words {
    const char *w[2];
    size_t len[2];
    size_t n;
};

static void split(const char *p, size_t len, struct words *ws)
{
    size_t i = 0;

    memset(ws, 0, sizeof(*ws));
    while (i < len) {
        size_t start;

        while (i < len && is_blank(p[i]))
            i++;
        if (i == len)
            break;
        start = i;
        while (i < len && !is_blank(p[i]))
            i++;
        if (ws->n < 2) {
            ws->w[ws->n] = p + start;
            ws->len[ws->n] = i - start;
        }
        ws->n++;
    }
}

/* Blank lines and comment lines carry no entry. */
static int is_entry(const struct words *ws)
{
    return ws->n > 0 && ws->w[0][0] != '#';
}

static int parse_entry(const struct words *ws, struct keyfile_entry *e, const char *path,
                       size_t line, char *err, size_t errlen)
{
    if (ws->n != 2) {
        say(err, errlen, "%s:%zu: expected IDENTITY SECRET, found %zu word%s", path, line, ws->n,
            ws->n == 1 ? "" : "s");
        return RPC2_EINVAL;
    }
    if (!sec_identity_ok((const uint8_t *)ws->w[0], ws->len[0])) {
        say(err, errlen, "%s:%zu: the identity must be 1 to %d bytes without control characters",
            path, line, SEC_MAX_IDENTITY);
        return RPC2_EINVAL;
    }
    memcpy(e->identity, ws->w[0], ws->len[0]);
    e->identity[ws->len[0]] = '\0';
    e->identity_len = ws->len[0];
    e->line = line;
    return decode_secret(ws->w[1], ws->len[1], &e->psk, path, line, err, errlen);
}

/* Calls fn for every line of t (without its newline), numbered from 1,
 * until fn returns non-zero. */
static int each_line(const struct text *t,
                     int (*fn)(const char *p, size_t len, size_t line, void *arg), void *arg)
{
    const char *p = t->p, *end = t->p + t->len;
    size_t line = 0;
    int rc;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);

        rc = fn(p, len, ++line, arg);
        if (rc != 0)
            return rc;
        p += len + (nl ? 1 : 0);
    }
    return 0;
}

static int count_entry(const char *p, size_t len, size_t line, void *arg)
{
    struct words ws;

    (void)line;
    split(p, len, &ws);
    *(size_t *)arg += is_entry(&ws);
    return 0;
}

struct parse {
    struct keyfile *kf;
    const char *path;
    char *err;
    size_t errlen;
};

static int add_entry(const char *p, size_t len, size_t line, void *arg)
{
    struct parse *ps = arg;
    struct words ws;
    int rc;

    split(p, len, &ws);
    if (!is_entry(&ws))
        return 0;
    rc = parse_entry(&ws, &ps->kf->e[ps->kf->n], ps->path, line, ps->err, ps->errlen);
    if (rc == 0)
        ps->kf->n++;
    return rc;
}

static int by_identity_only(const void *a, const void *b)
{
    const struct keyfile_entry *x = a, *y = b;
    size_t n = x->identity_len < y->identity_len ? x->identity_len : y->identity_len;
    int c = memcmp(x->identity, y->identity, n);

    if (c != 0)
        return c;
    return (x->identity_len > y->identity_len) - (x->identity_len < y->identity_len);
}

/* Equal identities stay in file order, so the later line is the one reported. */
static int by_identity(const void *a, const void *b)
{
    const struct keyfile_entry *x = a, *y = b;
    int c = by_identity_only(a, b);

    return c != 0 ? c : (x->line > y->line) - (x->line < y->line);
}

/* After sorting, duplicates are neighbours. The identity is not quoted:
 * if it were a secret pasted into the wrong column, it would leak. */
static int no_duplicates(const struct keyfile *kf, const char *path, char *err, size_t errlen)
{
    for (size_t i = 1; i < kf->n; i++) {
        const struct keyfile_entry *a = &kf->e[i - 1], *b = &kf->e[i];

        if (a->identity_len == b->identity_len &&
            memcmp(a->identity, b->identity, a->identity_len) == 0) {
            say(err, errlen, "%s:%zu: the identity is already listed on line %zu", path, b->line,
                a->line);
            return RPC2_EINVAL;
        }
    }
    return 0;
}

static int by_identity_ref(const void *a, const void *b)
{
    return by_identity(*(const struct keyfile_entry *const *)a,
                       *(const struct keyfile_entry *const *)b);
}

/* Sorted by identity without qsort moving the entries themselves: it would
 * leave copies of secrets in its scratch memory, freed unwiped. Pointers
 * are sorted, then the entries copied once into a new array and the old
 * one wiped. */
static int sort_entries(struct keyfile *kf, const char *path, char *err, size_t errlen)
{
    const struct keyfile_entry **order = calloc(kf->n ? kf->n : 1, sizeof(*order));
    struct keyfile_entry *sorted = calloc(kf->cap, sizeof(*sorted));

    if (!order || !sorted) {
        free(order);
        free(sorted);
        say(err, errlen, "%s: out of memory", path);
        return RPC2_ENOMEM;
    }
    for (size_t i = 0; i < kf->n; i++)
        order[i] = &kf->e[i];
    qsort(order, kf->n, sizeof(*order), by_identity_ref);
    for (size_t i = 0; i < kf->n; i++)
        sorted[i] = *order[i];
    free(order);
    sodium_memzero(kf->e, kf->cap * sizeof(*kf->e));
    free(kf->e);
    kf->e = sorted;
    return 0;
}

static int parse_server(struct keyfile *kf, const struct text *t, const char *path, char *err,
                        size_t errlen)
{
    struct parse ps = {kf, path, err, errlen};
    size_t entries = 0;
    int rc;

    each_line(t, count_entry, &entries);
    if (entries == 0)
        return 0;
    kf->e = calloc(entries, sizeof(*kf->e));
    if (!kf->e) {
        say(err, errlen, "%s: out of memory", path);
        return RPC2_ENOMEM;
    }
    kf->cap = entries;
    rc = each_line(t, add_entry, &ps);
    if (rc == 0)
        rc = sort_entries(kf, path, err, errlen);
    return rc == 0 ? no_duplicates(kf, path, err, errlen) : rc;
}

int keyfile_load_server(struct keyfile *kf, const char *path, char *err, size_t errlen)
{
    struct text t;
    int rc;

    if (!kf)
        return RPC2_EINVAL;
    kf->e = NULL;
    kf->n = kf->cap = 0;
    say(err, errlen, "%s", "");
    if (sec_init() != 0) {
        say(err, errlen, "cannot initialise libsodium");
        return RPC2_ESYSTEM;
    }
    rc = load_text(path, KEYFILE_MAX_SIZE, &t, err, errlen);
    if (rc != 0)
        return rc;
    rc = keyfile_parse_server(kf, t.p, t.len, path, err, errlen);
    free(t.p); /* wiped by the parse */
    return rc;
}

int keyfile_parse_server(struct keyfile *kf, char *text, size_t len, const char *path, char *err,
                         size_t errlen)
{
    struct text t = {text, len};
    int rc;

    kf->e = NULL;
    kf->n = kf->cap = 0;
    rc = parse_server(kf, &t, path, err, errlen);
    sodium_memzero(text, len);
    if (rc != 0)
        keyfile_dispose(kf); /* every entry read so far, the half-read one too */
    return rc;
}

const struct sec_psk *keyfile_lookup(const struct keyfile *kf, const char *identity, size_t len)
{
    struct keyfile_entry key;
    const struct keyfile_entry *e;

    if (!kf || !kf->e || !identity || len > SEC_MAX_IDENTITY)
        return NULL;
    memcpy(key.identity, identity, len);
    key.identity_len = len;
    key.line = 0;
    e = bsearch(&key, kf->e, kf->n, sizeof(*kf->e), by_identity_only);
    return e ? &e->psk : NULL;
}

void keyfile_dispose(struct keyfile *kf)
{
    if (!kf)
        return;
    if (kf->e) {
        sodium_memzero(kf->e, kf->cap * sizeof(*kf->e));
        free(kf->e);
    }
    kf->e = NULL;
    kf->n = kf->cap = 0;
}

int keyfile_load_client(struct sec_psk *psk, const char *path, char *err, size_t errlen)
{
    struct sec_psk tmp;
    struct text t;
    size_t len;
    int rc;

    if (!psk)
        return RPC2_EINVAL;
    say(err, errlen, "%s", "");
    if (sec_init() != 0) {
        say(err, errlen, "cannot initialise libsodium");
        return RPC2_ESYSTEM;
    }
    rc = load_text(path, CLIENT_MAX_SIZE, &t, err, errlen);
    if (rc != 0)
        return rc;
    len = t.len;
    while (len > 0 && (is_blank(t.p[len - 1]) || t.p[len - 1] == '\n'))
        len--;
    if (len == 0) {
        say(err, errlen, "%s: empty: expected a secret in base64", path);
        rc = RPC2_EINVAL;
    } else {
        rc = decode_secret(t.p, len, &tmp, path, 1, err, errlen);
    }
    if (rc == 0)
        *psk = tmp;
    sodium_memzero(&tmp, sizeof(tmp));
    text_wipe(&t);
    return rc;
}
