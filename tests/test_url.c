/*
 * test_url.c - rcat's argument rules as tables of what operators type: which
 * arguments are remote, what host, port and path they name, and which are
 * usage errors. A row that changes here changes what a script means.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "url.h"
#include "check_run.h"

#define USAGE -1 /* url_parse refuses the argument */

static const struct {
    const char *arg;
    unsigned default_port; /* what -P gave, or 7755 */
    int rc;
    int remote;
    const char *host;
    unsigned port;
    const char *path;
} rows[] = {
    /* rcat:// URLs */
    {/* 1 */ "rcat://h/p", 7755, 0, 1, "h", 7755, "p"},
    {/* 2 */ "rcat://h:1/p", 7755, 0, 1, "h", 1, "p"},
    {/* 3 */ "rcat://[::1]:9/a%20b", 7755, 0, 1, "::1", 9, "a b"},
    {/* 4 */ "rcat://[::1]/x", 7755, 0, 1, "::1", 7755, "x"},
    {/* 5 */ "rcat://h/a/b/c.txt", 7755, 0, 1, "h", 7755, "a/b/c.txt"},
    {/* 6 */ "rcat://h/a%2Fb", 7755, 0, 1, "h", 7755, "a/b"},
    {/* 7 */ "rcat://h/%41%7e%7E", 7755, 0, 1, "h", 7755, "A~~"},
    {/* 8 */ "rcat://h/100%25", 7755, 0, 1, "h", 7755, "100%"},
    {/* 9 */ "rcat://h", 7755, 0, 1, "h", 7755, ""},
    {/* 10 */ "rcat://h/", 7755, 0, 1, "h", 7755, ""},
    {/* 11 */ "rcat://h//etc/x", 7755, 0, 1, "h", 7755, "/etc/x"},
    {/* 12 */ "rcat://h/p", 9000, 0, 1, "h", 9000, "p"}, /* -P 9000 */
    {/* 13 */ "rcat://h:1/p", 9000, 0, 1, "h", 1, "p"},  /* the URL's port wins */
    {/* 14 */ "RCAT://h/p", 7755, 0, 1, "h", 7755, "p"},
    {/* 15 */ "rcat://10.0.0.1:65535/p", 7755, 0, 1, "10.0.0.1", 65535, "p"},
    {/* 16 */ "rcat://host.example-1_x:007755/p", 7755, 0, 1, "host.example-1_x", 7755, "p"},
    {/* 17 */ "rcat://[fe80::1%25eth0]:9/p", 7755, 0, 1, "fe80::1%eth0", 9, "p"},
    {/* 18 */ "rcat://h/a?b#c", 7755, 0, 1, "h", 7755, "a?b#c"},
    {/* 19 */ "rcat://h/a:b", 7755, 0, 1, "h", 7755, "a:b"},
    /* scp-like HOST:PATH */
    {/* 20 */ "h:p", 7755, 0, 1, "h", 7755, "p"},
    {/* 21 */ "[::1]:p", 7755, 0, 1, "::1", 7755, "p"},
    {/* 22 */ "h:p", 9000, 0, 1, "h", 9000, "p"}, /* -P 9000 */
    {/* 23 */ "h:/abs/x", 7755, 0, 1, "h", 7755, "abs/x"},
    {/* 24 */ "h:a%20b", 7755, 0, 1, "h", 7755, "a%20b"}, /* literal, as scp */
    {/* 25 */ "h:", 7755, 0, 1, "h", 7755, ""},
    {/* 26 */ "h:a:b", 7755, 0, 1, "h", 7755, "a:b"},
    {/* 27 */ "C:\\x", 7755, 0, 1, "C", 7755, "\\x"}, /* not a drive letter here */
    {/* 28 */ "[fe80::1%lo]:p", 7755, 0, 1, "fe80::1%lo", 7755, "p"},
    {/* 29 */ "h:a/b", 7755, 0, 1, "h", 7755, "a/b"},
    /* local: no ':' before the first '/' */
    {/* 30 */ "./a:b", 7755, 0, 0, "", 0, "./a:b"},
    {/* 31 */ "a/b:c", 7755, 0, 0, "", 0, "a/b:c"},
    {/* 32 */ "file.txt", 7755, 0, 0, "", 0, "file.txt"},
    {/* 33 */ "/tmp/x", 7755, 0, 0, "", 0, "/tmp/x"},
    {/* 34 */ "-", 7755, 0, 0, "", 0, "-"},
    {/* 35 */ "a%20b", 7755, 0, 0, "", 0, "a%20b"},
    /* usage errors */
    {/* 36 */ "", 7755, USAGE, 0, NULL, 0, NULL},
    {/* 37 */ "rcat://h/%", 7755, USAGE, 0, NULL, 0, NULL},
    {/* 38 */ "rcat://h/%4", 7755, USAGE, 0, NULL, 0, NULL},
    {/* 39 */ "rcat://h/%zz", 7755, USAGE, 0, NULL, 0, NULL},
    {/* 40 */ "rcat://h/a%00b", 7755, USAGE, 0, NULL, 0, NULL},
    {/* 41 */ "rcat:///p", 7755, USAGE, 0, NULL, 0, NULL},
    {/* 42 */ "rcat://:1/p", 7755, USAGE, 0, NULL, 0, NULL},
    {/* 43 */ ":p", 7755, USAGE, 0, NULL, 0, NULL},
    {/* 44 */ "[]:p", 7755, USAGE, 0, NULL, 0, NULL},
    {/* 45 */ "rcat://h:0/p", 7755, USAGE, 0, NULL, 0, NULL},
    {/* 46 */ "rcat://h:65536/p", 7755, USAGE, 0, NULL, 0, NULL},
    {/* 47 */ "rcat://h:99999999999999999999/p", 7755, USAGE, 0, NULL, 0, NULL},
    {/* 48 */ "rcat://h:/p", 7755, USAGE, 0, NULL, 0, NULL},
    {/* 49 */ "rcat://h:-1/p", 7755, USAGE, 0, NULL, 0, NULL},
    {/* 50 */ "rcat://h:+1/p", 7755, USAGE, 0, NULL, 0, NULL},
    {/* 51 */ "rcat://h:0x10/p", 7755, USAGE, 0, NULL, 0, NULL},
    {/* 52 */ "rcat://h:http/p", 7755, USAGE, 0, NULL, 0, NULL},
    {/* 53 */ "rcat://[::1/p", 7755, USAGE, 0, NULL, 0, NULL},
    {/* 54 */ "rcat://[::1]x/p", 7755, USAGE, 0, NULL, 0, NULL},
    {/* 55 */ "rcat://[127.0.0.1]/p", 7755, USAGE, 0, NULL, 0, NULL},
    {/* 56 */ "rcat://[fe80::1%25]/p", 7755, USAGE, 0, NULL, 0, NULL},
    {/* 57 */ "rcat://::1/p", 7755, USAGE, 0, NULL, 0, NULL},
    {/* 58 */ "rcat://h%20x/p", 7755, USAGE, 0, NULL, 0, NULL},
    {/* 59 */ "http://h/p", 7755, USAGE, 0, NULL, 0, NULL},
    {/* 60 */ "rcat:/h/p", 7755, USAGE, 0, NULL, 0, NULL}, /* a typo, not host "rcat" */
    {/* 61 */ "[::1]p", 7755, USAGE, 0, NULL, 0, NULL},
    {/* 62 */ "[::1]", 7755, USAGE, 0, NULL, 0, NULL},
    {/* 63 */ "[::1]/p:x", 7755, USAGE, 0, NULL, 0, NULL},
    {/* 64 */ "my file:x", 7755, USAGE, 0, NULL, 0, NULL},
    {/* 65 */ "h x:p", 7755, USAGE, 0, NULL, 0, NULL},
    {/* 66 */ "[1.2.3.4]:p", 7755, USAGE, 0, NULL, 0, NULL},
    {/* 67 */ "rcat:x", 7755, 0, 1, "rcat", 7755, "x"}, /* a host named rcat */
    {/* 68 */ "rcat:", 7755, 0, 1, "rcat", 7755, ""},
    /* HOST:PORT:PATH would quietly be path "PORT:PATH" on the default port */
    {/* 69 */ "h:7799:x", 7755, USAGE, 0, NULL, 0, NULL},
    {/* 70 */ "[::1]:7799:x", 7755, USAGE, 0, NULL, 0, NULL},
    {/* 71 */ "h:7799:", 7755, USAGE, 0, NULL, 0, NULL},
    {/* 72 */ "h:./7799:x", 7755, 0, 1, "h", 7755, "./7799:x"}, /* the way to that name */
    {/* 73 */ "h:7799", 7755, 0, 1, "h", 7755, "7799"},         /* a file named 7799 */
    {/* 74 */ "h:x:7799", 7755, 0, 1, "h", 7755, "x:7799"},
    {/* 75 */ "h:7a:x", 7755, 0, 1, "h", 7755, "7a:x"},
};

START_TEST(parse_table)
{
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct url u;
        const char *why = NULL;
        int rc = url_parse(rows[i].arg, rows[i].default_port, &u, &why);

        ck_assert_msg(rc == rows[i].rc, "row %zu (\"%s\"): rc %d (%s)", i + 1, rows[i].arg, rc,
                      why ? why : "no reason");
        if (rc != 0) {
            ck_assert_msg(why && *why, "row %zu: a refusal without a reason", i + 1);
            continue;
        }
        ck_assert_msg(u.remote == rows[i].remote, "row %zu: remote %d", i + 1, u.remote);
        ck_assert_msg(!strcmp(u.path, rows[i].path), "row %zu: path \"%s\"", i + 1, u.path);
        if (!u.remote)
            continue;
        ck_assert_msg(!strcmp(u.host, rows[i].host), "row %zu: host \"%s\"", i + 1, u.host);
        ck_assert_msg(u.port == rows[i].port, "row %zu: port %u", i + 1, u.port);
    }
}
END_TEST

/* Paths up to the protocol's limit pass; one byte more is refused, whether
 * it came decoded or literal. */
START_TEST(path_length_limit)
{
    static char arg[URL_PATH_MAX + 64];
    struct url u;
    const char *why;
    size_t pre = strlen("rcat://h/");

    memcpy(arg, "rcat://h/", pre);
    memset(arg + pre, 'a', URL_PATH_MAX);
    arg[pre + URL_PATH_MAX] = '\0';
    ck_assert_int_eq(url_parse(arg, 7755, &u, &why), 0);
    ck_assert_uint_eq(strlen(u.path), URL_PATH_MAX);
    strcat(arg, "a");
    ck_assert_int_eq(url_parse(arg, 7755, &u, &why), USAGE);

    /* three characters of escape are one byte of path */
    memcpy(arg + pre, "%41", 3);
    memset(arg + pre + 3, 'a', URL_PATH_MAX - 1);
    arg[pre + URL_PATH_MAX + 2] = '\0';
    ck_assert_int_eq(url_parse(arg, 7755, &u, &why), 0);
    ck_assert_uint_eq(strlen(u.path), URL_PATH_MAX);

    memcpy(arg, "h:", 2);
    memset(arg + 2, 'b', URL_PATH_MAX + 1);
    arg[URL_PATH_MAX + 3] = '\0';
    ck_assert_int_eq(url_parse(arg, 7755, &u, &why), USAGE);
    arg[URL_PATH_MAX + 2] = '\0';
    ck_assert_int_eq(url_parse(arg, 7755, &u, &why), 0);
}
END_TEST

START_TEST(host_length_limit)
{
    char arg[URL_HOST_MAX + 16];
    struct url u;
    const char *why;

    memset(arg, 'h', URL_HOST_MAX);
    strcpy(arg + URL_HOST_MAX, ":p");
    ck_assert_int_eq(url_parse(arg, 7755, &u, &why), 0);
    ck_assert_uint_eq(strlen(u.host), URL_HOST_MAX);
    memset(arg, 'h', URL_HOST_MAX + 1);
    strcpy(arg + URL_HOST_MAX + 1, ":p");
    ck_assert_int_eq(url_parse(arg, 7755, &u, &why), USAGE);
}
END_TEST

START_TEST(port_table)
{
    static const struct {
        const char *text;
        int rc;
        unsigned port;
    } ports[] = {
        {/* 1 */ "1", 0, 1},
        {/* 2 */ "7755", 0, 7755},
        {/* 3 */ "65535", 0, 65535},
        {/* 4 */ "00080", 0, 80},
        {/* 5 */ "0", USAGE, 0},
        {/* 6 */ "65536", USAGE, 0},
        {/* 7 */ "", USAGE, 0},
        {/* 8 */ "-1", USAGE, 0},
        {/* 9 */ " 1", USAGE, 0},
        {/* 10 */ "1 ", USAGE, 0},
        {/* 11 */ "0x1", USAGE, 0},
        {/* 12 */ "http", USAGE, 0},
        {/* 13 */ "4294967297", USAGE, 0},
    };

    for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
        unsigned port = 0;
        int rc = url_parse_port(ports[i].text, &port);

        ck_assert_msg(rc == ports[i].rc, "row %zu (\"%s\"): rc %d", i + 1, ports[i].text, rc);
        if (rc == 0)
            ck_assert_msg(port == ports[i].port, "row %zu: port %u", i + 1, port);
    }
    ck_assert_int_eq(url_parse_port(NULL, NULL), USAGE);
}
END_TEST

START_TEST(size_table)
{
    static const struct {
        const char *text;
        int rc;
        int64_t value;
    } sizes[] = {
        {/* 1 */ "0", 0, 0},
        {/* 2 */ "4096", 0, 4096},
        {/* 3 */ "1K", 0, 1024},
        {/* 4 */ "1k", 0, 1024},
        {/* 5 */ "3M", 0, 3 << 20},
        {/* 6 */ "2G", 0, INT64_C(2) << 30},
        {/* 7 */ "5t", 0, INT64_C(5) << 40},
        {/* 8 */ "9223372036854775807", 0, INT64_MAX},
        {/* 9 */ "9223372036854775808", USAGE, 0},
        {/* 10 */ "8388608T", USAGE, 0}, /* 2^63 */
        {/* 11 */ "8388607T", 0, INT64_C(8388607) << 40},
        {/* 12 */ "", USAGE, 0},
        {/* 13 */ "-1", USAGE, 0},
        {/* 14 */ "1KB", USAGE, 0},
        {/* 15 */ "1X", USAGE, 0},
        {/* 16 */ "K", USAGE, 0},
        {/* 17 */ " 1", USAGE, 0},
        {/* 18 */ "1.5M", USAGE, 0},
        {/* 19 */ "0x10", USAGE, 0},
    };

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        int64_t v = -7;
        int rc = url_parse_size(sizes[i].text, &v);

        ck_assert_msg(rc == sizes[i].rc, "row %zu (\"%s\"): rc %d", i + 1, sizes[i].text, rc);
        if (rc == 0)
            ck_assert_msg(v == sizes[i].value, "row %zu: %lld", i + 1, (long long)v);
    }
}
END_TEST

START_TEST(basename_table)
{
    static const struct {
        const char *path, *base;
    } names[] = {
        {/* 1 */ "a/b.txt", "b.txt"}, {/* 2 */ "b", "b"},     {/* 3 */ "a/b/", NULL},
        {/* 4 */ "", NULL},           {/* 5 */ "a/..", NULL}, {/* 6 */ ".", NULL},
        {/* 7 */ "..", NULL},         {/* 8 */ "a/.b", ".b"}, {/* 9 */ "a/...", "..."},
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *got = url_basename(names[i].path);

        if (!names[i].base)
            ck_assert_msg(got == NULL, "row %zu: \"%s\"", i + 1, got);
        else
            ck_assert_msg(got && !strcmp(got, names[i].base), "row %zu: %s", i + 1,
                          got ? got : "NULL");
    }
}
END_TEST

static Suite *url_suite(void)
{
    Suite *s = suite_create("url");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, parse_table);
    tcase_add_test(tc, path_length_limit);
    tcase_add_test(tc, host_length_limit);
    tcase_add_test(tc, port_table);
    tcase_add_test(tc, size_table);
    tcase_add_test(tc, basename_table);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(url_suite());
}
