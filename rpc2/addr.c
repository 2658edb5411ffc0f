/*
 * addr.c - peer addresses as values the connection table can compare and
 * hash, and the parsing of the listen addresses users write.
 *
 * A dual-stack socket reports an IPv4 peer as ::ffff:a.b.c.d while a
 * v4-only socket reports it as a.b.c.d; both are the same peer, so
 * everything here works on one normalized form (16 address bytes, port,
 * scope) and never on the raw sockaddr bytes, whose padding is undefined.
 */
#include <string.h>
#include <stdio.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <rpc2/rpc2.h>

#include "addr.h"

/* Longest host text a listen address may hold: a v6 literal plus "%ifname". */
#define HOST_TEXT_MAX (INET6_ADDRSTRLEN + IF_NAMESIZE + 1)

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Decimal digits only, 0..65535: no sign, no spaces, no service names. */
static int parse_port(const char *s, uint16_t *port)
{
    unsigned long v = 0;

    if (*s == '\0')
        return RPC2_EINVAL;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return RPC2_EINVAL;
        v = v * 10 + (unsigned long)(*s - '0');
        if (v > 65535)
            return RPC2_EINVAL;
    }
    *port = (uint16_t)v;
    return 0;
}

/* A scope is an interface name or its index: "fe80::1%eth0", "fe80::1%2". */
static int parse_scope(const char *s, uint32_t *scope)
{
    unsigned long v = 0;
    const char *p;

    if (*s == '\0')
        return RPC2_EINVAL;
    for (p = s; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (unsigned long)(*p - '0');
        if (v > UINT32_MAX)
            return RPC2_EINVAL;
    }
    if (*p == '\0') {
        *scope = (uint32_t)v;
        return 0;
    }
    *scope = if_nametoindex(s);
    return *scope ? 0 : RPC2_EINVAL;
}

static int parse_v6(char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_in6 sin6;
    char *pct = strchr(host, '%');

    memset(&sin6, 0, sizeof(sin6));
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(port);
    if (pct != NULL) {
        *pct = '\0';
        if (parse_scope(pct + 1, &sin6.sin6_scope_id) != 0)
            return RPC2_EINVAL;
    }
    if (inet_pton(AF_INET6, host, &sin6.sin6_addr) != 1)
        return RPC2_EINVAL;
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, &sin6, sizeof(sin6));
    *len = sizeof(sin6);
    return 0;
}

static int parse_v4(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_in sin;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    /* inet_pton, not inet_aton: "127.1" and "0x7f.0.0.1" are refused. */
    if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
        return RPC2_EINVAL;
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, &sin, sizeof(sin));
    *len = sizeof(sin);
    return 0;
}

/* Copies [begin, end) into buf as a string; too long is invalid. */
static int copy_host(char *buf, const char *begin, const char *end)
{
    size_t n = (size_t)(end - begin);

    if (n >= HOST_TEXT_MAX)
        return RPC2_EINVAL;
    memcpy(buf, begin, n);
    buf[n] = '\0';
    return 0;
}

static int parse_bracketed(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[HOST_TEXT_MAX];
    const char *close = strchr(text, ']');
    uint16_t port;

    if (close == NULL || close[1] != ':' || copy_host(host, text + 1, close) != 0)
        return RPC2_EINVAL;
    if (parse_port(close + 2, &port) != 0)
        return RPC2_EINVAL;
    return parse_v6(host, port, ss, len);
}

int addr_parse_listen(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[HOST_TEXT_MAX] = "::"; /* no host: every address, dual-stack */
    const char *colon;
    uint16_t port;

    if (text == NULL || *text == '\0')
        return RPC2_EINVAL;
    if (text[0] == '[')
        return parse_bracketed(text, ss, len);
    colon = strchr(text, ':');
    if (colon == NULL) {
        if (parse_port(text, &port) != 0)
            return RPC2_EINVAL;
        return parse_v6(host, port, ss, len);
    }
    if (strchr(colon + 1, ':') != NULL)
        return RPC2_EINVAL; /* an IPv6 literal must be bracketed */
    if (parse_port(colon + 1, &port) != 0)
        return RPC2_EINVAL;
    if (colon == text)
        return parse_v6(host, port, ss, len);
    if (copy_host(host, text, colon) != 0)
        return RPC2_EINVAL;
    return parse_v4(host, port, ss, len);
}

int addr_resolve(const char *host, const char *port, struct sockaddr_storage *ss, socklen_t *len)
{
    char buf[HOST_TEXT_MAX];
    struct addrinfo hints, *res;
    size_t n = host ? strlen(host) : 0;

    /* Accept "[::1]" too: users copy it from "[::1]:7755". */
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        if (copy_host(buf, host + 1, host + n - 1) != 0)
            return RPC2_EADDR;
        host = buf;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_protocol = IPPROTO_UDP;
    if (getaddrinfo(host, port, &hints, &res) != 0)
        return RPC2_EADDR;
    if (res == NULL || res->ai_addrlen > sizeof(*ss)) {
        freeaddrinfo(res);
        return RPC2_EADDR;
    }
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = (socklen_t)res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

void addr_to_v6mapped(struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;

    if (ss->ss_family != AF_INET)
        return;
    memcpy(&sin, ss, sizeof(sin));
    memset(&sin6, 0, sizeof(sin6));
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = sin.sin_port;
    memcpy(&sin6.sin6_addr, v4mapped_prefix, sizeof(v4mapped_prefix));
    memcpy(&sin6.sin6_addr.s6_addr[12], &sin.sin_addr, 4);
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, &sin6, sizeof(sin6));
    *len = sizeof(sin6);
}

int addr_norm_is_v4(const struct addr_norm *n)
{
    return memcmp(n->addr, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0;
}

/* Copies, not casts, so no assumption is made about the storage's type. */
int addr_normalize(const struct sockaddr_storage *ss, struct addr_norm *n)
{
    memset(n, 0, sizeof(*n));
    if (ss->ss_family == AF_INET) {
        struct sockaddr_in sin;

        memcpy(&sin, ss, sizeof(sin));
        memcpy(n->addr, v4mapped_prefix, sizeof(v4mapped_prefix));
        memcpy(&n->addr[12], &sin.sin_addr, 4);
        n->port = sin.sin_port;
        return 0;
    }
    if (ss->ss_family == AF_INET6) {
        struct sockaddr_in6 sin6;

        memcpy(&sin6, ss, sizeof(sin6));
        memcpy(n->addr, &sin6.sin6_addr, 16);
        n->port = sin6.sin6_port;
        n->scope = sin6.sin6_scope_id;
        return 0;
    }
    return -1;
}

/* Addresses of unknown families never match, not even themselves: a peer
 * has one of the two families the sockets speak. */
int addr_equal(const struct rpc2_addr *a, const struct rpc2_addr *b)
{
    struct addr_norm na, nb;

    if (a->sock != b->sock)
        return 0;
    if (addr_normalize(&a->ss, &na) != 0 || addr_normalize(&b->ss, &nb) != 0)
        return 0;
    return memcmp(na.addr, nb.addr, 16) == 0 && na.port == nb.port && na.scope == nb.scope;
}

static uint32_t fnv1a(uint32_t h, const void *data, size_t n)
{
    const uint8_t *p = data;

    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

uint32_t addr_hash(const struct rpc2_addr *a)
{
    struct addr_norm n;
    uint32_t h = 2166136261u;

    if (addr_normalize(&a->ss, &n) != 0)
        return fnv1a(h, &a->sock, sizeof(a->sock));
    h = fnv1a(h, n.addr, sizeof(n.addr));
    h = fnv1a(h, &n.port, sizeof(n.port));
    h = fnv1a(h, &n.scope, sizeof(n.scope));
    return fnv1a(h, &a->sock, sizeof(a->sock));
}

void addr_format(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
    char host[INET6_ADDRSTRLEN];
    struct addr_norm n;

    if (cap == 0)
        return;
    if (addr_normalize(ss, &n) != 0) {
        snprintf(buf, cap, "(family %d)", (int)ss->ss_family);
        return;
    }
    if (addr_norm_is_v4(&n)) {
        inet_ntop(AF_INET, &n.addr[12], host, sizeof(host));
        snprintf(buf, cap, "%s:%u", host, (unsigned)ntohs(n.port));
        return;
    }
    inet_ntop(AF_INET6, n.addr, host, sizeof(host));
    /* The scope as a number: the name would cost a system call per log line. */
    if (n.scope != 0)
        snprintf(buf, cap, "[%s%%%u]:%u", host, (unsigned)n.scope, (unsigned)ntohs(n.port));
    else
        snprintf(buf, cap, "[%s]:%u", host, (unsigned)ntohs(n.port));
}
