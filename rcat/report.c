/*
 * report.c - rcat's voice on standard error: messages, the progress bar and
 * --json events. Scripts read the JSON and the exit code, people read the
 * text; both are decided here so the two never drift apart. The JSON lines
 * themselves are built by json.c, the progress bar drawn by bar.c; stat
 * and ls lines are entries.c's.
 *
 * A transfer's events are the library's (rpc2/event.h), printed as the
 * callback delivered them (report_xfer_event), with rcat's labels added:
 * SessionId, File, Destination, ArgIndex. Only ERROR and STOP wait until
 * the call has returned, so that rcat's judgement of the outcome (verdict.c:
 * the exit Code, a name such as RCAT_NOT_FOUND, words for the operator)
 * rides on them. rcat's own events are those about the run, not a
 * transfer: INIT (the run: its operands and PID), SESSION per connection
 * for --stat and --ls (which have no transfer to say it), LOG, RETR, DONE
 * (the run's counts, which no library transfer could know), and ERROR and
 * STOP for an operand that failed before the library began a transfer (a
 * local file that would not open, a server not reached, a usage error).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bar.h"
#include "json.h"
#include "report.h"

#define BAR_EVERY_US 100000u   /* at most ~10 redraws a second */
#define STATS_EVERY_US 250000u /* --json: a few STATS events a second */

static struct report_config cfg;
static int operand;
static uint64_t started_us;
static uint64_t attempted, passed, failed, total_bytes, retries, skipped;
/* -r: the run's plan and the bytes of transfers still running, for the one
 * bar of the whole run; the counts when the operand began, for ARGSTOP */
static struct {
    int on;
    uint64_t files, bytes, live;
    struct report_xfer bar;
} tree;
static uint64_t arg_base[4];
static struct report_xfer *current; /* the transfer in hand, for its ERROR */
static int queries; /* the run moves no file (--stat, --ls): SESSION per connection */

void report_write_all(int fd, const char *buf, size_t len)
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
    started_us = bar_now_us();
}

int report_is_json(void)
{
    return cfg.json;
}

uint32_t report_stats_interval_us(void)
{
    if (cfg.json || (cfg.verbose && !cfg.progress))
        return STATS_EVERY_US; /* -v: its line each second, late by a quarter at most */
    return cfg.progress ? BAR_EVERY_US : 0;
}

int report_wants_size(void)
{
    return cfg.progress || cfg.json;
}

void report_operand(int index)
{
    operand = index;
    arg_base[0] = passed;
    arg_base[1] = skipped;
    arg_base[2] = failed;
    arg_base[3] = total_bytes;
}

static void json_operand(void)
{
    if (operand > 0)
        json_u64("ArgIndex", (uint64_t)operand);
}

/* ---- text ---------------------------------------------------------------- */

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
    bar_clear();
    report_write_all(STDERR_FILENO, msg, n);
}

/* ---- events -------------------------------------------------------------- */

void report_begin(const char *version, const char *operation, int operands, const char *destination)
{
    if (!cfg.json)
        return;
    queries = strcmp(operation, "Fetch") && strcmp(operation, "Store");
    json_open("INIT");
    json_str("Version", version);
    json_str("Operation", operation);
    json_u64("Operands", (uint64_t)operands);
    if (destination)
        json_str("Destination", destination);
    json_u64("Pid", (uint64_t)getpid());
    json_close(STDERR_FILENO);
}

/* The connections made, for the SESSION of each transfer on them: rcat's
 * SessionId names one connection (which the library does not name), and
 * Host and Port say where it goes, as the operand wrote them. A run that
 * moves no file (--stat, --ls) has no transfer to say it: rcat's own
 * SESSION per connection then. */
#define CONNECTIONS_KNOWN 64
static struct {
    const char *session, *host;
    unsigned port;
} connections[CONNECTIONS_KNOWN];

void report_session(const char *session, const char *host, unsigned port)
{
    size_t i = 0;

    while (i < CONNECTIONS_KNOWN - 1 && connections[i].session && connections[i].session != session)
        i++;
    connections[i].session = session;
    connections[i].host = host;
    connections[i].port = port;
    if (cfg.json && queries) { /* no transfer will say it */
        json_open("SESSION");
        json_str("SessionId", session);
        json_str("Host", host);
        json_u64("Port", port);
        json_close(STDERR_FILENO);
    } else if (!cfg.json && cfg.verbose)
        report_info("connected to %s port %u (session %s)", host, port, session);
}

static void connection_labels(const char *session)
{
    for (size_t i = 0; session && i < CONNECTIONS_KNOWN && connections[i].session; i++) {
        if (connections[i].session == session) {
            json_str("Host", connections[i].host);
            json_u64("Port", connections[i].port);
            return;
        }
    }
}

static void error_event(int code, const char *name, const char *file, const char *fmt, va_list ap)
{
    char text[1024];

    vsnprintf(text, sizeof text, fmt, ap);
    json_open("ERROR");
    json_u64("Code", (uint64_t)code);
    json_str("Error", name);
    json_str("Description", text);
    if (file)
        json_str("File", file);
    json_operand();
    if (current && current->error.held) {
        /* the library's ERROR of the transfer in hand, in rcat's words */
        if (current->session)
            json_str("SessionId", current->session);
        json_event_fields(&current->error.ev, 0);
        current->error.held = 0;
    }
    json_close(STDERR_FILENO);
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

        report_write_all(STDERR_FILENO, hint, sizeof hint - 1);
    }
    va_end(ap);
}

static void log_event(const char *level, const char *fmt, va_list ap)
{
    char text[4096];

    vsnprintf(text, sizeof text, fmt, ap);
    json_open("LOG");
    json_str("Level", level);
    json_str("Message", text);
    json_close(STDERR_FILENO);
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

/* ---- transfers ----------------------------------------------------------- */

static const char *direction(const struct report_xfer *x)
{
    return x->send ? "Send" : "Receive";
}

/* rcat's names for what the library moves: the library knows neither the
 * remote path (it is in rcat's call) nor the operand nor the connection's
 * session. */
static void xfer_labels(const struct report_xfer *x)
{
    if (x->session)
        json_str("SessionId", x->session);
    json_str("File", x->file);
    json_str("Destination", x->dest);
    json_operand();
}

/* rcat's own STOP, for an operand the library never began a transfer for. */
static void xfer_fields(const struct report_xfer *x, uint64_t retransmissions)
{
    uint64_t elapsed = bar_now_us() - x->start_us;

    xfer_labels(x);
    json_str("Direction", direction(x));
    if (x->size >= 0)
        json_i64("Size", x->size);
    if (x->start_byte >= 0)
        json_i64("StartByte", x->start_byte);
    if (x->end_byte >= 0)
        json_i64("EndByte", x->end_byte);
    json_u64("FileBytes", x->bytes);
    if (x->resume)
        json_u64("StartedOver", (uint64_t)x->started_over);
    json_u64("Elapsedusec", elapsed);
    json_u64("BytesPerSec", elapsed ? (uint64_t)((double)x->bytes * 1e6 / (double)elapsed) : 0);
    json_u64("Retransmissions", retransmissions);
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
    x->start_us = x->last_us = bar_now_us();
    current = x;
    if (cfg.progress && !tree.on)
        bar_draw(x, 0);
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

/* One library event as a line: its type, rcat's labels, its fields. */
static void print_event(const struct report_xfer *x, const struct rpc2_event *ev,
                        uint64_t extra_retransmissions)
{
    const char *type = rpc2_event_name((int)ev->type);

    json_open(type ? type : "EVENT");
    xfer_labels(x);
    if (ev->type == RPC2_EVENT_SESSION)
        connection_labels(x->session);
    json_event_fields(ev, extra_retransmissions);
    json_close(STDERR_FILENO);
}

/* An event held until the call returns: its strings live only during the
 * callback, so they are copied with it. */
static void keep(struct report_kept *k, const struct rpc2_event *ev)
{
    k->ev = *ev;
    k->held = 1;
    k->ev.desc = NULL;
    snprintf(k->policy, sizeof k->policy, "%s", ev->policy ? ev->policy : "");
    k->ev.policy = ev->policy ? k->policy : NULL;
    snprintf(k->error_name, sizeof k->error_name, "%s", ev->error_name ? ev->error_name : "");
    k->ev.error_name = ev->error_name ? k->error_name : NULL;
    snprintf(k->error_text, sizeof k->error_text, "%s",
             ev->error_description ? ev->error_description : "");
    k->ev.error_description = ev->error_description ? k->error_text : NULL;
    snprintf(k->sum_type, sizeof k->sum_type, "%s", ev->checksum_type ? ev->checksum_type : "");
    k->ev.checksum_type = ev->checksum_type ? k->sum_type : NULL;
    k->ev.resume_note = NULL;
    k->ev.checksum = NULL;
    k->ev.checksum_len = 0;
    if (ev->checksum && ev->checksum_len <= sizeof k->sum) {
        memcpy(k->sum, ev->checksum, ev->checksum_len);
        k->ev.checksum = k->sum;
        k->ev.checksum_len = ev->checksum_len;
    }
}

/* ERROR and STOP of an attempt that the call did again (a server that
 * forgot the connection): as the library said them, before the next. */
static void flush_kept(struct report_xfer *x)
{
    if (x->error.held)
        print_event(x, &x->error.ev, 0);
    if (x->stop.held)
        print_event(x, &x->stop.ev, 0);
    x->error.held = x->stop.held = 0;
}

/* The bar and rcat's own STOP follow the library's view of the bytes. */
static void follow(struct report_xfer *x, const struct rpc2_event *ev)
{
    if (x->size < 0 && ev->size >= 0)
        x->size = ev->size;
    x->start_byte = ev->start_byte;
    x->end_byte = ev->end_byte;
    if (ev->type == RPC2_EVENT_STATS || ev->type == RPC2_EVENT_STOP) {
        tree.live += ev->file_bytes - x->bytes;
        x->bytes = ev->file_bytes;
    }
}

/* -r: one bar for the run, "files 12/2000", over the bytes of the plan. */
static void draw_tree_bar(int done)
{
    static char label[64];
    struct report_xfer *b = &tree.bar;
    uint64_t now = bar_now_us();

    snprintf(label, sizeof label, "files %" PRIu64 "/%" PRIu64, passed + skipped + failed,
             tree.files);
    b->label = label;
    b->size = (int64_t)tree.bytes;
    b->bytes = total_bytes + tree.live;
    if (!done && now - b->last_us < BAR_EVERY_US)
        return;
    bar_update_rate(b, now);
    bar_draw(b, done);
}

/* -v: the line per second, above the bar when there is one. */
static void path_line(struct report_xfer *x, const struct rpc2_event *ev)
{
    char line[512];

    if (!pathline_format(&x->line, x->file, ev, bar_now_us(), line, sizeof line))
        return;
    if (cfg.progress)
        bar_clear();
    report_info("%s", line);
    if (cfg.progress)
        bar_draw(x, 0);
}

void report_xfer_event(struct report_xfer *x, const struct rpc2_event *ev,
                       uint64_t extra_retransmissions)
{
    follow(x, ev);
    if (!cfg.json && tree.on) {
        if (ev->type == RPC2_EVENT_STATS && cfg.progress)
            draw_tree_bar(0);
        return;
    }
    if (!cfg.json) {
        if (ev->type == RPC2_EVENT_STATS && cfg.verbose)
            path_line(x, ev);
        if (ev->type == RPC2_EVENT_STATS && cfg.progress && bar_now_us() - x->last_us >= BAR_EVERY_US) {
            bar_update_rate(x, bar_now_us());
            bar_draw(x, 0);
        }
        return;
    }
    switch (ev->type) {
    case RPC2_EVENT_INIT:
        flush_kept(x);
        break;
    case RPC2_EVENT_ERROR:
        keep(&x->error, ev);
        return;
    case RPC2_EVENT_STOP:
        keep(&x->stop, ev);
        return;
    default:
        break;
    }
    print_event(x, ev, extra_retransmissions);
}

/* -v without a bar: one line per file. */
static void summary(const struct report_xfer *x)
{
    double elapsed = (double)(bar_now_us() - x->start_us) / 1e6;
    char got[32], rate[32], took[32];

    bar_human_bytes(got, sizeof got, (double)x->bytes);
    bar_human_bytes(rate, sizeof rate, elapsed > 0 ? (double)x->bytes / elapsed : 0);
    bar_clock_text(took, sizeof took, elapsed);
    report_info("%s -> %s: %s in %s (%s/s)", x->file, x->dest, got, took, rate);
}

/* Lowercase hex, as md5sum prints it; "" for none. */
static void sum_hex(const struct report_sum *sum, char *hex, size_t cap)
{
    hex[0] = '\0';
    for (unsigned i = 0; sum && i < sum->len && 2 * (size_t)i + 2 < cap; i++)
        snprintf(hex + 2 * i, 3, "%02x", sum->bytes[i]);
}

/* STOP: the library's, with rcat's outcome; rcat's own when the library
 * never began a transfer. */
static void stop_event(struct report_xfer *x, uint64_t retransmissions, uint64_t duplicates,
                       int code, const char *result, const struct report_sum *sum)
{
    char hex[2 * 64 + 1];

    if (x->error.held) /* a failure rcat did not put in words: a signal's */
        print_event(x, &x->error.ev, 0);
    json_open("STOP");
    if (x->stop.held) {
        struct rpc2_event *ev = &x->stop.ev;
        uint64_t own = ev->packets_retransmitted;

        if (code != RCAT_EXIT_OK && ev->result == 0)
            ev->checksum = NULL; /* rcat failed it after: its sum says nothing */
        xfer_labels(x);
        json_event_fields(ev, retransmissions > own ? retransmissions - own : 0);
    } else {
        xfer_fields(x, retransmissions);
        json_u64("Duplicates", duplicates);
        sum_hex(sum, hex, sizeof hex);
        if (hex[0]) {
            json_str("Checksum", hex);
            json_str("ChecksumType", sum->type);
        }
    }
    json_u64("Code", (uint64_t)code);
    json_str("Result", result);
    json_close(STDERR_FILENO);
}

void report_xfer_end(struct report_xfer *x, uint64_t bytes, uint64_t retransmissions,
                     uint64_t duplicates, int code, const char *result,
                     const struct report_sum *sum)
{
    char hex[2 * 64 + 1];

    tree.live -= tree.live >= x->bytes ? x->bytes : tree.live;
    x->bytes = bytes;
    attempted++;
    total_bytes += bytes;
    if (code == RCAT_EXIT_OK)
        passed++;
    else
        failed++;
    current = NULL;
    if (cfg.json) {
        stop_event(x, retransmissions, duplicates, code, result, sum);
        x->error.held = x->stop.held = 0;
        return;
    }
    sum_hex(sum, hex, sizeof hex);
    if (tree.on) {
        if (cfg.verbose && code == RCAT_EXIT_OK)
            summary(x);
        if (cfg.progress)
            draw_tree_bar(0);
    } else if (cfg.progress && code == RCAT_EXIT_OK)
        bar_draw(x, 1);
    else if (cfg.verbose && code == RCAT_EXIT_OK)
        summary(x);
    else
        bar_clear(); /* the error message says what happened */
    if (cfg.verbose && hex[0])
        report_info("%s: %s %s", x->file, sum->type, hex);
}

/* ---- trees ------------------------------------------------------------------ */

void report_tree_plan(uint64_t files, uint64_t bytes)
{
    if (!tree.on)
        tree.bar.start_us = tree.bar.last_us = bar_now_us();
    tree.on = 1;
    tree.files += files;
    tree.bytes += bytes;
}

void report_xfer_focus(struct report_xfer *x)
{
    current = x;
}

static void tree_summary(void)
{
    char got[32], took[32];
    double elapsed = (double)(bar_now_us() - started_us) / 1e6;
    char msg[256];

    bar_human_bytes(got, sizeof got, (double)total_bytes);
    bar_clock_text(took, sizeof took, elapsed);
    snprintf(msg, sizeof msg,
             "rcat: %" PRIu64 " files moved, %" PRIu64 " skipped, %" PRIu64
             " failed; %s in %s\n",
             passed, skipped, failed, got, took);
    bar_clear();
    report_write_all(STDERR_FILENO, msg, strlen(msg));
}

void report_skip(const char *file, const char *dest, const char *reason, uint64_t size)
{
    skipped++;
    if (cfg.json) {
        json_open("SKIP");
        json_str("File", file);
        json_str("Destination", dest);
        json_operand();
        json_u64("Size", size);
        json_str("Reason", reason);
        json_close(STDERR_FILENO);
        return;
    }
    report_info("%s: skipped (%s)", file, reason);
    if (cfg.progress)
        draw_tree_bar(0);
}

void report_link(const char *file, const char *dest, const char *target)
{
    attempted++;
    passed++;
    if (cfg.json) {
        json_open("STOP");
        json_str("File", file);
        json_str("Destination", dest);
        json_operand();
        json_str("Link", target);
        json_u64("FileBytes", 0);
        json_u64("Code", 0);
        json_str("Result", "OK");
        json_close(STDERR_FILENO);
        return;
    }
    report_info("%s -> %s: symbolic link to %s", file, dest, target);
}

void report_file_error(int code, const char *name, const char *file, const char *fmt, ...)
{
    va_list ap;
    char text[1024];

    failed++;
    attempted++;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (!cfg.json) {
        report_error(code, name, file, "%s", text);
        return;
    }
    json_open("FILEERROR");
    json_str("File", file);
    json_operand();
    json_u64("Code", (uint64_t)code);
    json_str("Error", name);
    json_str("Description", text);
    json_close(STDERR_FILENO);
}

void report_arg_stop(const char *arg, int code)
{
    if (!cfg.json)
        return;
    json_open("ARGSTOP");
    json_operand();
    json_str("File", arg);
    json_u64("TransfersPassed", passed - arg_base[0]);
    json_u64("TransfersSkipped", skipped - arg_base[1]);
    json_u64("TransfersFailed", failed - arg_base[2]);
    json_u64("FileBytes", total_bytes - arg_base[3]);
    json_u64("Code", (uint64_t)code);
    json_close(STDERR_FILENO);
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
        json_open("RETR");
        json_operand();
        json_u64("Attempt", attempt);
        json_u64("Attempts", attempts);
        json_str("Error", error);
        json_u64("Delayusec", delay_us);
        json_close(STDERR_FILENO);
    } else if (!cfg.quiet) {
        char msg[160];

        snprintf(msg, sizeof msg, "rcat: %s: trying again in %.3g s (attempt %u of %u)\n", error,
                 (double)delay_us / 1e6, attempt, attempts);
        bar_clear();
        report_write_all(STDERR_FILENO, msg, strlen(msg));
    }
}

void report_done(int code)
{
    if (!cfg.json) {
        if (tree.on && cfg.progress)
            draw_tree_bar(1);
        if (tree.on && (cfg.verbose || cfg.progress))
            tree_summary();
        return;
    }
    json_open("DONE");
    json_u64("TransfersAttempted", attempted);
    json_u64("TransfersPassed", passed);
    json_u64("TransfersFailed", failed);
    json_u64("TransfersSkipped", skipped);
    json_u64("Retries", retries);
    json_u64("FileBytes", total_bytes);
    json_u64("Elapsedusec", bar_now_us() - started_us);
    json_u64("ExitCode", (uint64_t)code);
    json_close(STDERR_FILENO);
}
