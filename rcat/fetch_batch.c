/*
 * fetch_batch.c - rcat -r's batches of small files (fetch_batch.h): which
 * files go together, and the check of what a server answered, which
 * trusts no length it sent before they all agree.
 */
#include "fetch_batch.h"

size_t fetch_batch_group(const uint64_t *sizes, const size_t *path_lens, size_t n, int batching,
                         struct fetch_batch_task *out)
{
    size_t tasks = 0, paths = 0;
    struct fetch_batch_task *t = NULL;

    for (size_t i = 0; i < n; i++) {
        int small = batching && sizes[i] <= FETCH_BATCH_FILE_MAX &&
                    path_lens[i] <= FETCH_BATCH_PATHS;

        if (small && t && t->batch && t->n < RCAT_BATCH_FILES &&
            t->bytes + sizes[i] <= FETCH_BATCH_BUDGET && paths + path_lens[i] <= FETCH_BATCH_PATHS) {
            t->n++;
            t->bytes += sizes[i];
            paths += path_lens[i];
            continue;
        }
        t = &out[tasks++];
        *t = (struct fetch_batch_task){.first = i, .n = 1, .bytes = sizes[i], .batch = small};
        paths = path_lens[i];
    }
    return tasks;
}

int fetch_batch_check(const fetch_batch_result *res, unsigned asked, size_t data_len,
                      const char **why)
{
    uint64_t total = 0;

    if (res->entries.entries_len != asked) {
        *why = "it does not answer each file asked for";
        return -1;
    }
    for (unsigned i = 0; i < asked; i++) {
        const batch_entry *e = &res->entries.entries_val[i];

        if (e->status != 0 ? e->length != 0 : e->length != e->info.size || e->info.type != RCAT_REG) {
            *why = "a file's length is not its size";
            return -1;
        }
        if (e->length > data_len - total) {
            *why = "the files' lengths add up to more bytes than arrived";
            return -1;
        }
        total += e->length;
    }
    if (total != data_len) {
        *why = "the files' lengths add up to fewer bytes than arrived";
        return -1;
    }
    return 0;
}
