/*
 * ops_browse.c - stat and ls: what a server holds, without moving a file.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <string.h>

#include "ops_impl.h"
#include "report.h"

static const char *remote_path(const struct url *u)
{
    return u->path[0] ? u->path : "."; /* the server's root */
}

static const char *shown_path(const struct url *u)
{
    return u->path[0] ? u->path : "/";
}

static void entry_of(const file_info *info, struct report_entry *e)
{
    switch (info->type) {
    case RCAT_REG:
        e->type = REPORT_FILE;
        break;
    case RCAT_DIR:
        e->type = REPORT_DIR;
        break;
    case RCAT_LNK:
        e->type = REPORT_LINK;
        break;
    default:
        e->type = REPORT_OTHER;
    }
    e->size = info->size;
    e->mode = info->mode & 07777;
    e->mtime_sec = info->mtime_sec;
    e->mtime_nsec = info->mtime_nsec;
}

int ops_stat_call(struct ops *o, struct slot *s, const char *path, file_info *info)
{
    path_args a = {.path = (char *)path};

    memset(info, 0, sizeof *info);
    return ops_call(o, s, RCAT_STAT, (xdrproc_t)xdr_path_args, &a, (xdrproc_t)xdr_file_info, info,
                    NULL);
}

int ops_stat(struct ops *o, const struct url *u)
{
    file_info info;
    struct report_entry e;
    struct slot *s;
    const char *name;
    int rc = ops_connect(o, u, &s);

    if (rc == 0)
        rc = ops_stat_call(o, s, remote_path(u), &info);
    if (rc != 0)
        return ops_fail(o, s, rc, NULL, shown_path(u), NULL, &name);
    entry_of(&info, &e);
    report_stat(shown_path(u), &e);
    return RCAT_EXIT_OK;
}

int ops_list_dir(struct ops *o, struct slot *s, const char *path, ops_entry_fn fn, void *arg)
{
    u_int start = 0;
    int more = 1, rc = 0;

    while (rc == 0 && more) {
        list_args a = {.path = (char *)(path[0] ? path : "."), .start = start};
        list_result r;

        memset(&r, 0, sizeof r);
        rc = ops_call(o, s, RCAT_LIST, (xdrproc_t)xdr_list_args, &a, (xdrproc_t)xdr_list_result, &r,
                      NULL);
        if (rc != 0)
            return rc;
        for (u_int i = 0; i < r.entries.entries_len && rc == 0; i++)
            rc = fn(r.entries.entries_val[i].name, &r.entries.entries_val[i].info, arg);
        /* An empty page that claims more would loop forever. */
        more = r.more && r.entries.entries_len > 0;
        start += r.entries.entries_len;
        xdr_free((xdrproc_t)xdr_list_result, (char *)&r);
    }
    return rc;
}

static int print_entry(const char *name, const file_info *info, void *arg)
{
    struct report_entry e;

    (void)arg;
    entry_of(info, &e);
    report_list_entry(name, &e);
    return 0;
}

int ops_list(struct ops *o, const struct url *u)
{
    struct slot *s;
    const char *name;
    int rc = ops_connect(o, u, &s);

    if (rc == 0)
        rc = ops_list_dir(o, s, remote_path(u), print_entry, NULL);
    if (rc != 0)
        return ops_fail(o, s, rc, NULL, shown_path(u), NULL, &name);
    return RCAT_EXIT_OK;
}
