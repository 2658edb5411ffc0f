/*
 * queue_store.h - the spool's requests and their states, kept in a real
 * database (queue_db.h): SQLite by default, PostgreSQL when runners on
 * several hosts share a queue. Every state change is one transaction that
 * also appends the change to the request's history and, when the change
 * calls for one, records the hook as due; so a crash at any point leaves
 * either the old state or the new one with everything that goes with it.
 *
 * A runner works on a request only while it holds the request's claim: a
 * random token and a lease the runner renews. Every change a runner makes
 * names its token; a runner whose lease expired (it died, or stalled) finds
 * its token gone, and another runner has resumed the request.
 */
#ifndef RCAT_QUEUE_STORE_H
#define RCAT_QUEUE_STORE_H

#include <stdint.h>

#include "queue_db.h"

/* ectrans's statuses. */
enum qstatus {
    QS_INIT, /* being recorded */
    QS_WAIT, /* scheduled, waiting to be started */
    QS_COPY, /* a runner is transferring it */
    QS_RETR, /* an attempt failed: it will be retried */
    QS_STOP, /* failed for good (or cancelled, or its lifetime ended) */
    QS_DONE, /* transferred */
};

enum qhook { QH_SUCCESS, QH_FAILURE, QH_RETRY, QH_COUNT };

struct qrequest {
    int64_t id;
    char *kind;   /* "put" or "get" */
    char *source; /* put: the local file; get: the remote */
    char *target; /* put: the remote; get: the local file */
    char *cwd;    /* where relative names are taken from */
    char *args;   /* the child rcat's options (queue_words.h's list) */
    char *hooks[QH_COUNT];
    enum qstatus status;
    int priority; /* 0 first ... 99 last */
    int64_t created_ms, due_ms, expires_ms, updated_ms;
    int retries, attempts, failures;
    int64_t retry_interval_ms;
    int last_exit; /* -1: none yet */
    char *error;
    char *runner, *token;
    int64_t lease_ms;
    int cancel;
};

struct qhistory {
    enum qstatus status;
    int64_t at_ms;
    int attempt, exit_code; /* exit_code -1: none */
    const char *error, *runner;
};

struct qhookrun {
    int64_t id, request_id;
    enum qhook event;
    char *command; /* queue_words.h's list */
    enum qstatus status;
    char *error;
    int exit_code, attempt;
    char *token;
    int64_t lease_ms;
};

struct qstore;

/* spec: NULL for the default file, a path, or postgresql://... (also
 * postgres:// and "host=... dbname=..." key words). Creates the schema. */
int qstore_open(const char *spec, struct qstore **out, char *err, size_t errlen);
void qstore_close(struct qstore *s);
const char *qstore_error(const struct qstore *s);
/* The default SQLite file ($XDG_STATE_HOME/rcat/queue.db or
 * ~/.local/state/rcat/queue.db), its directory made if missing. */
int qstore_default_path(char *out, size_t cap);

const char *qstatus_name(enum qstatus s);
const char *qhook_name(enum qhook h);

/* Records r (INIT) and returns its id; delay_ms from now, or at_ms. */
int qstore_add(struct qstore *s, const struct qrequest *r, int64_t delay_ms, int64_t at_ms,
               int64_t lifetime_ms, int64_t *id);
/* INIT -> WAIT once the request is whole. */
int qstore_ready(struct qstore *s, int64_t id);

/* 1 and *r filled, 0 when there is no such request, -1 on error. */
int qstore_get(struct qstore *s, int64_t id, struct qrequest *r);
void qrequest_free(struct qrequest *r);
typedef void (*qhistory_fn)(const struct qhistory *h, void *arg);
int qstore_history(struct qstore *s, int64_t id, qhistory_fn fn, void *arg);
typedef void (*qrequest_fn)(const struct qrequest *r, void *arg);
/* status -1: all. */
int qstore_list(struct qstore *s, int status, qrequest_fn fn, void *arg);
/* 1: stopped (or, while COPY, asked of its runner), 0: already ended or
 * unknown, -1 error. */
int qstore_cancel(struct qstore *s, int64_t id);

/* A runner's side. runner names it in the history ("host:pid"). */
/* Claims the most urgent due request, or one whose claim expired: 1 and *r
 * (COPY, with its new token), 0 none due, -1 error. */
int qstore_claim(struct qstore *s, const char *runner, int64_t lease_ms, struct qrequest *r);
/* 1: renewed, 2: renewed but cancel asked, 0: the claim is lost, -1 error. */
int qstore_renew(struct qstore *s, const struct qrequest *r, int64_t lease_ms);
/* The attempt's end: status DONE, RETR (due in retry_ms), STOP, or WAIT
 * (given back unfinished: the runner stops). 1 recorded, 0 claim lost. */
int qstore_finish(struct qstore *s, const struct qrequest *r, enum qstatus to, int exit_code,
                  const char *error, int64_t retry_ms);
/* Lifetimes: a request not ended within its lifetime ends STOP; one that
 * ended a lifetime ago is removed with its history. Returns how many
 * changed, or -1. */
int qstore_expire(struct qstore *s);

int qstore_claim_hook(struct qstore *s, const char *runner, int64_t lease_ms, struct qhookrun *h);
int qstore_get_hook(struct qstore *s, int64_t id, struct qhookrun *h);
int qstore_hook_done(struct qstore *s, const struct qhookrun *h, int exit_code);
void qhookrun_free(struct qhookrun *h);

#endif
