/*
 * posthook.c - the rules of rcatd's hooks file and the command one stored
 * file gets (posthook.h). Pure: no process is started here (hookrun.c), so
 * the parser and the expansion are tested alone (tests/test_posthook.c).
 */
#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conffile.h"
#include "duration.h"
#include "posthook.h"

#define WORDS_MAX (4 + POSTHOOK_ARGS_MAX)

/* ---- words ------------------------------------------------------------------ */

static int blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* The next word of the line [*p, end) into a malloc'd string: 1, 0 at the
 * end of the line (or a comment), -1 with why set. */
static int next_word(const char **p, const char *end, char **out, const char **why)
{
    const char *s = *p;

    while (s < end && blank(*s))
        s++;
    if (s == end || *s == '#') {
        *p = end;
        return 0;
    }
    char *w = malloc((size_t)(end - s) + 1), *o = w;
    if (!w) {
        *why = "out of memory";
        return -1;
    }
    if (*s == '"') {
        for (s++; s < end && *s != '"'; s++) {
            if (*s == '\\' && s + 1 < end && (s[1] == '"' || s[1] == '\\'))
                s++;
            *o++ = *s;
        }
        if (s == end || (s + 1 < end && !blank(s[1]))) {
            free(w);
            *why = s == end ? "a quote not closed" : "a closing quote not followed by a blank";
            return -1;
        }
        s++;
    } else {
        for (; s < end && !blank(*s); s++) {
            if (*s == '"') {
                free(w);
                *why = "a quote inside a word (quote the whole word)";
                return -1;
            }
            *o++ = *s;
        }
    }
    *o = '\0';
    *out = w;
    *p = s;
    return 1;
}

static int known_percents(const char *arg)
{
    for (const char *s = arg; (s = strchr(s, '%')); s += 2)
        if (!s[1] || !strchr("prcsia%", s[1]))
            return 0;
    return 1;
}

/* ---- one line ---------------------------------------------------------------- */

static void rule_dispose(struct posthook_rule *r)
{
    free(r->pattern);
    free(r->identity);
    for (size_t i = 0; r->argv && i < r->argc; i++)
        free(r->argv[i]);
    free(r->argv);
}

/* Refuses a line whose words from `from` on are not the rule's yet. */
static int refuse_words(char **w, size_t from, size_t n, const char **why, const char *text)
{
    for (size_t i = from; i < n; i++)
        free(w[i]);
    *why = text;
    return -1;
}

/* The words of a line become its rule; words[] are the rule's from now on. */
static int rule_of(char **w, size_t n, struct posthook_rule *r, const char **why)
{
    int none = strcmp(w[4], "-") == 0;
    char *end;

    *r = (struct posthook_rule){.pattern = w[0]};
    if (strcmp(w[1], "*") == 0)
        free(w[1]);
    else
        r->identity = w[1];
    if (none) {
        if (n > 5 || strcmp(w[2], "-") != 0 || strcmp(w[3], "-") != 0)
            return refuse_words(w, 2, n, why,
                                "a line without a command ('-') has '-' for EXIT and TIME-LIMIT "
                                "and nothing after");
        for (size_t i = 2; i < n; i++)
            free(w[i]);
        return 0;
    }
    unsigned long code = strtoul(w[2], &end, 10);
    if (!*w[2] || *end || code > 255)
        return refuse_words(w, 2, n, why, "EXIT is not an exit code (0-255)");
    if (duration_parse(w[3], &r->limit_us) != 0 || r->limit_us == 0)
        return refuse_words(w, 2, n, why,
                            "TIME-LIMIT is not a duration above 0 (30, 1.5, 90s, 5m, 2h)");
    if (w[4][0] != '/')
        return refuse_words(w, 2, n, why, "COMMAND is not an absolute path");
    for (size_t i = 4; i < n; i++)
        if (!known_percents(w[i]))
            return refuse_words(w, 2, n, why,
                                "an argument has a % other than %p %r %s %c %i %a %%");
    r->expect_exit = (int)code;
    free(w[2]);
    free(w[3]);
    r->argc = n - 4;
    r->argv = malloc(r->argc * sizeof *r->argv);
    if (!r->argv)
        return refuse_words(w, 4, n, why, "out of memory");
    memcpy(r->argv, w + 4, r->argc * sizeof *r->argv);
    return 0;
}

/* 0 with *r filled, 1 for a line with no rule (blank, comment), -1. */
static int parse_line(const char *p, const char *end, struct posthook_rule *r, const char **why)
{
    char *w[WORDS_MAX];
    size_t n = 0;
    int rc;

    while ((rc = next_word(&p, end, &w[n], why)) == 1)
        if (++n == WORDS_MAX) {
            *why = "too many arguments";
            rc = -1;
            break;
        }
    if (rc == 0 && n == 0)
        return 1;
    if (rc == 0 && n < 5) {
        *why = "expected PATTERN IDENTITY EXIT TIME-LIMIT COMMAND [ARG...]";
        rc = -1;
    }
    if (rc == 0) {
        rc = rule_of(w, n, r, why);
        if (rc != 0) {
            rule_dispose(r);
            *r = (struct posthook_rule){0};
        }
        return rc;
    }
    for (size_t i = 0; i < n; i++)
        free(w[i]);
    return -1;
}

/* ---- the file ------------------------------------------------------------------ */

int posthook_parse(struct posthook_rules *rules, const char *text, size_t len, const char *name,
                   char *err, size_t errlen)
{
    const char *p = text, *end = text + len;
    size_t line = 0, cap = 0;

    *rules = (struct posthook_rules){0};
    snprintf(rules->path, sizeof rules->path, "%s", name);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        struct posthook_rule r;
        const char *why = NULL;
        line++;
        if (memchr(p, '\0', (size_t)(eol - p))) {
            why = "a NUL byte";
        } else {
            int rc = parse_line(p, eol, &r, &why);
            if (rc == 0 && rules->n == cap) {
                struct posthook_rule *g = realloc(rules->r, (cap ? cap * 2 : 8) * sizeof *g);
                if (!g) {
                    rule_dispose(&r);
                    why = "out of memory";
                } else {
                    rules->r = g;
                    cap = cap ? cap * 2 : 8;
                }
            }
            if (rc == 0 && !why) {
                r.line = line;
                rules->r[rules->n++] = r;
            }
        }
        if (why) {
            snprintf(err, errlen, "%s: line %zu: %s", name, line, why);
            posthook_dispose(rules);
            return -1;
        }
        p = nl ? nl + 1 : end;
    }
    return 0;
}

int posthook_load(struct posthook_rules *rules, const char *path, char *err, size_t errlen)
{
    char *buf;
    size_t len;

    *rules = (struct posthook_rules){0};
    if (conffile_read(path, POSTHOOK_FILE_MAX, &buf, &len, err, errlen) != 0)
        return -1;
    int rc = posthook_parse(rules, buf, len, path, err, errlen);
    free(buf);
    return rc;
}

void posthook_dispose(struct posthook_rules *rules)
{
    if (!rules)
        return;
    for (size_t i = 0; i < rules->n; i++)
        rule_dispose(&rules->r[i]);
    free(rules->r);
    rules->r = NULL;
    rules->n = 0;
}

const struct posthook_rule *posthook_match(const struct posthook_rules *rules, const char *rel_path,
                                           const char *identity)
{
    for (size_t i = 0; rules && i < rules->n; i++) {
        const struct posthook_rule *r = &rules->r[i];
        if (r->identity && strcmp(r->identity, identity) != 0)
            continue;
        if (fnmatch(r->pattern, rel_path, 0) == 0)
            return r->argv ? r : NULL;
    }
    return NULL;
}

/* ---- one command ----------------------------------------------------------------- */

static char *expand(const char *arg, const struct posthook_file *f, const char *size)
{
    size_t cap = 1;
    char *out, *o;

    for (int pass = 0; pass < 2; pass++) {
        o = pass ? out : NULL;
        for (const char *s = arg; *s; s++) {
            const char *v = NULL;
            char c[2] = {*s, '\0'};
            if (*s == '%' && s[1]) {
                switch (*++s) {
                case 'p':
                    v = f->abs_path;
                    break;
                case 'r':
                    v = f->rel_path;
                    break;
                case 's':
                    v = size;
                    break;
                case 'c':
                    v = f->checksum;
                    break;
                case 'i':
                    v = f->identity;
                    break;
                case 'a':
                    v = f->peer;
                    break;
                default:
                    c[0] = *s;
                    break; /* %% (others the parser refused) */
                }
            }
            if (!v)
                v = c;
            if (pass)
                o = stpcpy(o, v);
            else
                cap += strlen(v);
        }
        if (!pass && !(out = malloc(cap)))
            return NULL;
    }
    *o = '\0';
    return out;
}

static char *env_var(const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 2;
    char *v = malloc(n);

    if (v)
        snprintf(v, n, "%s=%s", name, value);
    return v;
}

void posthook_job_free(struct posthook_job *job)
{
    if (!job)
        return;
    for (size_t i = 0; job->argv && job->argv[i]; i++)
        free(job->argv[i]);
    for (size_t i = 0; job->envp && job->envp[i]; i++)
        free(job->envp[i]);
    free(job->argv);
    free(job->envp);
    free(job);
}

#define OUR_VARS 7

static int fill_env(struct posthook_job *job, const struct posthook_file *f, const char *size,
                    char *const *environ_in)
{
    size_t n = 0, k = 0;

    while (environ_in && environ_in[n])
        n++;
    job->envp = calloc(n + OUR_VARS + 1, sizeof *job->envp);
    if (!job->envp)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ_in[i], "RCAT_", 5) != 0 && !(job->envp[k++] = strdup(environ_in[i])))
            return -1;
    const char *vars[OUR_VARS][2] = {
        {"RCAT_PATH", f->abs_path},     {"RCAT_RELPATH", f->rel_path},  {"RCAT_SIZE", size},
        {"RCAT_CHECKSUM", f->checksum}, {"RCAT_IDENTITY", f->identity}, {"RCAT_PEER", f->peer},
        {"RCAT_SECURITY", f->security},
    };
    for (size_t i = 0; i < OUR_VARS; i++)
        if (!(job->envp[k++] = env_var(vars[i][0], vars[i][1])))
            return -1;
    return 0;
}

int posthook_job_new(const struct posthook_rule *rule, const struct posthook_file *f,
                     char *const *environ_in, struct posthook_job **out)
{
    struct posthook_job *job = calloc(1, sizeof *job);
    char size[24];

    *out = NULL;
    if (!job)
        return -1;
    snprintf(size, sizeof size, "%" PRIu64, f->size);
    *job = (struct posthook_job){
        .expect_exit = rule->expect_exit, .limit_us = rule->limit_us, .line = rule->line};
    job->argv = calloc(rule->argc + 1, sizeof *job->argv);
    int rc = job->argv ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < rule->argc; i++)
        if (!(job->argv[i] = i == 0 ? strdup(rule->argv[0]) : expand(rule->argv[i], f, size)))
            rc = -1;
    if (rc == 0)
        rc = fill_env(job, f, size, environ_in);
    if (rc != 0) {
        posthook_job_free(job);
        return -1;
    }
    *out = job;
    return 0;
}
