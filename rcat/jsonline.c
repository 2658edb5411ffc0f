/*
 * jsonline.c - a flat JSON object read for one string field (jsonline.h).
 * A scanner, not a parser of all of JSON: objects within objects and
 * arrays are refused, which is enough for rcat's own event lines and
 * never mistakes a value for a key.
 */
#include "jsonline.h"

#include <stdint.h>
#include <string.h>

/* Where one read string ends up: the caller's buffer, or nowhere. */
struct sink {
    char *out;
    size_t cap, len;
    int overflow;
};

static void sink_put(struct sink *s, const char *bytes, size_t n)
{
    if (!s->out)
        return;
    if (s->len + n >= s->cap) {
        s->overflow = 1;
        return;
    }
    memcpy(s->out + s->len, bytes, n);
    s->len += n;
    s->out[s->len] = '\0';
}

static const char *skip_space(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    return p;
}

static int hex4(const char *p, uint32_t *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        *v = *v << 4 | (uint32_t)d;
    }
    return 0;
}

static void put_utf8(struct sink *s, uint32_t cp)
{
    char b[4];
    size_t n;

    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | cp >> 6);
        b[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | cp >> 12);
        b[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (char)(0xF0 | cp >> 18);
        b[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        b[2] = (char)(0x80 | (cp >> 6 & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    sink_put(s, b, n);
}

/* \uXXXX at p (after the backslash and 'u'), with a surrogate pair's
 * second half; a lone half becomes U+FFFD. The end, or NULL. */
static const char *read_unicode(const char *p, struct sink *s)
{
    uint32_t cp, low;

    if (hex4(p, &cp) < 0)
        return NULL;
    p += 4;
    if (cp >= 0xD800 && cp <= 0xDBFF && p[0] == '\\' && p[1] == 'u' && hex4(p + 2, &low) == 0 &&
        low >= 0xDC00 && low <= 0xDFFF) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        p += 6;
    } else if (cp >= 0xD800 && cp <= 0xDFFF) {
        cp = 0xFFFD;
    }
    put_utf8(s, cp);
    return p;
}

/* The string whose opening quote is at p, into s; past its closing quote,
 * or NULL when it is not a whole JSON string. */
static const char *read_string(const char *p, struct sink *s)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";

    if (*p++ != '"')
        return NULL;
    sink_put(s, "", 0);
    while (*p != '"') {
        if (*p == '\0' || (unsigned char)*p < 0x20)
            return NULL;
        if (*p != '\\') {
            sink_put(s, p++, 1);
            continue;
        }
        p++;
        if (*p == 'u') {
            p = read_unicode(p + 1, s);
            if (!p)
                return NULL;
            continue;
        }
        const char *e = *p ? strchr(from, *p) : NULL;
        if (!e)
            return NULL;
        sink_put(s, &to[e - from], 1);
        p++;
    }
    return p + 1;
}

/* A number, true, false or null: past it, or NULL at anything nested. */
static const char *skip_scalar(const char *p)
{
    const char *start = p;

    while (*p && *p != ',' && *p != '}' && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
        if (*p == '{' || *p == '[' || *p == '"' || *p == ']' || *p == ':')
            return NULL;
        p++;
    }
    return p == start ? NULL : p;
}

/* One "key": value at p, the value read into out when the key is key and
 * no earlier field had it; past the value, or NULL. */
static const char *read_field(const char *p, const char *key, char *out, size_t cap, int *found)
{
    char name[64];
    struct sink k = {name, sizeof name, 0, 0};
    struct sink v = {NULL, 0, 0, 0};

    p = read_string(p, &k);
    if (!p || *(p = skip_space(p)) != ':')
        return NULL;
    p = skip_space(p + 1);
    if (*p != '"')
        return skip_scalar(p);
    if (!k.overflow && !*found && strcmp(name, key) == 0) {
        v = (struct sink){out, cap, 0, 0};
        *found = 1;
    }
    p = read_string(p, &v);
    return v.overflow ? NULL : p;
}

int jsonline_str(const char *line, const char *key, char *out, size_t cap)
{
    int found = 0;
    const char *p = skip_space(line);

    if (!out || cap == 0 || *p != '{')
        return -1;
    out[0] = '\0';
    p = skip_space(p + 1);
    while (*p != '}') {
        p = read_field(p, key, out, cap, &found);
        if (!p)
            return -1;
        p = skip_space(p);
        if (*p == '}')
            break;
        if (*p != ',')
            return -1;
        p = skip_space(p + 1);
        if (*p == '}')
            return -1; /* a comma before the end */
    }
    return *skip_space(p + 1) == '\0' ? found : -1;
}
