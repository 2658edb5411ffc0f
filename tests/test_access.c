/*
 * test_access.c - unit tests of rcat/access.c: the access file's lines,
 * good and bad (each refusal names the file and line), the rule that turns
 * an identity and a level into rights and a root, which reloads end whose
 * connections, and the file's own checks (a FIFO refused without blocking,
 * a file others may write refused). Last, the library's half of a
 * revocation, rpc2_ctx_end_connections: a revoked identity's connection,
 * bound and idle, ends at once while another identity's goes on.
 */
#include <check.h>
#include <errno.h>
#include <ev.h>
#include <rpc/rpc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "access.h"
#include "check_run.h"

#define RL (ACCESS_READ | ACCESS_LIST)
#define RWL (ACCESS_READ | ACCESS_WRITE | ACCESS_LIST)

static const char good[] = "# IDENTITY RIGHTS ROOT [LOWEST-LEVEL]\n"
                           "alice   rwl  .\n"
                           "\n"
                           "  bob\tr    bob/   # only his own files\n"
                           "carol   rl   pub/x   none\n"
                           "dave    -    .       encrypt\n"
                           "erin    lw   in      auth\n"
                           "frank   dlrw .";

static char err[ACCESS_ERR_MAX];

static void parse_good(struct access *a)
{
    ck_assert_int_eq(access_parse(a, good, strlen(good), "acl", err, sizeof err), 0);
}

START_TEST(good_file)
{
    struct access a;
    const struct access_entry *e;

    parse_good(&a);
    ck_assert_uint_eq(a.n, 6);
    e = access_find(&a, "alice");
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(e->rights, RWL);
    ck_assert_str_eq(e->root, ".");
    ck_assert_int_eq(e->lowest, RPC2_SEC_AUTH);
    e = access_find(&a, "bob");
    ck_assert_uint_eq(e->rights, ACCESS_READ);
    ck_assert_str_eq(e->root, "bob/");
    ck_assert_uint_eq(e->line, 4);
    e = access_find(&a, "carol");
    ck_assert_int_eq(e->lowest, RPC2_SEC_NONE);
    ck_assert_str_eq(e->root, "pub/x");
    e = access_find(&a, "dave");
    ck_assert_uint_eq(e->rights, 0);
    ck_assert_int_eq(e->lowest, RPC2_SEC_ENCRYPT);
    ck_assert_uint_eq(access_find(&a, "erin")->rights, ACCESS_LIST | ACCESS_WRITE);
    ck_assert_uint_eq(access_find(&a, "frank")->rights, RWL | ACCESS_DELETE);
    ck_assert_ptr_null(access_find(&a, "mallory"));
    ck_assert_ptr_null(access_find(&a, ""));
    ck_assert_ptr_null(access_find(&a, "alic"));
    access_dispose(&a);
    ck_assert_int_eq(access_parse(&a, "", 0, "acl", err, sizeof err), 0);
    ck_assert_uint_eq(a.n, 0);
    ck_assert_ptr_null(access_find(&a, "alice"));
    access_dispose(&a);
}
END_TEST

static const struct {
    const char *text;
    size_t line;
    const char *says;
} bad_files[] = {
    {"alice rwl\n", 1, "expected IDENTITY RIGHTS ROOT"},
    {"alice\n", 1, "expected IDENTITY RIGHTS ROOT"},
    {"ok r .\nalice rwl . auth extra\n", 2, "expected IDENTITY RIGHTS ROOT"},
    {"alice rwx .\n", 1, "rights"},
    {"alice rr .\n", 1, "rights"},
    {"alice rwdd .\n", 1, "rights"},
    {"alice -r .\n", 1, "rights"},
    {"alice rwl /srv/files\n", 1, "relative"},
    {"alice rwl ../up\n", 1, "beneath"},
    {"alice rwl a/../b\n", 1, "beneath"},
    {"alice rwl . strong\n", 1, "lowest level"},
    {"alice rwl . NONE\n", 1, "lowest level"},
    {"al\x01ice r .\n", 1, "identity"},
    {"# one\nalice r .\nbob r .\nalice rwl .\n", 4, "already listed on line 2"},
};

START_TEST(bad_lines)
{
    struct access a = {(void *)1, 7};
    char where[32];

    ck_assert_int_eq(
        access_parse(&a, bad_files[_i].text, strlen(bad_files[_i].text), "acl", err, sizeof err),
        RPC2_EINVAL);
    ck_assert_ptr_null(a.e);
    ck_assert_uint_eq(a.n, 0);
    snprintf(where, sizeof where, "acl:%zu: ", bad_files[_i].line);
    ck_assert_msg(!strncmp(err, where, strlen(where)), "\"%s\" does not start \"%s\"", err, where);
    ck_assert_msg(strstr(err, bad_files[_i].says), "\"%s\" does not say \"%s\"", err,
                  bad_files[_i].says);
}
END_TEST

START_TEST(nul_and_long_identity)
{
    struct access a;
    char text[600];

    ck_assert_int_eq(access_parse(&a, "alice r .\0\n", 11, "acl", err, sizeof err), RPC2_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "NUL"));
    memset(text, 'x', 256);
    strcpy(text + 256, " r .\n");
    ck_assert_int_eq(access_parse(&a, text, strlen(text), "acl", err, sizeof err), RPC2_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "identity"));
    memset(text, 'x', 255); /* 255 bytes: the longest name */
    strcpy(text + 255, " r .\n");
    ck_assert_int_eq(access_parse(&a, text, strlen(text), "acl", err, sizeof err), 0);
    ck_assert_uint_eq(a.n, 1);
    access_dispose(&a);
}
END_TEST

/* ---- the rule ------------------------------------------------------------- */

static const struct {
    int no_file; /* no access file: the defaults for all */
    const char *identity;
    enum rpc2_security level;
    enum access_verdict verdict;
    unsigned rights;
    const char *root;
} decisions[] = {
    {1, "alice", RPC2_SEC_ENCRYPT, ACCESS_GRANTED, RL, "."},
    {1, "", RPC2_SEC_NONE, ACCESS_GRANTED, RL, "."},
    {0, "alice", RPC2_SEC_AUTH, ACCESS_GRANTED, RWL, "."},
    {0, "alice", RPC2_SEC_ENCRYPT, ACCESS_GRANTED, RWL, "."},
    {0, "alice", RPC2_SEC_NONE, ACCESS_TOO_LOW, 0, "."}, /* only claimed: refused */
    {0, "bob", RPC2_SEC_AUTH, ACCESS_GRANTED, ACCESS_READ, "bob/"},
    {0, "carol", RPC2_SEC_NONE, ACCESS_GRANTED, RL, "pub/x"},
    {0, "carol", RPC2_SEC_ENCRYPT, ACCESS_GRANTED, RL, "pub/x"},
    {0, "dave", RPC2_SEC_AUTH, ACCESS_TOO_LOW, 0, "."},
    {0, "dave", RPC2_SEC_ENCRYPT, ACCESS_GRANTED, 0, "."},
    {0, "mallory", RPC2_SEC_AUTH, ACCESS_UNLISTED, 0, "."}, /* a key, but no line */
    {0, "mallory", RPC2_SEC_NONE, ACCESS_GRANTED, RL, "."}, /* anonymous */
    {0, "rcat/1.0", RPC2_SEC_NONE, ACCESS_GRANTED, RL, "."},
    {0, NULL, RPC2_SEC_NONE, ACCESS_GRANTED, RL, "."},
};

START_TEST(decide_table)
{
    struct access a;
    struct access_grant g;

    parse_good(&a);
    ck_assert_int_eq(access_decide(decisions[_i].no_file ? NULL : &a, decisions[_i].identity,
                                   decisions[_i].level, RL, &g),
                     decisions[_i].verdict);
    ck_assert_uint_eq(g.rights, decisions[_i].rights);
    ck_assert_str_eq(g.root, decisions[_i].root);
    access_dispose(&a);
}
END_TEST

/* A reload ends a connection that loses a right or whose root moves;
 * one that keeps or gains goes on. */
START_TEST(narrowed_by_reload)
{
    static const char after[] = "alice rw  .\n"     /* lost l */
                                "bob   rl  bob/\n"  /* gained l */
                                "carol rl  pub/x\n" /* none no longer allowed */
                                "dave  r   .  encrypt\n"
                                "erin  lw  elsewhere\n"; /* moved */
    struct access a, b;

    parse_good(&a);
    ck_assert_int_eq(access_parse(&b, after, strlen(after), "acl", err, sizeof err), 0);
    ck_assert(access_narrowed(&a, &b, "alice", RPC2_SEC_AUTH, RL));
    ck_assert(!access_narrowed(&a, &b, "bob", RPC2_SEC_AUTH, RL));
    ck_assert(access_narrowed(&a, &b, "carol", RPC2_SEC_NONE, RL));
    ck_assert(!access_narrowed(&a, &b, "carol", RPC2_SEC_AUTH, RL));
    ck_assert(!access_narrowed(&a, &b, "dave", RPC2_SEC_ENCRYPT, RL));
    ck_assert(access_narrowed(&a, &b, "erin", RPC2_SEC_AUTH, RL));
    ck_assert(!access_narrowed(&a, &b, "rcat/1.0", RPC2_SEC_NONE, RL));
    ck_assert(!access_narrowed(&a, &a, "alice", RPC2_SEC_AUTH, RL));
    access_dispose(&b);
    ck_assert_int_eq(access_parse(&b, "bob r bob/\n", 11, "acl", err, sizeof err), 0);
    ck_assert(access_narrowed(&a, &b, "alice", RPC2_SEC_ENCRYPT, RL)); /* removed */
    ck_assert(!access_narrowed(&a, &b, "bob", RPC2_SEC_AUTH, RL));
    access_dispose(&b);
    access_dispose(&a);
}
END_TEST

/* ---- the file ---------------------------------------------------------------- */

static char dir[64], path[128];

static void setup(void)
{
    strcpy(dir, "/tmp/test_access.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/access", dir);
}

static void teardown(void)
{
    unlink(path);
    rmdir(dir);
}

static void write_file(const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");

    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(chmod(path, mode), 0);
}

START_TEST(load_file)
{
    struct access a;

    write_file(good, 0644); /* no secret in it: anyone may read it */
    ck_assert_int_eq(access_load(&a, path, err, sizeof err), 0);
    ck_assert_uint_eq(a.n, 6);
    access_dispose(&a);
    write_file(good, 0664);
    ck_assert_int_eq(access_load(&a, path, err, sizeof err), RPC2_EACCES);
    ck_assert_ptr_nonnull(strstr(err, "writable by group or others"));
    ck_assert_ptr_nonnull(strstr(err, path));
    write_file("alice rwl .\nbob\n", 0600);
    ck_assert_int_eq(access_load(&a, path, err, sizeof err), RPC2_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, ":2: "));
    unlink(path);
    ck_assert_int_eq(access_load(&a, path, err, sizeof err), RPC2_ENOENT);
    ck_assert_ptr_nonnull(strstr(err, path));
    ck_assert_int_eq(access_load(&a, dir, err, sizeof err), RPC2_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
}
END_TEST

/* A FIFO at the path: refused at once (Check's timeout fails a hang). */
START_TEST(load_fifo)
{
    struct access a;

    ck_assert_int_eq(mkfifo(path, 0600), 0);
    ck_assert_int_eq(access_load(&a, path, err, sizeof err), RPC2_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
}
END_TEST

/* ---- rpc2_ctx_end_connections --------------------------------------------------- */

#define SUBSYS 77

static int secret_of(const char *identity, size_t len, unsigned char secret[RPC2_SECRET_BYTES],
                     void *arg)
{
    (void)arg;
    if (len == 5 && !memcmp(identity, "alice", 5))
        memset(secret, 1, RPC2_SECRET_BYTES);
    else if (len == 3 && !memcmp(identity, "bob", 3))
        memset(secret, 2, RPC2_SECRET_BYTES);
    else
        return RPC2_ENOENT;
    return 0;
}

static bool_t xdr_nothing(XDR *x, void *p)
{
    (void)x, (void)p;
    return TRUE;
}

static void ping(rpc2_request *req, void *args, void *result, void *arg)
{
    (void)args, (void)result, (void)arg;
    rpc2_reply(req, 0);
}

/* Counts what it was asked about; ends alice's. */
static int end_alice(const char *identity, enum rpc2_security level, void *arg)
{
    ck_assert_int_eq(level, RPC2_SEC_AUTH);
    ++*(int *)arg;
    return !strcmp(identity, "alice");
}

static rpc2_conn *bind_as(rpc2_ctx *client, int port, const char *identity, int fill)
{
    unsigned char secret[RPC2_SECRET_BYTES];
    char service[8];
    rpc2_conn *c = NULL;

    memset(secret, fill, sizeof secret);
    snprintf(service, sizeof service, "%d", port);
    struct rpc2_bind_params bp = {.host = "127.0.0.1",
                                  .port = service,
                                  .subsystem = SUBSYS,
                                  .security = RPC2_SEC_AUTH,
                                  .identity = identity,
                                  .secret = secret};
    ck_assert_int_eq(rpc2_bind(client, &bp, &c), 0);
    return c;
}

static int call_ping(rpc2_conn *c)
{
    return rpc2_call(c, 1, (xdrproc_t)xdr_nothing, NULL, (xdrproc_t)xdr_nothing, NULL, NULL);
}

/* Server and client on one loop, driven by the client's blocking calls, so
 * this thread is the loop thread end_connections wants. */
START_TEST(end_connections_of_identity)
{
    static const struct rpc2_proc procs[] = {{.proc = 1, .async_handler = ping}};
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct rpc2_params sp, cp;
    rpc2_ctx *server, *client;
    int asked = 0;

    rpc2_params_init(&sp);
    sp.listen[sp.n_listen++] = "127.0.0.1:0";
    sp.loop = loop;
    sp.secret_for = secret_of;
    ck_assert_int_eq(rpc2_ctx_new(&sp, &server), 0);
    ck_assert_int_eq(rpc2_export(server, SUBSYS, procs, 1, NULL), 0);
    rpc2_params_init(&cp);
    cp.loop = loop;
    /* the revoked client finds the server silent: its call waits this long;
     * the binds must fit in it too, under the sanitizers on a loaded machine */
    cp.dead_peer_us = 3 * 1000 * 1000;
    ck_assert_int_eq(rpc2_ctx_new(&cp, &client), 0);

    rpc2_conn *alice = bind_as(client, rpc2_ctx_port(server), "alice", 1);
    rpc2_conn *bob = bind_as(client, rpc2_ctx_port(server), "bob", 2);
    ck_assert_int_eq(call_ping(alice), 0);
    ck_assert_int_eq(call_ping(bob), 0);
    ck_assert_uint_eq(rpc2_ctx_conn_count(server), 2);

    /* alice's connection is bound and idle: it ends now, not at idle expiry */
    ck_assert_uint_eq(rpc2_ctx_end_connections(server, end_alice, &asked), 1);
    ck_assert_int_eq(asked, 2);
    ck_assert_uint_eq(rpc2_ctx_conn_count(server), 1);
    int rc = call_ping(alice);
    ck_assert_msg(rc < 0, "a call on a revoked connection answered %d", rc);
    ck_assert_int_eq(call_ping(bob), 0);
    ck_assert_uint_eq(rpc2_ctx_end_connections(server, end_alice, &asked), 0);

    rpc2_unbind(alice);
    rpc2_unbind(bob);
    rpc2_ctx_free(client);
    rpc2_ctx_free(server);
    ev_loop_destroy(loop);
}
END_TEST

static Suite *access_suite(void)
{
    Suite *s = suite_create("access");
    TCase *parse = tcase_create("parse"), *rule = tcase_create("rule"),
          *file = tcase_create("file");

    tcase_add_test(parse, good_file);
    tcase_add_loop_test(parse, bad_lines, 0, (int)(sizeof bad_files / sizeof bad_files[0]));
    tcase_add_test(parse, nul_and_long_identity);
    suite_add_tcase(s, parse);
    tcase_add_loop_test(rule, decide_table, 0, (int)(sizeof decisions / sizeof decisions[0]));
    tcase_add_test(rule, narrowed_by_reload);
    suite_add_tcase(s, rule);
    tcase_add_checked_fixture(file, setup, teardown);
    tcase_add_test(file, load_file);
    tcase_add_test(file, load_fifo);
    suite_add_tcase(s, file);
    TCase *revoke = tcase_create("revoke");
    tcase_add_test(revoke, end_connections_of_identity);
    suite_add_tcase(s, revoke);
    return s;
}

int main(void)
{
    return check_run(access_suite());
}
