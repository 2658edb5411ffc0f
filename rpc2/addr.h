/*
 * addr.h - peer addresses: which socket of the context and which remote
 * address, as one comparable, hashable value; and the parsing of the
 * "HOST:PORT" / "[V6]:PORT" / ":PORT" strings users write.
 */
#ifndef RPC2_ADDR_H
#define RPC2_ADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct rpc2_addr {
    struct sockaddr_storage ss;
    socklen_t len;
    uint16_t sock; /* index of the context's socket the peer talks to */
};

/* Longest text addr_format() writes, with the NUL: "[v6%scope]:65535". */
#define ADDR_TEXT_MAX 64

/* Parses a listen address: "HOST:PORT", "[V6]:PORT", ":PORT" or "PORT" (the
 * last two: all addresses, as an IPv6 wildcard for a dual-stack socket).
 * HOST must be an address literal. Returns 0 or RPC2_EINVAL. */
int addr_parse_listen(const char *text, struct sockaddr_storage *ss, socklen_t *len);
/* Resolves host and port (getaddrinfo, UDP), first result. 0 or RPC2_EADDR. */
int addr_resolve(const char *host, const char *port, struct sockaddr_storage *ss,
                 socklen_t *len);
/* Maps an IPv4 address into IPv6 (::ffff:a.b.c.d), for a dual-stack socket. */
void addr_to_v6mapped(struct sockaddr_storage *ss, socklen_t *len);

/* An address in the one form both families share: IPv4 as ::ffff:a.b.c.d
 * (as a dual-stack socket sees it), so keys and comparisons made from it
 * are the same whichever socket a peer came in on. */
struct addr_norm {
    uint8_t addr[16];
    uint16_t port; /* network order, as in the sockaddr */
    uint32_t scope;
};
/* 0, or -1 (n all zero) for a family the sockets do not speak. */
int addr_normalize(const struct sockaddr_storage *ss, struct addr_norm *n);
/* Whether a normalized address is an IPv4 one. */
int addr_norm_is_v4(const struct addr_norm *n);

/* Same socket, family, address and port (IPv4-mapped IPv6 equals its IPv4). */
int addr_equal(const struct rpc2_addr *a, const struct rpc2_addr *b);
uint32_t addr_hash(const struct rpc2_addr *a);
/* "1.2.3.4:5" or "[::1]:5"; always NUL-terminated. */
void addr_format(const struct sockaddr_storage *ss, char *buf, size_t cap);

#endif
