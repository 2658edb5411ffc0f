/*
 * queue_sqlite.c - the spool's default database: one SQLite file under the
 * user's state directory, shared by the runners and commands of one host.
 * WAL lets readers (queue status) go on while a runner writes; FULL sync
 * makes every committed state change survive a crash of the machine, not
 * only of the process; a long busy timeout lets writers queue up instead of
 * failing (each state change is one short transaction).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "queue_db.h"

#define BUSY_TIMEOUT_MS 60000

struct sqlite_db {
    struct qdb base;
    sqlite3 *h;
};

static int fail(sqlite3 *h, char *err, size_t errlen)
{
    snprintf(err, errlen, "sqlite: %s", sqlite3_errmsg(h));
    return -1;
}

static int collect(sqlite3_stmt *st, struct qdb_rows *out)
{
    int ncols = sqlite3_column_count(st);
    char **row;
    void *grown = realloc(out->cells, sizeof *out->cells * (size_t)(out->nrows + 1) * ncols);

    if (!grown)
        return -1;
    out->cells = grown;
    out->ncols = ncols;
    row = out->cells + (size_t)out->nrows * ncols;
    for (int c = 0; c < ncols; c++) {
        const unsigned char *t = sqlite3_column_text(st, c);

        row[c] = t ? strdup((const char *)t) : NULL;
    }
    out->nrows++;
    return 0;
}

static int sqlite_exec(struct qdb *db, const char *sql, int n, const char *const *params,
                       struct qdb_rows *out, char *err, size_t errlen)
{
    sqlite3 *h = ((struct sqlite_db *)db)->h;
    sqlite3_stmt *st;
    int rc, rows = 0;

    if (out)
        memset(out, 0, sizeof *out);
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK)
        return fail(h, err, errlen);
    for (int i = 0; i < n; i++)
        sqlite3_bind_text(st, i + 1, params[i], -1, SQLITE_TRANSIENT);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        rows++;
        if (out && collect(st, out) < 0) {
            sqlite3_finalize(st);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    if (rc != SQLITE_DONE) {
        fail(h, err, errlen);
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_finalize(st);
    return rows ? rows : sqlite3_changes(h);
}

static void sqlite_close(struct qdb *db)
{
    if (!db)
        return;
    sqlite3_close(((struct sqlite_db *)db)->h);
    free(db);
}

static const struct qdb_driver sqlite_driver = {
    .name = "sqlite",
    .now_ms = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
    .serial = "INTEGER PRIMARY KEY AUTOINCREMENT",
    .skip_locked = "", /* BEGIN IMMEDIATE already lets one writer in at a time */
    .begin = "BEGIN IMMEDIATE",
    .dollar_params = 0,
    .exec = sqlite_exec,
    .close = sqlite_close,
};

int qdb_sqlite_open(const char *path, struct qdb **out, char *err, size_t errlen)
{
    struct sqlite_db *db = calloc(1, sizeof *db);
    static const char *const pragmas[] = {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL"};

    if (!db) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    db->base.drv = &sqlite_driver;
    if (sqlite3_open_v2(path, &db->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, db->h ? sqlite3_errmsg(db->h) : "cannot open");
        sqlite_close(&db->base);
        return -1;
    }
    sqlite3_busy_timeout(db->h, BUSY_TIMEOUT_MS);
    for (size_t i = 0; i < sizeof pragmas / sizeof *pragmas; i++) {
        if (sqlite_exec(&db->base, pragmas[i], 0, NULL, NULL, err, errlen) < 0) {
            sqlite_close(&db->base);
            return -1;
        }
    }
    *out = &db->base;
    return 0;
}

const char *qdb_cell(const struct qdb_rows *r, int row, int col)
{
    if (row >= r->nrows || col >= r->ncols)
        return NULL;
    return r->cells[(size_t)row * r->ncols + col];
}

void qdb_rows_free(struct qdb_rows *r)
{
    for (size_t i = 0; i < (size_t)r->nrows * r->ncols; i++)
        free(r->cells[i]);
    free(r->cells);
    memset(r, 0, sizeof *r);
}
