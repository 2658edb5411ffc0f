/*
 * run_tree.c - rcat -r's command line made into copies: which operands are
 * sources and which is the destination, whether each copy goes beneath
 * the destination or becomes it (as cp -r and scp -r decide), and one
 * ARGSTOP per source. The copies themselves are ops_tree.c's and
 * ops_tree_put.c's.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "report.h"
#include "run_tree.h"

static int fetching(const struct options *opt)
{
    return opt->mode == MODE_FETCH;
}

struct url *run_tree_operands(const struct options *opt)
{
    struct url *urls = calloc((size_t)opt->n_operands + 1, sizeof *urls);
    int last = opt->n_operands - 1;
    const char *why;

    if (!urls) {
        cli_bad("out of memory");
        return NULL;
    }
    for (int i = 0; i <= last; i++) {
        const char *arg = opt->operands[i];
        int want_remote = fetching(opt) ? i < last : i == last;

        if (url_parse(arg, opt->port, &urls[i], &why) < 0)
            cli_bad("%s: %s", arg, why);
        else if (want_remote && !urls[i].remote)
            cli_bad("%s: not a remote argument (rcat://HOST/PATH or HOST:PATH)", arg);
        else if (!want_remote && urls[i].remote)
            cli_bad("%s: the %s is local here (write ./%s for a local name with ':')", arg,
                    fetching(opt) ? "destination" : "source", arg);
    }
    return urls;
}

static int ends_in_slash(const char *path)
{
    size_t n = strlen(path);

    return n > 0 && path[n - 1] == '/';
}

/* As rsync: a source ending in '/' (or the server's root) puts what it
 * holds into the destination, so a job run again lands on the same names.
 * Otherwise as cp -r and scp -r: the copy goes beneath the destination
 * when it is a directory already, when it ends in '/', or when several
 * sources (or a wildcard's matches) share it; else it becomes it. */
static enum tree_into into_dir(const struct options *opt, const struct url *src, const char *dest)
{
    struct stat st;

    if (ends_in_slash(src->path) || !src->path[0])
        return TREE_INTO_CONTENTS;
    return opt->n_operands > 2 || strpbrk(src->path, "*?[") || ends_in_slash(dest) ||
                   (stat(dest, &st) == 0 && S_ISDIR(st.st_mode))
               ? TREE_INTO_BENEATH
               : TREE_INTO_AS;
}

static int fetch_all(struct ops *o, const struct options *opt, const struct url *urls)
{
    const char *dest = opt->operands[opt->n_operands - 1];
    int first = RCAT_EXIT_OK;

    for (int i = 0; i < opt->n_operands - 1; i++) {
        int code;

        report_operand(i + 1);
        code = ops_tree_fetch(o, &urls[i], dest, into_dir(opt, &urls[i], dest));
        report_arg_stop(opt->operands[i], code);
        ops_exit_if_interrupted(o);
        if (first == RCAT_EXIT_OK)
            first = code;
    }
    return first;
}

/* --put LOCAL... REMOTE: --put's own argument is the first source. */
static int put_all(struct ops *o, const struct options *opt, const struct url *urls)
{
    const struct url *dst = &urls[opt->n_operands - 1];
    int several = opt->n_operands > 1;
    int first = RCAT_EXIT_OK;

    for (int i = 0; i < opt->n_operands; i++) {
        const char *local = i == 0 ? opt->put : opt->operands[i - 1];
        int code;

        report_operand(i + 1);
        code = ops_tree_put(o, local, dst,
                            ends_in_slash(local) ? TREE_INTO_CONTENTS
                            : several            ? TREE_INTO_BENEATH
                                                 : TREE_INTO_AS);
        report_arg_stop(local, code);
        ops_exit_if_interrupted(o);
        if (first == RCAT_EXIT_OK)
            first = code;
    }
    return first;
}

int run_tree(struct ops *o, const struct options *opt, const struct url *urls)
{
    int code = fetching(opt) ? fetch_all(o, opt, urls) : put_all(o, opt, urls);

    report_operand(0);
    return code;
}
