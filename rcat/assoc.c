/*
 * assoc.c - rcat's associations files (assoc.h): the parser, the search
 * through the user's and the system's files, and @NAME:PATH operands. Pure
 * but for reading the files, so tests/test_assoc.c checks every rule.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rpc2/rpc2.h>

#include "assoc.h"
#include "conffile.h"

/* rcat's long options an association may give a default for */
static const char *const value_keys[] = {
    "port",     "identity",         "key-file", "security", "retries", "retry-interval",
    "timeout",  "max-time",         "rate",     "min-rate", "policy",  "rate-control",
    "checksum", "restart-interval",
};
static const char *const flag_keys[] = {
    "mkdirs", "continue", "resume-strict", "preserve", "no-clobber", "overwrite",
};

#define N_OF(a) (sizeof(a) / sizeof(a)[0])

static int listed(const char *const *keys, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i], key) == 0)
            return 1;
    return 0;
}

static int name_ok(const char *s, size_t n)
{
    if (n == 0 || n > ASSOC_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_' || s[i] == '.'))
            return 0;
    return 1;
}

/* [start, end) without blanks at either end */
static void trim(const char **start, const char **end)
{
    while (*start < *end && (**start == ' ' || **start == '\t' || **start == '\r'))
        (*start)++;
    while (*end > *start && ((*end)[-1] == ' ' || (*end)[-1] == '\t' || (*end)[-1] == '\r'))
        (*end)--;
}

void assoc_dispose(struct assoc *a)
{
    for (int i = 0; i < a->n_opts; i++)
        free(a->opts[i]);
    a->n_opts = 0;
    free(a->argv);
    a->argv = NULL;
}

/* A key file as the association names it: "~/" under $HOME, a relative
 * one beside the file. */
static char *key_path(const char *v, const char *file)
{
    const char *home = getenv("HOME");
    const char *slash = strrchr(file, '/');
    char *out = NULL;

    if (strncmp(v, "~/", 2) == 0 && home && *home) {
        if (asprintf(&out, "--key-file=%s/%s", home, v + 2) < 0)
            out = NULL;
    } else if (v[0] != '/' && slash) {
        if (asprintf(&out, "--key-file=%.*s/%s", (int)(slash - file), file, v) < 0)
            out = NULL;
    } else if (asprintf(&out, "--key-file=%s", v) < 0) {
        out = NULL;
    }
    return out;
}

/* key = value in the section kept: into a; NULL, or why it is wrong. */
static const char *take(struct assoc *a, const char *key, const char *v, const char *file)
{
    char *opt = NULL;

    if (strcmp(key, "host") == 0) {
        if (!*v || strlen(v) > URL_HOST_MAX)
            return "host is empty or too long";
        strcpy(a->host, v);
        return NULL;
    }
    if (strcmp(key, "directory") == 0) {
        if (strlen(v) > URL_PATH_MAX - 1)
            return "directory too long";
        strcpy(a->dir, v);
        return NULL;
    }
    if (a->n_opts == ASSOC_OPTS_MAX)
        return "too many options";
    if (listed(flag_keys, N_OF(flag_keys), key)) {
        if (strcmp(v, "no") == 0)
            return NULL;
        if (strcmp(v, "yes") != 0)
            return "a flag takes yes or no";
        if (asprintf(&opt, "--%s", key) < 0)
            return "out of memory";
    } else if (strcmp(key, "key-file") == 0) {
        if (!*v || !(opt = key_path(v, file)))
            return "key-file is empty";
    } else if (asprintf(&opt, "--%s=%s", key, v) < 0) {
        return "out of memory";
    }
    a->opts[a->n_opts++] = opt;
    return NULL;
}

/* One line; *in says whether the section being read is the one wanted. */
static const char *line_of(const char *p, const char *end, const char *file, const char *name,
                           struct assoc *a, int *in, int *found)
{
    char key[64], val[URL_PATH_MAX + 1];
    const char *c = memchr(p, '#', (size_t)(end - p));

    if (c)
        end = c;
    trim(&p, &end);
    if (p == end)
        return NULL;
    if (*p == '[') {
        if (end[-1] != ']' || !name_ok(p + 1, (size_t)(end - p - 2)))
            return "a section is [NAME], NAME of letters, digits, '-', '_', '.'";
        *in = (size_t)(end - p - 2) == strlen(name) && memcmp(p + 1, name, strlen(name)) == 0;
        if (*in && (*found)++)
            return "a second section of the same name";
        return NULL;
    }
    const char *eq = memchr(p, '=', (size_t)(end - p));
    if (!eq)
        return "expected [NAME] or KEY = VALUE";
    const char *ks = p, *ke = eq, *vs = eq + 1, *ve = end;
    trim(&ks, &ke);
    trim(&vs, &ve);
    if (ke - ks == 0 || (size_t)(ke - ks) >= sizeof key || (size_t)(ve - vs) >= sizeof val)
        return "a key or value too long, or no key";
    memcpy(key, ks, (size_t)(ke - ks));
    key[ke - ks] = '\0';
    memcpy(val, vs, (size_t)(ve - vs));
    val[ve - vs] = '\0';
    if (strcmp(key, "host") != 0 && strcmp(key, "directory") != 0 &&
        !listed(value_keys, N_OF(value_keys), key) && !listed(flag_keys, N_OF(flag_keys), key))
        return "unknown key (host, directory, or one of rcat's options for a destination: "
               "port, identity, key-file, security, retries, retry-interval, timeout, "
               "max-time, rate, min-rate, policy, rate-control, checksum, restart-interval, "
               "mkdirs, continue, resume-strict, preserve, no-clobber, overwrite)";
    if (*in)
        return take(a, key, val, file);
    return NULL;
}

int assoc_parse(const char *text, size_t len, const char *file, const char *name, struct assoc *out,
                char *err, size_t errlen)
{
    const char *p = text, *end = text + len;
    int in = 0, found = 0;
    size_t line = 0;

    *out = (struct assoc){0};
    snprintf(out->name, sizeof out->name, "%s", name);
    snprintf(out->file, sizeof out->file, "%s", file);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        const char *why;
        line++;
        if (memchr(p, '\0', (size_t)(eol - p)))
            why = "a NUL byte";
        else
            why = line_of(p, eol, file, name, out, &in, &found);
        if (why) {
            snprintf(err, errlen, "%s: line %zu: %s", file, line, why);
            assoc_dispose(out);
            return -1;
        }
        p = nl ? nl + 1 : end;
    }
    if (found && !out->host[0]) {
        snprintf(err, errlen, "%s: [%s] names no host", file, name);
        assoc_dispose(out);
        return -1;
    }
    if (!found)
        assoc_dispose(out);
    return found ? 1 : 0;
}

/* 1, 0, or -1 for one file; a missing file is 0 unless it was asked for. */
static int find_in(const char *file, int must_exist, const char *name, struct assoc *out, char *err,
                   size_t errlen)
{
    char *buf;
    size_t len;
    int rc = conffile_read(file, ASSOC_FILE_MAX, &buf, &len, err, errlen);

    if (rc == RPC2_ENOENT && !must_exist)
        return 0;
    if (rc != 0)
        return -1;
    rc = assoc_parse(buf, len, file, name, out, err, errlen);
    free(buf);
    return rc;
}

int assoc_find(const char *name, struct assoc *out, char *err, size_t errlen)
{
    const char *env = getenv("RCAT_ASSOCIATIONS");
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    char user[4200] = "";
    int rc;

    if (env && *env) {
        rc = find_in(env, 1, name, out, err, errlen);
        if (rc == 0)
            snprintf(err, errlen, "no association [%s] in %s ($RCAT_ASSOCIATIONS)", name, env);
        return rc;
    }
    if (xdg && *xdg)
        snprintf(user, sizeof user, "%s/rcat/associations", xdg);
    else if (home && *home)
        snprintf(user, sizeof user, "%s/.config/rcat/associations", home);
    if (user[0] && (rc = find_in(user, 0, name, out, err, errlen)) != 0)
        return rc;
    if ((rc = find_in(ASSOC_SYSTEM_FILE, 0, name, out, err, errlen)) != 0)
        return rc;
    snprintf(err, errlen, "no association [%s] in %s%s%s", name, user, user[0] ? " or " : "",
             ASSOC_SYSTEM_FILE);
    return 0;
}

int assoc_operand(const char *arg, char name[ASSOC_NAME_MAX + 1], const char **path,
                  const char **why)
{
    if (arg[0] != '@')
        return 0;
    const char *colon = strchr(arg, ':');
    if (!colon || !name_ok(arg + 1, (size_t)(colon - arg - 1))) {
        *why = "an association is named @NAME:PATH (NAME of letters, digits, '-', '_', '.'; "
               "PATH may be empty)";
        return -1;
    }
    memcpy(name, arg + 1, (size_t)(colon - arg - 1));
    name[colon - arg - 1] = '\0';
    *path = colon + 1;
    return 1;
}

int assoc_url(const struct assoc *a, const char *path, unsigned port, struct url *out,
              const char **why)
{
    size_t d = strlen(a->dir);
    const char *sep = d > 0 && a->dir[d - 1] != '/' ? "/" : "";

    if (path[0] == '/') {
        *why = "PATH is relative to the association's directory (no leading '/')";
        return -1;
    }
    *out = (struct url){.remote = 1, .port = port};
    strcpy(out->host, a->host);
    if (d + strlen(sep) + strlen(path) > URL_PATH_MAX) {
        *why = "remote path too long";
        return -1;
    }
    strcpy(out->path, a->dir);
    strcat(out->path, sep);
    strcat(out->path, path);
    return 0;
}
