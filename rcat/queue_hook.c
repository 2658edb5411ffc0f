/*
 * queue_hook.c - runs one hook the runner claimed (rcat queue hook-exec,
 * started by queue_run.c), then records that it ran. It is a process of its
 * own so that the record does not depend on the runner living on: a runner
 * killed while a hook runs leaves this process to finish and record it, and
 * the hook's claim (longer than its time limit) keeps every other runner
 * off it meanwhile. The one window left: this process itself killed (or
 * the host lost) between the hook's end and the record; the claim then
 * expires and the hook runs again (at least once, docs/QUEUE.md).
 *
 * The command is run with execve, never through a shell: its words as the
 * operator gave them, then the request's id, status and error; the same
 * and more in RCAT_QUEUE_* variables.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include "queue.h"
#include "queue_words.h"

#define RECORD_TRIES 60

extern char **environ;

/* The program as execvp would find it, without execvp's fallback of
 * handing a file it cannot execute to /bin/sh. */
static char *find_program(const char *name)
{
    const char *path = getenv("PATH");

    if (strchr(name, '/'))
        return strdup(name);
    for (const char *p = path ? path : "/usr/local/bin:/usr/bin:/bin"; *p;) {
        size_t n = strcspn(p, ":");
        char *full = malloc(n + strlen(name) + 3);

        if (!full)
            return NULL;
        sprintf(full, "%.*s/%s", (int)n, n ? p : ".", name);
        if (access(full, X_OK) == 0)
            return full;
        free(full);
        p += n + (p[n] == ':');
    }
    return NULL;
}

static char **hook_env(const struct qhookrun *h, const struct qrequest *r)
{
    size_t n = 0;
    char **env;
    char *vars[10];
    int k = 0;

    while (environ[n])
        n++;
    env = calloc(n + 11, sizeof *env);
    if (!env)
        return NULL;
    memcpy(env, environ, n * sizeof *env);
    if (asprintf(&vars[k++], "RCAT_QUEUE_ID=%lld", (long long)h->request_id) < 0 ||
        asprintf(&vars[k++], "RCAT_QUEUE_EVENT=%s", qhook_name(h->event)) < 0 ||
        asprintf(&vars[k++], "RCAT_QUEUE_STATUS=%s", qstatus_name(h->status)) < 0 ||
        asprintf(&vars[k++], "RCAT_QUEUE_ERROR=%s", h->error ? h->error : "") < 0 ||
        asprintf(&vars[k++], "RCAT_QUEUE_EXIT=%d", h->exit_code) < 0 ||
        asprintf(&vars[k++], "RCAT_QUEUE_ATTEMPT=%d", h->attempt) < 0 ||
        asprintf(&vars[k++], "RCAT_QUEUE_KIND=%s", r->kind) < 0 ||
        asprintf(&vars[k++], "RCAT_QUEUE_SOURCE=%s", r->source) < 0 ||
        asprintf(&vars[k++], "RCAT_QUEUE_TARGET=%s", r->target) < 0) {
        free(env);
        return NULL;
    }
    for (int i = 0; i < k; i++)
        env[n + i] = vars[i];
    return env;
}

/* Runs the hook within timeout_ms; its wait status, or -1. */
static int run_hook(const struct qhookrun *h, const struct qrequest *r, int64_t timeout_ms)
{
    char **words, **argv, **env, id[24], *program;
    int n, status = -1;
    pid_t pid;
    struct timespec tick = {0, 20 * 1000000};

    if (words_split(h->command, &words, &n) < 0 || n == 0)
        return -1;
    argv = calloc((size_t)n + 4, sizeof *argv);
    program = find_program(words[0]);
    env = hook_env(h, r);
    snprintf(id, sizeof id, "%lld", (long long)h->request_id);
    if (!argv || !program || !env) {
        fprintf(stderr, "rcat queue: hook %s: %s\n", words[0],
                program ? "out of memory" : "no such program");
        goto out;
    }
    memcpy(argv, words, (size_t)n * sizeof *argv);
    argv[n] = id;
    argv[n + 1] = (char *)qstatus_name(h->status);
    argv[n + 2] = h->error ? h->error : "";
    pid = fork();
    if (pid == 0) {
        /* Ignored signals stay ignored across execve: the hook gets them back. */
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        setpgid(0, 0);
        if (chdir(r->cwd) < 0 && chdir("/") < 0)
            _exit(126);
        execve(program, argv, env);
        fprintf(stderr, "rcat queue: hook %s: %s\n", program, strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
    }
    for (int64_t waited = 0; pid > 0; waited += 20) {
        pid_t done = waitpid(pid, &status, WNOHANG);

        if (done == pid || (done < 0 && errno != EINTR))
            break;
        if (waited >= timeout_ms) {
            fprintf(stderr, "rcat queue: hook %s of request %s ran past its time limit: killed\n",
                    words[0], id);
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            break;
        }
        nanosleep(&tick, NULL);
    }
out:
    free(env); /* its own variables are few and the process ends */
    free(argv);
    free(program);
    words_free(words);
    return status;
}

/* Records that the hook ran, trying again while the database is away
 * (within the claim's lease, nobody else takes the hook). */
static int record(const char *spec, const struct qhookrun *h, int code)
{
    char err[600];

    for (int i = 0; i < RECORD_TRIES; i++) {
        struct qstore *s;
        int rc;

        if (qstore_open(spec, &s, err, sizeof err) == 0) {
            rc = qstore_hook_done(s, h, code);
            snprintf(err, sizeof err, "%s", qstore_error(s));
            qstore_close(s);
            if (rc >= 0)
                return rc;
        }
        sleep(1);
    }
    fprintf(stderr, "rcat queue: hook %lld ran, but cannot be recorded: %s\n", (long long)h->id,
            err);
    return -1;
}

/* argv: hook-exec ID TOKEN TIMEOUT_MS */
int queue_hook_main(const char *spec, int argc, char **argv)
{
    struct qstore *s;
    struct qhookrun h;
    struct qrequest r;
    char err[600];
    int status, code;

    if (argc != 4)
        return QUEUE_EXIT_USAGE;
    signal(SIGTERM, SIG_IGN); /* the runner stops: it waits for us */
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    if (qstore_open(spec, &s, err, sizeof err) < 0) {
        fprintf(stderr, "rcat queue: cannot open the queue: %s\n", err);
        return QUEUE_EXIT_LOCAL;
    }
    if (qstore_get_hook(s, strtoll(argv[1], NULL, 10), &h) != 1) {
        qstore_close(s);
        return QUEUE_EXIT_REFUSED;
    }
    if (!h.token || strcmp(h.token, argv[2]) != 0 || qstore_get(s, h.request_id, &r) != 1) {
        qhookrun_free(&h);
        qstore_close(s);
        return QUEUE_EXIT_REFUSED; /* no longer ours */
    }
    qstore_close(s); /* not held while the hook runs */
    status = run_hook(&h, &r, strtoll(argv[3], NULL, 10));
    code = status < 0 ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    record(spec, &h, code);
    qhookrun_free(&h);
    qrequest_free(&r);
    return QUEUE_EXIT_OK;
}
