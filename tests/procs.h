/*
 * procs.h - start, talk to and stop the helper programs of integration tests
 * (servers, the fault proxy), with every wait bounded, so a stuck child fails
 * a test instead of hanging `make check`.
 *
 * These helpers only ever signal the PIDs they were given; pass them only
 * PIDs that procs_spawn() or procs_spawn_port() returned.
 */
#ifndef RPC2_TESTS_PROCS_H
#define RPC2_TESTS_PROCS_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Forks and executes argv[0] (searched in PATH when it has no slash) with
 * argv, a NULL-terminated list. When stdout_fd is not NULL the child's stdout
 * is a pipe whose read end (close-on-exec) is stored there; otherwise stdout
 * is inherited. stderr is always inherited. The child gets SIGTERM if the
 * calling thread exits first, so a failed test leaves no orphans behind.
 * Returns the PID, or -1 with errno set.
 */
pid_t procs_spawn(const char *const argv[], int *stdout_fd);

/*
 * Reads one line from fd into buf (NUL-terminated, newline stripped), waiting
 * at most timeout_ms in total. Bytes after the newline stay unread. Returns
 * the line's length, or -1 with errno ETIMEDOUT (no full line in time),
 * ENODATA (end of file first), EMSGSIZE (the line does not fit in cap) or the
 * error of poll/read.
 */
int procs_read_line(int fd, char *buf, size_t cap, int timeout_ms);

/*
 * Spawns argv and reads the first line of its stdout, which must be prefix
 * followed by a port number ("faultproxy listening on 4242"); waits at most
 * 10 s. The pipe is then closed, and the child runs with SIGPIPE ignored so a
 * later write to stdout fails with EPIPE instead of killing it. Returns the
 * port and stores the PID in *pid; on a timeout or a line that does not match
 * the child is killed and reaped, and -1 is returned.
 */
int procs_spawn_port(const char *const argv[], const char *prefix, pid_t *pid);

/*
 * Sends sig to pid (0 sends nothing: just wait for it to exit), waits for it
 * at most timeout_ms, polling every 10 ms, then sends SIGKILL and reaps it.
 * Returns the exit code, 128 + the signal number if a signal ended it (as the
 * shell reports it), or -1 if pid could not be waited for.
 */
int procs_stop(pid_t pid, int sig, int timeout_ms);

/*
 * The children a test started and has not stopped yet, so a failing test's
 * teardown can kill what it left running. One registry per test process
 * (Check runs each test in its own fork).
 */
#define PROCS_MAX_CHILDREN 4
#define PROCS_STOP_MS 10000 /* a child stopping on SIGTERM: a blocking handler may still run */

void procs_children_reset(void);
/* SIGKILLs every child still registered, then forgets them all. */
void procs_children_stop_leftovers(void);
/* procs_spawn_port, and registers the child; -1 when it did not start or the
 * registry is full (the child is then stopped). */
int procs_child_spawn(const char *const argv[], const char *prefix, pid_t *pid);
/* Forgets the child and stops it as procs_stop does, within PROCS_STOP_MS. */
int procs_child_stop(pid_t pid, int sig);

/* The build tree: $top_builddir if set (as `make check` does), else BUILDDIR from the build. */
const char *procs_builddir(void);

/* Whether RPC2_TEST_SMALL asks for a small run (sanitizer and valgrind
 * builds): set, non-empty and not "0". */
int procs_small_run(void);

#endif
