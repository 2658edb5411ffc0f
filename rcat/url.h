/*
 * url.h - what an operator types on rcat's command line, made exact: a
 * location (rcat://HOST[:PORT]/PATH, scp-like HOST:PATH, or a local path),
 * a port, a byte count. Pure string work, so every rule is a row in
 * tests/test_url.c.
 */
#ifndef RCAT_URL_H
#define RCAT_URL_H

#include <stdint.h>

#define URL_HOST_MAX 255  /* a DNS name's limit */
#define URL_PATH_MAX 4096 /* RCAT_MAX_PATH: the server refuses longer anyway */

struct url {
    int remote;                  /* 0: a local path, taken as typed */
    char host[URL_HOST_MAX + 1]; /* IPv6 without its brackets, zone after '%' */
    unsigned port;               /* 1..65535 */
    char path[URL_PATH_MAX + 1]; /* remote: decoded, relative to the server's root */
};

/*
 * Parses one argument. Remote when it starts with rcat:// or when a ':'
 * comes before any '/' (HOST:PATH, [V6]:PATH); local otherwise (./a:b).
 * default_port is used when the argument names none. The remote path may be
 * empty (the server's root). Returns 0, or -1 with *why saying what is wrong
 * (a usage error).
 */
int url_parse(const char *arg, unsigned default_port, struct url *out, const char **why);

/* A port number, 1..65535, digits only. 0 or -1. */
int url_parse_port(const char *text, unsigned *port);

/* A byte count: digits with an optional binary suffix K, M, G or T (either
 * case; 1K = 1024). 0 or -1 (not a number, or above INT64_MAX). */
int url_parse_size(const char *text, int64_t *out);

/* The last component of a remote path, for -o DIR/: NULL when there is none
 * a file could safely be named after ("", ".", "..", a path ending in '/'). */
const char *url_basename(const char *path);

#endif
