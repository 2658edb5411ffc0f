/*
 * ratectl.c - rcat's rate options and their live changes (ratectl.h).
 *
 * The FIFO is opened read-write, so it never reports end-of-file when a
 * writer goes (`echo rate 20M > FIFO` opens and closes it each time), and
 * non-blocking, so a partial line waits for its end without stalling the
 * transfer. A change applies at once to the call in flight and to every
 * call after it; a bad line is reported and changes nothing.
 *
 * The rates are the run's total, however many transfers it has in flight:
 * each connection running one (the single call's, and every lane of -j
 * and --split, ratectl_join) gets an equal share, given again whenever a
 * transfer joins or leaves or a line changes the total. A transfer that
 * has not started streaming when its share changes (the library then has
 * nothing to set) gets it from a short timer that tries again until it
 * has: for a few milliseconds a new transfer may run at the whole rate.
 */
#include "ratectl.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


#define LINE_MAX_BYTES 256
#define MEMBERS_MAX 128    /* transfers in flight at once: jobs.c's lanes and more */
#define RETRY_SECONDS 0.01 /* how soon a share the library could not take yet is tried again */

struct member {
    rpc2_conn *conn;
    int pending; /* its share changed and the library has not taken it yet */
};

struct ratectl {
    struct ratectl_config cfg;
    rpc2_conn *const *in_call;
    ratectl_say_fn say;
    struct ev_loop *loop;
    ev_io watch;
    ev_timer retry;
    int fd; /* the FIFO; -1: none */
    int made; /* rcat made the FIFO: it goes at the end */
    int changed; /* a line changed the rates since the start */
    rpc2_conn *applied_to; /* the call's connection that has the latest change */
    struct member members[MEMBERS_MAX];
    size_t n_members;
    char line[LINE_MAX_BYTES];
    size_t len;
};

int ratectl_parse_rate(const char *text, uint64_t *bytes_per_s)
{
    char *end;
    double v;
    double unit = 1;

    *bytes_per_s = 0;
    if (!text || !*text || strcmp(text, "none") == 0)
        return text && *text ? 0 : -1;
    errno = 0;
    v = strtod(text, &end);
    if (errno || end == text || v < 0)
        return -1;
    switch (*end) {
    case 'k': case 'K': unit = 1e3; end++; break;
    case 'm': case 'M': unit = 1e6; end++; break;
    case 'g': case 'G': unit = 1e9; end++; break;
    case 't': case 'T': unit = 1e12; end++; break;
    default: break;
    }
    if (*end != '\0' && strcmp(end, "bit") != 0 && strcmp(end, "bps") != 0)
        return -1;
    v = v * unit / 8;
    if (v > 1e15)
        return -1;
    *bytes_per_s = (uint64_t)v;
    if (*bytes_per_s == 0 && v > 0)
        *bytes_per_s = 1;
    return 0;
}

int ratectl_parse_policies(const char *text, uint32_t *mask)
{
    char buf[128], *save = NULL, *tok;
    int policy;

    *mask = 0;
    if (!text || strlen(text) >= sizeof buf)
        return -1;
    strcpy(buf, text);
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        policy = rpc2_sftp_policy_of(tok);
        if (policy <= 0)
            return -1;
        *mask |= 1u << policy;
    }
    return *mask ? 0 : -1;
}

int ratectl_apply_line(struct ratectl_config *c, const char *line)
{
    char key[32], value[64];
    struct ratectl_config next = *c;
    int policy;

    if (sscanf(line, " %31s %63s", key, value) != 2)
        return -1;
    if (strcmp(key, "rate") == 0) {
        if (ratectl_parse_rate(value, &next.rate_bps) < 0)
            return -1;
    } else if (strcmp(key, "min-rate") == 0) {
        if (ratectl_parse_rate(value, &next.min_rate_bps) < 0)
            return -1;
    } else if (strcmp(key, "policy") == 0) {
        policy = rpc2_sftp_policy_of(value);
        if (policy < 0)
            return -1;
        next.policy = (uint32_t)policy;
    } else {
        return -1;
    }
    *c = next;
    return 0;
}

void ratectl_params(const struct ratectl_config *c, struct rpc2_sftp_params *p)
{
    p->policy = c->policy;
    p->rate_bps = c->rate_bps;
    p->min_rate_bps = c->min_rate_bps;
}

/* The transfers that share the rates: the members, and the single call in
 * flight when it is not one of them. */
static size_t sharers(const struct ratectl *r)
{
    size_t n = r->n_members;

    if (*r->in_call) {
        n++;
        for (size_t i = 0; i < r->n_members; i++)
            if (r->members[i].conn == *r->in_call)
                n--;
    }
    return n ? n : 1;
}

/* One transfer's share of a total rate: 0 (none) stays none. */
static uint64_t share_of(uint64_t total, size_t n)
{
    uint64_t each = total / n;

    return total && !each ? 1 : each;
}

static struct rpc2_sftp_rate current_share(const struct ratectl *r)
{
    size_t n = sharers(r);

    return (struct rpc2_sftp_rate){r->cfg.policy, share_of(r->cfg.rate_bps, n),
                                   share_of(r->cfg.min_rate_bps, n)};
}

/* Every member gets the current share now, or from the timer once its
 * transfer streams. */
static void reshare(struct ratectl *r)
{
    struct rpc2_sftp_rate rate = current_share(r);
    int waiting = 0;

    for (size_t i = 0; i < r->n_members; i++) {
        struct member *m = &r->members[i];

        m->pending = rpc2_sftp_set_rate(m->conn, &rate) == RPC2_ENOENT;
        waiting |= m->pending;
    }
    if (waiting && !ev_is_active(&r->retry)) {
        ev_timer_set(&r->retry, RETRY_SECONDS, RETRY_SECONDS);
        ev_timer_start(r->loop, &r->retry);
    } else if (!waiting && ev_is_active(&r->retry)) {
        ev_timer_stop(r->loop, &r->retry);
    }
}

static void on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct ratectl *r = w->data;
    struct rpc2_sftp_rate rate = current_share(r);
    int waiting = 0;

    (void)loop, (void)revents;
    for (size_t i = 0; i < r->n_members; i++) {
        struct member *m = &r->members[i];

        if (m->pending)
            m->pending = rpc2_sftp_set_rate(m->conn, &rate) == RPC2_ENOENT;
        waiting |= m->pending;
    }
    if (!waiting)
        ev_timer_stop(r->loop, &r->retry);
}

void ratectl_join(struct ratectl *r, rpc2_conn *conn)
{
    if (!r || !conn || r->n_members == MEMBERS_MAX)
        return;
    for (size_t i = 0; i < r->n_members; i++)
        if (r->members[i].conn == conn)
            return;
    r->members[r->n_members++] = (struct member){.conn = conn};
    r->applied_to = NULL;
    reshare(r);
}

void ratectl_leave(struct ratectl *r, rpc2_conn *conn)
{
    if (!r || !conn)
        return;
    for (size_t i = 0; i < r->n_members; i++) {
        if (r->members[i].conn != conn)
            continue;
        r->members[i] = r->members[--r->n_members];
        r->applied_to = NULL;
        reshare(r);
        return;
    }
}

uint64_t ratectl_rate(const struct ratectl *r, uint64_t configured)
{
    return r ? r->cfg.rate_bps : configured;
}

static void apply(struct ratectl *r, const char *line)
{
    struct rpc2_sftp_rate rate;
    int rc;

    if (ratectl_apply_line(&r->cfg, line) < 0) {
        r->say("rate control: cannot use '%s' (rate|min-rate RATE, policy NAME)", line);
        return;
    }
    r->changed = 1;
    r->applied_to = NULL;
    reshare(r);
    rate = current_share(r);
    rc = *r->in_call ? rpc2_sftp_set_rate(*r->in_call, &rate) : RPC2_ENOENT;
    if (rc == 0)
        r->applied_to = *r->in_call;
    if (rc != 0 && rc != RPC2_ENOENT)
        r->say("rate control: '%s' refused: %s", line, rpc2_strerror(rc));
    else
        r->say("rate control: %s", line);
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    struct ratectl *r = w->data;
    char buf[LINE_MAX_BYTES];
    ssize_t n;

    (void)loop;
    (void)revents;
    while ((n = read(r->fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] != '\n') {
                if (r->len < sizeof r->line - 1)
                    r->line[r->len++] = buf[i];
                continue;
            }
            r->line[r->len] = '\0';
            if (r->len > 0)
                apply(r, r->line);
            r->len = 0;
        }
    }
}

void ratectl_sync(struct ratectl *r)
{
    struct rpc2_sftp_rate rate;

    if (!r || (!r->changed && sharers(r) < 2) || !*r->in_call || r->applied_to == *r->in_call)
        return;
    rate = current_share(r);
    if (rpc2_sftp_set_rate(*r->in_call, &rate) == 0)
        r->applied_to = *r->in_call;
}

struct ratectl *ratectl_start(const struct ratectl_config *c, struct ev_loop *loop,
                              rpc2_conn *const *in_call, ratectl_say_fn say)
{
    struct ratectl *r;
    struct stat st;

    if (!c->control && !c->rate_bps && !c->min_rate_bps)
        return NULL; /* nothing to share, and nothing will change */
    r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->cfg = *c;
    r->in_call = in_call;
    r->say = say;
    r->loop = loop;
    r->fd = -1;
    ev_init(&r->retry, on_retry);
    r->retry.data = r;
    if (!c->control)
        return r;
    int made = mkfifo(c->control, 0600) == 0;

    if (!made && errno != EEXIST) {
        say("rate control: cannot make %s: %s", c->control, strerror(errno));
        free(r);
        return NULL;
    }
    r->made = made;
    r->fd = open(c->control, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (r->fd < 0 || fstat(r->fd, &st) != 0 || !S_ISFIFO(st.st_mode)) {
        say("rate control: %s is not a FIFO rcat can read", c->control);
        if (r->fd >= 0)
            close(r->fd);
        free(r);
        return NULL;
    }
    ev_io_init(&r->watch, on_readable, r->fd, EV_READ);
    r->watch.data = r;
    ev_io_start(loop, &r->watch);
    ev_unref(loop); /* the FIFO alone keeps nothing running */
    return r;
}

void ratectl_stop(struct ratectl *r)
{
    if (!r)
        return;
    ev_timer_stop(r->loop, &r->retry);
    if (r->fd < 0) {
        free(r);
        return;
    }
    ev_ref(r->loop);
    ev_io_stop(r->loop, &r->watch);
    close(r->fd);
    if (r->made)
        unlink(r->cfg.control);
    free(r);
}
