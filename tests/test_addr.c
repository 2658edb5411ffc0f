/*
 * test_addr.c - listen-address parsing as a table of what users type, and
 * the equality and hashing the connection table relies on to recognise a
 * peer whichever socket family reported it.
 */
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <check.h>
#include <rpc2/rpc2.h>

#include "addr.h"
#include "check_run.h"

/* Each row: the text, the result, and for valid rows what it must mean. */
static const struct {
    const char *text;
    int rc;
    int family;
    const char *host; /* inet_pton form */
    unsigned port;
    uint32_t scope;
} parse_rows[] = {
    {/* 1 */ "127.0.0.1:7755", 0, AF_INET, "127.0.0.1", 7755, 0},
    {/* 2 */ "[::1]:7755", 0, AF_INET6, "::1", 7755, 0},
    {/* 3 */ ":7755", 0, AF_INET6, "::", 7755, 0},
    {/* 4 */ "7755", 0, AF_INET6, "::", 7755, 0},
    {/* 5 */ "0", 0, AF_INET6, "::", 0, 0},
    {/* 6 */ "0.0.0.0:65535", 0, AF_INET, "0.0.0.0", 65535, 0},
    {/* 7 */ "[::]:1", 0, AF_INET6, "::", 1, 0},
    {/* 8 */ "[::ffff:1.2.3.4]:9", 0, AF_INET6, "::ffff:1.2.3.4", 9, 0},
    {/* 9 */ "[fe80::1%7]:80", 0, AF_INET6, "fe80::1", 80, 7},
    {/* 10 */ "192.168.1.20:007755", 0, AF_INET, "192.168.1.20", 7755, 0},
    {/* 11 */ "", RPC2_EINVAL, 0, NULL, 0, 0},
    {/* 12 */ ":", RPC2_EINVAL, 0, NULL, 0, 0},
    {/* 13 */ "127.0.0.1", RPC2_EINVAL, 0, NULL, 0, 0},
    {/* 14 */ "127.0.0.1:", RPC2_EINVAL, 0, NULL, 0, 0},
    {/* 15 */ "127.0.0.1:65536", RPC2_EINVAL, 0, NULL, 0, 0},
    {/* 16 */ "127.0.0.1:99999999999999999999999", RPC2_EINVAL, 0, NULL, 0, 0},
    {/* 17 */ "127.0.0.1:-1", RPC2_EINVAL, 0, NULL, 0, 0},
    {/* 18 */ "127.0.0.1:+1", RPC2_EINVAL, 0, NULL, 0, 0},
    {/* 19 */ "127.0.0.1: 1", RPC2_EINVAL, 0, NULL, 0, 0},
    {/* 20 */ "127.0.0.1:1 ", RPC2_EINVAL, 0, NULL, 0, 0},
    {/* 21 */ "127.0.0.1:0x10", RPC2_EINVAL, 0, NULL, 0, 0},
    {/* 22 */ "127.0.0.1:http", RPC2_EINVAL, 0, NULL, 0, 0},
    {/* 23 */ "::1:7755", RPC2_EINVAL, 0, NULL, 0, 0},
    {/* 24 */ "::1", RPC2_EINVAL, 0, NULL, 0, 0},
    {/* 25 */ "[::1]", RPC2_EINVAL, 0, NULL, 0, 0},
    {/* 26 */ "[::1]:", RPC2_EINVAL, 0, NULL, 0, 0},
    {/* 27 */ "[::1]x:80", RPC2_EINVAL, 0, NULL, 0, 0},
    {/* 28 */ "[::1:80", RPC2_EINVAL, 0, NULL, 0, 0},
    {/* 29 */ "[::1]:80:80", RPC2_EINVAL, 0, NULL, 0, 0},
    {/* 30 */ "[127.0.0.1]:80", RPC2_EINVAL, 0, NULL, 0, 0},
    {/* 31 */ "[]:80", RPC2_EINVAL, 0, NULL, 0, 0},
    {/* 32 */ "[fe80::1%]:80", RPC2_EINVAL, 0, NULL, 0, 0},
    {/* 33 */ "localhost:7755", RPC2_EINVAL, 0, NULL, 0, 0},
    {/* 34 */ "example.com:80", RPC2_EINVAL, 0, NULL, 0, 0},
    {/* 35 */ "127.1:80", RPC2_EINVAL, 0, NULL, 0, 0},
    {/* 36 */ "256.0.0.1:80", RPC2_EINVAL, 0, NULL, 0, 0},
    {/* 37 */ "junk", RPC2_EINVAL, 0, NULL, 0, 0},
    {/* 38 */ "1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21.22.23.24.25.26:1", RPC2_EINVAL,
     0, NULL, 0, 0},
};

static void check_row(size_t i, const struct sockaddr_storage *ss, socklen_t len)
{
    uint8_t want[16], got[16];
    unsigned port;

    ck_assert_msg(ss->ss_family == parse_rows[i].family, "row %zu: family", i + 1);
    ck_assert_int_eq(inet_pton(parse_rows[i].family, parse_rows[i].host, want), 1);
    if (ss->ss_family == AF_INET) {
        struct sockaddr_in sin;

        ck_assert_uint_eq(len, sizeof(sin));
        memcpy(&sin, ss, sizeof(sin));
        memcpy(got, &sin.sin_addr, 4);
        port = ntohs(sin.sin_port);
        ck_assert_msg(memcmp(got, want, 4) == 0, "row %zu: address", i + 1);
    } else {
        struct sockaddr_in6 sin6;

        ck_assert_uint_eq(len, sizeof(sin6));
        memcpy(&sin6, ss, sizeof(sin6));
        memcpy(got, &sin6.sin6_addr, 16);
        port = ntohs(sin6.sin6_port);
        ck_assert_msg(memcmp(got, want, 16) == 0, "row %zu: address", i + 1);
        ck_assert_msg(sin6.sin6_scope_id == parse_rows[i].scope, "row %zu: scope", i + 1);
    }
    ck_assert_msg(port == parse_rows[i].port, "row %zu: port %u", i + 1, port);
}

START_TEST(parse_table)
{
    for (size_t i = 0; i < sizeof(parse_rows) / sizeof(parse_rows[0]); i++) {
        struct sockaddr_storage ss;
        socklen_t len = 0;
        int rc = addr_parse_listen(parse_rows[i].text, &ss, &len);

        ck_assert_msg(rc == parse_rows[i].rc, "row %zu (\"%s\"): rc %d", i + 1, parse_rows[i].text,
                      rc);
        if (rc == 0)
            check_row(i, &ss, len);
    }
    struct sockaddr_storage ss;
    socklen_t len;

    ck_assert_int_eq(addr_parse_listen(NULL, &ss, &len), RPC2_EINVAL);
}
END_TEST

START_TEST(parse_scope_by_interface_name)
{
    struct sockaddr_storage ss;
    struct sockaddr_in6 sin6;
    socklen_t len;
    unsigned lo = if_nametoindex("lo");

    if (lo == 0)
        return; /* no loopback interface named lo here */
    ck_assert_int_eq(addr_parse_listen("[fe80::1%lo]:80", &ss, &len), 0);
    memcpy(&sin6, &ss, sizeof(sin6));
    ck_assert_uint_eq(sin6.sin6_scope_id, lo);
    ck_assert_int_eq(addr_parse_listen("[fe80::1%no-such-if0]:80", &ss, &len), RPC2_EINVAL);
}
END_TEST

static void format_text(const char *listen, char *buf, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len;

    ck_assert_int_eq(addr_parse_listen(listen, &ss, &len), 0);
    addr_format(&ss, buf, cap);
}

START_TEST(format_table)
{
    static const struct {
        const char *listen, *text;
    } rows[] = {
        {/* 1 */ "1.2.3.4:5", "1.2.3.4:5"},
        {/* 2 */ "[::1]:5", "[::1]:5"},
        {/* 3 */ "[::ffff:1.2.3.4]:5", "1.2.3.4:5"},
        {/* 4 */ "[fe80::1%3]:80", "[fe80::1%3]:80"},
        {/* 5 */ ":7755", "[::]:7755"},
        {/* 6 */ "255.255.255.255:65535", "255.255.255.255:65535"},
        {/* 7 */ "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%4294967295]:65535",
         "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%4294967295]:65535"},
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char buf[ADDR_TEXT_MAX];

        format_text(rows[i].listen, buf, sizeof(buf));
        ck_assert_msg(strcmp(buf, rows[i].text) == 0, "row %zu: \"%s\"", i + 1, buf);
    }
}
END_TEST

START_TEST(format_truncates_and_terminates)
{
    char buf[8];

    memset(buf, 'x', sizeof(buf));
    format_text("[::1]:7755", buf, 4);
    ck_assert_str_eq(buf, "[::");
    ck_assert_int_eq(buf[4], 'x');

    memset(buf, 'x', sizeof(buf));
    format_text("1.2.3.4:5", buf, 0);
    ck_assert_int_eq(buf[0], 'x');
}
END_TEST

/* Fills the whole storage with junk first, so padding differs between peers. */
static struct rpc2_addr v4(const char *ip, unsigned port, uint16_t sock, int junk)
{
    struct rpc2_addr a;
    struct sockaddr_in sin;

    memset(&a, junk, sizeof(a));
    memset(&sin, junk, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    ck_assert_int_eq(inet_pton(AF_INET, ip, &sin.sin_addr), 1);
    memcpy(&a.ss, &sin, sizeof(sin));
    a.len = sizeof(sin);
    a.sock = sock;
    return a;
}

static struct rpc2_addr v6(const char *ip, unsigned port, uint32_t scope, uint16_t sock, int junk)
{
    struct rpc2_addr a;
    struct sockaddr_in6 sin6;

    memset(&a, junk, sizeof(a));
    memset(&sin6, junk, sizeof(sin6));
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons((uint16_t)port);
    sin6.sin6_flowinfo = (uint32_t)junk;
    sin6.sin6_scope_id = scope;
    ck_assert_int_eq(inet_pton(AF_INET6, ip, &sin6.sin6_addr), 1);
    memcpy(&a.ss, &sin6, sizeof(sin6));
    a.len = sizeof(sin6);
    a.sock = sock;
    return a;
}

START_TEST(equal_and_hash_table)
{
    static const struct {
        int a6, b6;
        const char *a, *b;
        unsigned aport, bport;
        uint32_t ascope, bscope;
        uint16_t asock, bsock;
        int equal;
    } rows[] = {
        /* 1: same v4, different padding */
        {0, 0, "10.0.0.1", "10.0.0.1", 80, 80, 0, 0, 0, 0, 1},
        /* 2: v4 and its v4-mapped form */
        {0, 1, "10.0.0.1", "::ffff:10.0.0.1", 80, 80, 0, 0, 1, 1, 1},
        /* 3: v4-mapped, other port */
        {0, 1, "10.0.0.1", "::ffff:10.0.0.1", 80, 81, 0, 0, 0, 0, 0},
        /* 4: other socket */
        {0, 0, "10.0.0.1", "10.0.0.1", 80, 80, 0, 0, 0, 1, 0},
        /* 5: other address */
        {0, 0, "10.0.0.1", "10.0.0.2", 80, 80, 0, 0, 0, 0, 0},
        /* 6: v6, flowinfo differs (ignored) */
        {1, 1, "2001:db8::1", "2001:db8::1", 80, 80, 0, 0, 0, 0, 1},
        /* 7: link-local on other interfaces */
        {1, 1, "fe80::1", "fe80::1", 80, 80, 1, 2, 0, 0, 0},
        /* 8: v4-compatible (deprecated) is not v4-mapped */
        {0, 1, "10.0.0.1", "::10.0.0.1", 80, 80, 0, 0, 0, 0, 0},
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct rpc2_addr a, b;

        a = rows[i].a6 ? v6(rows[i].a, rows[i].aport, rows[i].ascope, rows[i].asock, 0xaa)
                       : v4(rows[i].a, rows[i].aport, rows[i].asock, 0xaa);
        b = rows[i].b6 ? v6(rows[i].b, rows[i].bport, rows[i].bscope, rows[i].bsock, 0x55)
                       : v4(rows[i].b, rows[i].bport, rows[i].bsock, 0x55);
        ck_assert_msg(addr_equal(&a, &b) == rows[i].equal, "row %zu", i + 1);
        ck_assert_msg(addr_equal(&b, &a) == rows[i].equal, "row %zu reversed", i + 1);
        ck_assert_msg(addr_equal(&a, &a), "row %zu reflexive", i + 1);
        if (rows[i].equal)
            ck_assert_msg(addr_hash(&a) == addr_hash(&b), "row %zu: hash", i + 1);
    }
}
END_TEST

START_TEST(hash_spreads_ports)
{
    /* Not a quality test: just that the port and socket feed the hash. */
    struct rpc2_addr a = v4("10.0.0.1", 80, 0, 0), b = v4("10.0.0.1", 81, 0, 0);
    struct rpc2_addr c = v4("10.0.0.1", 80, 1, 0);

    ck_assert_uint_ne(addr_hash(&a), addr_hash(&b));
    ck_assert_uint_ne(addr_hash(&a), addr_hash(&c));
}
END_TEST

START_TEST(to_v6mapped)
{
    struct rpc2_addr a = v4("192.0.2.7", 7755, 0, 0xaa), b = a;
    char text[ADDR_TEXT_MAX];
    struct sockaddr_in6 sin6;

    addr_to_v6mapped(&b.ss, &b.len);
    ck_assert_int_eq(b.ss.ss_family, AF_INET6);
    ck_assert_uint_eq(b.len, sizeof(sin6));
    memcpy(&sin6, &b.ss, sizeof(sin6));
    ck_assert(IN6_IS_ADDR_V4MAPPED(&sin6.sin6_addr));
    ck_assert_uint_eq(ntohs(sin6.sin6_port), 7755);
    ck_assert(addr_equal(&a, &b));
    addr_format(&b.ss, text, sizeof(text));
    ck_assert_str_eq(text, "192.0.2.7:7755");

    /* An IPv6 address is left as it is. */
    struct rpc2_addr c = v6("2001:db8::5", 1, 0, 0, 0), d = c;

    addr_to_v6mapped(&d.ss, &d.len);
    ck_assert_uint_eq(d.len, c.len);
    ck_assert(memcmp(&c.ss, &d.ss, sizeof(c.ss)) == 0);
}
END_TEST

static int port_of(const struct sockaddr_storage *ss)
{
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;

    if (ss->ss_family == AF_INET) {
        memcpy(&sin, ss, sizeof(sin));
        return ntohs(sin.sin_port);
    }
    memcpy(&sin6, ss, sizeof(sin6));
    return ntohs(sin6.sin6_port);
}

START_TEST(resolve_loopback_names)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char text[ADDR_TEXT_MAX];

    ck_assert_int_eq(addr_resolve("127.0.0.1", "7755", &ss, &len), 0);
    ck_assert_int_eq(ss.ss_family, AF_INET);
    ck_assert_uint_eq(len, sizeof(struct sockaddr_in));
    addr_format(&ss, text, sizeof(text));
    ck_assert_str_eq(text, "127.0.0.1:7755");

    ck_assert_int_eq(addr_resolve("::1", "9", &ss, &len), 0);
    ck_assert_int_eq(ss.ss_family, AF_INET6);
    addr_format(&ss, text, sizeof(text));
    ck_assert_str_eq(text, "[::1]:9");

    ck_assert_int_eq(addr_resolve("[::1]", "9", &ss, &len), 0);
    ck_assert_int_eq(ss.ss_family, AF_INET6);

    /* localhost is 127.0.0.1 or ::1 depending on the system's preference. */
    ck_assert_int_eq(addr_resolve("localhost", "7755", &ss, &len), 0);
    ck_assert_int_eq(port_of(&ss), 7755);
    addr_format(&ss, text, sizeof(text));
    ck_assert_msg(strcmp(text, "127.0.0.1:7755") == 0 || strcmp(text, "[::1]:7755") == 0,
                  "localhost is %s", text);

    /* A service that does not exist fails without asking any DNS server. */
    ck_assert_int_eq(addr_resolve("127.0.0.1", "no-such-service-rpc2", &ss, &len), RPC2_EADDR);
}
END_TEST

static Suite *addr_suite(void)
{
    Suite *s = suite_create("addr");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, parse_table);
    tcase_add_test(tc, parse_scope_by_interface_name);
    tcase_add_test(tc, format_table);
    tcase_add_test(tc, format_truncates_and_terminates);
    tcase_add_test(tc, equal_and_hash_table);
    tcase_add_test(tc, hash_spreads_ports);
    tcase_add_test(tc, to_v6mapped);
    tcase_add_test(tc, resolve_loopback_names);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(addr_suite());
}
