/*
 * localfile.h - the local file a transfer reads or writes (localfile.c).
 * Each function that can fail reports the failure itself and returns
 * rcat's exit code; *result gets the name STOP shows.
 */
#ifndef RCAT_LOCALFILE_H
#define RCAT_LOCALFILE_H

#include <stdint.h>
#include <sys/types.h>

#include <rpc2/se.h>

#include "rcat_proto.h"

/* Where fetched bytes go. */
struct sink {
    const char *path;  /* written atomically by name; NULL: into fd */
    const char *name;  /* for events: the -o name, or "-" */
    const char *shown; /* for messages */
    int fd;
    int own_fd;
    int replaced; /* a regular file had the name: the new one keeps its mode */
    mode_t old_mode;
    char *resolved; /* -o named a symlink: the file it leads to (path points here) */
    int append;        /* --append: fd is the file itself, written at its end (policy.c) */
    off_t append_from; /* its size before; -1: not a regular file, nothing to cut back */
};

int sink_open(const char *dest, int no_clobber, struct sink *k, const char **result);
void sink_close(struct sink *k);
/* Points the descriptor of a fetch at the sink, with the mode and mtime
 * the file is to have (-p: the server's, exactly). */
void sink_describe(const struct sink *k, int no_clobber, int preserve, struct rpc2_se_desc *d);

/* What a store sends. */
struct source {
    const char *name;
    const char *shown;
    int fd;
    int own_fd;
    mode_t mode;
    int64_t mtime_sec;
    unsigned mtime_nsec;
    int64_t file_size; /* a regular file's size; -1: a stream of unknown length */
};

/* local is a path, or "-" for standard input. */
int source_open(const char *local, struct source *src, const char **result);
void source_close(struct source *src);

#endif
