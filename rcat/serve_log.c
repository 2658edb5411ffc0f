/*
 * serve_log.c - what rcatd's one line per call says (serve.c calls it as
 * each call ends): who called, the procedure, the path as the client gave
 * it (escaped, cut), bytes, time and status, by name.
 */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include <rpc2/rpc2.h>
#include <rpc2/se.h>

#include "level.h"
#include "rcat_proto.h"
#include "serve.h"
#include "serve_impl.h"

const char *serve_status_name(int status)
{
    static const char *const names[] = {
        "ok",
        "RCAT_READ_ONLY",
        "RCAT_OUTSIDE_ROOT",
        "RCAT_NOT_FOUND",
        "RCAT_PERMISSION",
        "RCAT_IS_DIR",
        "RCAT_NOT_DIR",
        "RCAT_EXISTS",
        "RCAT_BAD_PATH",
        "RCAT_IO",
        "RCAT_NO_SPACE",
        "RCAT_NOT_EMPTY",
        "RCAT_NOT_LINK",
        "RCAT_HOOK_FAILED",
    };

    if (status < 0)
        return rpc2_errname(status);
    return (size_t)status < sizeof names / sizeof names[0] ? names[status] : "RCAT_UNKNOWN";
}

/* A path is the client's to choose: bytes that could break the line (or a
 * terminal) are shown as \xNN, and a long one is cut. */
void serve_escape_path(const char *in, char *out, size_t cap)
{
    size_t o = 0;

    if (!in || !*in) {
        snprintf(out, cap, "\"\""); /* the one way an empty path shows on the line */
        return;
    }
    for (; *in && o + 8 < cap; in++) {
        unsigned char c = (unsigned char)*in;
        if (c <= ' ' || c == '"' || c == '\\' || c == 0x7f)
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        else
            out[o++] = (char)c;
    }
    if (*in)
        o += (size_t)snprintf(out + o, cap - o, "...");
    out[o] = '\0';
}

double serve_ms_since(const struct timespec *t0)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Who called: the identity named in the bind (proved by its secret above
 * level none; only claimed at none), and the connection's level. */
static void describe_caller(rpc2_request *req, char *out, size_t cap)
{
    char id[IDENTITY_SHOWN_MAX];

    /* the identity is the client's to choose at level none: escaped like a path */
    serve_escape_path(rpc2_request_identity(req), id, sizeof id);
    snprintf(out, cap, "%s %s", id, level_name(rpc2_request_security(req)));
}

/* The named checksum the client asked for (rpc2_se_sum_name) is shown;
 * the default, the transfer's own XXH3-128, is not mentioned. The remote
 * operations add their second name (RENAME's to=, SYMLINK's target=) and
 * what they counted (DELETE's removed=, GLOB's matches=) at the end, so the
 * fields before keep their places. */
static void format_call(const struct call *c, int status, char *line, size_t cap)
{
    rpc2_request *req = c->req;
    char shown[LOG_PATH_MAX], shown2[LOG_PATH_MAX] = "", count[48] = "";
    char caller[IDENTITY_SHOWN_MAX + 32];

    serve_escape_path(c->path, shown, sizeof shown);
    if (c->path2_key)
        serve_escape_path(c->path2, shown2, sizeof shown2);
    if (c->count_key)
        snprintf(count, sizeof count, " %s=%" PRIu64, c->count_key, c->count);
    describe_caller(req, caller, sizeof caller);
    const char *sum = rpc2_se_sum_name(c->desc.sum_type);
    snprintf(line, cap, "%s %s %s %s %" PRIu64 " B %.1f ms %s%s%s%s%s%s%s%s%s",
             rpc2_request_peer(req), caller, c->proc, shown, c->bytes, serve_ms_since(&c->t0),
             serve_status_name(status), c->client_failed ? " by the client" : "",
             sum ? " sum=" : "", sum ? sum : "", c->path2_key ? " " : "",
             c->path2_key ? c->path2_key : "", c->path2_key ? "=" : "", shown2, count);
}

void serve_log_call(struct serve *s, const struct call *c, int status)
{
    char line[SERVE_LOG_LINE_MAX];

    if (!s->log)
        return;
    format_call(c, status, line, sizeof line);
    s->log(line, s->log_arg);
}

void serve_log_add(struct serve *s, struct serve_log_lines *l, const struct call *c, int status)
{
    if (!s->log)
        return;
    if (l->cap - l->len < SERVE_LOG_LINE_MAX + 1) {
        size_t cap = l->cap ? l->cap * 2 : 8 * SERVE_LOG_LINE_MAX;
        char *buf = realloc(l->buf, cap);

        if (buf == NULL) { /* each line on its own, then */
            serve_log_flush(s, l);
            serve_log_call(s, c, status);
            return;
        }
        l->buf = buf;
        l->cap = cap;
    }
    if (l->len > 0)
        l->buf[l->len++] = '\n';
    format_call(c, status, l->buf + l->len, l->cap - l->len);
    l->len += strlen(l->buf + l->len);
}

void serve_log_flush(struct serve *s, struct serve_log_lines *l)
{
    if (l->len > 0 && s->log)
        s->log(l->buf, s->log_arg);
    l->len = 0;
}

void serve_log_lines_free(struct serve_log_lines *l)
{
    free(l->buf);
    *l = (struct serve_log_lines){0};
}
