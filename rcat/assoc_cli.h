/*
 * assoc_cli.h - associations (assoc.h) on rcat's command line: the
 * association an @NAME:PATH operand names gives its options as defaults,
 * which the command line then overrides (they are parsed first), and its
 * operands their host, port and directory.
 */
#ifndef RCAT_ASSOC_CLI_H
#define RCAT_ASSOC_CLI_H

#include "assoc.h"
#include "cli.h"

/* After cli_parse: when an operand names an association, looks it up and
 * parses the command line again with its options first. Errors are usage
 * errors (cli_bad): an unknown name, a bad file, two associations in one
 * run. as is the association found (as->name[0] == 0: none). */
void assoc_cli_apply(int argc, char **argv, struct options *opt, struct assoc *as);
/* The url of one operand: 1 for @NAME:PATH (0 on success in *rc, else -1
 * with *why), 0 for an operand that is not one. */
int assoc_cli_url(const struct assoc *as, const char *arg, unsigned port, struct url *out, int *rc,
                  const char **why);

#endif
