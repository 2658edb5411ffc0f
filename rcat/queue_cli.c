/*
 * queue_cli.c - rcat queue put|get|status|list|cancel: a request is
 * recorded with the options a direct transfer takes (checked now by rcat's
 * own parser, so a usage error is refused at once, not at 3 a.m.) and its
 * id printed; status, list and cancel read and change what is recorded.
 * The runner (queue_run.c) carries requests out.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "duration.h"
#include "json.h"
#include "queue.h"
#include "queue_words.h"

#define DEFAULT_PRIORITY 99 /* ectrans's: 0 goes first */
#define DEFAULT_LIFETIME_MS (7 * 86400 * 1000ll)
#define DEFAULT_RETRIES 144              /* ectrans's spool: 144 retries ... */
#define DEFAULT_RETRY_INTERVAL_MS 600000 /* ... every 10 minutes: a day */

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: rcat queue put LOCAL REMOTE [OPTION]...   queue a store; prints its id\n"
            "  or:  rcat queue get REMOTE -o FILE [OPTION]... queue a fetch; prints its id\n"
            "  or:  rcat queue status [--json] ID...\n"
            "  or:  rcat queue list [--json] [--status STATUS]\n"
            "  or:  rcat queue cancel ID\n"
            "  or:  rcat queue run [--once] [-j N] [--lease D] [--poll D] [--hook-timeout D]\n"
            "Every command takes --queue FILE|postgresql://... (default: $RCAT_QUEUE, else\n"
            "$XDG_STATE_HOME/rcat/queue.db or ~/.local/state/rcat/queue.db).\n"
            "\n"
            "put and get take rcat's transfer options (-o, -P, -n, --overwrite, --mkdirs,\n"
            "-p, --offset, --length, --checksum, --check, --timeout, --max-time,\n"
            "--identity, --key-file, --security, --rate, --min-rate, --policy ...) and:\n"
            "      --delay=D          start no sooner than D from now\n"
            "      --at=TIME          start no sooner than TIME (YYYY-MM-DD HH:MM[:SS] local,\n"
            "                         ...Z for UTC, or @SECONDS since 1970)\n"
            "      --priority=N       0 (first) to 99 (last, the default)\n"
            "      --lifetime=D       a request not done by D after it was queued ends\n"
            "                         STOP; an ended one is removed D after it ended\n"
            "                         (default 7d)\n"
            "      --retries=N        retry a failed attempt N times (default %d) ...\n"
            "      --retry-interval=D ... every D (default 10m)\n"
            "      --on-success=CMD   run CMD (words, quotes, no shell) when DONE,\n"
            "      --on-failure=CMD   when STOP,\n"
            "      --on-retry=CMD     and when an attempt will be retried; CMD gets the\n"
            "                         id, status and error as its last three arguments\n"
            "Statuses: INIT WAIT COPY RETR STOP DONE. See rcat(1), QUEUE.\n",
            DEFAULT_RETRIES);
}

void queue_format_time(int64_t ms, char *out, unsigned cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char day[32];

    gmtime_r(&t, &tm);
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, cap, "%s.%03dZ", day, (int)(ms % 1000));
}

__attribute__((format(printf, 1, 2))) static int bad(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "rcat queue: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'rcat queue --help'.\n");
    return QUEUE_EXIT_USAGE;
}

static int open_store(const char *spec, struct qstore **s)
{
    char err[600];

    if (!spec)
        spec = getenv("RCAT_QUEUE");
    if (spec && !*spec)
        spec = NULL;
    if (qstore_open(spec, s, err, sizeof err) == 0)
        return 0;
    fprintf(stderr, "rcat queue: cannot open the queue: %s\n", err);
    return -1;
}

/* ---- put and get ---------------------------------------------------------- */

enum {
    QOPT_QUEUE = 1000,
    QOPT_DELAY,
    QOPT_AT,
    QOPT_PRIORITY,
    QOPT_LIFETIME,
    QOPT_RETRIES,
    QOPT_RETRY_INTERVAL,
    QOPT_ON_SUCCESS,
    QOPT_ON_FAILURE,
    QOPT_ON_RETRY,
};

static const struct option queue_options[] = {
    {"queue", required_argument, NULL, QOPT_QUEUE},
    {"delay", required_argument, NULL, QOPT_DELAY},
    {"at", required_argument, NULL, QOPT_AT},
    {"priority", required_argument, NULL, QOPT_PRIORITY},
    {"lifetime", required_argument, NULL, QOPT_LIFETIME},
    {"retries", required_argument, NULL, QOPT_RETRIES},
    {"retry-interval", required_argument, NULL, QOPT_RETRY_INTERVAL},
    {"on-success", required_argument, NULL, QOPT_ON_SUCCESS},
    {"on-failure", required_argument, NULL, QOPT_ON_FAILURE},
    {"on-retry", required_argument, NULL, QOPT_ON_RETRY},
};
#define N_QUEUE_OPTIONS (sizeof queue_options / sizeof *queue_options)

/* rcat's options a queued request cannot take: the runner owns its
 * messages, the file must still be there when it runs, and an attempt
 * may run again after a crash (so --append would add twice). */
/* clang-format off */
static const char *const refused[] = {
    "quiet", "verbose", "json", "progress", "no-progress", "stat", "ls", "genkey", "put",
    "append", "rate-control", "help", "version",
    /* a queued request moves a file: remote operations are run directly */
    "mkdir", "mv", "rm", "recursive", "dir", "glob", "sum", "readlink", "symlink", "listen",
    NULL};
/* clang-format on */

struct request_args {
    const char *spec;
    struct qrequest r;
    int64_t delay_ms, at_ms, lifetime_ms;
    char *hook_text[QH_COUNT];
    char **tokens; /* the child's options */
    int n_tokens;
    const char *output;
};

static int parse_uint(const char *text, long max, long *out)
{
    char *end;

    errno = 0;
    *out = strtol(text, &end, 10);
    return errno || end == text || *end || *out < 0 || *out > max ? -1 : 0;
}

static int parse_ms(const char *flag, const char *text, int64_t *ms)
{
    uint64_t us;

    if (duration_parse(text, &us) < 0)
        return bad("%s: '%s' is not a duration (seconds, or 90s, 5m, 2h, 1d)", flag, text);
    *ms = (int64_t)(us / 1000);
    return 0;
}

/* --at: local time unless it ends in Z; @N is seconds since 1970. */
static int parse_at(const char *text, int64_t *ms)
{
    static const char *const formats[] = {"%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S",
                                          "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y%m%d%H%M%S"};
    long secs;

    if (text[0] == '@' && parse_uint(text + 1, 1L << 40, &secs) == 0) {
        *ms = (int64_t)secs * 1000;
        return 0;
    }
    for (size_t i = 0; i < sizeof formats / sizeof *formats; i++) {
        struct tm tm = {0};
        const char *end = strptime(text, formats[i], &tm);

        if (!end || (*end && strcmp(end, "Z") != 0))
            continue;
        tm.tm_isdst = -1;
        *ms = (int64_t)(*end ? timegm(&tm) : mktime(&tm)) * 1000;
        return 0;
    }
    return bad("--at: '%s' is not a time (YYYY-MM-DD HH:MM[:SS][Z], or @SECONDS)", text);
}

static int push(struct request_args *a, const char *word)
{
    char **grown = realloc(a->tokens, sizeof *a->tokens * (size_t)(a->n_tokens + 2));

    if (!grown)
        return -1;
    a->tokens = grown;
    a->tokens[a->n_tokens++] = strdup(word);
    a->tokens[a->n_tokens] = NULL;
    return a->tokens[a->n_tokens - 1] ? 0 : -1;
}

static int queue_option(struct request_args *a, int c, const char *arg)
{
    long n;
    uint64_t us;

    switch (c) {
    case QOPT_QUEUE:
        a->spec = arg;
        return 0;
    case QOPT_DELAY:
        return parse_ms("--delay", arg, &a->delay_ms);
    case QOPT_AT:
        return parse_at(arg, &a->at_ms);
    case QOPT_PRIORITY:
        if (parse_uint(arg, 99, &n) < 0)
            return bad("--priority: '%s' is not a number from 0 (first) to 99", arg);
        a->r.priority = (int)n;
        return 0;
    case QOPT_LIFETIME:
        return parse_ms("--lifetime", arg, &a->lifetime_ms);
    case QOPT_RETRIES:
        if (parse_uint(arg, 1000000, &n) < 0)
            return bad("--retries: '%s' is not a count from 0 to 1000000", arg);
        a->r.retries = (int)n;
        return 0;
    case QOPT_RETRY_INTERVAL:
        if (duration_parse(arg, &us) < 0)
            return bad("--retry-interval: '%s' is not a duration", arg);
        a->r.retry_interval_ms = (int64_t)(us / 1000);
        return 0;
    default: {
        int h = c - QOPT_ON_SUCCESS;
        char **words;
        int nw;
        const char *why;

        if (words_parse_command(arg, &words, &nw, &why) < 0)
            return bad("--on-%s: %s", qhook_name((enum qhook)h), why);
        a->r.hooks[h] = words_join(words, nw);
        words_free(words);
        return a->r.hooks[h] ? 0 : QUEUE_EXIT_LOCAL;
    }
    }
}

/* One of rcat's options, as the child will be given it. */
static int transfer_option(struct request_args *a, int c, int index, const struct option *table)
{
    const char *spelled = strchr(CLI_SHORT_OPTIONS, c);
    char flag[64];

    if (index >= 0) {
        for (const char *const *r = refused; *r; r++)
            if (!strcmp(table[index].name, *r))
                return bad("--%s: a queued request cannot take it", *r);
        snprintf(flag, sizeof flag, "--%s", table[index].name);
    } else if (c == 'q' || c == 'v' || c == 'h' || c == 'V' || c == 'r') {
        return bad("-%c: a queued request cannot take it", c);
    } else if (!spelled) {
        return bad("unknown option '-%c'", c);
    } else {
        snprintf(flag, sizeof flag, "-%c", c);
    }
    if (c == 'o') {
        a->output = optarg;
        return 0;
    }
    if (push(a, flag) < 0 || (optarg && push(a, optarg) < 0))
        return QUEUE_EXIT_LOCAL;
    return 0;
}

static struct option *merged_options(void)
{
    size_t n = 0, k = 0;
    struct option *all;

    while (cli_long_options[n].name)
        n++;
    all = calloc(n + N_QUEUE_OPTIONS + 1, sizeof *all);
    if (!all)
        return NULL;
    for (size_t i = 0; i < N_QUEUE_OPTIONS; i++)
        all[k++] = queue_options[i];
    for (size_t i = 0; i < n; i++) {
        int ours = 0;

        for (size_t j = 0; j < N_QUEUE_OPTIONS; j++)
            ours |= !strcmp(cli_long_options[i].name, queue_options[j].name);
        if (!ours)
            all[k++] = cli_long_options[i];
    }
    return all;
}

static int parse_request(struct request_args *a, int argc, char **argv)
{
    struct option *table = merged_options();
    int c, rc = 0, index = -1;

    if (!table)
        return QUEUE_EXIT_LOCAL;
    optind = 0;
    opterr = 0;
    while (rc == 0 &&
           (index = -1, c = getopt_long(argc, argv, CLI_SHORT_OPTIONS, table, &index)) != -1) {
        if (c >= QOPT_QUEUE)
            rc = queue_option(a, c, optarg);
        else if (c == '?' || c == ':')
            rc = optopt && c == '?'
                     ? bad("unknown option '-%c'", optopt)
                     : bad("option '%s' unknown or without its argument", argv[optind - 1]);
        else
            rc = transfer_option(a, c, index >= 0 && table[index].val == c ? index : -1, table);
    }
    free(table);
    return rc;
}

/* The child's whole command line, checked now by rcat's own parser.
 * 1: a part of the file (--offset, --length), which -C cannot resume;
 * -1 after a usage error. */
static int check_with_rcat(struct request_args *a, int resume)
{
    char *argv[a->n_tokens + 8];
    int n = 0;
    struct options opt;

    argv[n++] = "rcat";
    for (int i = 0; i < a->n_tokens; i++)
        argv[n++] = a->tokens[i];
    if (resume)
        argv[n++] = "-C";
    if (!strcmp(a->r.kind, "put")) {
        argv[n++] = "--put";
        argv[n++] = a->r.source;
        argv[n++] = a->r.target;
    } else {
        argv[n++] = "-o";
        argv[n++] = a->r.target;
        argv[n++] = a->r.source;
    }
    argv[n] = NULL;
    optind = 0;
    cli_parse(n, argv, &opt);
    cli_check(&opt);
    if (cli_usage_error()[0]) {
        bad("%s", cli_usage_error());
        return -1;
    }
    return opt.offset_set || opt.length_set ? 1 : 0;
}

static int record(struct request_args *a)
{
    struct qstore *s;
    int64_t id;
    char *cwd = getcwd(NULL, 0);
    int rc = QUEUE_EXIT_LOCAL;

    if (!cwd) {
        fprintf(stderr, "rcat queue: cannot tell the current directory: %s\n", strerror(errno));
        return QUEUE_EXIT_LOCAL;
    }
    a->r.cwd = cwd;
    if (open_store(a->spec, &s) == 0) {
        if (qstore_add(s, &a->r, a->delay_ms, a->at_ms, a->lifetime_ms, &id) < 0 ||
            qstore_ready(s, id) < 0)
            fprintf(stderr, "rcat queue: the request was not recorded: %s\n", qstore_error(s));
        else if (printf("%lld\n", (long long)id) > 0 && fflush(stdout) == 0)
            rc = QUEUE_EXIT_OK;
        qstore_close(s);
    }
    free(cwd);
    return rc;
}

static int add_request(const char *kind, int argc, char **argv)
{
    struct request_args a = {.lifetime_ms = DEFAULT_LIFETIME_MS};
    int rc, need = !strcmp(kind, "put") ? 2 : 1, partial;

    a.r.kind = (char *)kind;
    a.r.priority = DEFAULT_PRIORITY;
    a.r.retries = DEFAULT_RETRIES;
    a.r.retry_interval_ms = DEFAULT_RETRY_INTERVAL_MS;
    rc = parse_request(&a, argc, argv);
    if (rc == 0 && argc - optind != need)
        rc = bad(need == 2 ? "put takes LOCAL and REMOTE" : "get takes one REMOTE");
    if (rc == 0 && need == 2) {
        a.r.source = argv[optind];
        a.r.target = argv[optind + 1];
        if (a.output)
            rc = bad("put stores LOCAL as REMOTE: -o makes no sense with it");
        else if (!strcmp(a.r.source, "-"))
            rc = bad("put needs a file: the runner cannot read this standard input later");
        else if (access(a.r.source, R_OK) < 0) {
            fprintf(stderr, "rcat queue: %s: %s\n", a.r.source, strerror(errno));
            rc = QUEUE_EXIT_LOCAL;
        }
    } else if (rc == 0) {
        a.r.source = argv[optind];
        a.r.target = (char *)a.output;
        if (!a.output || !strcmp(a.output, "-"))
            rc = bad("get needs -o FILE: the runner has no standard output to write to");
    }
    if (rc == 0 && (partial = check_with_rcat(&a, 0)) < 0)
        rc = QUEUE_EXIT_USAGE;
    if (rc == 0) {
        /* -C resumes an interrupted attempt, where rcat allows it. */
        if (!partial && push(&a, "-C") < 0)
            rc = QUEUE_EXIT_LOCAL;
        a.r.args = rc ? NULL : words_join(a.tokens, a.n_tokens);
        rc = a.r.args ? record(&a) : QUEUE_EXIT_LOCAL;
    }
    words_free(a.tokens);
    free(a.r.args);
    for (int h = 0; h < QH_COUNT; h++)
        free(a.r.hooks[h]);
    return rc;
}

/* ---- status, list, cancel -------------------------------------------------- */

static void print_request_json(const struct qrequest *r)
{
    char t[40];

    json_open("REQUEST");
    json_i64("Id", r->id);
    json_str("Status", qstatus_name(r->status));
    json_str("Kind", r->kind);
    json_str("Source", r->source);
    json_str("Target", r->target);
    json_i64("Priority", r->priority);
    json_i64("Attempts", r->attempts);
    json_i64("Failures", r->failures);
    json_i64("Retries", r->retries);
    queue_format_time(r->created_ms, t, sizeof t);
    json_str("Created", t);
    queue_format_time(r->updated_ms, t, sizeof t);
    json_str("Updated", t);
    queue_format_time(r->due_ms, t, sizeof t);
    json_str("Due", t);
    queue_format_time(r->expires_ms, t, sizeof t);
    json_str("Expires", t);
    if (r->last_exit >= 0)
        json_i64("ExitCode", r->last_exit);
    if (r->error)
        json_str("Error", r->error);
    if (r->runner)
        json_str("Runner", r->runner);
    if (r->cancel)
        json_str("Cancel", "requested");
    json_close(STDOUT_FILENO);
}

static void print_history_json(const struct qhistory *h, void *arg)
{
    char t[40];

    json_open("HISTORY");
    json_i64("Id", *(int64_t *)arg);
    json_str("Status", qstatus_name(h->status));
    queue_format_time(h->at_ms, t, sizeof t);
    json_str("At", t);
    json_i64("Attempt", h->attempt);
    if (h->exit_code >= 0)
        json_i64("ExitCode", h->exit_code);
    if (h->error)
        json_str("Error", h->error);
    if (h->runner)
        json_str("Runner", h->runner);
    json_close(STDOUT_FILENO);
}

static void print_history(const struct qhistory *h, void *arg)
{
    char t[40];

    (void)arg;
    queue_format_time(h->at_ms, t, sizeof t);
    printf("  %s %s attempt %d", t, qstatus_name(h->status), h->attempt);
    if (h->exit_code >= 0 && h->status != QS_COPY)
        printf(" exit %d", h->exit_code);
    if (h->runner)
        printf(" by %s", h->runner);
    if (h->error && h->status != QS_COPY)
        printf(": %s", h->error);
    printf("\n");
}

static void print_request(const struct qrequest *r)
{
    char created[40], due[40];

    queue_format_time(r->created_ms, created, sizeof created);
    queue_format_time(r->due_ms, due, sizeof due);
    printf("id        %lld\nstatus    %s%s\n%-9s %s -> %s\npriority  %d\n"
           "attempts  %d (%d failed, %d retries allowed)\ncreated   %s\ndue       %s\n",
           (long long)r->id, qstatus_name(r->status), r->cancel ? " (cancel requested)" : "",
           r->kind, r->source, r->target, r->priority, r->attempts, r->failures, r->retries,
           created, due);
    if (r->error)
        printf("error     %s\n", r->error);
    printf("history\n");
}

static int parse_id(const char *text, int64_t *id)
{
    char *end;

    errno = 0;
    *id = strtoll(text, &end, 10);
    return errno || end == text || *end || *id <= 0 ? -1 : 0;
}

struct show_args {
    const char *spec;
    int json;
    int status; /* list --status: -1 all */
    char *const *operands;
    int n_operands;
};

static int parse_show(int argc, char **argv, struct show_args *a, int with_status)
{
    static const struct option options[] = {{"queue", required_argument, NULL, 'Q'},
                                            {"json", no_argument, NULL, 'j'},
                                            {"status", required_argument, NULL, 's'},
                                            {NULL, 0, NULL, 0}};
    int c;

    a->status = -1;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
        if (c == 'Q')
            a->spec = optarg;
        else if (c == 'j')
            a->json = 1;
        else if (c == 's' && with_status) {
            for (int st = QS_INIT; st <= QS_DONE; st++)
                if (!strcasecmp(optarg, qstatus_name((enum qstatus)st)))
                    a->status = st;
            if (a->status < 0)
                return bad("--status: '%s' is not INIT, WAIT, COPY, RETR, STOP or DONE", optarg);
        } else
            return bad("unknown option or missing argument: '%s'", argv[optind - 1]);
    }
    a->operands = argv + optind;
    a->n_operands = argc - optind;
    return 0;
}

/* One request and its history; 1 shown, 0 no such request, -1 error. */
static int show_one(struct qstore *s, int64_t id, int json)
{
    struct qrequest r;
    int found = qstore_get(s, id, &r);

    if (found == 1) {
        if (json)
            print_request_json(&r);
        else
            print_request(&r);
        if (qstore_history(s, id, json ? print_history_json : print_history, &id) < 0)
            found = -1;
        qrequest_free(&r);
    }
    if (found < 0)
        fprintf(stderr, "rcat queue: %s\n", qstore_error(s));
    else if (found == 0)
        fprintf(stderr, "rcat queue: no request %lld\n", (long long)id);
    return found;
}

static int show_status(int argc, char **argv)
{
    struct show_args a = {0};
    struct qstore *s;
    int64_t id;
    int rc = parse_show(argc, argv, &a, 0);

    if (rc)
        return rc;
    if (a.n_operands < 1)
        return bad("status takes request ids");
    for (int i = 0; i < a.n_operands; i++)
        if (parse_id(a.operands[i], &id) < 0)
            return bad("'%s' is not a request id", a.operands[i]);
    if (open_store(a.spec, &s) < 0)
        return QUEUE_EXIT_LOCAL;
    for (int i = 0; i < a.n_operands && rc != QUEUE_EXIT_LOCAL; i++) {
        int found;

        parse_id(a.operands[i], &id);
        found = show_one(s, id, a.json);
        if (found < 0)
            rc = QUEUE_EXIT_LOCAL;
        else if (found == 0 && rc == 0)
            rc = QUEUE_EXIT_REFUSED;
    }
    qstore_close(s);
    return fflush(stdout) != 0 ? QUEUE_EXIT_LOCAL : rc;
}

static void list_line(const struct qrequest *r, void *arg)
{
    char due[40];

    if (*(int *)arg) {
        print_request_json(r);
        return;
    }
    queue_format_time(r->due_ms, due, sizeof due);
    printf("%-8lld %s %2d %3d %s %s %s -> %s\n", (long long)r->id, qstatus_name(r->status),
           r->priority, r->attempts, due, r->kind, r->source, r->target);
}

static int list(int argc, char **argv)
{
    struct show_args a = {0};
    struct qstore *s;
    int rc = parse_show(argc, argv, &a, 1);

    if (rc)
        return rc;
    if (a.n_operands)
        return bad("list takes no operands ('%s')", a.operands[0]);
    if (open_store(a.spec, &s) < 0)
        return QUEUE_EXIT_LOCAL;
    if (!a.json)
        printf("%-8s STAT PR TRY DUE                      KIND SOURCE -> TARGET\n", "ID");
    rc = qstore_list(s, a.status, list_line, &a.json) < 0 ? QUEUE_EXIT_LOCAL : QUEUE_EXIT_OK;
    if (rc)
        fprintf(stderr, "rcat queue: %s\n", qstore_error(s));
    qstore_close(s);
    return fflush(stdout) != 0 ? QUEUE_EXIT_LOCAL : rc;
}

static int cancel(int argc, char **argv)
{
    struct show_args a = {0};
    struct qstore *s;
    int64_t id;
    int rc = parse_show(argc, argv, &a, 0);

    if (rc)
        return rc;
    if (a.n_operands != 1 || parse_id(a.operands[0], &id) < 0)
        return bad("cancel takes one request id");
    if (open_store(a.spec, &s) < 0)
        return QUEUE_EXIT_LOCAL;
    rc = qstore_cancel(s, id);
    if (rc < 0)
        fprintf(stderr, "rcat queue: %s\n", qstore_error(s));
    else if (rc == 0)
        fprintf(stderr, "rcat queue: request %lld: no such request, or it has ended\n",
                (long long)id);
    qstore_close(s);
    return rc > 0 ? QUEUE_EXIT_OK : rc == 0 ? QUEUE_EXIT_REFUSED : QUEUE_EXIT_LOCAL;
}

/* The runner and the hook runner take --queue before their own options. */
static int with_store_spec(int argc, char **argv, int (*fn)(const char *, int, char **))
{
    const char *spec = NULL;
    int skip = 0;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--queue") && i + 1 < argc) {
            spec = argv[i + 1];
            argv[i] = argv[i + 1] = NULL;
            skip += 2;
            i++;
        } else if (!strncmp(argv[i], "--queue=", 8)) {
            spec = argv[i] + 8;
            argv[i] = NULL;
            skip++;
        }
    }
    int n = 0;
    for (int i = 0; i < argc; i++)
        if (argv[i])
            argv[n++] = argv[i];
    argv[n] = NULL;
    if (!spec)
        spec = getenv("RCAT_QUEUE");
    return fn(spec && *spec ? spec : NULL, n, argv);
}

int queue_main(int argc, char **argv)
{
    const char *sub = argc > 2 ? argv[2] : "";

    argc -= 2;
    argv += 2; /* argv[0] is the subcommand */
    if (!strcmp(sub, "put") || !strcmp(sub, "get"))
        return add_request(sub, argc, argv);
    if (!strcmp(sub, "status"))
        return show_status(argc, argv);
    if (!strcmp(sub, "list"))
        return list(argc, argv);
    if (!strcmp(sub, "cancel"))
        return cancel(argc, argv);
    if (!strcmp(sub, "run"))
        return with_store_spec(argc, argv, queue_run_main);
    if (!strcmp(sub, "hook-exec")) /* the runner's, not the operator's */
        return with_store_spec(argc, argv, queue_hook_main);
    if (!strcmp(sub, "-h") || !strcmp(sub, "--help")) {
        usage(stdout);
        return fflush(stdout) == 0 ? QUEUE_EXIT_OK : QUEUE_EXIT_LOCAL;
    }
    if (*sub)
        return bad("'%s' is not a queue command (put, get, status, list, cancel, run)", sub);
    return bad("a command, please (put, get, status, list, cancel, run)");
}
