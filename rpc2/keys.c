/*
 * keys.c - the public face of key files (rpc2_keys_*): what a server and a
 * client program need to run above security level none without handling
 * secrets themselves. The formats and the rules (no secret on a command
 * line or in an error, no file others may read) are keyfile.c's.
 */
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <rpc2/rpc2.h>

#include "keyfile.h"
#include "secure.h"

struct rpc2_keys {
    struct keyfile kf;
};

int rpc2_keys_load(const char *path, rpc2_keys **out, char *err, size_t errlen)
{
    if (!path || !out)
        return RPC2_EINVAL;
    *out = NULL;
    if (sec_init() != 0)
        return RPC2_ESYSTEM;
    rpc2_keys *k = calloc(1, sizeof *k);
    if (!k)
        return RPC2_ENOMEM;
    int rc = keyfile_load_server(&k->kf, path, err, errlen);
    if (rc != 0) {
        free(k);
        return rc;
    }
    *out = k;
    return 0;
}

void rpc2_keys_free(rpc2_keys *k)
{
    if (!k)
        return;
    keyfile_dispose(&k->kf);
    free(k);
}

int rpc2_keys_secret_for(const char *identity, size_t len, unsigned char secret[RPC2_SECRET_BYTES],
                         void *keys)
{
    const struct sec_psk *psk = keys ? keyfile_lookup(&((rpc2_keys *)keys)->kf, identity, len)
                                     : NULL;
    if (!psk)
        return RPC2_ENOENT;
    memcpy(secret, psk->key, RPC2_SECRET_BYTES);
    return 0;
}

int rpc2_keys_load_secret(const char *path, unsigned char secret[RPC2_SECRET_BYTES], char *err,
                          size_t errlen)
{
    struct sec_psk psk;
    if (!path || !secret)
        return RPC2_EINVAL;
    if (sec_init() != 0)
        return RPC2_ESYSTEM;
    int rc = keyfile_load_client(&psk, path, err, errlen);
    if (rc == 0)
        memcpy(secret, psk.key, RPC2_SECRET_BYTES);
    sodium_memzero(&psk, sizeof psk);
    return rc;
}

int rpc2_keys_generate(char out[RPC2_SECRET_BASE64_LEN + 1])
{
    struct sec_psk psk;
    if (!out || sec_init() != 0 || sec_genkey(&psk) != 0)
        return RPC2_ESYSTEM;
    sec_psk_to_base64(&psk, out);
    sodium_memzero(&psk, sizeof psk);
    return 0;
}
