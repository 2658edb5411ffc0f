/*
 * url.c - turns rcat's arguments into host, port and path. Scripts pass
 * whatever names they hold, so the rules are strict and every refusal says
 * why: a wrong argument must stop rcat before it touches the network, never
 * reach the server as some other path.
 */
#include <string.h>
#include <strings.h>

#include "url.h"

static const char scheme[] = "rcat://";

static int refuse(const char **why, const char *text)
{
    *why = text;
    return -1;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int hex_value(char c)
{
    if (is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Digits only: strtoul would take signs, spaces and hex. */
static int parse_port_span(const char *s, const char *end, unsigned *port)
{
    unsigned long v = 0;

    if (s == end)
        return -1;
    for (; s < end; s++) {
        if (!is_digit(*s))
            return -1;
        v = v * 10 + (unsigned long)(*s - '0');
        if (v > 65535)
            return -1;
    }
    if (v == 0)
        return -1;
    *port = (unsigned)v;
    return 0;
}

int url_parse_port(const char *text, unsigned *port)
{
    return text ? parse_port_span(text, text + strlen(text), port) : -1;
}

static int64_t suffix_scale(char c)
{
    switch (c) {
    case 'k':
    case 'K':
        return INT64_C(1) << 10;
    case 'm':
    case 'M':
        return INT64_C(1) << 20;
    case 'g':
    case 'G':
        return INT64_C(1) << 30;
    case 't':
    case 'T':
        return INT64_C(1) << 40;
    }
    return 0;
}

int url_parse_size(const char *text, int64_t *out)
{
    int64_t v = 0, scale = 1;
    const char *s = text;

    if (!s || !is_digit(*s))
        return -1;
    for (; is_digit(*s); s++) {
        if (v > (INT64_MAX - (*s - '0')) / 10)
            return -1;
        v = v * 10 + (*s - '0');
    }
    if (*s) {
        scale = suffix_scale(*s);
        if (!scale || s[1])
            return -1;
    }
    if (v > INT64_MAX / scale)
        return -1;
    *out = v * scale;
    return 0;
}

/* "word://" at the start: a URL, ours or not. Without this, http://x/y would
 * pass the colon rule as host "http" with path "//x/y". */
static int has_scheme(const char *arg)
{
    const char *s = arg;

    if (!is_alpha(*s))
        return 0;
    while (is_alpha(*s) || is_digit(*s) || *s == '+' || *s == '-' || *s == '.')
        s++;
    return strncmp(s, "://", 3) == 0;
}

static int copy_span(char *dst, size_t cap, const char *s, const char *end)
{
    size_t n = (size_t)(end - s);

    if (n >= cap)
        return -1;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

static int is_name_char(char c)
{
    return is_alpha(c) || is_digit(c) || c == '.' || c == '-' || c == '_';
}

/* A host name or IPv4 literal; resolution decides whether it exists. */
static int parse_name(const char *s, const char *end, struct url *u, const char **why)
{
    if (s == end)
        return refuse(why, "empty host");
    for (const char *p = s; p < end; p++)
        if (!is_name_char(*p))
            return refuse(why, "bad character in host name (a local file with ':' in its "
                               "name is written ./NAME)");
    if (copy_span(u->host, sizeof u->host, s, end) < 0)
        return refuse(why, "host name too long");
    return 0;
}

/* The zone of a scoped IPv6 address: after '%', or after "%25" in a URL,
 * where a bare '%' would be an escape. */
static const char *zone_start(const char *pct, const char *end, int in_url)
{
    if (in_url && end - pct >= 3 && pct[1] == '2' && pct[2] == '5')
        return pct + 3;
    return pct + 1;
}

static int check_v6(const char *s, const char *end, const char **why)
{
    int colons = 0;

    if (s == end)
        return refuse(why, "empty host");
    for (; s < end; s++) {
        if (*s == ':')
            colons++;
        else if (hex_value(*s) < 0 && *s != '.')
            return refuse(why, "bad IPv6 address in brackets");
    }
    return colons ? 0 : refuse(why, "brackets hold only IPv6 addresses");
}

static int check_zone(const char *s, const char *end, const char **why)
{
    if (s == end)
        return refuse(why, "empty IPv6 zone");
    for (; s < end; s++)
        if (!is_name_char(*s))
            return refuse(why, "bad character in IPv6 zone");
    return 0;
}

/* "[V6]" between s and close (which points at ']'). */
static int parse_v6(const char *s, const char *close, int in_url, struct url *u, const char **why)
{
    const char *pct = memchr(s + 1, '%', (size_t)(close - s - 1));
    const char *addr_end = pct ? pct : close;
    const char *zone = pct ? zone_start(pct, close, in_url) : close;
    size_t alen = (size_t)(addr_end - s - 1), zlen = (size_t)(close - zone);

    if (check_v6(s + 1, addr_end, why) < 0 || (pct && check_zone(zone, close, why) < 0))
        return -1;
    if (alen + 1 + zlen >= sizeof u->host)
        return refuse(why, "host name too long");
    memcpy(u->host, s + 1, alen);
    u->host[alen] = '\0';
    if (pct) {
        u->host[alen] = '%';
        memcpy(u->host + alen + 1, zone, zlen);
        u->host[alen + 1 + zlen] = '\0';
    }
    return 0;
}

/* Returns the character after ']' through *after. */
static int parse_bracketed(const char *s, const char *end, int in_url, struct url *u,
                           const char **after, const char **why)
{
    const char *close = memchr(s, ']', (size_t)(end - s));

    if (!close)
        return refuse(why, "'[' without ']'");
    *after = close + 1;
    return parse_v6(s, close, in_url, u, why);
}

/* Percent-decodes [s, end) into u->path. */
static int decode_path(const char *s, const char *end, struct url *u, const char **why)
{
    size_t n = 0;

    while (s < end) {
        char c = *s++;

        if (c == '%') {
            int hi = end - s >= 2 ? hex_value(s[0]) : -1;
            int lo = hi >= 0 ? hex_value(s[1]) : -1;

            if (lo < 0)
                return refuse(why, "bad percent-escape in path (write %25 for '%')");
            c = (char)(hi << 4 | lo);
            if (c == '\0')
                return refuse(why, "escaped NUL (%00) in path");
            s += 2;
        }
        if (n == URL_PATH_MAX)
            return refuse(why, "path too long");
        u->path[n++] = c;
    }
    u->path[n] = '\0';
    return 0;
}

/* rcat://AUTHORITY[/PATH], s just after the scheme. */
static int parse_url(const char *s, struct url *u, const char **why)
{
    const char *slash = strchr(s, '/');
    const char *end = slash ? slash : s + strlen(s);
    const char *after = NULL, *colon;

    if (*s == '[') {
        if (parse_bracketed(s, end, 1, u, &after, why) < 0)
            return -1;
        if (after != end && *after != ':')
            return refuse(why, "junk after ']' (expected ':PORT' or '/')");
        colon = after != end ? after : NULL;
    } else {
        colon = memchr(s, ':', (size_t)(end - s));
        if (parse_name(s, colon ? colon : end, u, why) < 0)
            return -1;
    }
    if (colon && parse_port_span(colon + 1, end, &u->port) < 0)
        return refuse(why, "bad port (1 to 65535)");
    if (!slash)
        return decode_path(end, end, u, why);
    return decode_path(slash + 1, slash + strlen(slash), u, why);
}

/* "7799:..." after HOST: most likely a port meant the way some tools
 * write it, which as a path would silently go to the default port. */
static int looks_like_port(const char *s)
{
    const char *p = s;

    while (is_digit(*p))
        p++;
    return p > s && *p == ':';
}

/* HOST:PATH or [V6]:PATH, taken literally as scp does: no escapes. */
static int parse_scp(const char *s, struct url *u, const char **why)
{
    const char *colon, *path;

    if (*s == '[') {
        if (parse_bracketed(s, s + strlen(s), 0, u, &colon, why) < 0)
            return -1;
        if (*colon != ':')
            return refuse(why, "expected ':' after ']' ([V6]:PATH)");
    } else {
        colon = strchr(s, ':');
        if (!colon)
            return refuse(why, "expected HOST:PATH");
        if (parse_name(s, colon, u, why) < 0)
            return -1;
    }
    path = colon + 1;
    if (looks_like_port(path))
        return refuse(why, "HOST:PORT:PATH is not rcat's: write rcat://HOST:PORT/PATH for a port, "
                           "or HOST:./PATH for a file whose name starts with digits and ':'");
    if (*path == '/')
        path++; /* HOST:/x is the x under the server's root, as rcat://HOST/x is */
    if (strlen(path) > URL_PATH_MAX)
        return refuse(why, "path too long");
    strcpy(u->path, path);
    return 0;
}

static int parse_local(const char *arg, struct url *u, const char **why)
{
    if (strlen(arg) > URL_PATH_MAX)
        return refuse(why, "path too long");
    strcpy(u->path, arg);
    return 0;
}

int url_parse(const char *arg, unsigned default_port, struct url *u, const char **why)
{
    const char *colon, *slash;

    u->remote = 0;
    u->host[0] = '\0';
    u->path[0] = '\0';
    u->port = default_port;
    if (!arg || !*arg)
        return refuse(why, "empty argument");
    /* rcat:/h/p is a URL with a slash missing, not a host named "rcat" */
    if (!strncasecmp(arg, "rcat:/", 6) && arg[6] != '/')
        return refuse(why, "malformed URL (rcat://HOST[:PORT]/PATH)");
    if (has_scheme(arg)) {
        if (strncasecmp(arg, scheme, sizeof scheme - 1) != 0)
            return refuse(why, "unsupported URL scheme (rcat:// only)");
        u->remote = 1;
        return parse_url(arg + sizeof scheme - 1, u, why);
    }
    colon = strchr(arg, ':');
    slash = strchr(arg, '/');
    if (!colon || (slash && slash < colon))
        return parse_local(arg, u, why);
    u->remote = 1;
    return parse_scp(arg, u, why);
}

const char *url_basename(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;

    if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
        return NULL;
    return base;
}
