/*
 * policy.c - a fetch's target as the operator asked for it: made where
 * its directories are missing (--mkdirs), replaced atomically (the
 * default, localfile.c), refused when it exists (--no-clobber), or added
 * to (--append). An append cannot use the atomic temporary: it writes into
 * the file itself, so a transfer that fails is undone by cutting the file
 * back to the size it had, and one that succeeds is flushed before rcat
 * says so.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "policy.h"
#include "report.h"
#include "verdict.h"

int policy_make_parents(char *path, size_t keep, const char **result)
{
    for (char *p = path + keep + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        int rc = mkdir(path, 0777);
        int err = errno;
        if (rc < 0 && err != EEXIST) {
            verdict_fail_local(path, "cannot make the directory", err, result);
            *p = '/';
            return RCAT_EXIT_LOCAL;
        }
        *p = '/';
    }
    return RCAT_EXIT_OK;
}

/* The file written through, as `>>` would (a symlink is followed); only a
 * regular file can be cut back. */
static int append_open(const char *dest, struct sink *k, const char **result)
{
    struct stat st;

    memset(k, 0, sizeof *k);
    k->name = k->shown = dest;
    k->fd = open(dest, O_WRONLY | O_CREAT | O_NOCTTY | O_CLOEXEC, 0666);
    if (k->fd < 0)
        return verdict_fail_local(dest, NULL, errno, result);
    k->own_fd = 1;
    k->append = 1;
    k->append_from = -1;
    if (fstat(k->fd, &st) < 0)
        return verdict_fail_local(dest, NULL, errno, result);
    if (S_ISREG(st.st_mode)) {
        k->append_from = st.st_size;
        if (lseek(k->fd, 0, SEEK_END) < 0)
            return verdict_fail_local(dest, NULL, errno, result);
    }
    return RCAT_EXIT_OK;
}

int target_open(const struct target_policy *p, const char *dest, struct sink *k,
                const char **result)
{
    int code = RCAT_EXIT_OK;

    if (p->mkdirs && dest && strcmp(dest, "-") != 0) {
        char *path = strdup(dest);

        if (!path) {
            memset(k, 0, sizeof *k);
            k->fd = -1;
            return verdict_fail_local(dest, NULL, ENOMEM, result);
        }
        code = policy_make_parents(path, 0, result);
        free(path);
    }
    if (code != RCAT_EXIT_OK) {
        memset(k, 0, sizeof *k);
        k->name = k->shown = dest;
        k->fd = -1;
        return code;
    }
    if (p->append && dest && strcmp(dest, "-") != 0)
        return append_open(dest, k, result);
    return sink_open(dest, p->no_clobber, k, result);
}

int target_end(struct sink *k, int code, const char **result)
{
    if (!k->append || k->fd < 0)
        return code;
    if (code == RCAT_EXIT_OK && k->append_from >= 0 && fsync(k->fd) < 0)
        code = verdict_fail_local(k->shown, "cannot flush the file", errno, result);
    if (code != RCAT_EXIT_OK && k->append_from >= 0 && ftruncate(k->fd, k->append_from) < 0)
        report_error(code, "RPC2_EIO", k->shown,
                     "the failed append could not be undone: the file keeps part of the bytes");
    return code;
}
