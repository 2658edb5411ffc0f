/*
 * checksum.h - rcat's --checksum TYPE and --check SUM: the named sum a user
 * compares with md5sum's (or a published one), chosen and checked by the
 * library (rpc2_se_desc.sum_type, expect_sum); this only reads the words.
 */
#ifndef RCAT_CHECKSUM_H
#define RCAT_CHECKSUM_H

#include <rpc2/se.h>

struct checksum_choice {
    int type;        /* RPC2_SE_SUM_*; 0: the default, the transfer's own XXH3-128 */
    const char *check; /* --check as given; NULL: none */
    unsigned char expect[RPC2_SE_SUM_MAX];
    unsigned expect_len;
};

/* --checksum: 0, or -1 when text names no sum rcat knows. */
int checksum_set_type(struct checksum_choice *c, const char *text);
/* After every option: --check read as hex (any case) of the chosen type's
 * length (xxh128 when none was chosen). 0, or -1 with *why for the user. */
int checksum_finish(struct checksum_choice *c, const char **why);

#endif
