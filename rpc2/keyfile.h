/*
 * keyfile.h - pre-shared secrets from files, never from the command line.
 *
 * A server key file holds one identity and its secret per line:
 *
 *     # comments and blank lines are ignored
 *     alice  SECRET-OF-ALICE
 *     bob    SECRET-OF-BOB
 *
 * IDENTITY is 1 to 255 bytes without spaces or control characters; SECRET
 * is 32 bytes in standard base64 with padding (44 characters), as
 * sec_psk_to_base64() or `head -c 32 /dev/urandom | base64` write it. A client key file holds the
 * base64 secret alone (trailing whitespace, such as the final newline, is ignored).
 *
 * Both loaders refuse a file that group or others may read or write, or
 * that is owned by another user than the caller (root aside), as ssh does:
 * a secret others can read is no longer a secret, and one others can write
 * is theirs. Every error names the file (and the line), and never contains
 * any part of a secret, nor any other text from the file.
 */
#ifndef RPC2_KEYFILE_H
#define RPC2_KEYFILE_H

#include <stddef.h>

#include "secure.h"

/* Enough for any error text these functions write, with a path of 4 KiB. */
#define KEYFILE_ERR_MAX 4400
/* The largest key file read: about 14,000 identities of 255 bytes. */
#define KEYFILE_MAX_SIZE (4u << 20)

struct keyfile_entry {
    char identity[SEC_MAX_IDENTITY + 1]; /* NUL-terminated */
    size_t identity_len;
    size_t line;
    struct sec_psk psk;
};

/* A server's secrets, sorted by identity. */
struct keyfile {
    struct keyfile_entry *e;
    size_t n, cap; /* entries, and room: all of it is wiped */
};

/*
 * Loads a server key file into kf (which owns the entries until
 * keyfile_dispose). 0; RPC2_ENOENT or RPC2_EACCES (cannot open),
 * RPC2_EACCES (too open, or not the caller's), RPC2_EINVAL (malformed
 * line, duplicate identity, bad secret, not a regular file (a FIFO too:
 * opened without blocking), too large),
 * RPC2_ENOMEM, RPC2_ESYSTEM. On failure kf is empty and err (when not NULL)
 * holds one line saying why.
 */
int keyfile_load_server(struct keyfile *kf, const char *path, char *err, size_t errlen);

/* The parse alone, of text[0 .. len) read from path (named in errors).
 * The text is wiped whatever the outcome, and on failure so is every entry
 * read: a file that does not load leaves no secret of it in memory. */
int keyfile_parse_server(struct keyfile *kf, char *text, size_t len, const char *path, char *err,
                         size_t errlen);

/* The secret of an identity, or NULL when the file does not list it. */
const struct sec_psk *keyfile_lookup(const struct keyfile *kf, const char *identity, size_t len);

/* Wipes and frees the entries; kf is empty after. */
void keyfile_dispose(struct keyfile *kf);

/* Loads a client key file (the secret alone). Errors as for the server
 * file; *psk is changed only on success. */
int keyfile_load_client(struct sec_psk *psk, const char *path, char *err, size_t errlen);

#endif
