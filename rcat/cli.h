/*
 * cli.h - rcat's command line: the options as parsed, and the checks that
 * refuse a combination before anything touches the network (a usage error
 * attempts nothing). rcat.c runs what they describe.
 */
#ifndef RCAT_CLI_H
#define RCAT_CLI_H

#include <getopt.h>

#include "ops.h"
#include "retry.h"

enum mode {
    MODE_FETCH,
    MODE_PUT,
    MODE_STAT,
    MODE_LS,
    /* the remote operations (ops_cmd.c); cli_remote_op() */
    MODE_MKDIR,
    MODE_MV,
    MODE_RM,
    MODE_GLOB,
    MODE_SUM,
    MODE_READLINK,
    MODE_SYMLINK,
};

#define CLI_JOBS_DEFAULT 8 /* -j: files in flight at once */
#define CLI_JOBS_MAX 64

struct options {
    enum mode mode;
    const char *mode_flag; /* the option that chose the mode, for messages */
    const char *output;
    const char *put;
    unsigned port;
    struct ops_config ops;
    int offset_set, length_set;
    int quiet, verbose, json;
    int progress; /* -1: only on a terminal */
    int help, version, genkey;
    int parents;      /* --parents: -o DIR/ keeps each remote path beneath DIR */
    int security_set; /* --security given: otherwise it follows --key-file */
    int restart_interval_set;
    int jobs_set;               /* -j given */
    int split_set;              /* --split given */
    unsigned closed_std;        /* bit n: fd n was closed when rcat started */
    struct retry_config retry;  /* --retries, --retry-interval */
    const char *target_flag;    /* -n, --overwrite or --append, whichever was given */
    int recursive;              /* -r */
    int rm_dir;                 /* --dir: --rm removes empty directories too */
    const char *symlink_target; /* --symlink=TARGET */
    char **operands;
    int n_operands;
};

/* The options and their words, for rcat queue, which takes them too. */
#define CLI_SHORT_OPTIONS ":o:P:Cnpqrj:vhV"
extern const struct option cli_long_options[];

/* Fills opt from argv; a bad option is remembered (cli_usage_error), and
 * parsing goes on so that --json anywhere counts. */
void cli_parse(int argc, char **argv, struct options *opt);
/* Remembers the first usage error among the options' combinations. */
void cli_check(const struct options *opt);
/* The first usage error, or "" when there was none. */
const char *cli_usage_error(void);
/* Remembers a usage error (only the first one counts). */
__attribute__((format(printf, 1, 2))) void cli_bad(const char *fmt, ...);
void cli_usage(void);

/* rcat -r, or --put with several sources: a copy of files and trees
 * (run_tree.c), the last operand its destination. */
int cli_tree(const struct options *opt);

/* A remote operation (--mkdir, --mv, --rm, --glob, --sum, --readlink,
 * --symlink): no transfer. */
int cli_remote_op(enum mode m);

/* -o names a directory: it ends in '/' or is one. */
int cli_output_is_dir(const char *out);
/* The fetched bytes go to standard output. */
int cli_writes_stdout(const struct options *opt);

#endif
