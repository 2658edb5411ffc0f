/*
 * queue_pg.c - the spool in PostgreSQL, for runners on several hosts that
 * share one queue: they claim work with SELECT ... FOR UPDATE SKIP LOCKED
 * (queue_store.c), so two never take the same request and none waits on
 * another's lock. A connection lost between statements is made again once
 * before the statement fails (a runner outlives a server restart).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "queue_db.h"

struct pg_db {
    struct qdb base;
    PGconn *h;
};

static int copy_rows(PGresult *res, struct qdb_rows *out)
{
    int nrows = PQntuples(res), ncols = PQnfields(res);

    out->nrows = nrows;
    out->ncols = ncols;
    if (nrows == 0)
        return 0;
    out->cells = calloc((size_t)nrows * ncols, sizeof *out->cells);
    if (!out->cells)
        return -1;
    for (int r = 0; r < nrows; r++)
        for (int c = 0; c < ncols; c++)
            if (!PQgetisnull(res, r, c))
                out->cells[(size_t)r * ncols + c] = strdup(PQgetvalue(res, r, c));
    return 0;
}

static int pg_exec(struct qdb *db, const char *sql, int n, const char *const *params,
                   struct qdb_rows *out, char *err, size_t errlen)
{
    struct pg_db *p = (struct pg_db *)db;
    PGresult *res;
    ExecStatusType st;
    int rows;

    if (out)
        memset(out, 0, sizeof *out);
    /* Only outside a transaction: inside one, its work is already lost. */
    if (PQstatus(p->h) != CONNECTION_OK && !strncmp(sql, "BEGIN", 5))
        PQreset(p->h);
    res = PQexecParams(p->h, sql, n, NULL, params, NULL, NULL, 0);
    st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "postgresql: %s", PQerrorMessage(p->h));
        err[strcspn(err, "\n")] = '\0';
        PQclear(res);
        return -1;
    }
    rows = st == PGRES_TUPLES_OK ? PQntuples(res) : atoi(PQcmdTuples(res));
    if (st == PGRES_TUPLES_OK && rows == 0 && PQcmdTuples(res)[0])
        rows = atoi(PQcmdTuples(res));
    if (out && copy_rows(res, out) < 0) {
        PQclear(res);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    PQclear(res);
    return rows;
}

static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static void pg_close(struct qdb *db)
{
    if (!db)
        return;
    PQfinish(((struct pg_db *)db)->h);
    free(db);
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
    db->h = PQconnectdb(conninfo);
    if (!db->h || PQstatus(db->h) != CONNECTION_OK) {
        snprintf(err, errlen, "postgresql: %s", db->h ? PQerrorMessage(db->h) : "out of memory");
        err[strcspn(err, "\n")] = '\0';
        pg_close(&db->base);
        return -1;
    }
    /* Notices (a table that already exists) are not the operator's business. */
    PQsetNoticeProcessor(db->h, ignore_notice, NULL);
    *out = &db->base;
    return 0;
}
