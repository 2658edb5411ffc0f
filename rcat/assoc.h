/*
 * assoc.h - named destinations for rcat, as ectrans's associations: a job
 * says `rcat --put report.csv @archive:` and the association says where
 * (host, port, directory), as whom (identity, key file, security level)
 * and how (defaults for options), so none of it is repeated in scripts.
 *
 *     # ~/.config/rcat/associations
 *     [archive]
 *     host = archive.example.org
 *     port = 7755
 *     directory = incoming/reports
 *     identity = ops
 *     key-file = ~/.config/rcat/ops.key
 *     security = encrypt
 *     retries = 5
 *     checksum = sha256
 *     mkdirs = yes
 *
 * host is required; directory (relative to the server's root) is where
 * @NAME:PATH's PATH starts. Every other key is one of rcat's long options
 * that describe a destination (ASSOC_OPTION_KEYS); a flag takes yes or no.
 * A key-file starting with "~/" is under $HOME, a relative one beside the
 * associations file. Secrets stay in key files: the associations file may
 * be readable by anyone, but one writable by group or others (or owned by
 * another user than the reader or root) is refused (conffile.h).
 *
 * Files: $RCAT_ASSOCIATIONS alone when set; otherwise
 * $XDG_CONFIG_HOME/rcat/associations (~/.config/rcat/associations), then
 * /etc/rcat/associations; the first that names the association wins.
 */
#ifndef RCAT_ASSOC_H
#define RCAT_ASSOC_H

#include <stddef.h>

#include "url.h"

#define ASSOC_NAME_MAX 64
#define ASSOC_FILE_MAX (1u << 20)
#define ASSOC_OPTS_MAX 32
#define ASSOC_ERR_MAX 4400
#define ASSOC_SYSTEM_FILE "/etc/rcat/associations"

struct assoc {
    char name[ASSOC_NAME_MAX + 1];
    char host[URL_HOST_MAX + 1];
    char dir[URL_PATH_MAX + 1];
    char *opts[ASSOC_OPTS_MAX]; /* "--KEY=VALUE" or "--FLAG", malloc'd */
    int n_opts;
    char file[512]; /* where it was found, for messages */
    char **argv;    /* assoc_cli.c: the command line with opts first; NULL: none */
};

/* Looks for [name] in text (a file's contents; file names it for messages
 * and relative key files). 1 found (*out filled), 0 not there, -1 with err
 * saying which line of file is wrong (every line is checked, found or not). */
int assoc_parse(const char *text, size_t len, const char *file, const char *name, struct assoc *out,
                char *err, size_t errlen);
/* Looks for name in the files above; 1, 0 (err then lists where it looked),
 * or -1 with err saying why. */
int assoc_find(const char *name, struct assoc *out, char *err, size_t errlen);
void assoc_dispose(struct assoc *a);

/* "@NAME:PATH": 1 with name copied and *path set; 0 for an argument that
 * is not one; -1 for one that starts with '@' but is malformed (*why). */
int assoc_operand(const char *arg, char name[ASSOC_NAME_MAX + 1], const char **path,
                  const char **why);
/* The remote location of @NAME:PATH: a's host, port, and PATH beneath a's
 * directory (a's directory itself, ending in '/', when PATH is empty). 0, or
 * -1 with *why. */
int assoc_url(const struct assoc *a, const char *path, unsigned port, struct url *out,
              const char **why);

#endif
