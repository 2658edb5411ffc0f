/*
 * queue_store.c - the spool's requests, states, history and due hooks, in
 * SQL written once for both databases (queue_db.h expands the few words
 * that differ). Each state change is one transaction: the request's new
 * state, its history line and the hook it calls for commit together or not
 * at all. queue_store.h says how claims work.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "queue_store.h"

#define SCHEMA_VERSION "1"

struct qstore {
    struct qdb *db;
    char err[512];
};

static const char *const status_names[] = {"INIT", "WAIT", "COPY", "RETR", "STOP", "DONE"};
static const char *const hook_names[] = {"success", "failure", "retry"};
static const char *const hook_columns[] = {"on_success", "on_failure", "on_retry"};

const char *qstatus_name(enum qstatus s)
{
    return (unsigned)s < sizeof status_names / sizeof *status_names ? status_names[s] : "?";
}

const char *qhook_name(enum qhook h)
{
    return (unsigned)h < QH_COUNT ? hook_names[h] : "?";
}

static enum qstatus parse_status(const char *t)
{
    for (unsigned i = 0; t && i < sizeof status_names / sizeof *status_names; i++)
        if (!strcmp(t, status_names[i]))
            return (enum qstatus)i;
    return QS_STOP;
}

const char *qstore_error(const struct qstore *s)
{
    return s->err;
}

/* ---- SQL in the database's dialect ---------------------------------------- */

static void put(char **out, size_t *len, size_t *cap, const char *t, size_t n)
{
    if (!*out)
        return;
    if (*len + n + 1 > *cap) {
        char *grown;

        *cap = (*len + n + 1) * 2;
        grown = realloc(*out, *cap);
        if (!grown) {
            free(*out);
            *out = NULL;
            return;
        }
        *out = grown;
    }
    memcpy(*out + *len, t, n);
    *len += n;
    (*out)[*len] = '\0';
}

static char *dialect(const struct qdb_driver *d, const char *sql)
{
    size_t len = 0, cap = strlen(sql) + 64;
    char *out = malloc(cap);
    int param = 0;

    if (out)
        out[0] = '\0';
    for (const char *p = sql; *p && out; p++) {
        const char *word = NULL;
        size_t skip = 0;
        char num[16];

        if (!strncmp(p, "{now}", 5))
            word = d->now_ms, skip = 4;
        else if (!strncmp(p, "{serial}", 8))
            word = d->serial, skip = 7;
        else if (!strncmp(p, "{skip_locked}", 13))
            word = d->skip_locked, skip = 12;
        else if (*p == '?' && d->dollar_params) {
            snprintf(num, sizeof num, "$%d", ++param);
            word = num;
        }
        if (word) {
            put(&out, &len, &cap, word, strlen(word));
            p += skip;
        } else {
            put(&out, &len, &cap, p, 1);
        }
    }
    return out;
}

/* Runs sql with the NULL-ended text parameters that follow; rows into out
 * (may be NULL). The number of rows changed or returned, or -1. */
static int run(struct qstore *s, struct qdb_rows *out, const char *sql, ...)
{
    const char *params[32];
    int n = 0, rc;
    va_list ap;
    char *text = dialect(s->db->drv, sql);

    va_start(ap, sql);
    for (const char *p; n < 32 && (p = va_arg(ap, const char *)) != (const char *)-1;)
        params[n++] = p;
    va_end(ap);
    if (!text) {
        snprintf(s->err, sizeof s->err, "out of memory");
        return -1;
    }
    rc = s->db->drv->exec(s->db, text, n, params, out, s->err, sizeof s->err);
    free(text);
    return rc;
}
#define END ((const char *)-1)

static int begin(struct qstore *s)
{
    return run(s, NULL, s->db->drv->begin, END) < 0 ? -1 : 0;
}

static int commit(struct qstore *s)
{
    return run(s, NULL, "COMMIT", END) < 0 ? -1 : 0;
}

/* Ends a failed transaction, keeping the first error's message. */
static int rollback(struct qstore *s)
{
    char keep[sizeof s->err];

    memcpy(keep, s->err, sizeof keep);
    run(s, NULL, "ROLLBACK", END);
    memcpy(s->err, keep, sizeof keep);
    return -1;
}

#define I64(buf, v) (snprintf(buf, sizeof buf, "%lld", (long long)(v)), buf)

/* ---- opening -------------------------------------------------------------- */

static const char *const schema[] = {
    "CREATE TABLE IF NOT EXISTS requests ("
    " id {serial}, kind TEXT NOT NULL, source TEXT NOT NULL, target TEXT NOT NULL,"
    " cwd TEXT NOT NULL, args TEXT NOT NULL,"
    " on_success TEXT, on_failure TEXT, on_retry TEXT,"
    " status TEXT NOT NULL, priority BIGINT NOT NULL,"
    " created_ms BIGINT NOT NULL, due_ms BIGINT NOT NULL, expires_ms BIGINT NOT NULL,"
    " updated_ms BIGINT NOT NULL,"
    " retries BIGINT NOT NULL, attempts BIGINT NOT NULL DEFAULT 0,"
    " failures BIGINT NOT NULL DEFAULT 0, retry_interval_ms BIGINT NOT NULL,"
    " last_exit BIGINT, error TEXT, runner TEXT, token TEXT, lease_ms BIGINT,"
    " cancel BIGINT NOT NULL DEFAULT 0)",
    "CREATE INDEX IF NOT EXISTS requests_due ON requests (status, priority, due_ms)",
    "CREATE TABLE IF NOT EXISTS history ("
    " id {serial}, request_id BIGINT NOT NULL, status TEXT NOT NULL, at_ms BIGINT NOT NULL,"
    " attempt BIGINT NOT NULL, exit_code BIGINT, error TEXT, runner TEXT)",
    "CREATE INDEX IF NOT EXISTS history_request ON history (request_id)",
    "CREATE TABLE IF NOT EXISTS hooks ("
    " id {serial}, request_id BIGINT NOT NULL, event TEXT NOT NULL, command TEXT NOT NULL,"
    " status TEXT NOT NULL, error TEXT, exit_code BIGINT, attempt BIGINT NOT NULL,"
    " state TEXT NOT NULL, created_ms BIGINT NOT NULL, runner TEXT, token TEXT,"
    " lease_ms BIGINT, done_ms BIGINT, hook_exit BIGINT)",
    "CREATE INDEX IF NOT EXISTS hooks_state ON hooks (state, request_id)",
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
};

/* 1: the schema is there, of our version; 0: it is not there; -1: another
 * version (an error). Outside a transaction: in PostgreSQL the DDL below
 * takes table locks that would wait on (and deadlock with) runners. */
static int schema_there(struct qstore *s)
{
    struct qdb_rows r;
    int ok;

    if (run(s, &r, "SELECT value FROM meta WHERE name = 'schema'", END) < 0)
        return 0; /* no table meta yet */
    ok = r.nrows == 0 ? 0 : !strcmp(qdb_cell(&r, 0, 0), SCHEMA_VERSION) ? 1 : -1;
    qdb_rows_free(&r);
    if (ok < 0)
        snprintf(s->err, sizeof s->err, "the queue's schema is not version " SCHEMA_VERSION);
    return ok;
}

static int create_schema(struct qstore *s)
{
    struct qdb_rows r;
    int ok = schema_there(s);

    if (ok != 0)
        return ok > 0 ? 0 : -1;
    if (begin(s) < 0)
        return -1;
    /* Runners starting together on an empty PostgreSQL database would race
     * on CREATE TABLE; the lock ends with the transaction. */
    if (s->db->drv->dollar_params && run(s, NULL, "SELECT pg_advisory_xact_lock(8251971)", END) < 0)
        return rollback(s);
    for (size_t i = 0; i < sizeof schema / sizeof *schema; i++)
        if (run(s, NULL, schema[i], END) < 0)
            return rollback(s);
    if (run(s, &r, "SELECT value FROM meta WHERE name = 'schema'", END) < 0)
        return rollback(s);
    ok = r.nrows == 0 || !strcmp(qdb_cell(&r, 0, 0), SCHEMA_VERSION);
    qdb_rows_free(&r);
    if (!ok) {
        snprintf(s->err, sizeof s->err, "the queue's schema is not version " SCHEMA_VERSION);
        return rollback(s);
    }
    if (run(s, NULL,
            "INSERT INTO meta (name, value) SELECT 'schema', ? WHERE NOT EXISTS"
            " (SELECT 1 FROM meta WHERE name = 'schema')",
            SCHEMA_VERSION, END) < 0)
        return rollback(s);
    return commit(s);
}

static int mkdirs(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) < 0 && errno != EEXIST) {
            *p = '/';
            return -1;
        }
        *p = '/';
    }
    return 0;
}

int qstore_default_path(char *out, size_t cap)
{
    const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    int n;

    if (state && state[0] == '/')
        n = snprintf(out, cap, "%s/rcat/queue.db", state);
    else if (home && home[0] == '/')
        n = snprintf(out, cap, "%s/.local/state/rcat/queue.db", home);
    else
        return -1;
    if (n < 0 || (size_t)n >= cap)
        return -1;
    return mkdirs(out);
}

static int is_pg(const char *spec)
{
    return !strncmp(spec, "postgresql://", 13) || !strncmp(spec, "postgres://", 11) ||
           strchr(spec, '=') != NULL;
}

int qstore_open(const char *spec, struct qstore **out, char *err, size_t errlen)
{
    struct qstore *s = calloc(1, sizeof *s);
    char path[4096];
    int rc;

    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (!spec && qstore_default_path(path, sizeof path) < 0) {
        snprintf(err, errlen,
                 "no state directory for the queue (set HOME or XDG_STATE_HOME, "
                 "or give --queue FILE): %s",
                 strerror(errno ? errno : ENOENT));
        free(s);
        return -1;
    }
    if (!spec)
        spec = path;
    rc = is_pg(spec) ? qdb_pg_open(spec, &s->db, err, errlen)
                     : qdb_sqlite_open(spec, &s->db, err, errlen);
    if (rc < 0) {
        free(s);
        return -1;
    }
    if (create_schema(s) < 0) {
        snprintf(err, errlen, "%s", s->err);
        qstore_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

void qstore_close(struct qstore *s)
{
    if (!s)
        return;
    s->db->drv->close(s->db);
    free(s);
}

/* ---- requests ------------------------------------------------------------- */

#define REQUEST_COLUMNS                                                                            \
    "id, kind, source, target, cwd, args, on_success, on_failure, on_retry, status, priority,"     \
    " created_ms, due_ms, expires_ms, updated_ms, retries, attempts, failures,"                    \
    " retry_interval_ms, last_exit, error, runner, token, lease_ms, cancel"

static char *dup_cell(const struct qdb_rows *rows, int row, int col)
{
    const char *t = qdb_cell(rows, row, col);

    return t ? strdup(t) : NULL;
}

static int64_t int_cell(const struct qdb_rows *rows, int row, int col, int64_t none)
{
    const char *t = qdb_cell(rows, row, col);

    return t ? strtoll(t, NULL, 10) : none;
}

static void read_request(const struct qdb_rows *rows, int i, struct qrequest *r)
{
    memset(r, 0, sizeof *r);
    r->id = int_cell(rows, i, 0, 0);
    r->kind = dup_cell(rows, i, 1);
    r->source = dup_cell(rows, i, 2);
    r->target = dup_cell(rows, i, 3);
    r->cwd = dup_cell(rows, i, 4);
    r->args = dup_cell(rows, i, 5);
    for (int h = 0; h < QH_COUNT; h++)
        r->hooks[h] = dup_cell(rows, i, 6 + h);
    r->status = parse_status(qdb_cell(rows, i, 9));
    r->priority = (int)int_cell(rows, i, 10, 0);
    r->created_ms = int_cell(rows, i, 11, 0);
    r->due_ms = int_cell(rows, i, 12, 0);
    r->expires_ms = int_cell(rows, i, 13, 0);
    r->updated_ms = int_cell(rows, i, 14, 0);
    r->retries = (int)int_cell(rows, i, 15, 0);
    r->attempts = (int)int_cell(rows, i, 16, 0);
    r->failures = (int)int_cell(rows, i, 17, 0);
    r->retry_interval_ms = int_cell(rows, i, 18, 0);
    r->last_exit = (int)int_cell(rows, i, 19, -1);
    r->error = dup_cell(rows, i, 20);
    r->runner = dup_cell(rows, i, 21);
    r->token = dup_cell(rows, i, 22);
    r->lease_ms = int_cell(rows, i, 23, 0);
    r->cancel = (int)int_cell(rows, i, 24, 0);
}

void qrequest_free(struct qrequest *r)
{
    char **texts[] = {&r->kind,   &r->source, &r->target,   &r->cwd,      &r->args,    &r->error,
                      &r->runner, &r->token,  &r->hooks[0], &r->hooks[1], &r->hooks[2]};

    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        free(*texts[i]);
        *texts[i] = NULL;
    }
}

/* The history line of the request's state as it now is. */
static int add_history(struct qstore *s, int64_t id, const char *runner)
{
    char b[24];

    return run(s, NULL,
               "INSERT INTO history (request_id, status, at_ms, attempt, exit_code, error, runner)"
               " SELECT id, status, {now}, attempts, last_exit, error, ? FROM requests"
               " WHERE id = CAST(? AS BIGINT)",
               runner, I64(b, id), END) < 0
               ? -1
               : 0;
}

/* The hook of the request's state as it now is, due (when it has one). */
static int add_hook(struct qstore *s, int64_t id, enum qhook h)
{
    char sql[512], b[24];

    snprintf(sql, sizeof sql,
             "INSERT INTO hooks (request_id, event, command, status, error, exit_code, attempt,"
             " state, created_ms) SELECT id, ?, %s, status, error, last_exit, attempts, 'due',"
             " {now} FROM requests WHERE id = CAST(? AS BIGINT) AND %s IS NOT NULL",
             hook_columns[h], hook_columns[h]);
    return run(s, NULL, sql, hook_names[h], I64(b, id), END) < 0 ? -1 : 0;
}

int qstore_add(struct qstore *s, const struct qrequest *r, int64_t delay_ms, int64_t at_ms,
               int64_t lifetime_ms, int64_t *id)
{
    char prio[24], delay[24], at[24], life[24], retries[24], interval[24];
    struct qdb_rows rows;

    if (begin(s) < 0)
        return -1;
    if (run(s, &rows,
            "INSERT INTO requests (kind, source, target, cwd, args, on_success, on_failure,"
            " on_retry, status, priority, created_ms, due_ms, expires_ms, updated_ms, retries,"
            " retry_interval_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'INIT', CAST(? AS BIGINT), {now},"
            " CASE WHEN CAST(? AS BIGINT) > 0 THEN CAST(? AS BIGINT) ELSE {now} + CAST(? AS BIGINT)"
            " END, {now} + CAST(? AS BIGINT), {now}, CAST(? AS BIGINT), CAST(? AS BIGINT))"
            " RETURNING id",
            r->kind, r->source, r->target, r->cwd, r->args, r->hooks[0], r->hooks[1], r->hooks[2],
            I64(prio, r->priority), I64(at, at_ms), at, I64(delay, delay_ms),
            I64(life, lifetime_ms), I64(retries, r->retries), I64(interval, r->retry_interval_ms),
            END) != 1) {
        if (!s->err[0])
            snprintf(s->err, sizeof s->err, "the request was not recorded");
        return rollback(s);
    }
    *id = int_cell(&rows, 0, 0, 0);
    qdb_rows_free(&rows);
    if (add_history(s, *id, NULL) < 0)
        return rollback(s);
    return commit(s);
}

/* One state change: update (whose WHERE names the id as its last '?'),
 * then its history line and hook, in one transaction. 1 done, 0 when the
 * update matched nothing (the claim was lost, the state moved on). */
static int change(struct qstore *s, int64_t id, const char *runner, int hook, const char *sql,
                  const char *const *params, int n)
{
    char *text, b[24];
    const char *all[16];
    int rc;

    if (n > 14)
        return -1;
    if (n > 0)
        memcpy(all, params, sizeof *all * n);
    all[n++] = I64(b, id);
    text = dialect(s->db->drv, sql);
    if (!text || begin(s) < 0) {
        free(text);
        return -1;
    }
    rc = s->db->drv->exec(s->db, text, n, all, NULL, s->err, sizeof s->err);
    free(text);
    if (rc < 0)
        return rollback(s);
    if (rc == 0) {
        rollback(s);
        return 0;
    }
    if (add_history(s, id, runner) < 0 || (hook >= 0 && add_hook(s, id, (enum qhook)hook) < 0))
        return rollback(s);
    return commit(s) < 0 ? -1 : 1;
}

int qstore_ready(struct qstore *s, int64_t id)
{
    return change(s, id, NULL, -1,
                  "UPDATE requests SET status = 'WAIT', updated_ms = {now}"
                  " WHERE status = 'INIT' AND id = CAST(? AS BIGINT)",
                  NULL, 0);
}

int qstore_get(struct qstore *s, int64_t id, struct qrequest *r)
{
    struct qdb_rows rows;
    char b[24];
    int n = run(s, &rows, "SELECT " REQUEST_COLUMNS " FROM requests WHERE id = CAST(? AS BIGINT)",
                I64(b, id), END);

    if (n <= 0)
        return n;
    read_request(&rows, 0, r);
    qdb_rows_free(&rows);
    return 1;
}

int qstore_history(struct qstore *s, int64_t id, qhistory_fn fn, void *arg)
{
    struct qdb_rows rows;
    char b[24];

    if (run(s, &rows,
            "SELECT status, at_ms, attempt, exit_code, error, runner FROM history"
            " WHERE request_id = CAST(? AS BIGINT) ORDER BY id",
            I64(b, id), END) < 0)
        return -1;
    for (int i = 0; i < rows.nrows; i++) {
        struct qhistory h = {
            .status = parse_status(qdb_cell(&rows, i, 0)),
            .at_ms = int_cell(&rows, i, 1, 0),
            .attempt = (int)int_cell(&rows, i, 2, 0),
            .exit_code = (int)int_cell(&rows, i, 3, -1),
            .error = qdb_cell(&rows, i, 4),
            .runner = qdb_cell(&rows, i, 5),
        };
        fn(&h, arg);
    }
    qdb_rows_free(&rows);
    return 0;
}

int qstore_list(struct qstore *s, int status, qrequest_fn fn, void *arg)
{
    struct qdb_rows rows;
    int n = status < 0 ? run(s, &rows, "SELECT " REQUEST_COLUMNS " FROM requests ORDER BY id", END)
                       : run(s, &rows,
                             "SELECT " REQUEST_COLUMNS " FROM requests WHERE status = ?"
                             " ORDER BY id",
                             qstatus_name((enum qstatus)status), END);

    if (n < 0)
        return -1;
    for (int i = 0; i < rows.nrows; i++) {
        struct qrequest r;

        read_request(&rows, i, &r);
        fn(&r, arg);
        qrequest_free(&r);
    }
    qdb_rows_free(&rows);
    return 0;
}

int qstore_cancel(struct qstore *s, int64_t id)
{
    static const char *const why[] = {"cancelled"};
    int rc = change(s, id, NULL, QH_FAILURE,
                    "UPDATE requests SET status = 'STOP', error = ?, updated_ms = {now},"
                    " token = NULL WHERE status IN ('INIT', 'WAIT', 'RETR')"
                    " AND id = CAST(? AS BIGINT)",
                    why, 1);
    char b[24];

    if (rc != 0)
        return rc;
    /* Running: its runner sees the flag when it renews the claim. */
    rc = run(s, NULL,
             "UPDATE requests SET cancel = 1, updated_ms = {now}"
             " WHERE status = 'COPY' AND id = CAST(? AS BIGINT)",
             I64(b, id), END);
    return rc < 0 ? -1 : rc > 0;
}

/* ---- runners -------------------------------------------------------------- */

static void new_token(char out[33])
{
    unsigned char raw[16];

    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
        for (size_t i = 0; i < sizeof raw; i++)
            raw[i] = (unsigned char)rand();
    for (size_t i = 0; i < sizeof raw; i++)
        sprintf(out + 2 * i, "%02x", raw[i]);
}

/* A claim: sql, an UPDATE ... RETURNING of one row, takes the runner, a
 * new token and the lease. 1 with the row and the transaction still open
 * (the caller commits), 0 when nothing was due, -1 on error. */
static int claim_row(struct qstore *s, const char *sql, const char *runner, int64_t lease_ms,
                     struct qdb_rows *rows)
{
    char token[33], lease[24];

    new_token(token);
    if (begin(s) < 0)
        return -1;
    if (run(s, rows, sql, runner, token, I64(lease, lease_ms), END) < 0)
        return rollback(s);
    if (rows->nrows == 0) {
        qdb_rows_free(rows);
        rollback(s);
        return 0;
    }
    return 1;
}

int qstore_claim(struct qstore *s, const char *runner, int64_t lease_ms, struct qrequest *r)
{
    struct qdb_rows rows;
    int rc = claim_row(s,
                       "UPDATE requests SET status = 'COPY', runner = ?, token = ?,"
                       " lease_ms = {now} + CAST(? AS BIGINT), attempts = attempts + 1,"
                       " updated_ms = {now} WHERE id = (SELECT id FROM requests WHERE cancel = 0"
                       " AND expires_ms > {now} AND ((status IN ('WAIT', 'RETR') AND"
                       " due_ms <= {now}) OR (status = 'COPY' AND lease_ms < {now}))"
                       " ORDER BY priority, due_ms, id LIMIT 1 {skip_locked})"
                       " RETURNING " REQUEST_COLUMNS,
                       runner, lease_ms, &rows);

    if (rc <= 0)
        return rc;
    read_request(&rows, 0, r);
    qdb_rows_free(&rows);
    if (add_history(s, r->id, runner) < 0 || commit(s) < 0) {
        qrequest_free(r);
        return rollback(s);
    }
    return 1;
}

int qstore_renew(struct qstore *s, const struct qrequest *r, int64_t lease_ms)
{
    struct qdb_rows rows;
    char lease[24], b[24];
    int n = run(s, &rows,
                "UPDATE requests SET lease_ms = {now} + CAST(? AS BIGINT)"
                " WHERE id = CAST(? AS BIGINT) AND token = ? AND status = 'COPY' RETURNING cancel",
                I64(lease, lease_ms), I64(b, r->id), r->token, END);
    int cancel;

    if (n < 0)
        return -1;
    if (rows.nrows == 0)
        return 0;
    cancel = (int)int_cell(&rows, 0, 0, 0);
    qdb_rows_free(&rows);
    return cancel ? 2 : 1;
}

int qstore_finish(struct qstore *s, const struct qrequest *r, enum qstatus to, int exit_code,
                  const char *error, int64_t retry_ms)
{
    char code[24], retry[24];
    int failed = to == QS_RETR || (to == QS_STOP && exit_code >= 0);
    const char *params[] = {qstatus_name(to),     I64(code, exit_code), error,
                            I64(retry, retry_ms), failed ? "1" : "0",   r->token};
    int hook = to == QS_DONE   ? QH_SUCCESS
               : to == QS_RETR ? QH_RETRY
               : to == QS_STOP ? QH_FAILURE
                               : -1;

    return change(s, r->id, r->runner, hook,
                  "UPDATE requests SET status = ?, last_exit = CAST(? AS BIGINT), error = ?,"
                  " due_ms = {now} + CAST(? AS BIGINT), updated_ms = {now},"
                  " failures = failures + CAST(? AS BIGINT), token = NULL, lease_ms = NULL"
                  " WHERE token = ? AND status = 'COPY' AND id = CAST(? AS BIGINT)",
                  params, 6);
}

int qstore_expire(struct qstore *s)
{
    static const char *const ended[] = {"lifetime ended"}, *const cancelled[] = {"cancelled"};
    struct qdb_rows rows;
    int changed = 0;

    /* Waiting past its lifetime, or cancelled while its runner died. */
    if (run(s, &rows,
            "SELECT id, cancel FROM requests WHERE (status IN ('INIT', 'WAIT', 'RETR') AND"
            " expires_ms <= {now}) OR (status = 'COPY' AND lease_ms < {now} AND"
            " (cancel = 1 OR expires_ms <= {now}))",
            END) < 0)
        return -1;
    for (int i = 0; i < rows.nrows; i++) {
        int64_t id = int_cell(&rows, i, 0, 0);
        int rc = change(s, id, NULL, QH_FAILURE,
                        "UPDATE requests SET status = 'STOP', error = ?, token = NULL,"
                        " updated_ms = {now} WHERE (status IN ('INIT', 'WAIT', 'RETR') OR"
                        " (status = 'COPY' AND lease_ms < {now})) AND id = CAST(? AS BIGINT)",
                        int_cell(&rows, i, 1, 0) ? cancelled : ended, 1);

        if (rc < 0) {
            qdb_rows_free(&rows);
            return -1;
        }
        changed += rc;
    }
    qdb_rows_free(&rows);
    /* Ended a lifetime ago: gone, once its hooks have run. */
    if (begin(s) < 0)
        return -1;
    static const char *const purge[] = {
        "DELETE FROM history WHERE request_id IN (SELECT id FROM requests WHERE %s)",
        "DELETE FROM hooks WHERE request_id IN (SELECT id FROM requests WHERE %s)",
        "DELETE FROM requests WHERE %s",
    };
    for (size_t i = 0; i < sizeof purge / sizeof *purge; i++) {
        char sql[512];

        snprintf(sql, sizeof sql, purge[i],
                 "status IN ('DONE', 'STOP') AND updated_ms + expires_ms - created_ms <= {now}"
                 " AND NOT EXISTS"
                 " (SELECT 1 FROM hooks h WHERE h.request_id = requests.id AND h.state <> 'done')");
        if (run(s, NULL, sql, END) < 0)
            return rollback(s);
    }
    return commit(s) < 0 ? -1 : changed;
}

/* ---- hooks ---------------------------------------------------------------- */

#define HOOK_COLUMNS                                                                               \
    "id, request_id, event, command, status, error, exit_code, attempt, token, lease_ms"

static void read_hook(const struct qdb_rows *rows, struct qhookrun *h)
{
    const char *event = qdb_cell(rows, 0, 2);

    memset(h, 0, sizeof *h);
    h->id = int_cell(rows, 0, 0, 0);
    h->request_id = int_cell(rows, 0, 1, 0);
    h->event = QH_FAILURE;
    for (int e = 0; event && e < QH_COUNT; e++)
        if (!strcmp(event, hook_names[e]))
            h->event = (enum qhook)e;
    h->command = dup_cell(rows, 0, 3);
    h->status = parse_status(qdb_cell(rows, 0, 4));
    h->error = dup_cell(rows, 0, 5);
    h->exit_code = (int)int_cell(rows, 0, 6, -1);
    h->attempt = (int)int_cell(rows, 0, 7, 0);
    h->token = dup_cell(rows, 0, 8);
    h->lease_ms = int_cell(rows, 0, 9, 0);
}

void qhookrun_free(struct qhookrun *h)
{
    free(h->command);
    free(h->error);
    free(h->token);
    h->command = h->error = h->token = NULL;
}

/* A request's hooks run in the order they became due: one waits while an
 * earlier one of the same request has not run. */
int qstore_claim_hook(struct qstore *s, const char *runner, int64_t lease_ms, struct qhookrun *h)
{
    struct qdb_rows rows;
    int rc = claim_row(s,
                       "UPDATE hooks SET state = 'running', runner = ?, token = ?,"
                       " lease_ms = {now} + CAST(? AS BIGINT)"
                       " WHERE id = (SELECT id FROM hooks WHERE (state = 'due' OR"
                       " (state = 'running' AND lease_ms < {now})) AND NOT EXISTS"
                       " (SELECT 1 FROM hooks e WHERE e.request_id = hooks.request_id AND"
                       " e.id < hooks.id AND e.state <> 'done')"
                       " ORDER BY id LIMIT 1 {skip_locked}) RETURNING " HOOK_COLUMNS,
                       runner, lease_ms, &rows);

    if (rc <= 0)
        return rc;
    read_hook(&rows, h);
    qdb_rows_free(&rows);
    if (commit(s) < 0) {
        qhookrun_free(h);
        return rollback(s);
    }
    return 1;
}

int qstore_get_hook(struct qstore *s, int64_t id, struct qhookrun *h)
{
    struct qdb_rows rows;
    char b[24];
    int n = run(s, &rows, "SELECT " HOOK_COLUMNS " FROM hooks WHERE id = CAST(? AS BIGINT)",
                I64(b, id), END);

    if (n <= 0)
        return n;
    read_hook(&rows, h);
    qdb_rows_free(&rows);
    return 1;
}

int qstore_hook_done(struct qstore *s, const struct qhookrun *h, int exit_code)
{
    char code[24], b[24];
    int n = run(s, NULL,
                "UPDATE hooks SET state = 'done', done_ms = {now}, hook_exit = CAST(? AS BIGINT)"
                " WHERE id = CAST(? AS BIGINT) AND token = ? AND state = 'running'",
                I64(code, exit_code), I64(b, h->id), h->token, END);

    return n < 0 ? -1 : n > 0;
}
