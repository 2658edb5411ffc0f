/*
 * assoc_cli.c - @NAME:PATH on rcat's command line (assoc_cli.h). An
 * association's options go before the command line's, so getopt's "the
 * last one given wins" is what makes the command line override them.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "assoc_cli.h"

/* The one association the operands name; 0 with name "" when none does. */
static int named(const struct options *opt, char name[ASSOC_NAME_MAX + 1])
{
    name[0] = '\0';
    for (int i = 0; i < opt->n_operands; i++) {
        char this[ASSOC_NAME_MAX + 1];
        const char *path, *why;
        int rc = assoc_operand(opt->operands[i], this, &path, &why);
        if (rc < 0) {
            cli_bad("%s: %s", opt->operands[i], why);
            return -1;
        }
        if (rc == 0)
            continue;
        if (name[0] && strcmp(name, this) != 0) {
            cli_bad("@%s and @%s: one run takes one association (their identities and options "
                    "would mix)",
                    name, this);
            return -1;
        }
        strcpy(name, this);
    }
    return 0;
}

void assoc_cli_apply(int argc, char **argv, struct options *opt, struct assoc *as)
{
    char name[ASSOC_NAME_MAX + 1], err[ASSOC_ERR_MAX];

    *as = (struct assoc){0};
    if (cli_usage_error()[0] || named(opt, name) != 0 || !name[0])
        return;
    int rc = assoc_find(name, as, err, sizeof err);
    if (rc <= 0) {
        cli_bad("@%s: %s", name, err);
        *as = (struct assoc){0};
        return;
    }
    /* argv[0], the association's options, then the command line's: kept
     * for the whole run (opt->operands points into it) */
    char **again = calloc((size_t)argc + (size_t)as->n_opts + 1, sizeof *again);
    if (!again) {
        cli_bad("out of memory");
        return;
    }
    again[0] = argv[0];
    memcpy(again + 1, as->opts, (size_t)as->n_opts * sizeof *again);
    memcpy(again + 1 + as->n_opts, argv + 1, (size_t)(argc - 1) * sizeof *again);
    as->argv = again;
    optind = 0; /* getopt starts over */
    cli_parse(argc + as->n_opts, again, opt);
}

int assoc_cli_url(const struct assoc *as, const char *arg, unsigned port, struct url *out, int *rc,
                  const char **why)
{
    char name[ASSOC_NAME_MAX + 1];
    const char *path;
    int is = assoc_operand(arg, name, &path, why);

    if (is <= 0) {
        *rc = is;
        return is < 0;
    }
    *rc = assoc_url(as, path, port, out, why);
    return 1;
}
