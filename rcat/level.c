/*
 * level.c - the security levels' names, in enum rpc2_security's order.
 */
#include <string.h>

#include "level.h"

static const char *const names[] = {"none", "auth", "encrypt"};

const char *level_name(enum rpc2_security level)
{
    return (unsigned)level < sizeof names / sizeof names[0] ? names[level] : "?";
}

int level_parse(const char *text, size_t len, enum rpc2_security *out)
{
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strlen(names[i]) == len && !memcmp(text, names[i], len)) {
            *out = (enum rpc2_security)i;
            return 0;
        }
    }
    return -1;
}
