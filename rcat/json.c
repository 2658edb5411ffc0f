/*
 * json.c - the JSON side of rcat's voice. An event is built here and
 * written with one write(), so events never interleave mid-line; its
 * strings are capped so that it always fits. The library's transfer events
 * are turned into fields here and nowhere else: rcat's --json prints them
 * as delivered (report.c decides when, and adds rcat's own labels), so
 * what a program using the library sees and what rcat prints cannot drift
 * apart.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <rpc2/se.h>

#include "json.h"
#include "report.h"

#define JSON_STRING_MAX 8192 /* longer strings are cut: one event stays bounded */
#define JSON_LINE_MAX (64 * 1024 + 4 * 6 * JSON_STRING_MAX)

static struct {
    char buf[JSON_LINE_MAX];
    size_t len;
} line;

static void put(const char *s, size_t n)
{
    if (n > sizeof line.buf - line.len)
        n = sizeof line.buf - line.len; /* unreachable with capped strings */
    memcpy(line.buf + line.len, s, n);
    line.len += n;
}

static void put_s(const char *s)
{
    put(s, strlen(s));
}

/* JSON must be UTF-8, and file names need not be. */
size_t json_utf8_seq(const unsigned char *s, size_t left)
{
    unsigned c = s[0], cp, min;
    size_t n;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2, min = 0x80, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, min = 0x800, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, min = 0x10000, cp = c & 0x07;
    else
        return 0;
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* A JSON string: quotes, backslash and control characters escaped, bytes
 * that are not UTF-8 replaced by U+FFFD. */
static void put_json_string(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t left = strnlen(str, JSON_STRING_MAX);

    put("\"", 1);
    while (left > 0) {
        size_t n = json_utf8_seq(s, left);
        char esc[8];

        if (n == 0) {
            put_s("\\ufffd");
            n = 1;
        } else if (*s == '"' || *s == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*s;
            put(esc, 2);
        } else if (*s < 0x20 || *s == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", *s);
            put(esc, 6);
        } else {
            put((const char *)s, n);
        }
        s += n;
        left -= n;
    }
    put("\"", 1);
}

void json_open(const char *type)
{
    json_open_key("Type", type);
}

void json_open_key(const char *key, const char *value)
{
    line.len = 0;
    put("{", 1);
    put_json_string(key);
    put(":", 1);
    put_json_string(value);
}

void json_str(const char *key, const char *value)
{
    put(",", 1);
    put_json_string(key);
    put(":", 1);
    put_json_string(value ? value : "");
}

static void put_number(const char *key, const char *digits)
{
    put(",", 1);
    put_json_string(key);
    put(":", 1);
    put_s(digits);
}

void json_u64(const char *key, uint64_t v)
{
    char num[24];

    snprintf(num, sizeof num, "%" PRIu64, v);
    put_number(key, num);
}

void json_i64(const char *key, int64_t v)
{
    char num[24];

    snprintf(num, sizeof num, "%" PRId64, v);
    put_number(key, num);
}

void json_close(int fd)
{
    put("}\n", 2);
    if (fd == STDOUT_FILENO)
        fwrite(line.buf, 1, line.len, stdout);
    else
        report_write_all(fd, line.buf, line.len);
}

/* ---- the library's events -------------------------------------------------- */

/* What every event of a transfer says: which way, the range, the bytes. */
static void common_fields(const struct rpc2_event *ev)
{
    json_str("Direction", ev->is_source ? "Send" : "Receive");
    if (ev->size >= 0)
        json_i64("Size", ev->size);
    if (ev->start_byte >= 0)
        json_i64("StartByte", ev->start_byte);
    if (ev->end_byte >= 0)
        json_i64("EndByte", ev->end_byte);
    json_u64("FileBytes", ev->file_bytes);
    json_u64("Elapsedusec", ev->elapsed_us);
}

/* The path, from a streamed transfer's machine: Rate in bits/s, Delay in
 * ms, Loss in hundredths of a per cent (events carry integers only). */
static void path_fields(const struct rpc2_event *ev)
{
    if (!ev->packets && !ev->policy)
        return;                                       /* piggybacked, or no machine sampled yet */
    if (ev->rate_bps || ev->type == RPC2_EVENT_STATS) /* STOP: the machine's, as it ended */
        json_u64("Rate", ev->rate_bps);
    json_u64("Delay", ev->delay_us / 1000);
    if (ev->min_delay_us)
        json_u64("MinDelay", ev->min_delay_us / 1000);
    json_u64("Loss", ev->loss_bp);
    json_u64("RetransmittedBytes", ev->bytes_retransmitted);
    if (ev->policy)
        json_str("Policy", ev->policy);
}

static void rate_fields(const struct rpc2_event *ev, uint64_t extra_retransmissions)
{
    uint64_t e = ev->elapsed_us;

    json_u64("BytesPerSec", e ? (uint64_t)((double)ev->file_bytes * 1e6 / (double)e) : 0);
    json_u64("Retransmissions", ev->packets_retransmitted + extra_retransmissions);
}

/* NOTIFICATION: what the two machines agreed on (Aspera's Rate and MinRate
 * there are the target, not the pace). */
static void notification_fields(const struct rpc2_event *ev)
{
    json_u64("PacketSize", ev->packet_size);
    json_u64("Window", ev->window);
    if (ev->policy)
        json_str("Policy", ev->policy);
    json_u64("Rate", ev->target_bps);
    json_u64("MinRate", ev->min_rate_bps);
    json_u64("Delay", ev->delay_us / 1000);
}

static void error_fields(const struct rpc2_event *ev)
{
    if (!ev->result)
        return;
    json_str("ErrorCode", ev->error_name ? ev->error_name : rpc2_errname(ev->result));
    json_str("ErrorDescription",
             ev->error_description ? ev->error_description : rpc2_strerror(ev->result));
}

/* Lowercase hex, as md5sum prints it. */
static void checksum_fields(const struct rpc2_event *ev)
{
    char hex[2 * RPC2_SE_SUM_MAX + 1];

    if (!ev->checksum || !ev->checksum_len || ev->checksum_len > RPC2_SE_SUM_MAX)
        return;
    for (size_t i = 0; i < ev->checksum_len; i++)
        snprintf(hex + 2 * i, 3, "%02x", ev->checksum[i]);
    json_str("Checksum", hex);
    json_str("ChecksumType", ev->checksum_type ? ev->checksum_type : "xxh128");
}

void json_event_fields(const struct rpc2_event *ev, uint64_t extra_retransmissions)
{
    common_fields(ev);
    switch (ev->type) {
    case RPC2_EVENT_SESSION:
        json_u64("Piggybacked", (uint64_t)ev->piggybacked);
        break;
    case RPC2_EVENT_NOTIFICATION:
        notification_fields(ev);
        break;
    case RPC2_EVENT_STATS:
        rate_fields(ev, extra_retransmissions);
        path_fields(ev);
        break;
    case RPC2_EVENT_ERROR:
        error_fields(ev);
        break;
    case RPC2_EVENT_STOP:
        rate_fields(ev, extra_retransmissions);
        path_fields(ev);
        json_u64("Duplicates", ev->duplicates);
        if (ev->resume)
            json_u64("StartedOver", (uint64_t)ev->started_over);
        if (ev->quota_exceeded)
            json_u64("QuotaExceeded", 1);
        error_fields(ev);
        checksum_fields(ev);
        break;
    case RPC2_EVENT_RETRY:
        json_u64("Attempt", ev->attempt);
        break;
    default:
        break;
    }
}
