/*
 * level.h - the security levels (enum rpc2_security) in the words rcat's
 * and rcatd's options, files and messages use: none, auth, encrypt. One
 * table, so that a level is spelled and read the same everywhere.
 */
#ifndef RCAT_LEVEL_H
#define RCAT_LEVEL_H

#include <stddef.h>

#include <rpc2/rpc2.h>

/* "none", "auth" or "encrypt"; "?" for a value that is none of them. */
const char *level_name(enum rpc2_security level);
/* The level whose name is the len bytes at text (no NUL needed): 0, or -1
 * for anything else. */
int level_parse(const char *text, size_t len, enum rpc2_security *out);

#endif
