/*
 * queue_pg.c - the spool in PostgreSQL, for runners on several hosts that
 * share one queue: they claim work with SELECT ... FOR UPDATE SKIP LOCKED
 * (queue_store.c), so two never take the same request and none waits on
 * another's lock. A connection lost between statements is made again once
 * before the statement fails (a runner outlives a server restart).
 *
 * libpq is loaded with dlopen when a PostgreSQL queue is opened, not linked:
 * it brings a dozen libraries of its own (Kerberos, LDAP, GnuTLS, SASL)
 * whose loading doubled the start-up of every rcat run, a fetch from a
 * cron job as much as a queue runner, though only `--queue postgresql://`
 * needs them. The header still gives the types and prototypes.
 */
#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "queue_db.h"

/* libpq's soname, unchanged since PostgreSQL 8.x */
#define LIBPQ_SONAME "libpq.so.5"

/* The libpq calls used here, looked up by name when the queue opens. */
struct pq_api {
    void *lib;
    __typeof__(PQconnectdb) *connectdb;
    __typeof__(PQstatus) *status;
    __typeof__(PQreset) *reset;
    __typeof__(PQfinish) *finish;
    __typeof__(PQerrorMessage) *errorMessage;
    __typeof__(PQsetNoticeProcessor) *setNoticeProcessor;
    __typeof__(PQexecParams) *execParams;
    __typeof__(PQresultStatus) *resultStatus;
    __typeof__(PQntuples) *ntuples;
    __typeof__(PQnfields) *nfields;
    __typeof__(PQgetisnull) *getisnull;
    __typeof__(PQgetvalue) *getvalue;
    __typeof__(PQcmdTuples) *cmdTuples;
    __typeof__(PQclear) *clear;
};

struct pg_db {
    struct qdb base;
    struct pq_api pq;
    PGconn *h;
};

static int pq_load(struct pq_api *pq, char *err, size_t errlen)
{
    static const struct {
        const char *name;
        size_t offset;
    } calls[] = {
#define PQ_CALL(field, name) {#name, offsetof(struct pq_api, field)}
        PQ_CALL(connectdb, PQconnectdb),       PQ_CALL(status, PQstatus),
        PQ_CALL(reset, PQreset),               PQ_CALL(finish, PQfinish),
        PQ_CALL(errorMessage, PQerrorMessage), PQ_CALL(setNoticeProcessor, PQsetNoticeProcessor),
        PQ_CALL(execParams, PQexecParams),     PQ_CALL(resultStatus, PQresultStatus),
        PQ_CALL(ntuples, PQntuples),           PQ_CALL(nfields, PQnfields),
        PQ_CALL(getisnull, PQgetisnull),       PQ_CALL(getvalue, PQgetvalue),
        PQ_CALL(cmdTuples, PQcmdTuples),       PQ_CALL(clear, PQclear),
#undef PQ_CALL
    };

    pq->lib = dlopen(LIBPQ_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!pq->lib) {
        snprintf(err, errlen, "postgresql: cannot load %s (%s): install libpq5", LIBPQ_SONAME,
                 dlerror());
        return -1;
    }
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        void *fn = dlsym(pq->lib, calls[i].name);

        if (!fn) {
            snprintf(err, errlen, "postgresql: %s has no %s", LIBPQ_SONAME, calls[i].name);
            dlclose(pq->lib);
            pq->lib = NULL;
            return -1;
        }
        memcpy((char *)pq + calls[i].offset, &fn, sizeof fn);
    }
    return 0;
}

static int copy_rows(const struct pq_api *pq, PGresult *res, struct qdb_rows *out)
{
    int nrows = pq->ntuples(res), ncols = pq->nfields(res);

    out->nrows = nrows;
    out->ncols = ncols;
    if (nrows == 0)
        return 0;
    out->cells = calloc((size_t)nrows * ncols, sizeof *out->cells);
    if (!out->cells)
        return -1;
    for (int r = 0; r < nrows; r++)
        for (int c = 0; c < ncols; c++)
            if (!pq->getisnull(res, r, c))
                out->cells[(size_t)r * ncols + c] = strdup(pq->getvalue(res, r, c));
    return 0;
}

static int pg_exec(struct qdb *db, const char *sql, int n, const char *const *params,
                   struct qdb_rows *out, char *err, size_t errlen)
{
    struct pg_db *p = (struct pg_db *)db;
    const struct pq_api *pq = &p->pq;
    PGresult *res;
    ExecStatusType st;
    int rows;

    if (out)
        memset(out, 0, sizeof *out);
    /* Only outside a transaction: inside one, its work is already lost. */
    if (pq->status(p->h) != CONNECTION_OK && !strncmp(sql, "BEGIN", 5))
        pq->reset(p->h);
    res = pq->execParams(p->h, sql, n, NULL, params, NULL, NULL, 0);
    st = pq->resultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "postgresql: %s", pq->errorMessage(p->h));
        err[strcspn(err, "\n")] = '\0';
        pq->clear(res);
        return -1;
    }
    rows = st == PGRES_TUPLES_OK ? pq->ntuples(res) : atoi(pq->cmdTuples(res));
    if (st == PGRES_TUPLES_OK && rows == 0 && pq->cmdTuples(res)[0])
        rows = atoi(pq->cmdTuples(res));
    if (out && copy_rows(pq, res, out) < 0) {
        pq->clear(res);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    pq->clear(res);
    return rows;
}

static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static void pg_close(struct qdb *db)
{
    struct pg_db *p = (struct pg_db *)db;

    if (!p)
        return;
    if (p->h)
        p->pq.finish(p->h);
    if (p->pq.lib)
        dlclose(p->pq.lib);
    free(p);
}

static const struct qdb_driver pg_driver = {
    .name = "postgresql",
    .now_ms = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
    .serial = "BIGSERIAL PRIMARY KEY",
    .skip_locked = "FOR UPDATE SKIP LOCKED",
    .begin = "BEGIN",
    .dollar_params = 1,
    .exec = pg_exec,
    .close = pg_close,
};

int qdb_pg_open(const char *conninfo, struct qdb **out, char *err, size_t errlen)
{
    struct pg_db *db = calloc(1, sizeof *db);

    if (!db) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    db->base.drv = &pg_driver;
    if (pq_load(&db->pq, err, errlen) < 0) {
        free(db);
        return -1;
    }
    db->h = db->pq.connectdb(conninfo);
    if (!db->h || db->pq.status(db->h) != CONNECTION_OK) {
        snprintf(err, errlen, "postgresql: %s",
                 db->h ? db->pq.errorMessage(db->h) : "out of memory");
        err[strcspn(err, "\n")] = '\0';
        pg_close(&db->base);
        return -1;
    }
    /* Notices (a table that already exists) are not the operator's business. */
    db->pq.setNoticeProcessor(db->h, ignore_notice, NULL);
    *out = &db->base;
    return 0;
}
