/*
 * run_tree.h - rcat -r's operands and its run (run_tree.c): sources and a
 * destination, each source one operand with its ARGSTOP.
 */
#ifndef RCAT_RUN_TREE_H
#define RCAT_RUN_TREE_H

#include "cli.h"
#include "url.h"

/* The operands parsed (local ones too), usage errors through cli_bad;
 * NULL only out of memory. */
struct url *run_tree_operands(const struct options *opt);
/* Copies every source; the first failure's exit code. */
int run_tree(struct ops *o, const struct options *opt, const struct url *urls);

#endif
