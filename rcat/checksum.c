/*
 * checksum.c - reading --checksum and --check (checksum.h). A sum is
 * accepted in either case, as sums are published both ways, and must have
 * exactly its type's length, so a truncated copy-and-paste is a usage
 * error, not a mismatch found after the whole transfer.
 */
#include "checksum.h"

#include <ctype.h>
#include <string.h>

int checksum_set_type(struct checksum_choice *c, const char *text)
{
    int type = rpc2_se_sum_parse(text);

    if (type < 0)
        return -1;
    c->type = type;
    return 0;
}

static int hex_value(int ch)
{
    if (isdigit(ch))
        return ch - '0';
    ch = tolower(ch);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

int checksum_finish(struct checksum_choice *c, const char **why)
{
    if (!c->check)
        return 0;
    if (!c->type)
        c->type = RPC2_SE_SUM_XXH128;
    unsigned len = rpc2_se_sum_len(c->type);
    if (strlen(c->check) != 2 * (size_t)len) {
        *why = "not as long as a sum of that type (--checksum)";
        return -1;
    }
    for (unsigned i = 0; i < len; i++) {
        int hi = hex_value((unsigned char)c->check[2 * i]);
        int lo = hex_value((unsigned char)c->check[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            *why = "not a hexadecimal sum";
            return -1;
        }
        c->expect[i] = (unsigned char)(hi << 4 | lo);
    }
    c->expect_len = len;
    return 0;
}
