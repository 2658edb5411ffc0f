/*
 * queue_db.h - the one thing the spool asks of a database: run a statement
 * with text parameters, inside a transaction, and hand back its rows as
 * text. Two drivers give it (queue_sqlite.c: one file, several processes on
 * one host; queue_pg.c: one server, runners on several hosts); the spool's
 * logic and SQL live once, in queue_store.c, written for both dialects.
 */
#ifndef RCAT_QUEUE_DB_H
#define RCAT_QUEUE_DB_H

#include <stddef.h>

/* Rows of a result, every cell as text (NULL for SQL NULL). */
struct qdb_rows {
    int nrows, ncols;
    char **cells; /* nrows * ncols, row by row */
};

struct qdb;

struct qdb_driver {
    const char *name; /* "sqlite", "postgresql" */
    /* What the store's SQL macros become in this dialect. */
    const char *now_ms;      /* {now}: the database's clock, ms since 1970 */
    const char *serial;      /* {serial}: an id column that is never reused */
    const char *skip_locked; /* {skip_locked}: after a claim's SELECT */
    const char *begin;       /* BEGIN for a transaction that will write */
    int dollar_params;       /* placeholders are $1, $2 ... instead of ? */
    /* Runs sql (already in the dialect); rows into *out when out is not
     * NULL. Returns the number of rows changed or returned, or -1 with a
     * message in err. */
    int (*exec)(struct qdb *db, const char *sql, int n, const char *const *params,
                struct qdb_rows *out, char *err, size_t errlen);
    void (*close)(struct qdb *db);
};

struct qdb {
    const struct qdb_driver *drv;
};

int qdb_sqlite_open(const char *path, struct qdb **out, char *err, size_t errlen);
int qdb_pg_open(const char *conninfo, struct qdb **out, char *err, size_t errlen);

const char *qdb_cell(const struct qdb_rows *r, int row, int col);
void qdb_rows_free(struct qdb_rows *r);

#endif
