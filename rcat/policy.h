/*
 * policy.h - what rcat does at a fetch's target (ectrans's options):
 * refuse an existing file (--no-clobber), replace it (the default), add to
 * its end (--append), and make the directories it lacks (--mkdirs). The
 * store's side of the same options is rcatd's (RCAT_STORE_FLAGS).
 */
#ifndef RCAT_POLICY_H
#define RCAT_POLICY_H

#include <stddef.h>

#include "localfile.h"

struct target_policy {
    int no_clobber; /* refuse an existing file */
    int append;     /* add to the end of the file (created if missing) */
    int mkdirs;     /* make the missing directories above the file */
};

/* The directories of path below its first keep bytes (which exist), made
 * as mkdir -p does (mode 0777 under the umask). Reports a failure and
 * returns rcat's exit code; *result gets the name STOP shows. */
int policy_make_parents(char *path, size_t keep, const char **result);

/* Opens the target of a fetch as the policy says (sink_open, or the file
 * itself for --append). Reports a failure; returns rcat's exit code. */
int target_open(const struct target_policy *p, const char *dest, struct sink *k,
                const char **result);

/* After the transfer, code its outcome: an append that failed is undone
 * (the file cut back to its size before), one that succeeded is flushed to
 * stable storage. Returns the code the operand ends with. */
int target_end(struct sink *k, int code, const char **result);

#endif
