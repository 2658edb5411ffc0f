/*
 * queue_run.c - rcat queue run: carries out due requests, several at once.
 * Each request runs as a child rcat (this same program) with the options
 * recorded plus -C, so an attempt that was interrupted resumes; the child's
 * exit code decides DONE, RETR or STOP as rcat(1) documents them (and, for
 * a refusal, the error its JSON ERROR event names). The
 * runner holds each request's claim while its child runs and renews the
 * lease; a runner killed outright takes its children with it
 * (PR_SET_PDEATHSIG) and its claims expire, so another runner resumes them.
 * Hooks run in a process of their own (queue_hook.c) that outlives the
 * runner and records itself that the hook ran: a runner killed at any
 * point neither loses a hook nor runs one twice.
 *
 * Foreground, for systemd and cron: --once drains what is due and exits;
 * SIGTERM or SIGINT stop claiming, end the children (their requests go
 * back to WAIT, to resume) and wait for running hooks.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <rpc2/retry.h>
#include <rpc2/rpc2.h>

#include "duration.h"
#include "jsonline.h"
#include "queue.h"
#include "queue_words.h"
#include "report.h"

#define LINE_CAP 4096 /* an ERROR event with the library's fields fits well */
#define EXPIRE_EVERY_MS 30000

extern char **environ;

enum slot_kind { SLOT_FREE, SLOT_XFER, SLOT_HOOK };
enum end_reason { END_NATURAL, END_LOST, END_CANCEL, END_STOPPING };

struct slot {
    enum slot_kind kind;
    pid_t pid;
    struct qrequest r;   /* SLOT_XFER */
    int err_fd;          /* the child's standard error: JSON events */
    char line[LINE_CAP]; /* the line being read from it */
    size_t line_len;
    int line_cut;        /* longer than line holds: not judged */
    char said[LINE_CAP]; /* its last ERROR event, or plain message */
    enum end_reason end;
    int64_t renew_at;
};

struct runner {
    struct qstore *s;
    char name[160];
    int jobs;
    int64_t lease_ms, poll_ms, hook_timeout_ms;
    int once, stopping;
    struct slot *slots;
    int sigfd;
    int64_t expire_at;
};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

__attribute__((format(printf, 2, 3))) static void say(const struct runner *q, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "rcat queue run %s: ", q->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static int count(const struct runner *q, enum slot_kind k)
{
    int n = 0;

    for (int i = 0; i < 2 * q->jobs; i++)
        n += q->slots[i].kind == k;
    return n;
}

static struct slot *free_slot(struct runner *q)
{
    for (int i = 0; i < 2 * q->jobs; i++)
        if (q->slots[i].kind == SLOT_FREE)
            return &q->slots[i];
    return NULL;
}

/* ---- children ------------------------------------------------------------- */

/* The child's command line; its option words stay in *words (words_free). */
static char **child_argv(const struct qrequest *r, char ***words)
{
    char **argv;
    int n, k = 0;

    if (words_split(r->args, words, &n) < 0)
        return NULL;
    argv = calloc((size_t)n + 8, sizeof *argv);
    if (!argv) {
        words_free(*words);
        return NULL;
    }
    argv[k++] = "rcat";
    argv[k++] = "-q";
    argv[k++] = "--json"; /* judged by its events, not by its words */
    for (int i = 0; i < n; i++)
        argv[k++] = (*words)[i];
    if (!strcmp(r->kind, "put")) {
        argv[k++] = "--put";
        argv[k++] = r->source;
        argv[k++] = r->target;
    } else {
        argv[k++] = "-o";
        argv[k++] = r->target;
        argv[k++] = r->source;
    }
    return argv;
}

static void in_child(const sigset_t *old, int err_fd, pid_t parent, int die_with_parent)
{
    int null = open("/dev/null", O_RDWR);

    sigprocmask(SIG_SETMASK, old, NULL);
    if (die_with_parent) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) /* died before the line above */
            _exit(127);
    } else {
        setsid(); /* no terminal's signal reaches a hook being recorded */
    }
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        if (err_fd >= 0)
            dup2(null, STDOUT_FILENO);
    }
    if (err_fd >= 0)
        dup2(err_fd, STDERR_FILENO);
}

static int start_xfer(struct runner *q, struct slot *sl, const sigset_t *old)
{
    int fds[2];
    char **words = NULL, **argv = child_argv(&sl->r, &words);
    pid_t parent = getpid(), pid;

    if (!argv || pipe2(fds, O_CLOEXEC) < 0) {
        free(argv);
        words_free(words);
        return -1;
    }
    pid = fork();
    if (pid == 0) {
        in_child(old, fds[1], parent, 1);
        if (chdir(sl->r.cwd) < 0) {
            fprintf(stderr, "rcat queue: %s: %s\n", sl->r.cwd, strerror(errno));
            _exit(4);
        }
        execve("/proc/self/exe", argv, environ);
        fprintf(stderr, "rcat queue: cannot run rcat: %s\n", strerror(errno));
        _exit(4);
    }
    close(fds[1]);
    free(argv);
    words_free(words);
    if (pid < 0) {
        close(fds[0]);
        return -1;
    }
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    sl->kind = SLOT_XFER;
    sl->pid = pid;
    sl->err_fd = fds[0];
    sl->line_len = 0;
    sl->line_cut = 0;
    sl->said[0] = '\0';
    sl->end = END_NATURAL;
    sl->renew_at = now_ms() + q->lease_ms / 3;
    return 0;
}

static int start_hook(struct runner *q, struct slot *sl, const struct qhookrun *h,
                      const sigset_t *old)
{
    char id[24], timeout[24];
    char *argv[] = {"rcat", "queue", "hook-exec", id, h->token, timeout, NULL};
    pid_t pid;

    snprintf(id, sizeof id, "%lld", (long long)h->id);
    snprintf(timeout, sizeof timeout, "%lld", (long long)q->hook_timeout_ms);
    pid = fork();
    if (pid == 0) {
        in_child(old, -1, 0, 0);
        execve("/proc/self/exe", argv, environ);
        _exit(4);
    }
    if (pid < 0)
        return -1;
    sl->kind = SLOT_HOOK;
    sl->pid = pid;
    sl->err_fd = -1;
    return 0;
}

/* A whole line from the child: kept when it is an ERROR event, or a
 * plain message (one written before rcat itself ran: the exec failed). */
static void judge_line(struct slot *sl)
{
    char type[16];

    sl->line[sl->line_len] = '\0';
    if (!sl->line_cut && sl->line_len > 0 &&
        (sl->line[0] != '{' ||
         (jsonline_str(sl->line, "Type", type, sizeof type) == 1 && strcmp(type, "ERROR") == 0)))
        memcpy(sl->said, sl->line, sl->line_len + 1);
    sl->line_len = 0;
    sl->line_cut = 0;
}

static void read_errors(struct slot *sl)
{
    char buf[LINE_CAP];
    ssize_t n;

    while (sl->err_fd >= 0 && (n = read(sl->err_fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n')
                judge_line(sl);
            else if (sl->line_len + 1 < sizeof sl->line)
                sl->line[sl->line_len++] = buf[i];
            else
                sl->line_cut = 1;
        }
    }
}

/* Appends s to the string in dst (cap bytes), cut where it would not fit. */
static void append(char *dst, size_t cap, const char *s)
{
    size_t have = strlen(dst), add = strlen(s);

    if (add > cap - 1 - have)
        add = cap - 1 - have;
    memcpy(dst + have, s, add);
    dst[have + add] = '\0';
}

/* What went wrong, in the child's words: its ERROR event's description
 * (after the file's name), or its plain message. */
static void child_said(const struct slot *sl, char *why, size_t cap)
{
    char field[LINE_CAP];

    why[0] = '\0';
    if (sl->said[0] != '{') {
        append(why, cap, sl->said);
        return;
    }
    if (jsonline_str(sl->said, "File", field, sizeof field) == 1) {
        append(why, cap, field);
        append(why, cap, ": ");
    }
    if (jsonline_str(sl->said, "Description", field, sizeof field) == 1)
        append(why, cap, field);
    else
        append(why, cap, sl->said);
}

/* ---- outcomes ------------------------------------------------------------- */

/* rcat's exit codes that another attempt can cure: the server lost or
 * unreachable (2), the data damaged on the way (5), the source changing
 * while it was read (6); and the child killed by a signal not ours. Also
 * a refusal (3) that goes away by itself, as the library judges its error
 * (RPC2_EBUSY: the server still runs the end of an attempt whose runner
 * was killed, until it finds that attempt gone). */
static int retryable(int status, const struct slot *sl)
{
    char name[64];

    if (WIFSIGNALED(status))
        return 1;
    int code = WEXITSTATUS(status);
    if (code == RCAT_EXIT_REFUSED)
        return sl->said[0] == '{' && jsonline_str(sl->said, "Error", name, sizeof name) == 1 &&
               rpc2_retry_retryable(rpc2_errcode(name));
    return code == RCAT_EXIT_NET || code == RCAT_EXIT_INTEGRITY || code == RCAT_EXIT_CHANGED;
}

static void record_end(struct runner *q, struct slot *sl, int status)
{
    const struct qrequest *r = &sl->r;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    char why[LINE_CAP + 64];
    enum qstatus to;
    int64_t retry_ms = 0;

    read_errors(sl);
    if (sl->line_len)
        judge_line(sl); /* a last line without its newline */
    if (WIFSIGNALED(status))
        snprintf(why, sizeof why, "rcat was killed by signal %d", WTERMSIG(status));
    else
        child_said(sl, why, sizeof why);
    if (sl->end == END_LOST)
        return; /* another runner has it now */
    if (code == 0 && WIFEXITED(status)) {
        to = QS_DONE;
        why[0] = '\0';
    } else if (sl->end == END_CANCEL) {
        to = QS_STOP;
        code = -1;
        snprintf(why, sizeof why, "cancelled");
    } else if (sl->end == END_STOPPING) {
        to = QS_WAIT; /* not a failure: the next runner resumes it */
        code = -1;
        snprintf(why, sizeof why, "interrupted: the runner stopped");
    } else if (retryable(status, sl) && r->failures < r->retries) {
        to = QS_RETR;
        retry_ms = r->retry_interval_ms;
    } else {
        to = QS_STOP;
    }
    int rc = qstore_finish(q->s, r, to, code, why[0] ? why : NULL, retry_ms);
    if (rc < 0)
        say(q, "request %lld: cannot record its end: %s", (long long)r->id, qstore_error(q->s));
    else if (rc == 0)
        say(q, "request %lld: its claim was lost before the end was recorded", (long long)r->id);
}

static void reap(struct runner *q)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < 2 * q->jobs; i++) {
            struct slot *sl = &q->slots[i];

            if (sl->kind == SLOT_FREE || sl->pid != pid)
                continue;
            if (sl->kind == SLOT_XFER) {
                record_end(q, sl, status);
                close(sl->err_fd);
                qrequest_free(&sl->r);
            }
            sl->kind = SLOT_FREE;
        }
    }
}

/* ---- claims --------------------------------------------------------------- */

/* The child runs for a claim this runner still holds and renews. */
static int holds_claim(const struct slot *sl)
{
    return sl->end == END_NATURAL || sl->end == END_STOPPING;
}

static void renew(struct runner *q)
{
    int64_t now = now_ms();

    for (int i = 0; i < 2 * q->jobs; i++) {
        struct slot *sl = &q->slots[i];
        int rc;

        if (sl->kind != SLOT_XFER || !holds_claim(sl) || now < sl->renew_at)
            continue;
        rc = qstore_renew(q->s, &sl->r, q->lease_ms);
        if (rc < 0) {
            say(q, "cannot renew a claim: %s", qstore_error(q->s));
            sl->renew_at = now + 1000; /* the lease still runs: try again soon */
            continue;
        }
        sl->renew_at = now + q->lease_ms / 3;
        if (rc == 0) {
            sl->end = END_LOST;
            kill(sl->pid, SIGKILL);
        } else if (rc == 2) {
            sl->end = END_CANCEL;
            kill(sl->pid, SIGTERM);
        }
    }
}

/* Claims and starts what is due: hooks first (they are quick), then
 * requests up to -j at once. Returns how many started. */
static int claim(struct runner *q, const sigset_t *old)
{
    int started = 0;
    struct slot *sl;

    while (count(q, SLOT_HOOK) < q->jobs && (sl = free_slot(q))) {
        struct qhookrun h;
        int rc = qstore_claim_hook(q->s, q->name, q->hook_timeout_ms + q->lease_ms, &h);

        if (rc <= 0) {
            if (rc < 0)
                say(q, "cannot claim a hook: %s", qstore_error(q->s));
            break;
        }
        if (start_hook(q, sl, &h, old) < 0)
            say(q, "cannot start hook %lld: its claim expires, then another runner runs it",
                (long long)h.id);
        else
            started++;
        qhookrun_free(&h);
    }
    while (count(q, SLOT_XFER) < q->jobs && (sl = free_slot(q))) {
        int rc = qstore_claim(q->s, q->name, q->lease_ms, &sl->r);

        if (rc <= 0) {
            if (rc < 0)
                say(q, "cannot claim a request: %s", qstore_error(q->s));
            break;
        }
        if (start_xfer(q, sl, old) < 0) {
            say(q, "cannot start request %lld", (long long)sl->r.id);
            qstore_finish(q->s, &sl->r, QS_WAIT, -1, "the runner could not start rcat", 1000);
            qrequest_free(&sl->r);
            break;
        }
        started++;
    }
    return started;
}

/* ---- the loop ------------------------------------------------------------- */

static void on_signals(struct runner *q)
{
    struct signalfd_siginfo si;

    while (read(q->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGCHLD || si.ssi_signo == SIGHUP || q->stopping)
            continue;
        q->stopping = 1;
        for (int i = 0; i < 2 * q->jobs; i++) {
            struct slot *sl = &q->slots[i];

            if (sl->kind == SLOT_XFER && sl->end == END_NATURAL) {
                sl->end = END_STOPPING;
                kill(sl->pid, SIGTERM);
            }
        }
    }
}

static void wait_for_events(struct runner *q)
{
    struct pollfd fds[1 + 2 * q->jobs];
    int n = 0, timeout = (int)q->poll_ms;
    int64_t now = now_ms();

    fds[n++] = (struct pollfd){.fd = q->sigfd, .events = POLLIN};
    for (int i = 0; i < 2 * q->jobs; i++) {
        struct slot *sl = &q->slots[i];

        if (sl->kind != SLOT_XFER)
            continue;
        fds[n++] = (struct pollfd){.fd = sl->err_fd, .events = POLLIN};
        if (holds_claim(sl) && sl->renew_at - now < timeout)
            timeout = sl->renew_at > now ? (int)(sl->renew_at - now) : 0;
    }
    poll(fds, (nfds_t)n, timeout);
    for (int i = 0; i < 2 * q->jobs; i++)
        if (q->slots[i].kind == SLOT_XFER)
            read_errors(&q->slots[i]);
}

static int loop(struct runner *q, const sigset_t *old)
{
    for (;;) {
        int started = 0;

        on_signals(q);
        reap(q);
        if (!q->stopping) {
            if (now_ms() >= q->expire_at) {
                if (qstore_expire(q->s) < 0)
                    say(q, "cannot end expired requests: %s", qstore_error(q->s));
                q->expire_at = now_ms() + EXPIRE_EVERY_MS;
            }
            started = claim(q, old);
        }
        renew(q); /* also while stopping: the children may take a moment */
        if ((q->stopping || q->once) && !started && count(q, SLOT_FREE) == 2 * q->jobs)
            return 0;
        if (!started)
            wait_for_events(q);
    }
}

static int parse_run(struct runner *q, int argc, char **argv)
{
    static const struct option options[] = {{"once", no_argument, NULL, 'o'},
                                            {"jobs", required_argument, NULL, 'j'},
                                            {"lease", required_argument, NULL, 'l'},
                                            {"poll", required_argument, NULL, 'p'},
                                            {"hook-timeout", required_argument, NULL, 't'},
                                            {NULL, 0, NULL, 0}};
    int c;
    uint64_t us;
    char *end;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":j:", options, NULL)) != -1) {
        switch (c) {
        case 'o':
            q->once = 1;
            break;
        case 'j':
            q->jobs = (int)strtol(optarg, &end, 10);
            if (*end || q->jobs < 1 || q->jobs > 256) {
                fprintf(stderr, "rcat queue run: -j: '%s' is not from 1 to 256\n", optarg);
                return QUEUE_EXIT_USAGE;
            }
            break;
        case 'l':
        case 'p':
        case 't':
            if (duration_parse(optarg, &us) < 0 || us < 100000) {
                fprintf(stderr, "rcat queue run: '%s' is not a duration of 0.1 s or more\n",
                        optarg);
                return QUEUE_EXIT_USAGE;
            }
            *(c == 'l'   ? &q->lease_ms
              : c == 'p' ? &q->poll_ms
                         : &q->hook_timeout_ms) = (int64_t)(us / 1000);
            break;
        default:
            fprintf(stderr, "rcat queue run: unknown option or missing argument: '%s'\n",
                    argv[optind - 1]);
            return QUEUE_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "rcat queue run: no operands, please ('%s')\n", argv[optind]);
        return QUEUE_EXIT_USAGE;
    }
    return 0;
}

int queue_run_main(const char *spec, int argc, char **argv)
{
    struct runner q = {.jobs = 4, .lease_ms = 60000, .poll_ms = 1000, .hook_timeout_ms = 300000};
    sigset_t mask, old;
    char host[64] = "localhost", err[600];
    int rc = parse_run(&q, argc, argv);

    if (rc)
        return rc;
    gethostname(host, sizeof host - 1);
    snprintf(q.name, sizeof q.name, "%s:%d", host, (int)getpid());
    /* The hook runners this one starts find the same queue. */
    if (spec && setenv("RCAT_QUEUE", spec, 1) < 0)
        return QUEUE_EXIT_LOCAL;
    if (qstore_open(spec, &q.s, err, sizeof err) < 0) {
        fprintf(stderr, "rcat queue run: cannot open the queue: %s\n", err);
        return QUEUE_EXIT_LOCAL;
    }
    q.slots = calloc(2 * (size_t)q.jobs, sizeof *q.slots);
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, &old);
    q.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (!q.slots || q.sigfd < 0) {
        fprintf(stderr, "rcat queue run: %s\n", strerror(errno));
        qstore_close(q.s);
        return QUEUE_EXIT_LOCAL;
    }
    rc = loop(&q, &old);
    close(q.sigfd);
    free(q.slots);
    qstore_close(q.s);
    return rc;
}
