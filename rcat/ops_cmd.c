/*
 * ops_cmd.c - rcat's modes over the remote operations (ops.h): --mkdir,
 * --mv, --rm, --glob, --sum, --readlink and --symlink. Each reports its
 * failure as rcat reports any (exit 3 for a refusal, naming the path and
 * the reason) and prints only what a user asked to see.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <stdio.h>
#include <string.h>

#include "ops_impl.h"
#include "report.h"

int ops_cmd_mkdir(struct ops *o, const struct url *u, int parents)
{
    int rc = ops_mkdir(o, u, 0777, parents, NULL);

    return rc ? ops_report_failure(o, u, NULL, rc) : RCAT_EXIT_OK;
}

int ops_cmd_rename(struct ops *o, const struct url *from, const char *to, int no_clobber)
{
    int rc = ops_rename(o, from, to, no_clobber, NULL);

    if (rc == 0)
        report_info("renamed %s to %s", from->path, to);
    /* the new name is what exists, or what leaves the root */
    return rc ? ops_report_failure(o, from, rc == RCAT_NOT_FOUND ? NULL : to, rc) : RCAT_EXIT_OK;
}

int ops_cmd_delete(struct ops *o, const struct url *u, unsigned flags)
{
    uint64_t removed = 0;
    int rc = ops_delete(o, u, flags, &removed);

    report_info("%s: removed %llu entr%s", u->path, (unsigned long long)removed,
                removed == 1 ? "y" : "ies");
    if (rc == RCAT_IS_DIR)
        report_info("a directory is removed with --dir (empty) or -r (with its contents)");
    return rc ? ops_report_failure(o, u, NULL, rc) : RCAT_EXIT_OK;
}

static int print_match(const char *path, const file_info *info, void *arg)
{
    struct report_entry e = {
        .type = info->type == RCAT_REG   ? REPORT_FILE
                : info->type == RCAT_DIR ? REPORT_DIR
                : info->type == RCAT_LNK ? REPORT_LINK
                                         : REPORT_OTHER,
        .size = info->size,
        .mode = info->mode & 07777,
        .mtime_sec = info->mtime_sec,
        .mtime_nsec = info->mtime_nsec,
    };

    ++*(unsigned long *)arg;
    report_list_entry(path, &e);
    return 0;
}

/* No match is a refusal as ls's "No such file": the pattern names nothing. */
int ops_cmd_glob(struct ops *o, const struct url *pattern)
{
    unsigned long n = 0;
    int rc = ops_glob(o, pattern, print_match, &n);

    if (rc == 0 && n == 0)
        rc = RCAT_NOT_FOUND;
    return rc ? ops_report_failure(o, pattern, NULL, rc) : RCAT_EXIT_OK;
}

/* As sha256sum prints: the sum in hex, two spaces, the name. */
int ops_cmd_sum(struct ops *o, const struct url *u, int type)
{
    unsigned char sum[RCAT_SUM_BYTES];
    char hex[2 * RCAT_SUM_BYTES + 1];
    unsigned len;
    int rc = ops_sum(o, u, (unsigned)(type ? type : RCAT_SUM_XXH128), 0, -1, sum, &len, NULL);

    if (rc != 0)
        return ops_report_failure(o, u, NULL, rc);
    for (unsigned i = 0; i < len; i++)
        snprintf(hex + 2 * i, 3, "%02x", sum[i]);
    printf("%s  %s\n", hex, u->path);
    return RCAT_EXIT_OK;
}

int ops_cmd_readlink(struct ops *o, const struct url *u)
{
    char target[RCAT_MAX_PATH + 1];
    int rc = ops_readlink(o, u, target, sizeof target);

    if (rc != 0)
        return ops_report_failure(o, u, NULL, rc);
    printf("%s\n", target);
    return RCAT_EXIT_OK;
}

int ops_cmd_symlink(struct ops *o, const char *target, const struct url *u)
{
    int rc = ops_symlink(o, u, target, 0, NULL);

    return rc ? ops_report_failure(o, u, NULL, rc) : RCAT_EXIT_OK;
}
