/*
 * report.c - rcat's voice: messages, the progress bar and --json events on
 * standard error, stat and ls lines on standard output. Scripts read the
 * JSON and the exit code, people read the text; both are shaped here so the
 * two never drift apart.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include "report.h"

#define BAR_EVERY_US 100000u   /* at most ~10 redraws a second */
#define STATS_EVERY_US 250000u /* a few STATS events a second */
#define JSON_STRING_MAX 8192   /* longer strings are cut: one event stays bounded */
#define JSON_LINE_MAX (64 * 1024 + 4 * 6 * JSON_STRING_MAX)

static struct report_config cfg;
static int operand;
static uint64_t started_us;
static uint64_t attempted, passed, failed, total_bytes, retries;
static int bar_visible; /* a bar line is on screen without its newline */

static uint64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* nowhere left to complain to */
        buf += n;
        len -= (size_t)n;
    }
}

void report_init(const struct report_config *c)
{
    cfg = *c;
    if (cfg.json || cfg.quiet)
        cfg.progress = 0;
    started_us = now_us();
}

int report_wants_size(void)
{
    return cfg.progress || cfg.json;
}

void report_operand(int index)
{
    operand = index;
}

/* ---- JSON lines ---------------------------------------------------------- */

/* One event is built here and written with one write(), so events from one
 * run never interleave mid-line. Its strings are capped, so it always fits. */
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

/* The length of a valid UTF-8 sequence at s, or 0: JSON must be UTF-8, and
 * file names need not be. */
static size_t utf8_seq(const unsigned char *s, size_t left)
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
        size_t n = utf8_seq(s, left);
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

static void j_open(const char *type)
{
    line.len = 0;
    put_s("{\"Type\":");
    put_json_string(type);
}

static void j_str(const char *key, const char *value)
{
    put(",", 1);
    put_json_string(key);
    put(":", 1);
    put_json_string(value ? value : "");
}

static void j_u64(const char *key, uint64_t v)
{
    char num[32];

    put(",", 1);
    put_json_string(key);
    snprintf(num, sizeof num, ":%" PRIu64, v);
    put_s(num);
}

static void j_i64(const char *key, int64_t v)
{
    char num[32];

    put(",", 1);
    put_json_string(key);
    snprintf(num, sizeof num, ":%" PRId64, v);
    put_s(num);
}

static void j_operand(void)
{
    if (operand > 0)
        j_u64("ArgIndex", (uint64_t)operand);
}

static void j_close(int fd)
{
    put("}\n", 2);
    if (fd == STDOUT_FILENO)
        fwrite(line.buf, 1, line.len, stdout);
    else
        write_all(fd, line.buf, line.len);
}

/* ---- text ---------------------------------------------------------------- */

static unsigned term_width(void)
{
    struct winsize ws;

    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
        return ws.ws_col > 400 ? 400 : ws.ws_col;
    return 80;
}

/* A message must not be glued to a bar drawn without its newline. Blanks
 * rather than an escape sequence: any terminal understands them. */
static void clear_bar(void)
{
    char blank[402];
    size_t n = term_width();

    if (!bar_visible)
        return;
    blank[0] = '\r';
    memset(blank + 1, ' ', n - 1);
    blank[n] = '\r';
    write_all(STDERR_FILENO, blank, n + 1);
    bar_visible = 0;
}

/* "rcat: FILE: text\n", cut to fit, in one write. */
static void say(const char *file, const char *fmt, va_list ap)
{
    char msg[8192];
    size_t cap = sizeof msg - 1; /* the newline's room */
    size_t n;

    if (file)
        snprintf(msg, cap, "rcat: %s: ", file);
    else
        snprintf(msg, cap, "rcat: ");
    n = strlen(msg);
    vsnprintf(msg + n, cap - n, fmt, ap);
    n = strlen(msg);
    msg[n++] = '\n';
    clear_bar();
    write_all(STDERR_FILENO, msg, n);
}

/* ---- events -------------------------------------------------------------- */

void report_begin(const char *version, const char *operation, int operands, const char *destination)
{
    if (!cfg.json)
        return;
    j_open("INIT");
    j_str("Version", version);
    j_str("Operation", operation);
    j_u64("Operands", (uint64_t)operands);
    if (destination)
        j_str("Destination", destination);
    j_u64("Pid", (uint64_t)getpid());
    j_close(STDERR_FILENO);
}

void report_session(const char *session, const char *host, unsigned port)
{
    if (cfg.json) {
        j_open("SESSION");
        j_str("SessionId", session);
        j_str("Host", host);
        j_u64("Port", port);
        j_close(STDERR_FILENO);
    } else if (cfg.verbose) {
        report_info("connected to %s port %u (session %s)", host, port, session);
    }
}

static void error_event(int code, const char *name, const char *file, const char *fmt, va_list ap)
{
    char text[1024];

    vsnprintf(text, sizeof text, fmt, ap);
    j_open("ERROR");
    j_u64("Code", (uint64_t)code);
    j_str("Error", name);
    j_str("Description", text);
    if (file)
        j_str("File", file);
    j_operand();
    j_close(STDERR_FILENO);
}

void report_error(int code, const char *name, const char *file, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (cfg.json)
        error_event(code, name, file, fmt, ap);
    else
        say(file, fmt, ap);
    va_end(ap);
}

void report_usage(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (cfg.json) {
        error_event(RCAT_EXIT_USAGE, "USAGE", NULL, fmt, ap);
    } else {
        say(NULL, fmt, ap);
        static const char hint[] = "Try 'rcat --help' for more information.\n";

        write_all(STDERR_FILENO, hint, sizeof hint - 1);
    }
    va_end(ap);
}

static void log_event(const char *level, const char *fmt, va_list ap)
{
    char text[4096];

    vsnprintf(text, sizeof text, fmt, ap);
    j_open("LOG");
    j_str("Level", level);
    j_str("Message", text);
    j_close(STDERR_FILENO);
}

void report_info(const char *fmt, ...)
{
    va_list ap;

    if (!cfg.verbose)
        return;
    va_start(ap, fmt);
    if (cfg.json)
        log_event("info", fmt, ap);
    else
        say(NULL, fmt, ap);
    va_end(ap);
}

static void library_line(const char *level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (cfg.json)
        log_event(level, fmt, ap);
    else
        say(NULL, fmt, ap);
    va_end(ap);
}

void report_library_log(int level, const char *message)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    const char *name = level >= 0 && level <= 3 ? names[level] : "debug";

    if (!cfg.verbose)
        return;
    if (cfg.json)
        library_line(name, "%s", message);
    else
        library_line(name, "rpc2 %s: %s", name, message);
}

/* ---- the progress bar ---------------------------------------------------- */

static void human_bytes(char *out, size_t cap, double v)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    size_t u = 0;

    while (v >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(out, cap, "%.0f B", v);
    else
        snprintf(out, cap, "%.1f %s", v, units[u]);
}

static void clock_text(char *out, size_t cap, double seconds)
{
    uint64_t s = seconds < 0 ? 0 : seconds > 359999 ? 359999 : (uint64_t)(seconds + 0.5);

    if (s >= 3600)
        snprintf(out, cap, "%" PRIu64 ":%02u:%02u", s / 3600, (unsigned)(s / 60 % 60),
                 (unsigned)(s % 60));
    else
        snprintf(out, cap, "%u:%02u", (unsigned)(s / 60), (unsigned)(s % 60));
}

/* "  45%  12.3 MiB  4.1 MiB/s  ETA 0:03", or without percent and ETA when
 * the size is unknown, or "in 0:03" once done. */
static unsigned percent(const struct report_xfer *x)
{
    return (unsigned)(x->bytes >= (uint64_t)x->size ? 100 : x->bytes * 100 / (uint64_t)x->size);
}

static void bar_stats(const struct report_xfer *x, int done, char *out, size_t cap)
{
    char got[32], rate[32], when[32];
    const char *word;
    double elapsed = (double)(now_us() - x->start_us) / 1e6;
    double r = done && elapsed > 0 ? (double)x->bytes / elapsed : x->rate;

    human_bytes(got, sizeof got, (double)x->bytes);
    human_bytes(rate, sizeof rate, r);
    if (done)
        clock_text(when, sizeof when, elapsed);
    else if (x->size >= 0 && r > 0)
        clock_text(when, sizeof when, (double)((uint64_t)x->size - x->bytes) / r);
    else
        clock_text(when, sizeof when, elapsed);
    word = done ? "in" : x->size >= 0 && r > 0 ? "ETA" : "  ";
    if (x->size > 0)
        snprintf(out, cap, " %3u%% %10s %10s/s %s %s", percent(x), got, rate, word, when);
    else
        snprintf(out, cap, " %10s %10s/s %s %s", got, rate, word, when);
}

/* The label, cut from the left so the end of a path stays visible. */
static void put_label(char *out, size_t *len, const char *label, size_t width)
{
    size_t n = strlen(label);

    if (n > width && width > 3) {
        memcpy(out + *len, "...", 3);
        memcpy(out + *len + 3, label + n - (width - 3), width - 3);
    } else {
        memcpy(out + *len, label, n < width ? n : width);
        memset(out + *len + (n < width ? n : width), ' ', n < width ? width - n : 0);
    }
    *len += width;
}

static void put_gauge(char *out, size_t *len, const struct report_xfer *x, size_t width)
{
    size_t full = x->size > 0 ? (size_t)((double)width * (double)x->bytes / (double)x->size) : 0;

    if (full > width)
        full = width;
    out[(*len)++] = ' ';
    out[(*len)++] = '[';
    memset(out + *len, '#', full);
    memset(out + *len + full, '-', width - full);
    *len += width;
    out[(*len)++] = ']';
}

static void draw_bar(const struct report_xfer *x, int done)
{
    char stats[128], out[512];
    size_t width = term_width() - 1, len = 0, slen, avail, label_w, gauge_w = 0;

    bar_stats(x, done, stats, sizeof stats);
    slen = strlen(stats);
    avail = width > slen ? width - slen : 0;
    label_w = avail * 2 / 5 > 8 ? avail * 2 / 5 : avail;
    if (x->size > 0 && avail > label_w + 13)
        gauge_w = avail - label_w - 3 > 40 ? 40 : avail - label_w - 3;
    else
        label_w = avail;
    if (gauge_w)
        label_w = avail - gauge_w - 3;
    out[len++] = '\r';
    put_label(out, &len, x->label, label_w);
    if (gauge_w)
        put_gauge(out, &len, x, gauge_w);
    memcpy(out + len, stats, slen);
    len += slen;
    if (done)
        out[len++] = '\n';
    write_all(STDERR_FILENO, out, len);
    bar_visible = !done;
}

/* ---- transfers ----------------------------------------------------------- */

static const char *direction(const struct report_xfer *x)
{
    return x->send ? "Send" : "Receive";
}

static void xfer_fields(const struct report_xfer *x, uint64_t retransmissions)
{
    uint64_t elapsed = now_us() - x->start_us;

    if (x->session)
        j_str("SessionId", x->session);
    j_str("Direction", direction(x));
    j_str("File", x->file);
    j_str("Destination", x->dest);
    j_operand();
    if (x->size >= 0)
        j_i64("Size", x->size);
    if (x->start_byte >= 0)
        j_i64("StartByte", x->start_byte);
    if (x->end_byte >= 0)
        j_i64("EndByte", x->end_byte);
    j_u64("FileBytes", x->bytes);
    if (x->resume)
        j_u64("StartedOver", (uint64_t)x->started_over);
    j_u64("Elapsedusec", elapsed);
    j_u64("BytesPerSec", elapsed ? (uint64_t)((double)x->bytes * 1e6 / (double)elapsed) : 0);
    j_u64("Retransmissions", retransmissions);
}

void report_xfer_begin(struct report_xfer *x, const char *session, int send, const char *file,
                       const char *dest, int64_t size)
{
    memset(x, 0, sizeof *x);
    x->session = session;
    x->send = send;
    x->file = file;
    x->dest = dest;
    x->label = file;
    x->size = size;
    x->start_byte = x->end_byte = -1;
    x->start_us = x->last_us = now_us();
    if (cfg.progress)
        draw_bar(x, 0);
}

int report_xfer_due(const struct report_xfer *x)
{
    if (!cfg.progress && !cfg.json)
        return 0;
    return now_us() - x->last_us >= (cfg.json ? STATS_EVERY_US : BAR_EVERY_US);
}

/* An exponential average of the rate between redraws: steadier than the
 * last interval alone, quicker to follow a change than the mean since start. */
static void update_rate(struct report_xfer *x, uint64_t now)
{
    double dt = (double)(now - x->last_us) / 1e6;
    double inst = dt > 0 ? (double)(x->bytes - x->last_bytes) / dt : 0;

    x->rate = x->rate > 0 ? 0.7 * x->rate + 0.3 * inst : inst;
    x->last_us = now;
    x->last_bytes = x->bytes;
}

void report_xfer_range(struct report_xfer *x, int64_t start_byte, int64_t end_byte)
{
    x->start_byte = start_byte;
    x->end_byte = end_byte;
}

void report_xfer_resumed(struct report_xfer *x, int started_over, const char *note)
{
    x->resume = 1;
    x->started_over = started_over;
    if (x->start_byte > 0)
        report_info("%s: continued from byte %" PRId64, x->label, x->start_byte);
    if (started_over || note)
        report_info("%s: %s", x->label, note ? note : "started over");
}

void report_xfer_path(struct report_xfer *x, const struct report_path *p)
{
    x->path = *p;
    x->have_path = 1;
}

static void path_fields(const struct report_xfer *x)
{
    const struct report_path *p = &x->path;

    if (!x->have_path)
        return;
    j_u64("Rate", p->rate_bps ? p->rate_bps : (uint64_t)(x->rate * 8));
    j_u64("Delay", p->delay_us / 1000);
    if (p->min_delay_us)
        j_u64("MinDelay", p->min_delay_us / 1000);
    /* events carry integers only: hundredths of a per cent (basis points) */
    j_u64("Loss", p->packets ? p->packets_retransmitted * 10000 / p->packets : 0);
    j_u64("RetransmittedBytes", p->bytes_retransmitted);
    if (p->policy)
        j_str("Policy", p->policy);
}

void report_xfer_progress(struct report_xfer *x, uint64_t bytes, int64_t total,
                          uint64_t retransmissions)
{
    if (x->size < 0 && total >= 0)
        x->size = total;
    x->bytes = bytes;
    update_rate(x, now_us());
    if (cfg.json) {
        j_open("STATS");
        xfer_fields(x, retransmissions);
        path_fields(x);
        j_close(STDERR_FILENO);
    } else if (cfg.progress) {
        draw_bar(x, 0);
    }
}

/* -v without a bar: one line per file. */
static void summary(const struct report_xfer *x)
{
    double elapsed = (double)(now_us() - x->start_us) / 1e6;
    char got[32], rate[32], took[32];

    human_bytes(got, sizeof got, (double)x->bytes);
    human_bytes(rate, sizeof rate, elapsed > 0 ? (double)x->bytes / elapsed : 0);
    clock_text(took, sizeof took, elapsed);
    report_info("%s -> %s: %s in %s (%s/s)", x->file, x->dest, got, took, rate);
}

/* Lowercase hex, as md5sum prints it; "" for none. */
static void sum_hex(const struct report_sum *sum, char *hex, size_t cap)
{
    hex[0] = '\0';
    for (unsigned i = 0; sum && i < sum->len && 2 * (size_t)i + 2 < cap; i++)
        snprintf(hex + 2 * i, 3, "%02x", sum->bytes[i]);
}

void report_xfer_end(struct report_xfer *x, uint64_t bytes, uint64_t retransmissions,
                     uint64_t duplicates, int code, const char *result,
                     const struct report_sum *sum)
{
    char hex[2 * 64 + 1];

    x->bytes = bytes;
    attempted++;
    total_bytes += bytes;
    if (code == RCAT_EXIT_OK)
        passed++;
    else
        failed++;
    if (cfg.json) {
        j_open("STOP");
        xfer_fields(x, retransmissions);
        j_u64("Duplicates", duplicates);
        j_u64("Code", (uint64_t)code);
        j_str("Result", result);
        sum_hex(sum, hex, sizeof hex);
        if (hex[0]) {
            j_str("Checksum", hex);
            j_str("ChecksumType", sum->type);
        }
        j_close(STDERR_FILENO);
        return;
    }
    sum_hex(sum, hex, sizeof hex);
    if (cfg.progress && code == RCAT_EXIT_OK)
        draw_bar(x, 1);
    else if (cfg.verbose && code == RCAT_EXIT_OK)
        summary(x);
    else
        clear_bar(); /* the error message says what happened */
    if (cfg.verbose && hex[0])
        report_info("%s: %s %s", x->file, sum->type, hex);
}

void report_retry(unsigned attempt, unsigned attempts, const char *error, uint64_t delay_us)
{
    /* DONE counts files: the failed attempt gives way to the next one */
    if (failed > 0 && attempted > 0) {
        failed--;
        attempted--;
    }
    retries++;
    if (cfg.json) {
        j_open("RETR");
        j_operand();
        j_u64("Attempt", attempt);
        j_u64("Attempts", attempts);
        j_str("Error", error);
        j_u64("Delayusec", delay_us);
        j_close(STDERR_FILENO);
    } else if (!cfg.quiet) {
        char msg[160];

        snprintf(msg, sizeof msg, "rcat: %s: trying again in %.3g s (attempt %u of %u)\n", error,
                 (double)delay_us / 1e6, attempt, attempts);
        clear_bar();
        write_all(STDERR_FILENO, msg, strlen(msg));
    }
}

void report_done(int code)
{
    if (!cfg.json)
        return;
    j_open("DONE");
    j_u64("TransfersAttempted", attempted);
    j_u64("TransfersPassed", passed);
    j_u64("TransfersFailed", failed);
    j_u64("Retries", retries);
    j_u64("FileBytes", total_bytes);
    j_u64("Elapsedusec", now_us() - started_us);
    j_u64("ExitCode", (uint64_t)code);
    j_close(STDERR_FILENO);
}

/* ---- stat and ls ----------------------------------------------------------- */

static const char *type_name(enum report_type t)
{
    static const char *const names[] = {"file", "directory", "link", "other"};

    return names[t];
}

static const char *type_text(enum report_type t)
{
    static const char *const names[] = {"regular file", "directory", "symbolic link",
                                        "special file"};

    return names[t];
}

static void mode_string(char *out, enum report_type t, unsigned mode)
{
    static const char types[] = "-dl?";
    static const char rwx[] = "rwxrwxrwx";

    out[0] = types[t];
    for (int i = 0; i < 9; i++)
        out[1 + i] = mode & (0400u >> i) ? rwx[i] : '-';
    if (mode & 04000)
        out[3] = mode & 0100 ? 's' : 'S';
    if (mode & 02000)
        out[6] = mode & 0010 ? 's' : 'S';
    if (mode & 01000)
        out[9] = mode & 0001 ? 't' : 'T';
    out[10] = '\0';
}

static void local_time(char *out, size_t cap, const char *fmt, int64_t sec)
{
    time_t t = (time_t)sec;
    struct tm tm;

    if (!localtime_r(&t, &tm) || !strftime(out, cap, fmt, &tm))
        snprintf(out, cap, "@%" PRId64, sec);
}

/* Names come from the server: on a terminal, control characters could
 * drive it, so they and bytes that are not UTF-8 are shown as '?' (as ls
 * does). Elsewhere the bytes go out as they are. */
static void print_name(const char *name)
{
    const unsigned char *s = (const unsigned char *)name;
    size_t left = strlen(name);

    if (!isatty(STDOUT_FILENO)) {
        fputs(name, stdout);
        return;
    }
    while (left > 0) {
        size_t n = utf8_seq(s, left);

        if (n == 0 || *s < 0x20 || *s == 0x7f) {
            putchar('?');
            n = 1;
        } else {
            fwrite(s, 1, n, stdout);
        }
        s += n;
        left -= n;
    }
}

static void entry_json(const char *key, const char *name, const struct report_entry *e)
{
    char mode[8];

    snprintf(mode, sizeof mode, "%04o", e->mode & 07777);
    line.len = 0;
    put_s("{");
    put_json_string(key);
    put(":", 1);
    put_json_string(name);
    j_str("Type", type_name(e->type));
    j_u64("Size", e->size);
    j_str("Mode", mode);
    j_i64("MtimeSec", e->mtime_sec);
    j_u64("MtimeNsec", e->mtime_nsec);
    j_close(STDOUT_FILENO);
}

void report_stat(const char *path, const struct report_entry *e)
{
    char mode[11], when[64], zone[16];

    if (cfg.json) {
        entry_json("Path", path, e);
        return;
    }
    mode_string(mode, e->type, e->mode);
    local_time(when, sizeof when, "%Y-%m-%d %H:%M:%S", e->mtime_sec);
    local_time(zone, sizeof zone, "%z", e->mtime_sec);
    print_name(path);
    printf(": %s, %" PRIu64 " bytes, mode %04o (%s), modified %s.%09u %s\n", type_text(e->type),
           e->size, e->mode & 07777, mode, when, e->mtime_nsec % 1000000000u, zone);
}

void report_list_entry(const char *name, const struct report_entry *e)
{
    char mode[11], when[32];

    if (cfg.json) {
        entry_json("Name", name, e);
        return;
    }
    mode_string(mode, e->type, e->mode);
    local_time(when, sizeof when, "%Y-%m-%d %H:%M", e->mtime_sec);
    printf("%s %12" PRIu64 " %s ", mode, e->size, when);
    print_name(name);
    putchar('\n');
}

int report_flush_stdout(void)
{
    return fflush(stdout) == 0 && !ferror(stdout) ? 0 : -1;
}
