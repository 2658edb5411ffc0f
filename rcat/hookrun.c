/*
 * hookrun.c - post-store commands as child processes the loop watches
 * (hookrun.h). A command may take minutes; rcatd's workers and loop go on
 * meanwhile: the worker that starts one is free as soon as posix_spawn
 * returns, and the loop hears of its end through a pidfd (readable once
 * the process exits), so no SIGCHLD handler and no thread waits for it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <ev.h>

#include "hookrun.h"

struct stream {
    ev_io io;
    struct hookrun_job *j;
    const char *name; /* "stdout", "stderr" */
    int fd;           /* -1: closed */
    char line[HOOKRUN_LINE_MAX + 1];
    size_t len;
    size_t logged, dropped;
};

struct hookrun_job {
    struct hookrun_job *next;
    struct hookrun *h;
    struct posthook_job *job;
    char what[600];
    pid_t pid; /* 0: never started */
    int pidfd;
    int spawn_err; /* errno of a failed start */
    ev_io exited;
    ev_timer limit;
    struct stream out, err;
    int taken;                       /* by the loop, to watch */
    int timed_out, stopped, watched; /* stopped: by hookrun_end_all */
    ev_tstamp t0;
    hookrun_done_fn done;
    void *arg;
    struct hookrun_job **handle; /* the caller's: j until done runs or it cancels */
};

struct hookrun {
    struct ev_loop *loop;
    char *cwd;
    hookrun_log_fn log;
    void *log_arg;
    ev_async wake;
    pthread_mutex_t lock;
    struct hookrun_job *jobs; /* started or starting, until they end; under lock */
};

static void say(struct hookrun_job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(struct hookrun_job *j, const char *fmt, ...)
{
    char line[1400];
    va_list ap;
    int n = snprintf(line, sizeof line, "rcatd: hook (line %zu) [%ld] for %s: ", j->job->line,
                     (long)j->pid, j->what);

    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line)
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    j->h->log(line, j->h->log_arg);
}

/* ---- starting, on the caller's thread ---------------------------------------- */

static int pidfd_of(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int spawn(struct hookrun *h, struct hookrun_job *j)
{
    int out[2] = {-1, -1}, err[2] = {-1, -1}, rc = 0;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;

    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
        rc = errno;
        goto done;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    posix_spawn_file_actions_addchdir_np(&fa, h->cwd);
    posix_spawnattr_init(&at);
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all); /* rcatd ignores SIGPIPE: its command must not */
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
    rc = posix_spawn(&j->pid, j->job->argv[0], &fa, &at, j->job->argv, j->job->envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (rc != 0) {
        j->pid = 0;
        goto done;
    }
    if ((j->pidfd = pidfd_of(j->pid)) < 0) {
        rc = errno;
        kill(-j->pid, SIGKILL);
        waitpid(j->pid, NULL, 0);
        j->pid = 0;
        goto done;
    }
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    fcntl(err[0], F_SETFL, O_NONBLOCK);
    j->out.fd = out[0], out[0] = -1;
    j->err.fd = err[0], err[0] = -1;
done:
    for (int i = 0; i < 2; i++) {
        if (out[i] >= 0)
            close(out[i]);
        if (err[i] >= 0)
            close(err[i]);
    }
    return rc;
}

struct hookrun_job *hookrun_prepare(struct posthook_job *job, const char *what)
{
    struct hookrun_job *j = calloc(1, sizeof *j);

    if (!j) {
        posthook_job_free(job);
        return NULL;
    }
    *j = (struct hookrun_job){.job = job, .pidfd = -1};
    j->out = (struct stream){.j = j, .name = "stdout", .fd = -1};
    j->err = (struct stream){.j = j, .name = "stderr", .fd = -1};
    snprintf(j->what, sizeof j->what, "%s", what);
    return j;
}

void hookrun_launch(struct hookrun *h, struct hookrun_job *j, hookrun_done_fn done, void *arg,
                    struct hookrun_job **handle)
{
    j->h = h;
    j->done = done;
    j->arg = arg;
    j->handle = handle;
    j->spawn_err = spawn(h, j);
    pthread_mutex_lock(&h->lock);
    *handle = j;
    j->next = h->jobs;
    h->jobs = j;
    pthread_mutex_unlock(&h->lock);
    ev_async_send(h->loop, &h->wake);
}

/* ---- watching, on the loop ---------------------------------------------------- */

static void log_line(struct stream *s)
{
    if (s->len == 0)
        return;
    s->line[s->len] = '\0';
    for (size_t i = 0; i < s->len; i++) /* a line is the command's to choose: no control bytes */
        if ((unsigned char)s->line[i] < ' ' || s->line[i] == 0x7f)
            s->line[i] = '?';
    say(s->j, "%s: %s", s->name, s->line);
    s->len = 0;
}

static void take(struct stream *s, const char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s->logged >= HOOKRUN_LOG_BYTES) {
            s->dropped += n - i;
            return;
        }
        s->logged++;
        if (buf[i] == '\n') {
            log_line(s);
            continue;
        }
        s->line[s->len++] = buf[i];
        if (s->len == HOOKRUN_LINE_MAX)
            log_line(s);
    }
}

/* Reads what there is; closes the stream at its end (or on an error). */
static void drain(struct stream *s)
{
    char buf[4096];

    while (s->fd >= 0) {
        ssize_t n = read(s->fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            ev_io_stop(s->j->h->loop, &s->io);
            close(s->fd);
            s->fd = -1;
            return;
        }
        take(s, buf, (size_t)n);
    }
}

static void on_output(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop, (void)revents;
    drain((struct stream *)w);
}

static void unlink_job(struct hookrun *h, struct hookrun_job *j)
{
    pthread_mutex_lock(&h->lock);
    for (struct hookrun_job **p = &h->jobs; *p; p = &(*p)->next)
        if (*p == j) {
            *p = j->next;
            break;
        }
    pthread_mutex_unlock(&h->lock);
}

static void close_stream(struct hookrun *h, struct stream *s)
{
    if (s->fd < 0)
        return;
    ev_io_stop(h->loop, &s->io);
    close(s->fd);
    s->fd = -1;
}

/* The job's end: its watchers stopped, its descriptors closed, freed. */
static void job_free(struct hookrun_job *j)
{
    struct hookrun *h = j->h;

    if (j->watched) {
        ev_io_stop(h->loop, &j->exited);
        ev_timer_stop(h->loop, &j->limit);
    }
    close_stream(h, &j->out);
    close_stream(h, &j->err);
    if (j->pidfd >= 0)
        close(j->pidfd);
    posthook_job_free(j->job);
    free(j);
}

void hookrun_discard(struct hookrun_job *j)
{
    if (j)
        job_free(j); /* nothing of it is watched or open yet */
}

static void finish(struct hookrun_job *j, int ok)
{
    struct hookrun *h = j->h;

    unlink_job(h, j);
    pthread_mutex_lock(&h->lock); /* hookrun_cancel may clear done on another thread */
    hookrun_done_fn done = j->done;
    void *arg = j->arg;
    if (j->handle)
        *j->handle = NULL;
    pthread_mutex_unlock(&h->lock);
    job_free(j);
    if (done)
        done(ok, arg);
}

static void on_exit_(struct ev_loop *loop, ev_io *w, int revents)
{
    struct hookrun_job *j =
        (struct hookrun_job *)((char *)w - offsetof(struct hookrun_job, exited));
    int st;

    (void)revents;
    if (waitpid(j->pid, &st, WNOHANG) != j->pid)
        return;
    drain(&j->out);
    drain(&j->err);
    log_line(&j->out);
    log_line(&j->err);
    for (struct stream *s = &j->out; s; s = s == &j->out ? &j->err : NULL)
        if (s->dropped)
            say(j, "%s: %zu more bytes not logged", s->name, s->dropped);
    double secs = ev_now(loop) - j->t0;
    int ok =
        WIFEXITED(st) && WEXITSTATUS(st) == j->job->expect_exit && !j->timed_out && !j->stopped;
    if (j->stopped)
        say(j, "killed after %.1f s: rcatd is stopping: failed", secs);
    else if (j->timed_out)
        say(j, "killed at its time limit after %.1f s: failed", secs);
    else if (WIFEXITED(st))
        say(j, "exit %d (expected %d) after %.1f s: %s", WEXITSTATUS(st), j->job->expect_exit, secs,
            ok ? "ok" : "failed");
    else
        say(j, "killed by signal %d after %.1f s: failed", WTERMSIG(st), secs);
    finish(j, ok);
}

static void on_limit(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct hookrun_job *j = (struct hookrun_job *)((char *)w - offsetof(struct hookrun_job, limit));

    (void)revents;
    if (!j->timed_out) {
        j->timed_out = 1;
        say(j, "time limit reached: SIGTERM to its process group");
        kill(-j->pid, SIGTERM);
        ev_timer_set(w, HOOKRUN_KILL_GRACE_S, 0.);
        ev_timer_start(loop, w);
        return;
    }
    say(j, "still running %.0f s after SIGTERM: SIGKILL", HOOKRUN_KILL_GRACE_S);
    kill(-j->pid, SIGKILL);
}

static void watch(struct hookrun *h, struct hookrun_job *j)
{
    if (!j->pid) {
        say(j, "%s: cannot start: %s: failed", j->job->argv[0], strerror(j->spawn_err));
        finish(j, 0);
        return;
    }
    j->t0 = ev_now(h->loop);
    j->watched = 1;
    say(j, "%s started", j->job->argv[0]);
    ev_io_init(&j->exited, on_exit_, j->pidfd, EV_READ);
    ev_io_start(h->loop, &j->exited);
    ev_timer_init(&j->limit, on_limit, (double)j->job->limit_us / 1e6, 0.);
    ev_timer_start(h->loop, &j->limit);
    for (struct stream *s = &j->out; s; s = s == &j->out ? &j->err : NULL) {
        ev_io_init(&s->io, on_output, s->fd, EV_READ);
        ev_io_start(h->loop, &s->io);
    }
}

/* New jobs (started on workers) are watched from here on. */
static void on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
    struct hookrun *h = w->data;
    struct hookrun_job *fresh[64];
    size_t n;

    (void)loop, (void)revents;
    do {
        n = 0;
        pthread_mutex_lock(&h->lock);
        for (struct hookrun_job *j = h->jobs; j && n < 64; j = j->next)
            if (!j->taken) {
                j->taken = 1;
                fresh[n++] = j;
            }
        pthread_mutex_unlock(&h->lock);
        for (size_t i = 0; i < n; i++)
            watch(h, fresh[i]);
    } while (n == 64);
}

struct hookrun *hookrun_new(struct ev_loop *loop, const char *cwd, hookrun_log_fn log,
                            void *log_arg)
{
    struct hookrun *h = calloc(1, sizeof *h);

    if (!h || !(h->cwd = strdup(cwd))) {
        free(h);
        return NULL;
    }
    h->loop = loop;
    h->log = log;
    h->log_arg = log_arg;
    pthread_mutex_init(&h->lock, NULL);
    ev_async_init(&h->wake, on_wake);
    h->wake.data = h;
    ev_async_start(loop, &h->wake);
    return h;
}

void hookrun_cancel(struct hookrun *h, struct hookrun_job **handle)
{
    pthread_mutex_lock(&h->lock);
    struct hookrun_job *j = *handle;
    if (j) {
        *handle = NULL;
        j->handle = NULL;
        j->done = NULL;
        if (j->pid)
            kill(-j->pid, SIGKILL);
    }
    pthread_mutex_unlock(&h->lock);
}

void hookrun_end_all(struct hookrun *h)
{
    pthread_mutex_lock(&h->lock);
    for (struct hookrun_job *j = h->jobs; j; j = j->next)
        if (j->watched) {
            j->stopped = 1;
            kill(-j->pid, SIGKILL);
        }
    pthread_mutex_unlock(&h->lock);
}

void hookrun_free(struct hookrun *h)
{
    if (!h)
        return;
    ev_async_stop(h->loop, &h->wake);
    while (h->jobs) {
        struct hookrun_job *j = h->jobs;
        h->jobs = j->next;
        if (j->pid) {
            kill(-j->pid, SIGKILL);
            waitpid(j->pid, NULL, 0);
        }
        job_free(j);
    }
    pthread_mutex_destroy(&h->lock);
    free(h->cwd);
    free(h);
}
