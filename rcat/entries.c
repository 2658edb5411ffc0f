/*
 * entries.c - rcat's stat and ls lines on standard output (declared in
 * report.h with the rest of what rcat says): kept apart from the messages
 * and events on standard error, which are report.c's, because these are
 * data a script parses, with their own escaping rules for names that come
 * from the server.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "report.h"

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
        size_t n = json_utf8_seq(s, left);

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
    json_open_key(key, name);
    json_str("Type", type_name(e->type));
    json_u64("Size", e->size);
    json_str("Mode", mode);
    json_i64("MtimeSec", e->mtime_sec);
    json_u64("MtimeNsec", e->mtime_nsec);
    json_close(STDOUT_FILENO);
}

void report_stat(const char *path, const struct report_entry *e)
{
    char mode[11], when[64], zone[16];

    if (report_is_json()) {
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

    if (report_is_json()) {
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
