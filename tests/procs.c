/*
 * procs.c - child processes for integration tests: spawn with an optional
 * stdout pipe, read the line that announces a port, stop with a deadline.
 * Every wait is bounded, so a wedged child fails the test, never hangs it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "procs.h"

#ifndef BUILDDIR
#define BUILDDIR "."
#endif

#define SPAWN_PORT_TIMEOUT_MS 10000
#define STOP_POLL_MS 10
#define KILL_REAP_MS 2000

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs in the child between fork and exec: only async-signal-safe calls. */
static void child_exec(const char *const argv[], int out_fd, pid_t parent, bool ignore_sigpipe)
{
    sigset_t none;

    /* A mask inherited from the test would make the child deaf to procs_stop(). */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* Dies with the test that started it, even when the test dies on an assertion. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
        _exit(127);
    if (ignore_sigpipe)
        signal(SIGPIPE, SIG_IGN);
    if (out_fd >= 0 && dup2(out_fd, STDOUT_FILENO) < 0)
        _exit(127);
    execvp(argv[0], (char *const *)argv);
    _exit(127);
}

static pid_t spawn(const char *const argv[], int *stdout_fd, bool ignore_sigpipe)
{
    int fds[2] = {-1, -1};
    pid_t parent = getpid(), pid;

    if (argv == NULL || argv[0] == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (stdout_fd != NULL && pipe2(fds, O_CLOEXEC) < 0)
        return -1;
    pid = fork();
    if (pid == 0)
        child_exec(argv, fds[1], parent, ignore_sigpipe);
    if (fds[1] >= 0)
        close(fds[1]);
    if (pid < 0) {
        int saved = errno;
        if (fds[0] >= 0)
            close(fds[0]);
        errno = saved;
        return -1;
    }
    if (stdout_fd != NULL)
        *stdout_fd = fds[0];
    return pid;
}

pid_t procs_spawn(const char *const argv[], int *stdout_fd)
{
    return spawn(argv, stdout_fd, false);
}

/* Waits until fd is readable or the deadline passes; 0 when readable. */
static int wait_readable(int fd, int64_t deadline)
{
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int64_t left = deadline - now_ms();
        int r;

        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        r = poll(&pfd, 1, (int)(left > INT32_MAX ? INT32_MAX : left));
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

/* One byte at a time, so nothing after the newline is taken from the pipe. */
int procs_read_line(int fd, char *buf, size_t cap, int timeout_ms)
{
    int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    size_t len = 0;

    if (buf == NULL || cap == 0 || cap > INT32_MAX) {
        errno = EINVAL;
        return -1;
    }
    for (;;) {
        char c;
        ssize_t r;

        if (wait_readable(fd, deadline) < 0)
            return -1;
        r = read(fd, &c, 1);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = ENODATA;
            return -1;
        }
        if (c == '\n') {
            buf[len] = '\0';
            return (int)len;
        }
        if (len + 1 >= cap) {
            errno = EMSGSIZE;
            return -1;
        }
        buf[len++] = c;
    }
}

/* The port at the end of line, after prefix; -1 if the line is anything else. */
static int parse_port(const char *line, const char *prefix)
{
    size_t plen = strlen(prefix);
    const char *p = line + plen;
    long port = 0;

    if (strncmp(line, prefix, plen) != 0)
        return -1;
    while (*p == ' ')
        p++;
    if (*p == '\0')
        return -1;
    for (; *p >= '0' && *p <= '9' && port <= 65535; p++)
        port = port * 10 + (*p - '0');
    if (*p == '\r')
        p++;
    return *p == '\0' && port >= 1 && port <= 65535 ? (int)port : -1;
}

int procs_spawn_port(const char *const argv[], const char *prefix, pid_t *pid)
{
    char line[256];
    int fd = -1, port = -1;
    pid_t child = spawn(argv, &fd, true);

    if (child < 0)
        return -1;
    if (procs_read_line(fd, line, sizeof(line), SPAWN_PORT_TIMEOUT_MS) >= 0)
        port = parse_port(line, prefix);
    close(fd);
    if (port < 0) {
        procs_stop(child, SIGKILL, KILL_REAP_MS);
        return -1;
    }
    *pid = child;
    return port;
}

static int exit_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

/* waitpid with WNOHANG every STOP_POLL_MS until the deadline: 1 reaped, 0 not yet, -1 error. */
static int reap_by(pid_t pid, int64_t deadline, int *status)
{
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);

        if (r == pid)
            return 1;
        if (r < 0 && errno != EINTR)
            return -1;
        if (now_ms() >= deadline)
            return 0;
        if (r == 0)
            nanosleep(&(struct timespec){.tv_nsec = STOP_POLL_MS * 1000000L}, NULL);
    }
}

int procs_stop(pid_t pid, int sig, int timeout_ms)
{
    int status, r;

    if (pid <= 0)
        return -1;
    if (sig != 0 && kill(pid, sig) < 0 && errno != ESRCH)
        return -1;
    r = reap_by(pid, now_ms() + (timeout_ms > 0 ? timeout_ms : 0), &status);
    if (r == 0) {
        kill(pid, SIGKILL);
        r = reap_by(pid, now_ms() + KILL_REAP_MS, &status);
    }
    return r == 1 ? exit_code(status) : -1;
}

const char *procs_builddir(void)
{
    const char *dir = getenv("top_builddir");

    return dir != NULL && dir[0] != '\0' ? dir : BUILDDIR;
}

/* ---- the children of one test ----------------------------------------- */

static pid_t children[PROCS_MAX_CHILDREN];

void procs_children_reset(void)
{
    memset(children, 0, sizeof children);
}

void procs_children_stop_leftovers(void)
{
    for (int i = 0; i < PROCS_MAX_CHILDREN; i++)
        if (children[i] > 0)
            (void)procs_stop(children[i], SIGKILL, PROCS_STOP_MS);
    procs_children_reset();
}

int procs_child_spawn(const char *const argv[], const char *prefix, pid_t *pid)
{
    int port = procs_spawn_port(argv, prefix, pid);
    if (port <= 0)
        return -1;
    for (int i = 0; i < PROCS_MAX_CHILDREN; i++) {
        if (children[i] == 0) {
            children[i] = *pid;
            return port;
        }
    }
    (void)procs_stop(*pid, SIGKILL, PROCS_STOP_MS);
    return -1;
}

int procs_child_stop(pid_t pid, int sig)
{
    for (int i = 0; i < PROCS_MAX_CHILDREN; i++)
        if (children[i] == pid)
            children[i] = 0;
    return procs_stop(pid, sig, PROCS_STOP_MS);
}

int procs_small_run(void)
{
    const char *s = getenv("RPC2_TEST_SMALL");
    return s != NULL && *s != '\0' && strcmp(s, "0") != 0;
}
