/*
 * test_event.c - a transfer's events (include/rpc2/event.h) and cancelling
 * a running transfer, end to end over loopback: a server context and a
 * client context in this process, each running its own loop on a thread,
 * move real files through the public API only.
 *
 * What these show: the sequence of events at both ends for fetch and
 * store, piggybacked and streamed, on success and for each way a transfer
 * fails (no such file, the server's end failing, the call's time limit,
 * a cancel), checked field by field; a cancel from the client's callback,
 * from the server's callback and from another thread ends both ends, leaves
 * no temporary file at either, and the connection takes the next call.
 *
 * Waits are bounded polls; no sleep decides an outcome. The server paces
 * its source (rate_max_bps) so that the big file streams for about a
 * second: long enough to be cancelled in the middle.
 */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <rpc2/event.h>
#include <rpc2/rpc2.h>
#include <rpc2/se.h>
#include <rpc2/sftp.h>

#include "procs.h"
#include "check_run.h"

#define SUBSYS 0x45564e54u
#define PROC_FETCH 1
#define PROC_STORE 2
#define PIGGY_MAX 1000u
#define SMALL 500           /* piggybacked */
#define MEDIUM (256 * 1024) /* streamed */
#define BIG (16 * 1024 * 1024)
#define RATE (16u * 1024 * 1024) /* the server's pace: BIG takes about a second */
#define MAX_EVENTS 4096

/* ---- what one end saw --------------------------------------------------- */

struct seen {
    pthread_mutex_t lock;
    int n;
    struct rpc2_event ev[MAX_EVENTS];
    unsigned char sum[16]; /* the last STOP's checksum */
    char sum_type[16];     /* ... and its type */
    char error_name[64], error_description[256]; /* the last ERROR's */
    int cancel_on;         /* cancel at the first event of this type (0: never) */
    uint64_t cancel_after; /* ... with at least this many bytes moved */
    int cancelled;
};

static void seen_reset(struct seen *s)
{
    pthread_mutex_lock(&s->lock);
    s->n = 0;
    s->cancel_on = 0;
    s->cancel_after = 0;
    s->cancelled = 0;
    pthread_mutex_unlock(&s->lock);
}

static int record(const struct rpc2_event *ev, void *arg)
{
    struct seen *s = arg;
    int rc = RPC2_EVENT_CONTINUE;
    ck_assert_uint_ge(ev->struct_size, sizeof *ev);
    pthread_mutex_lock(&s->lock);
    if (s->n < MAX_EVENTS) {
        s->ev[s->n] = *ev;
        s->ev[s->n].policy = NULL; /* strings live only during the call */
        s->ev[s->n].error_name = s->ev[s->n].error_description = NULL;
        s->ev[s->n].desc = NULL;
        if (ev->checksum && ev->checksum_len == 16)
            memcpy(s->sum, ev->checksum, 16);
        if (ev->type == RPC2_EVENT_STOP)
            snprintf(s->sum_type, sizeof s->sum_type, "%s",
                     ev->checksum_type ? ev->checksum_type : "");
        if (ev->type == RPC2_EVENT_ERROR) {
            snprintf(s->error_name, sizeof s->error_name, "%s",
                     ev->error_name ? ev->error_name : "");
            snprintf(s->error_description, sizeof s->error_description, "%s",
                     ev->error_description ? ev->error_description : "");
        }
        s->ev[s->n].checksum = NULL;
        s->n++;
    }
    if (s->cancel_on && (int)ev->type == s->cancel_on && ev->file_bytes >= s->cancel_after &&
        !s->cancelled) {
        s->cancelled = 1;
        rc = RPC2_EVENT_CANCEL;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* The events as letters: I S N T E P (R for RETR). */
static void order(struct seen *s, char *out, size_t cap)
{
    static const char letters[] = "?ISNTPER";
    size_t k = 0;
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->n && k + 1 < cap; i++)
        out[k++] = letters[s->ev[i].type];
    out[k] = '\0';
    pthread_mutex_unlock(&s->lock);
}

static void assert_order(struct seen *s, const char *pattern, const char *what)
{
    char got[MAX_EVENTS + 1];
    regex_t re;
    order(s, got, sizeof got);
    ck_assert_int_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    int rc = regexec(&re, got, 0, NULL, 0);
    regfree(&re);
    ck_assert_msg(rc == 0, "%s: events %.80s, want %s", what, got, pattern);
}

/* The last event of a type (a copy), or NULL. */
static int last_of(struct seen *s, int type, struct rpc2_event *out)
{
    int found = 0;
    pthread_mutex_lock(&s->lock);
    for (int i = s->n - 1; i >= 0 && !found; i--)
        if ((int)s->ev[i].type == type) {
            *out = s->ev[i];
            found = 1;
        }
    pthread_mutex_unlock(&s->lock);
    return found;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits (bounded) until s has an event of this type. */
static int wait_for(struct seen *s, int type, int timeout_ms)
{
    struct rpc2_event ev;
    for (int64_t end = now_ms() + timeout_ms; now_ms() < end; usleep(2000))
        if (last_of(s, type, &ev))
            return 1;
    return 0;
}

/* ---- the server ------------------------------------------------------------ */

static char dir[256], srv_dir[300], cli_dir[300];
static struct seen server_seen, client_seen;
static rpc2_ctx *srv_ctx, *cli_ctx;
static pthread_t srv_thread, cli_thread;
static rpc2_conn *conn;
static int server_status; /* what the last server transfer's handler heard */

struct srv_xfer {
    struct rpc2_se_desc d;
    char path[600];
};

static void srv_done(rpc2_request *req, int status, void *arg)
{
    struct srv_xfer *t = arg;
    __atomic_store_n(&server_status, status ? status : 1, __ATOMIC_SEQ_CST);
    rpc2_reply(req, status);
    free(t);
}

static void srv_transfer(rpc2_request *req, char *name, enum rpc2_se_direction dir_)
{
    struct srv_xfer *t = calloc(1, sizeof *t);
    ck_assert_ptr_nonnull(t);
    rpc2_se_desc_init(&t->d, dir_);
    snprintf(t->path, sizeof t->path, "%s/%s", srv_dir, name);
    t->d.file_kind = RPC2_SE_FILE_NAME;
    t->d.file.name.path = t->path;
    t->d.file.name.mode = 0644;
    t->d.file.name.atomic = 1;
    t->d.event = record;
    t->d.event_arg = &server_seen;
    t->d.stats_interval_us = 1000;
    int rc = rpc2_se_init(req, &t->d);
    if (rc == 0)
        rc = rpc2_se_check_async(req, srv_done, t);
    if (rc != 0) {
        __atomic_store_n(&server_status, rc, __ATOMIC_SEQ_CST);
        rpc2_reply(req, rc);
        free(t);
    }
}

static void h_fetch(rpc2_request *req, void *args, void *result, void *arg)
{
    (void)result, (void)arg;
    srv_transfer(req, *(char **)args, RPC2_SE_FETCH);
}

static void h_store(rpc2_request *req, void *args, void *result, void *arg)
{
    (void)result, (void)arg;
    srv_transfer(req, *(char **)args, RPC2_SE_STORE);
}

static void *run_loop(void *arg)
{
    rpc2_ctx_run(arg);
    return NULL;
}

static void write_file(const char *path, size_t len)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    for (size_t i = 0; i < len; i++)
        fputc((int)(i * 7 % 251), f);
    ck_assert_int_eq(fclose(f), 0);
}

static int same_files(const char *a, const char *b)
{
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", a, b);
    return system(cmd) == 0;
}

/* Entries in a directory whose name starts with a dot: temporaries. */
static int temporaries(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)))
        if (e->d_name[0] == '.' && strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static int file_count(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void setup(void)
{
    struct rpc2_params p;
    struct rpc2_sftp_params sp;
    static const struct rpc2_proc procs[] = {
        {PROC_FETCH, (xdrproc_t)xdr_wrapstring, sizeof(char *), NULL, 0, h_fetch, NULL, 0},
        {PROC_STORE, (xdrproc_t)xdr_wrapstring, sizeof(char *), NULL, 0, h_store, NULL, 0},
    };
    snprintf(dir, sizeof dir, "/tmp/test_event.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(srv_dir, sizeof srv_dir, "%s/srv", dir);
    snprintf(cli_dir, sizeof cli_dir, "%s/cli", dir);
    ck_assert_int_eq(mkdir(srv_dir, 0700), 0);
    ck_assert_int_eq(mkdir(cli_dir, 0700), 0);
    procs_children_reset();
    pthread_mutex_init(&server_seen.lock, NULL);
    pthread_mutex_init(&client_seen.lock, NULL);
    seen_reset(&server_seen);
    seen_reset(&client_seen);

    rpc2_params_init(&p);
    p.listen[0] = "127.0.0.1:0";
    p.n_listen = 1;
    ck_assert_int_eq(rpc2_ctx_new(&p, &srv_ctx), 0);
    rpc2_sftp_params_init(&sp);
    sp.piggyback_max = PIGGY_MAX;
    sp.rate_max_bps = RATE;
    ck_assert_int_eq(rpc2_sftp_activate(srv_ctx, &sp), 0);
    ck_assert_int_eq(rpc2_export(srv_ctx, SUBSYS, procs, 2, NULL), 0);

    rpc2_params_init(&p);
    p.dead_peer_us = 5000000;
    ck_assert_int_eq(rpc2_ctx_new(&p, &cli_ctx), 0);
    rpc2_sftp_params_init(&sp);
    sp.piggyback_max = PIGGY_MAX;
    sp.rate_max_bps = RATE;
    ck_assert_int_eq(rpc2_sftp_activate(cli_ctx, &sp), 0);

    ck_assert_int_eq(pthread_create(&srv_thread, NULL, run_loop, srv_ctx), 0);
    char port[16];
    snprintf(port, sizeof port, "%d", rpc2_ctx_port(srv_ctx));
    struct rpc2_bind_params bp = {
        .host = "127.0.0.1", .port = port, .subsystem = SUBSYS, .se_type = RPC2_SE_SFTP};
    /* bound on this thread, which runs the client's loop until then */
    ck_assert_int_eq(rpc2_bind(cli_ctx, &bp, &conn), 0);
    ck_assert_int_eq(pthread_create(&cli_thread, NULL, run_loop, cli_ctx), 0);
    /* Until its thread runs the loop, a cancel (no call in flight) is refused
     * here; from then on it is handed to the loop. Calls wait for that. */
    for (int i = 0; i < 5000 && rpc2_cancel(conn) != 0; i++)
        usleep(1000);
    ck_assert_int_eq(rpc2_cancel(conn), 0);

    char path[400];
    snprintf(path, sizeof path, "%s/small", srv_dir);
    write_file(path, SMALL);
    snprintf(path, sizeof path, "%s/medium", srv_dir);
    write_file(path, MEDIUM);
    snprintf(path, sizeof path, "%s/big", srv_dir);
    write_file(path, BIG);
}

static void teardown(void)
{
    procs_children_stop_leftovers();
    rpc2_unbind(conn);
    rpc2_ctx_stop(cli_ctx);
    rpc2_ctx_stop(srv_ctx);
    pthread_join(cli_thread, NULL);
    pthread_join(srv_thread, NULL);
    rpc2_ctx_free(cli_ctx);
    rpc2_ctx_free(srv_ctx);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- the client ------------------------------------------------------------ */

struct client_xfer {
    struct rpc2_se_desc d;
    char local[400];
    int fd;
    uint32_t timeout_us;
};

static void client_desc(struct client_xfer *c, enum rpc2_se_direction direction, const char *local)
{
    memset(c, 0, sizeof *c);
    rpc2_se_desc_init(&c->d, direction);
    snprintf(c->local, sizeof c->local, "%s/%s", direction == RPC2_SE_FETCH ? cli_dir : srv_dir,
             local);
    c->d.file_kind = RPC2_SE_FILE_NAME;
    c->d.file.name.path = c->local;
    c->d.file.name.mode = 0644;
    c->d.file.name.atomic = 1;
    c->d.event = record;
    c->d.event_arg = &client_seen;
    c->d.stats_interval_us = 1000;
}

static int call(uint32_t proc, const char *remote, struct client_xfer *c)
{
    char *name = (char *)remote;
    struct rpc2_call_opts opts = {.timeout_us = c->timeout_us, .se = &c->d};
    __atomic_store_n(&server_status, 0, __ATOMIC_SEQ_CST);
    return rpc2_call(conn, proc, (xdrproc_t)xdr_wrapstring, &name, NULL, NULL, &opts);
}

/* Waits (bounded) for the server's handler to hear its transfer's end. */
static int server_heard(void)
{
    for (int64_t end = now_ms() + 15000; now_ms() < end; usleep(2000)) {
        int s = __atomic_load_n(&server_status, __ATOMIC_SEQ_CST);
        if (s)
            return s == 1 ? 0 : s;
    }
    ck_abort_msg("the server's handler never heard its transfer end");
    return 0;
}

/* The fields every STOP of a whole-file success has. */
static void check_success_stop(struct seen *s, int64_t size, int piggybacked, const char *what)
{
    struct rpc2_event p, i;
    ck_assert_msg(last_of(s, RPC2_EVENT_STOP, &p), "%s: no STOP", what);
    ck_assert_msg(last_of(s, RPC2_EVENT_INIT, &i), "%s: no INIT", what);
    ck_assert_int_eq(p.result, 0);
    ck_assert_int_eq(p.start_byte, 0);
    ck_assert_int_eq(p.end_byte, -1);
    ck_assert_uint_eq(p.file_bytes, (uint64_t)size);
    ck_assert_int_eq(p.size, size);
    ck_assert_int_eq(p.piggybacked, piggybacked);
    ck_assert_int_eq(p.checksum_len, 16);
    ck_assert_ptr_nonnull(p.checksum_type);
    ck_assert_str_eq(p.checksum_type, "xxh128");
    ck_assert_int_eq(i.file_bytes, 0);
}

/* INIT and SESSION of a whole-file transfer: which end, the range, nothing
 * moved yet; SESSION says how the bytes travel. The source knows the size
 * at INIT. Every event says whether resume was asked (here: no). */
static void check_opening(struct seen *s, enum rpc2_se_direction dir_, int is_client, int64_t size,
                          int piggybacked, const char *what)
{
    struct rpc2_event i, n;
    int source = is_client == (dir_ == RPC2_SE_STORE);
    ck_assert_msg(last_of(s, RPC2_EVENT_INIT, &i), "%s: no INIT", what);
    ck_assert_msg(last_of(s, RPC2_EVENT_SESSION, &n), "%s: no SESSION", what);
    ck_assert_int_eq(i.direction, (int)dir_);
    ck_assert_int_eq(i.is_client, is_client);
    ck_assert_int_eq(i.is_source, source);
    ck_assert_int_eq(i.start_byte, 0);
    ck_assert_int_eq(i.end_byte, -1);
    ck_assert_uint_eq(i.file_bytes, 0);
    ck_assert_int_eq(i.result, 0);
    ck_assert_int_eq(i.resume, 0);
    if (source)
        ck_assert_int_eq(i.size, size);
    ck_assert_int_eq(n.piggybacked, piggybacked);
    ck_assert_int_eq(n.is_source, source);
    ck_assert_uint_eq(n.file_bytes, 0);
    ck_assert_uint_ge(n.elapsed_us, i.elapsed_us);
    pthread_mutex_lock(&s->lock);
    for (int k = 0; k < s->n; k++) {
        ck_assert_int_eq(s->ev[k].resume, 0);
        ck_assert_int_eq(s->ev[k].started_over, 0);
        if (s->ev[k].type == RPC2_EVENT_NOTIFICATION) {
            ck_assert_uint_gt(s->ev[k].packet_size, 0);
            ck_assert_uint_gt(s->ev[k].window, 0);
        }
    }
    pthread_mutex_unlock(&s->lock);
}

static void check_stats_grow(struct seen *s, int64_t size)
{
    uint64_t last = 0;
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->n; i++) {
        if (s->ev[i].type != RPC2_EVENT_STATS)
            continue;
        ck_assert_uint_ge(s->ev[i].file_bytes, last);
        ck_assert_uint_le(s->ev[i].file_bytes, (uint64_t)size);
        last = s->ev[i].file_bytes;
    }
    pthread_mutex_unlock(&s->lock);
}

/* ---- success ---------------------------------------------------------------- */

static void success(uint32_t proc, enum rpc2_se_direction dir_, const char *name, int64_t size,
                    int piggy)
{
    struct client_xfer c;
    char src[400], dst[400];
    client_desc(&c, dir_, dir_ == RPC2_SE_FETCH ? name : "stored");
    /* a store sends the client's copy of a file the server also has */
    if (dir_ == RPC2_SE_STORE)
        snprintf(c.local, sizeof c.local, "%s/%s", srv_dir, name);
    c.d.file.name.atomic = dir_ == RPC2_SE_FETCH;
    ck_assert_int_eq(call(proc, dir_ == RPC2_SE_FETCH ? name : "stored", &c), 0);
    ck_assert_int_eq(server_heard(), 0);
    ck_assert_msg(wait_for(&server_seen, RPC2_EVENT_STOP, 5000), "server STOP");
    const char *want = piggy ? "^ISP$" : "^ISNT*P$";
    assert_order(&client_seen, want, "client");
    assert_order(&server_seen, want, "server");
    check_success_stop(&client_seen, size, piggy, "client");
    check_success_stop(&server_seen, size, piggy, "server");
    check_stats_grow(&client_seen, size);
    check_stats_grow(&server_seen, size);
    check_opening(&client_seen, dir_, 1, size, piggy, "client");
    check_opening(&server_seen, dir_, 0, size, piggy, "server");
    ck_assert_int_eq(memcmp(client_seen.sum, server_seen.sum, 16), 0);
    struct rpc2_event p;
    ck_assert(last_of(&client_seen, RPC2_EVENT_STOP, &p));
    ck_assert_int_eq(p.call_status, 0);
    ck_assert_int_eq(p.is_client, 1);
    ck_assert_int_eq(p.is_source, dir_ == RPC2_SE_STORE);
    ck_assert_int_eq(p.direction, (int)dir_);
    ck_assert(last_of(&server_seen, RPC2_EVENT_STOP, &p));
    ck_assert_int_eq(p.is_client, 0);
    ck_assert_int_eq(p.is_source, dir_ == RPC2_SE_FETCH);
    if (!piggy) {
        ck_assert(last_of(&client_seen, RPC2_EVENT_NOTIFICATION, &p));
        ck_assert_uint_gt(p.packet_size, 0);
        ck_assert_uint_gt(p.window, 0);
    }
    snprintf(src, sizeof src, "%s/%s", srv_dir, name);
    snprintf(dst, sizeof dst, "%s/%s", dir_ == RPC2_SE_FETCH ? cli_dir : srv_dir,
             dir_ == RPC2_SE_FETCH ? name : "stored");
    ck_assert(same_files(src, dst));
}

/* Fetch and store, piggybacked and streamed. */
static const struct {
    uint32_t proc;
    enum rpc2_se_direction direction;
    const char *name;
    int64_t size;
    int piggybacked;
} successes[] = {
    {PROC_FETCH, RPC2_SE_FETCH, "small", SMALL, 1},
    {PROC_FETCH, RPC2_SE_FETCH, "medium", MEDIUM, 0},
    {PROC_STORE, RPC2_SE_STORE, "small", SMALL, 1},
    {PROC_STORE, RPC2_SE_STORE, "medium", MEDIUM, 0},
};

START_TEST(test_success)
{
    success(successes[_i].proc, successes[_i].direction, successes[_i].name, successes[_i].size,
            successes[_i].piggybacked);
}
END_TEST

/* A range: StartByte and EndByte say it, Size is its length. */
START_TEST(test_range_fields)
{
    struct client_xfer c;
    struct rpc2_event p;
    client_desc(&c, RPC2_SE_STORE, "medium");
    c.d.seek_offset = 1000;
    c.d.quota = 5000;
    ck_assert_int_eq(call(PROC_STORE, "ranged", &c), 0);
    ck_assert(last_of(&client_seen, RPC2_EVENT_STOP, &p));
    ck_assert_int_eq(p.start_byte, 1000);
    ck_assert_int_eq(p.end_byte, 5999);
    ck_assert_int_eq(p.size, 5000);
    ck_assert_uint_eq(p.file_bytes, 5000);
    ck_assert_int_eq(p.result, 0);
}
END_TEST

/* ---- failures --------------------------------------------------------------- */

/* The client's end opened, the server's could not: ERROR then STOP, nothing
 * left behind, the connection usable. */
START_TEST(test_no_such_file)
{
    struct client_xfer c;
    struct rpc2_event e, p;
    client_desc(&c, RPC2_SE_FETCH, "got");
    int rc = call(PROC_FETCH, "missing", &c);
    ck_assert_int_eq(rc, RPC2_ENOENT);
    assert_order(&client_seen, "^IEP$", "client");
    ck_assert(last_of(&client_seen, RPC2_EVENT_ERROR, &e));
    ck_assert(last_of(&client_seen, RPC2_EVENT_STOP, &p));
    ck_assert_int_ne(p.result, 0);
    ck_assert_int_eq(e.result, p.result);
    ck_assert_str_eq(client_seen.error_name, rpc2_errname(e.result));
    ck_assert_str_eq(client_seen.error_description, rpc2_strerror(e.result));
    ck_assert_int_eq(p.call_status, RPC2_ENOENT);
    ck_assert_int_eq(p.checksum_len, 0);
    ck_assert_uint_eq(p.file_bytes, 0);
    ck_assert_int_eq(file_count(cli_dir), 0);
    assert_order(&server_seen, "^$", "server (its end never opened)");
    seen_reset(&client_seen);
    success(PROC_FETCH, RPC2_SE_FETCH, "small", SMALL, 1);
}
END_TEST

/* The call's time limit ends a streamed fetch: ETIMEDOUT at the client, the
 * server's end told and ended, no temporary at either end. */
START_TEST(test_timeout)
{
    struct client_xfer c;
    struct rpc2_event p;
    client_desc(&c, RPC2_SE_FETCH, "big");
    c.timeout_us = 200000;
    ck_assert_int_eq(call(PROC_FETCH, "big", &c), RPC2_ETIMEDOUT);
    /* a loaded machine may time out before the first DATA */
    assert_order(&client_seen, "^I(SNT*)?EP$", "client");
    ck_assert(last_of(&client_seen, RPC2_EVENT_STOP, &p));
    ck_assert_int_eq(p.result, RPC2_ETIMEDOUT);
    ck_assert_uint_lt(p.file_bytes, BIG);
    ck_assert_int_lt(server_heard(), 0);
    ck_assert(wait_for(&server_seen, RPC2_EVENT_STOP, 5000));
    assert_order(&server_seen, "^I(SNT*)?EP$", "server");
    ck_assert_int_eq(file_count(cli_dir), 0);
}
END_TEST

/* Data damaged past the datagram check (the fault proxy reseals it): the
 * end-to-end checksum fails the fetch, with RPC2_EINTEGRITY at the end. */
START_TEST(test_checksum_mismatch)
{
    char proxy[PATH_MAX], server[32], port[16];
    const char *argv[] = {proxy,  "--listen",           "127.0.0.1:0", "--server",
                          server, "--corrupt-resealed", "1",           NULL};
    pid_t pid;
    rpc2_conn *via;
    struct client_xfer c;
    struct rpc2_event p;
    snprintf(proxy, sizeof proxy, "%s/tests/faultproxy", procs_builddir());
    snprintf(server, sizeof server, "127.0.0.1:%d", rpc2_ctx_port(srv_ctx));
    int proxy_port = procs_child_spawn(argv, "faultproxy listening on", &pid);
    ck_assert_int_gt(proxy_port, 0);
    snprintf(port, sizeof port, "%d", proxy_port);
    struct rpc2_bind_params bp = {
        .host = "127.0.0.1", .port = port, .subsystem = SUBSYS, .se_type = RPC2_SE_SFTP};
    ck_assert_int_eq(rpc2_bind(cli_ctx, &bp, &via), 0);
    rpc2_conn *direct = conn;
    conn = via;
    client_desc(&c, RPC2_SE_FETCH, "medium");
    int rc = call(PROC_FETCH, "medium", &c);
    conn = direct;
    ck_assert_int_eq(rc, RPC2_EINTEGRITY);
    ck_assert_int_eq(c.d.error, RPC2_EINTEGRITY);
    assert_order(&client_seen, "^ISNT*EP$", "client");
    ck_assert(last_of(&client_seen, RPC2_EVENT_STOP, &p));
    ck_assert_int_eq(p.result, RPC2_EINTEGRITY);
    ck_assert_int_eq(p.call_status, RPC2_EINTEGRITY);
    ck_assert_int_eq(p.checksum_len, 0);
    ck_assert_int_eq(file_count(cli_dir), 0);
    rpc2_unbind(via);
    procs_child_stop(pid, SIGTERM);
}
END_TEST

/* A named sum that differs from the one the descriptor expects: ERROR and
 * STOP say RPC2_EINTEGRITY, and STOP carries the sum of the bytes that
 * came (what a program shows beside the one it expected), by its name. */
START_TEST(test_expected_sum_differs)
{
    struct client_xfer c;
    struct rpc2_event e, p;
    client_desc(&c, RPC2_SE_FETCH, "medium");
    c.d.sum_type = RPC2_SE_SUM_MD5;
    c.d.expect_sum_len = 16; /* all zero: surely not the file's md5 */
    ck_assert_int_eq(call(PROC_FETCH, "medium", &c), RPC2_EINTEGRITY);
    assert_order(&client_seen, "^ISNT*EP$", "client");
    ck_assert(last_of(&client_seen, RPC2_EVENT_ERROR, &e));
    ck_assert(last_of(&client_seen, RPC2_EVENT_STOP, &p));
    ck_assert_int_eq(e.result, RPC2_EINTEGRITY);
    ck_assert_str_eq(client_seen.error_name, "RPC2_EINTEGRITY");
    ck_assert_int_eq(p.result, RPC2_EINTEGRITY);
    ck_assert_int_eq(p.checksum_len, 16);
    ck_assert_str_eq(client_seen.sum_type, "md5");
    ck_assert_int_eq(memcmp(client_seen.sum, c.d.sum, 16), 0);
    ck_assert_int_ne(memcmp(client_seen.sum, c.d.expect_sum, 16), 0);
    ck_assert_int_eq(file_count(cli_dir), 0);
}
END_TEST

/* Resume asked: every event says so; STOP says whether an earlier
 * attempt's partial was there but not used (StartedOver) and why. */
START_TEST(test_resume_fields)
{
    struct client_xfer c;
    struct rpc2_event i, p;
    char part[400];
    client_desc(&c, RPC2_SE_FETCH, "resumed");
    c.d.resume = 1;
    ck_assert_int_eq(call(PROC_FETCH, "medium", &c), 0);
    ck_assert(last_of(&client_seen, RPC2_EVENT_INIT, &i));
    ck_assert(last_of(&client_seen, RPC2_EVENT_STOP, &p));
    ck_assert_int_eq(i.resume, 1);
    ck_assert_int_eq(p.resume, 1);
    ck_assert_int_eq(p.started_over, 0);
    ck_assert_int_eq(p.start_byte, 0);
    ck_assert_uint_eq(p.file_bytes, MEDIUM);
    /* a partial with no restart points: found, not usable, started over */
    seen_reset(&client_seen);
    snprintf(part, sizeof part, "%s/.again.rcat-part", cli_dir);
    write_file(part, 5000);
    client_desc(&c, RPC2_SE_FETCH, "again");
    c.d.resume = 1;
    ck_assert_int_eq(call(PROC_FETCH, "medium", &c), 0);
    ck_assert(last_of(&client_seen, RPC2_EVENT_STOP, &p));
    ck_assert_int_eq(p.resume, 1);
    ck_assert_int_eq(p.started_over, c.d.resume_started_over);
    ck_assert_int_eq(p.started_over, 1);
    ck_assert_int_eq(p.start_byte, 0);
    ck_assert_uint_eq(p.file_bytes, MEDIUM);
}
END_TEST

/* ---- cancel ---------------------------------------------------------------- */

/* After a cancelled transfer: both ends ended, no temporary, and the
 * connection takes the next call. */
static void after_cancel(const char *what)
{
    struct rpc2_event p;
    ck_assert_int_eq(server_heard(), RPC2_ECANCELED);
    ck_assert_msg(wait_for(&server_seen, RPC2_EVENT_STOP, 5000), "%s: server STOP", what);
    ck_assert(last_of(&server_seen, RPC2_EVENT_STOP, &p));
    ck_assert_int_eq(p.result, RPC2_ECANCELED);
    ck_assert(last_of(&client_seen, RPC2_EVENT_STOP, &p));
    ck_assert_int_ne(p.result, 0);
    ck_assert_int_eq(temporaries(cli_dir), 0);
    ck_assert_int_eq(temporaries(srv_dir), 0);
    seen_reset(&client_seen);
    seen_reset(&server_seen);
    success(PROC_FETCH, RPC2_SE_FETCH, "medium", MEDIUM, 0);
}

START_TEST(test_cancel_fetch_from_callback)
{
    struct client_xfer c;
    struct rpc2_event p;
    client_desc(&c, RPC2_SE_FETCH, "big");
    client_seen.cancel_on = RPC2_EVENT_STATS;
    client_seen.cancel_after = 64 * 1024;
    ck_assert_int_eq(call(PROC_FETCH, "big", &c), RPC2_ECANCELED);
    assert_order(&client_seen, "^ISNT+EP$", "client");
    ck_assert(last_of(&client_seen, RPC2_EVENT_STOP, &p));
    ck_assert_int_eq(p.result, RPC2_ECANCELED);
    ck_assert_uint_lt(p.file_bytes, BIG);
    ck_assert_int_eq(file_count(cli_dir), 0); /* the atomic sink's temporary went */
    after_cancel("fetch cancelled by the client's callback");
}
END_TEST

START_TEST(test_cancel_store_from_callback)
{
    struct client_xfer c;
    client_desc(&c, RPC2_SE_STORE, "big");
    client_seen.cancel_on = RPC2_EVENT_STATS;
    client_seen.cancel_after = 64 * 1024;
    ck_assert_int_eq(call(PROC_STORE, "stored", &c), RPC2_ECANCELED);
    assert_order(&client_seen, "^ISNT+EP$", "client");
    after_cancel("store cancelled by the client's callback");
    char path[400];
    snprintf(path, sizeof path, "%s/stored", srv_dir);
    ck_assert_int_ne(access(path, F_OK), 0); /* never took its name */
}
END_TEST

/* The server's end cancels itself: the client's call fails with the
 * server's error, and nothing is kept. */
START_TEST(test_cancel_at_server)
{
    struct client_xfer c;
    struct rpc2_event p;
    client_desc(&c, RPC2_SE_STORE, "big");
    server_seen.cancel_on = RPC2_EVENT_STATS;
    server_seen.cancel_after = 64 * 1024;
    int rc = call(PROC_STORE, "stored", &c);
    ck_assert_int_lt(rc, 0);
    assert_order(&server_seen, "^ISNT+EP$", "server");
    assert_order(&client_seen, "^ISNT*EP$", "client");
    ck_assert(last_of(&client_seen, RPC2_EVENT_STOP, &p));
    ck_assert_int_ne(p.result, 0);
    ck_assert_int_eq(p.call_status, rc);
    after_cancel("store cancelled by the server's callback");
}
END_TEST

/* Cancelled at INIT: the call fails before anything is sent. */
START_TEST(test_cancel_at_init)
{
    struct client_xfer c;
    struct rpc2_event p;
    client_desc(&c, RPC2_SE_FETCH, "big");
    client_seen.cancel_on = RPC2_EVENT_INIT;
    ck_assert_int_eq(call(PROC_FETCH, "big", &c), RPC2_ECANCELED);
    assert_order(&client_seen, "^IEP$", "client");
    ck_assert(last_of(&client_seen, RPC2_EVENT_STOP, &p));
    ck_assert_int_eq(p.result, RPC2_ECANCELED);
    ck_assert_int_eq(file_count(cli_dir), 0);
    assert_order(&server_seen, "^$", "server (never asked)");
    seen_reset(&client_seen);
    success(PROC_FETCH, RPC2_SE_FETCH, "small", SMALL, 1);
}
END_TEST

struct canceller {
    pthread_t t;
    int rc;
};

static void *cancel_when_moving(void *arg)
{
    struct canceller *k = arg;
    k->rc = 1;
    if (wait_for(&client_seen, RPC2_EVENT_STATS, 10000))
        k->rc = rpc2_cancel(conn);
    return NULL;
}

START_TEST(test_cancel_from_another_thread)
{
    struct client_xfer c;
    struct canceller k;
    client_desc(&c, RPC2_SE_FETCH, "big");
    ck_assert_int_eq(pthread_create(&k.t, NULL, cancel_when_moving, &k), 0);
    int rc = call(PROC_FETCH, "big", &c);
    pthread_join(k.t, NULL);
    ck_assert_int_eq(k.rc, 0);
    ck_assert_int_eq(rc, RPC2_ECANCELED);
    assert_order(&client_seen, "^ISNT+EP$", "client");
    ck_assert_int_eq(file_count(cli_dir), 0);
    after_cancel("fetch cancelled from another thread");
}
END_TEST

START_TEST(test_event_names)
{
    ck_assert_str_eq(rpc2_event_name(RPC2_EVENT_INIT), "INIT");
    ck_assert_str_eq(rpc2_event_name(RPC2_EVENT_STOP), "STOP");
    ck_assert_str_eq(rpc2_event_name(RPC2_EVENT_RETRY), "RETR");
    ck_assert_ptr_null(rpc2_event_name(0));
    ck_assert_ptr_null(rpc2_event_name(99));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("event");
    TCase *tc = tcase_create("event");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_event_names);
    tcase_add_loop_test(tc, test_success, 0, sizeof successes / sizeof successes[0]);
    tcase_add_test(tc, test_range_fields);
    tcase_add_test(tc, test_no_such_file);
    tcase_add_test(tc, test_timeout);
    tcase_add_test(tc, test_checksum_mismatch);
    tcase_add_test(tc, test_expected_sum_differs);
    tcase_add_test(tc, test_resume_fields);
    tcase_add_test(tc, test_cancel_fetch_from_callback);
    tcase_add_test(tc, test_cancel_store_from_callback);
    tcase_add_test(tc, test_cancel_at_server);
    tcase_add_test(tc, test_cancel_at_init);
    tcase_add_test(tc, test_cancel_from_another_thread);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(suite());
}
