/*
 * secure.c - the handshake (pre-shared secret plus ephemeral X25519) and
 * the protection of datagrams with the keys it yields. docs/security-
 * protocol.md specifies every byte; docs/SECURITY.md gives the reasons.
 *
 * Everything keyed is BLAKE2b (crypto_generichash, keyed) with a distinct
 * label per use, so a second implementation needs nothing but BLAKE2b,
 * X25519 and the two AEADs. Secrets live in caller-owned structs and on
 * the stack; every stack copy is wiped before its function returns.
 *
 * libsodium does all of it but AES-256-GCM, which is OpenSSL's EVP (its
 * AES-NI/VAES code runs several times faster than libsodium 1.0.18's,
 * docs/SECURITY.md): a session keeps one EVP_CIPHER_CTX per direction and
 * epoch, keyed once, and each datagram only sets the nonce.
 */
#include "secure.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <sodium.h>

#include <rpc2/rpc2.h>

#include "bytes.h"
#include "packet.h"

/* The header fields this file reads or writes (packet.h draws the layout). */
enum {
    OFF_SECURITY = 3,
    OFF_KEY_EPOCH = 4,
    OFF_BODY_LEN = 32,
    OFF_TRAILER_LEN = 36,
};

/* Labels: each derived value has its own, so no two uses of one key ever
 * hash the same message. */
#define L_HELLO "rpc2 v1 hello"
#define L_HELLO_KEY "rpc2 v1 hello key"
#define L_KEYS "rpc2 v1 keys"
#define L_C2S "rpc2 v1 c2s"
#define L_S2C "rpc2 v1 s2c"
#define L_CONFIRM "rpc2 v1 confirm s"
#define L_EPOCH "rpc2 v1 epoch"
#define LABEL(l) (const uint8_t *)(l), sizeof(l) - 1

/* The client hello's fixed part, and where its fields sit after the identity. */
#define HELLO_FIXED (4 + 4 + 4 + SEC_PUB_LEN + SEC_NONCE_LEN + SEC_PROOF_LEN)
/* The server hello: u32 suite, Se, Ns, then proof2 over what comes before it. */
#define REPLY_SIGNED (SEC_REPLY_LEN - SEC_PROOF_LEN)
/* Label, then client_conn, subsystem and se_type. */
#define BINDING_LEN (sizeof(L_HELLO) - 1 + 12)
#define TRANSCRIPT_MAX (BINDING_LEN + SEC_HELLO_MAX + 4 + REPLY_SIGNED)

/* ---- basics ---------------------------------------------------------------- */

/* sodium_init() takes its own lock and returns 1 once initialised, so this
 * is safe from any thread, any number of times. */
int sec_init(void)
{
    return sodium_init() < 0 ? RPC2_ESYSTEM : 0;
}

/* AES-256-GCM itself is OpenSSL's, which runs anywhere; libsodium's check
 * is kept as the gate because it asks exactly what matters: AES-NI and
 * PCLMUL, without which OpenSSL falls back to software AES and GHASH that
 * are slower than XChaCha20 and not built to be constant-time. */
unsigned sec_suites_available(void)
{
    if (sec_init() != 0)
        return 0;
    return SEC_SUITE_XCHACHA20 | (crypto_aead_aes256gcm_is_available() ? SEC_SUITE_AES256GCM : 0);
}

int sec_genkey(struct sec_psk *psk)
{
    if (sec_init() != 0)
        return RPC2_ESYSTEM;
    randombytes_buf(psk->key, sizeof(psk->key));
    return 0;
}

void sec_psk_to_base64(const struct sec_psk *psk, char out[SEC_PSK_B64_LEN + 1])
{
    sodium_bin2base64(out, SEC_PSK_B64_LEN + 1, psk->key, sizeof(psk->key),
                      sodium_base64_VARIANT_ORIGINAL);
}

/* Decodes into a buffer larger than a secret, so that a longer text is
 * refused for its length rather than truncated. */
int sec_psk_from_base64(const char *b64, size_t len, struct sec_psk *psk)
{
    uint8_t bin[SEC_KEY_LEN * 2];
    size_t n = 0;
    int rc = 0;

    if (sodium_base642bin(bin, sizeof(bin), b64, len, NULL, &n, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        n != SEC_KEY_LEN)
        rc = RPC2_EINVAL;
    else
        memcpy(psk->key, bin, SEC_KEY_LEN);
    sodium_memzero(bin, sizeof(bin));
    return rc;
}

int sec_identity_ok(const uint8_t *identity, size_t len)
{
    if (!identity || len == 0 || len > SEC_MAX_IDENTITY)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (identity[i] <= 0x20 || identity[i] == 0x7f)
            return 0;
    return 1;
}

/* ---- key schedule ---------------------------------------------------------- */

/* out = BLAKE2b-outlen(key, a || b || c); key NULL: unkeyed. */
static void hash3(uint8_t *out, size_t outlen, const uint8_t *key, size_t keylen, const uint8_t *a,
                  size_t alen, const uint8_t *b, size_t blen, const uint8_t *c, size_t clen)
{
    crypto_generichash_state st;

    crypto_generichash_init(&st, key, key ? keylen : 0, outlen);
    crypto_generichash_update(&st, a, alen);
    if (blen)
        crypto_generichash_update(&st, b, blen);
    if (clen)
        crypto_generichash_update(&st, c, clen);
    crypto_generichash_final(&st, out, outlen);
    sodium_memzero(&st, sizeof(st));
}

/* k_epoch = BLAKE2b-256(base, "rpc2 v1 epoch" || u32 epoch) */
static void epoch_key(const uint8_t base[SEC_KEY_LEN], uint32_t epoch, uint8_t out[SEC_KEY_LEN])
{
    uint8_t e[4];

    store_u32(e, epoch);
    hash3(out, SEC_KEY_LEN, base, SEC_KEY_LEN, LABEL(L_EPOCH), e, 4, NULL, 0);
}

/* proof1 = BLAKE2b-256(BLAKE2b-256(psk, "rpc2 v1 hello key"), T1) */
static void proof1_of(const struct sec_psk *psk, const uint8_t *t1, size_t t1_len,
                      uint8_t out[SEC_PROOF_LEN])
{
    uint8_t k_hello[SEC_KEY_LEN];

    hash3(k_hello, sizeof(k_hello), psk->key, SEC_KEY_LEN, LABEL(L_HELLO_KEY), NULL, 0, NULL, 0);
    hash3(out, SEC_PROOF_LEN, k_hello, sizeof(k_hello), t1, t1_len, NULL, 0, NULL, 0);
    sodium_memzero(k_hello, sizeof(k_hello));
}

struct keys {
    uint8_t c2s[SEC_KEY_LEN], s2c[SEC_KEY_LEN], proof2[SEC_PROOF_LEN];
};

/*
 * From the whole transcript T2 and the X25519 result:
 *   th  = BLAKE2b-256(T2)
 *   prk = BLAKE2b-512(psk, "rpc2 v1 keys" || th || dh)
 *   k_c2s, k_s2c, k_confirm_s = BLAKE2b-256(prk, their labels)
 *   proof2 = BLAKE2b-256(k_confirm_s, th)
 * The secret enters twice (psk and dh): the keys need both the pre-shared
 * secret (authentication) and an ephemeral secret (forward secrecy).
 */
static void derive(const struct sec_psk *psk, const uint8_t *t2, size_t t2_len,
                   const uint8_t dh[crypto_scalarmult_BYTES], struct keys *k)
{
    uint8_t th[32], prk[64], confirm[SEC_KEY_LEN];

    hash3(th, sizeof(th), NULL, 0, t2, t2_len, NULL, 0, NULL, 0);
    hash3(prk, sizeof(prk), psk->key, SEC_KEY_LEN, LABEL(L_KEYS), th, sizeof(th), dh,
          crypto_scalarmult_BYTES);
    hash3(k->c2s, SEC_KEY_LEN, prk, sizeof(prk), LABEL(L_C2S), NULL, 0, NULL, 0);
    hash3(k->s2c, SEC_KEY_LEN, prk, sizeof(prk), LABEL(L_S2C), NULL, 0, NULL, 0);
    hash3(confirm, sizeof(confirm), prk, sizeof(prk), LABEL(L_CONFIRM), NULL, 0, NULL, 0);
    hash3(k->proof2, SEC_PROOF_LEN, confirm, sizeof(confirm), th, sizeof(th), NULL, 0, NULL, 0);
    sodium_memzero(prk, sizeof(prk));
    sodium_memzero(confirm, sizeof(confirm));
}

/* The transcript starts with the label and the binding, in this order. */
static size_t binding_put(uint8_t *t, const struct sec_binding *b)
{
    memcpy(t, L_HELLO, sizeof(L_HELLO) - 1);
    store_u32(t + sizeof(L_HELLO) - 1, b->client_conn);
    store_u32(t + sizeof(L_HELLO) - 1 + 4, b->subsystem);
    store_u32(t + sizeof(L_HELLO) - 1 + 8, b->se_type);
    return BINDING_LEN;
}

/* The ephemeral key pair and nonce of one side. */
static void ephemeral(const struct sec_rand *rnd, uint8_t secret[SEC_KEY_LEN],
                      uint8_t pub[SEC_PUB_LEN], uint8_t nonce[SEC_NONCE_LEN])
{
    if (rnd) {
        memcpy(secret, rnd->secret, SEC_KEY_LEN);
        memcpy(nonce, rnd->nonce, SEC_NONCE_LEN);
    } else {
        randombytes_buf(secret, SEC_KEY_LEN);
        randombytes_buf(nonce, SEC_NONCE_LEN);
    }
    crypto_scalarmult_base(pub, secret);
}

static int level_ok(int level)
{
    return level == RPC2_SEC_AUTH || level == RPC2_SEC_ENCRYPT;
}

/* The server's choice: AES-256-GCM when both ends run it (the faster by the
 * measurements in docs/SECURITY.md), else XChaCha20-Poly1305. */
static unsigned pick_suite(unsigned common)
{
    if (common & SEC_SUITE_AES256GCM)
        return SEC_SUITE_AES256GCM;
    if (common & SEC_SUITE_XCHACHA20)
        return SEC_SUITE_XCHACHA20;
    return 0;
}

/* ---- AES-256-GCM (OpenSSL) --------------------------------------------------- */

#define GCM_NONCE_LEN 12

/* A context for one direction (enc 1 seals, 0 opens), keyed when key is
 * not NULL. The cipher is given here only: EVP_aes_256_gcm() fetches the
 * provider's implementation, which is worth doing once per context, not per
 * datagram. NULL when OpenSSL fails (out of memory). */
static EVP_CIPHER_CTX *gcm_new(int enc, const uint8_t *key)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();

    if (c && (EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1 ||
              EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, GCM_NONCE_LEN, NULL) != 1 ||
              (key && EVP_CipherInit_ex(c, NULL, NULL, key, NULL, enc) != 1))) {
        EVP_CIPHER_CTX_free(c);
        c = NULL;
    }
    return c;
}

/* Replaces the context's key (the expanded schedule and GHASH key are
 * overwritten in place; nothing is allocated). 0 or -1. */
static int gcm_rekey(EVP_CIPHER_CTX *c, const uint8_t key[SEC_KEY_LEN])
{
    return EVP_CipherInit_ex(c, NULL, NULL, key, NULL, -1) == 1 ? 0 : -1;
}

/* Seals m in place; ad is all of the additional data. 0 or -1. */
static int gcm_seal(EVP_CIPHER_CTX *c, const uint8_t nonce[GCM_NONCE_LEN], uint8_t *m, size_t mlen,
                    const uint8_t *ad, size_t adlen, uint8_t tag[SEC_TAG_LEN])
{
    uint8_t none[16];
    int n;

    if (mlen > INT_MAX || adlen > INT_MAX)
        return -1;
    if (EVP_EncryptInit_ex(c, NULL, NULL, NULL, nonce) != 1 ||
        EVP_EncryptUpdate(c, NULL, &n, ad, (int)adlen) != 1 ||
        (mlen && EVP_EncryptUpdate(c, m, &n, m, (int)mlen) != 1) ||
        EVP_EncryptFinal_ex(c, none, &n) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, SEC_TAG_LEN, tag) != 1)
        return -1;
    return 0;
}

/* Opens c in place: 0 when the tag verifies (OpenSSL compares it in
 * constant time), else -1 with c zeroed, so no unverified plaintext stays. */
static int gcm_open(EVP_CIPHER_CTX *ctx, const uint8_t nonce[GCM_NONCE_LEN], uint8_t *c,
                    size_t clen, const uint8_t *ad, size_t adlen, const uint8_t tag[SEC_TAG_LEN])
{
    uint8_t none[16];
    int n;

    if (clen > INT_MAX || adlen > INT_MAX)
        return -1;
    if (EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, nonce) == 1 &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SEC_TAG_LEN, (void *)tag) == 1 &&
        EVP_DecryptUpdate(ctx, NULL, &n, ad, (int)adlen) == 1 &&
        (clen == 0 || EVP_DecryptUpdate(ctx, c, &n, c, (int)clen) == 1) &&
        EVP_DecryptFinal_ex(ctx, none, &n) == 1)
        return 0;
    if (clen)
        sodium_memzero(c, clen);
    return -1;
}

/* The four contexts of an AES-256-GCM session: tx and rx_cur keyed for
 * epoch 0, gcm_next for epoch 1, rx_prev unkeyed until epoch 0 moves into
 * it. 0, or RPC2_ENOMEM with none left allocated. */
static int session_gcm_init(struct sec_session *s)
{
    uint8_t next[SEC_KEY_LEN];

    epoch_key(s->rx_base, 1, next);
    s->tx.gcm = gcm_new(1, s->tx.key);
    s->rx_cur.gcm = gcm_new(0, s->rx_cur.key);
    s->rx_prev.gcm = gcm_new(0, NULL);
    s->gcm_next = gcm_new(0, next);
    sodium_memzero(next, sizeof(next));
    if (s->tx.gcm && s->rx_cur.gcm && s->rx_prev.gcm && s->gcm_next)
        return 0;
    sec_session_wipe(s);
    return RPC2_ENOMEM;
}

/* 0, or RPC2_ENOMEM with s wiped (nothing to free). */
static int session_init(struct sec_session *s, int level, unsigned suite,
                        const uint8_t tx_base[SEC_KEY_LEN], const uint8_t rx_base[SEC_KEY_LEN])
{
    sodium_memzero(s, sizeof(*s));
    s->level = level;
    s->suite = suite;
    memcpy(s->tx_base, tx_base, SEC_KEY_LEN);
    memcpy(s->rx_base, rx_base, SEC_KEY_LEN);
    epoch_key(s->tx_base, 0, s->tx.key);
    epoch_key(s->rx_base, 0, s->rx_cur.key);
    s->rx_cur.valid = 1;
    s->max_packets = SEC_EPOCH_PACKETS;
    s->max_bytes = SEC_EPOCH_BYTES;
    return suite == SEC_SUITE_AES256GCM ? session_gcm_init(s) : 0;
}

/* ---- client ------------------------------------------------------------------ */

static int hello_args_ok(const char *identity, size_t id_len, const struct sec_psk *psk, int level,
                         const struct sec_binding *b, const uint8_t *out, const size_t *len)
{
    return identity && sec_identity_ok((const uint8_t *)identity, id_len) && psk &&
           level_ok(level) && b && out && len;
}

/* Writes the hello up to its proof: u32 level, u32 suites, string identity,
 * Ce, Nc. Returns its length, or 0 when it does not fit (it always does
 * once the identity's bound is checked). */
static size_t hello_encode(uint8_t *hello, int level, unsigned suites, const char *identity,
                           size_t id_len, uint8_t secret[SEC_KEY_LEN], const struct sec_rand *rnd)
{
    struct pkt_writer w;
    uint8_t *ce, *nc;

    pkt_writer_init(&w, hello, SEC_HELLO_MAX - SEC_PROOF_LEN);
    pkt_put_u32(&w, (uint32_t)level);
    pkt_put_u32(&w, suites);
    pkt_put_opaque(&w, identity, (uint32_t)id_len);
    ce = pkt_put_space(&w, SEC_PUB_LEN);
    nc = pkt_put_space(&w, SEC_NONCE_LEN);
    if (w.failed)
        return 0;
    ephemeral(rnd, secret, ce, nc);
    return (size_t)(w.p - hello);
}

int sec_client_hello_det(struct sec_hs *hs, const char *identity, size_t id_len,
                         const struct sec_psk *psk, int level, unsigned suites,
                         const struct sec_binding *b, uint8_t *out, size_t cap, size_t *len,
                         const struct sec_rand *rnd)
{
    uint8_t *hello;
    size_t n;

    if (!hs || !hello_args_ok(identity, id_len, psk, level, b, out, len))
        return RPC2_EINVAL;
    *len = 0;
    if (sec_init() != 0)
        return RPC2_ESYSTEM;
    suites &= sec_suites_available();
    if (!suites)
        return RPC2_ESECURITY;
    if (cap < HELLO_FIXED + ((id_len + 3) & ~(size_t)3))
        return RPC2_EINVAL;
    sec_hs_wipe(hs);
    hello = hs->transcript + binding_put(hs->transcript, b);
    n = hello_encode(hello, level, suites, identity, id_len, hs->secret, rnd);
    if (n == 0)
        return RPC2_EINVAL;
    /* The transcript so far is T1; proof1 goes right after it, in the
     * hello and in the transcript alike. */
    proof1_of(psk, hs->transcript, BINDING_LEN + n, hello + n);
    n += SEC_PROOF_LEN;
    hs->transcript_len = BINDING_LEN + n;
    hs->level = level;
    hs->offered = suites;
    hs->psk = *psk;
    memcpy(out, hello, n);
    *len = n;
    return 0;
}

int sec_client_hello(struct sec_hs *hs, const char *identity, size_t id_len,
                     const struct sec_psk *psk, int level, unsigned suites,
                     const struct sec_binding *b, uint8_t *out, size_t cap, size_t *len)
{
    return sec_client_hello_det(hs, identity, id_len, psk, level, suites, b, out, cap, len, NULL);
}

static int single_bit(unsigned v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

/* Makes T1 || proof1 (n bytes at t) into T2 by appending u32 server_conn
 * and the reply's signed part; returns the length of T2. */
static size_t transcript2(uint8_t *t, size_t n, uint32_t server_conn, const uint8_t *reply)
{
    store_u32(t + n, server_conn);
    memcpy(t + n + 4, reply, REPLY_SIGNED);
    return n + 4 + REPLY_SIGNED;
}

int sec_client_finish(struct sec_hs *hs, const uint8_t *reply, size_t len, uint32_t server_conn,
                      struct sec_session *out)
{
    uint8_t t2[TRANSCRIPT_MAX], dh[crypto_scalarmult_BYTES];
    struct keys k;
    unsigned suite;
    int rc = RPC2_ESECURITY;

    if (!hs || !level_ok(hs->level) || !out || server_conn == 0)
        return RPC2_EINVAL;
    if (!reply || len != SEC_REPLY_LEN)
        return RPC2_EBADPACKET;
    suite = load_u32(reply);
    if (!single_bit(suite) || !(suite & hs->offered))
        return RPC2_ESECURITY;
    if (crypto_scalarmult(dh, hs->secret, reply + 4) != 0)
        return RPC2_ESECURITY; /* a low-order point: no secret would come of it */
    memcpy(t2, hs->transcript, hs->transcript_len);
    derive(&hs->psk, t2, transcript2(t2, hs->transcript_len, server_conn, reply), dh, &k);
    if (crypto_verify_32(k.proof2, reply + REPLY_SIGNED) == 0) {
        rc = session_init(out, hs->level, suite, k.c2s, k.s2c);
        if (rc == 0)
            sec_hs_wipe(hs);
    }
    sodium_memzero(dh, sizeof(dh));
    sodium_memzero(&k, sizeof(k));
    return rc;
}

void sec_hs_wipe(struct sec_hs *hs)
{
    if (hs)
        sodium_memzero(hs, sizeof(*hs));
}

/* ---- server ------------------------------------------------------------------ */

/* Fixed-size fields have no length in XDR; their sizes are multiples of 4. */
static const uint8_t *get_fixed(struct pkt_reader *r, size_t n)
{
    const uint8_t *p = r->p;

    if (r->failed || (size_t)(r->end - r->p) < n) {
        r->failed = PKT_ESHORT;
        return NULL;
    }
    r->p += n;
    return p;
}

int sec_server_parse_hello(const uint8_t *in, size_t len, struct sec_hello *out)
{
    const uint8_t *id, *ce, *nc, *proof;
    struct pkt_reader r;
    uint32_t level, id_len;

    if (!out)
        return RPC2_EINVAL;
    memset(out, 0, sizeof(*out));
    if (!in || len > SEC_HELLO_MAX)
        return RPC2_EBADPACKET;
    pkt_reader_init(&r, in, len);
    level = pkt_get_u32(&r);
    out->suites = pkt_get_u32(&r);
    id = pkt_get_opaque(&r, SEC_MAX_IDENTITY, &id_len);
    ce = get_fixed(&r, SEC_PUB_LEN);
    nc = get_fixed(&r, SEC_NONCE_LEN);
    proof = get_fixed(&r, SEC_PROOF_LEN);
    if (!pkt_reader_done(&r) || level > 0xff || !sec_identity_ok(id, id_len)) {
        memset(out, 0, sizeof(*out));
        return RPC2_EBADPACKET;
    }
    out->level = (int)level;
    memcpy(out->identity, id, id_len);
    out->identity_len = id_len;
    memcpy(out->ce, ce, SEC_PUB_LEN);
    memcpy(out->nc, nc, SEC_NONCE_LEN);
    memcpy(out->proof, proof, SEC_PROOF_LEN);
    memcpy(out->raw, in, len);
    out->raw_len = len;
    return 0;
}

/* t holds T1 || proof1 as the hello claims it; n is the length of T1. */
static int proof1_ok(const struct sec_hello *h, const struct sec_psk *psk, const uint8_t *t,
                     size_t n)
{
    uint8_t want[SEC_PROOF_LEN];
    int ok;

    proof1_of(psk, t, n, want);
    ok = crypto_verify_32(want, h->proof) == 0;
    sodium_memzero(want, sizeof(want));
    return ok;
}

/* What the server adds: its choice, its key and nonce, then its proof;
 * t holds T1 || proof1 (n bytes) and has room for T2. */
static int server_reply(const struct sec_hello *h, const struct sec_psk *psk, uint8_t *t, size_t n,
                        uint32_t server_conn, unsigned suite, struct sec_session *out,
                        uint8_t *reply, const struct sec_rand *rnd)
{
    uint8_t secret[SEC_KEY_LEN], dh[crypto_scalarmult_BYTES];
    struct keys k;
    int rc = RPC2_ESECURITY;

    store_u32(reply, suite);
    ephemeral(rnd, secret, reply + 4, reply + 4 + SEC_PUB_LEN);
    if (crypto_scalarmult(dh, secret, h->ce) == 0) {
        derive(psk, t, transcript2(t, n, server_conn, reply), dh, &k);
        memcpy(reply + REPLY_SIGNED, k.proof2, SEC_PROOF_LEN);
        rc = session_init(out, h->level, suite, k.s2c, k.c2s);
        sodium_memzero(&k, sizeof(k));
    }
    sodium_memzero(secret, sizeof(secret));
    sodium_memzero(dh, sizeof(dh));
    return rc;
}

/* Checks 4-6 of PROTOCOL.md's "Server checks" on T1 || proof1, built in t
 * (TRANSCRIPT_MAX bytes); *n gets its length, *suite the server's choice. */
static int hello_verify(const struct sec_hello *h, const struct sec_psk *psk,
                        const struct sec_binding *b, unsigned server_suites, uint8_t *t, size_t *n,
                        unsigned *suite)
{
    if (!h || h->raw_len < HELLO_FIXED || h->raw_len > SEC_HELLO_MAX || !psk || !b)
        return RPC2_EINVAL;
    if (sec_init() != 0)
        return RPC2_ESYSTEM;
    *n = binding_put(t, b);
    memcpy(t + *n, h->raw, h->raw_len);
    *n += h->raw_len;
    if (!proof1_ok(h, psk, t, *n - SEC_PROOF_LEN))
        return RPC2_EACCES;
    if (!level_ok(h->level))
        return RPC2_ESECURITY;
    *suite = pick_suite(h->suites & server_suites & sec_suites_available());
    return *suite ? 0 : RPC2_ESECURITY;
}

int sec_server_check(const struct sec_hello *h, const struct sec_psk *psk,
                     const struct sec_binding *b, unsigned server_suites)
{
    uint8_t t[TRANSCRIPT_MAX];
    unsigned suite;
    size_t n;

    return hello_verify(h, psk, b, server_suites, t, &n, &suite);
}

int sec_server_accept_det(const struct sec_hello *h, const struct sec_psk *psk,
                          const struct sec_binding *b, uint32_t server_conn, unsigned server_suites,
                          struct sec_session *out, uint8_t *reply, size_t cap, size_t *reply_len,
                          const struct sec_rand *rnd)
{
    uint8_t t[TRANSCRIPT_MAX];
    unsigned suite;
    size_t n;
    int rc;

    if (!out || !reply || !reply_len || server_conn == 0 || cap < SEC_REPLY_LEN)
        return RPC2_EINVAL;
    *reply_len = 0;
    rc = hello_verify(h, psk, b, server_suites, t, &n, &suite);
    if (rc != 0)
        return rc;
    rc = server_reply(h, psk, t, n, server_conn, suite, out, reply, rnd);
    if (rc == 0)
        *reply_len = SEC_REPLY_LEN;
    return rc;
}

int sec_server_accept(const struct sec_hello *h, const struct sec_psk *psk,
                      const struct sec_binding *b, uint32_t server_conn, unsigned server_suites,
                      struct sec_session *out, uint8_t *reply, size_t cap, size_t *reply_len)
{
    return sec_server_accept_det(h, psk, b, server_conn, server_suites, out, reply, cap, reply_len,
                                 NULL);
}

/* ---- packet protection --------------------------------------------------------- */

size_t sec_trailer_len(int level)
{
    return level_ok(level) ? SEC_TRAILER_LEN : 0;
}

/* 12 bytes for AES-256-GCM: u32 epoch || u64 pn; XChaCha20 takes 24, the
 * same 12 then zeros. The epoch is redundant (each epoch has its own key)
 * but costs nothing and keeps a nonce unique even if a key were shared. */
static void nonce_of(uint32_t epoch, uint64_t pn, uint8_t nonce[24])
{
    memset(nonce, 0, 24);
    store_u32(nonce, epoch);
    store_u64(nonce + 4, pn);
}

/* Seals m in place (mlen 0: nothing is encrypted, ad is all) with key, or
 * at AES-256-GCM with gcm (keyed with key). 0 or -1. */
static int aead_seal(unsigned suite, const uint8_t *key, EVP_CIPHER_CTX *gcm,
                     const uint8_t nonce[24], uint8_t *m, size_t mlen, const uint8_t *ad,
                     size_t adlen, uint8_t *tag)
{
    if (suite == SEC_SUITE_AES256GCM)
        return gcm_seal(gcm, nonce, m, mlen, ad, adlen, tag);
    crypto_aead_xchacha20poly1305_ietf_encrypt_detached(m, tag, NULL, m, mlen, ad, adlen, NULL,
                                                        nonce, key);
    return 0;
}

static int aead_open(unsigned suite, const uint8_t *key, EVP_CIPHER_CTX *gcm,
                     const uint8_t nonce[24], uint8_t *c, size_t clen, const uint8_t *ad,
                     size_t adlen, const uint8_t *tag)
{
    if (suite == SEC_SUITE_AES256GCM)
        return gcm_open(gcm, nonce, c, clen, ad, adlen, tag);
    return crypto_aead_xchacha20poly1305_ietf_decrypt_detached(c, NULL, c, clen, tag, ad, adlen,
                                                               nonce, key);
}

/*
 * The datagram is header | body | pn | tag. At level auth everything
 * before the tag is additional data, already contiguous. At level encrypt
 * the body is the message, and the additional data is the header and the
 * pn, gathered into 48 bytes.
 */
static int protect_at(const struct sec_session *s, uint8_t *dg, size_t len)
{
    uint8_t *pn = dg + len, *tag = pn + SEC_PN_LEN, ad[PKT_HDR_SIZE + SEC_PN_LEN], nonce[24];

    nonce_of(s->tx.epoch, s->tx.pn, nonce);
    if (s->level == RPC2_SEC_AUTH)
        return aead_seal(s->suite, s->tx.key, s->tx.gcm, nonce, dg, 0, dg, len + SEC_PN_LEN, tag);
    memcpy(ad, dg, PKT_HDR_SIZE);
    memcpy(ad + PKT_HDR_SIZE, pn, SEC_PN_LEN);
    return aead_seal(s->suite, s->tx.key, s->tx.gcm, nonce, dg + PKT_HDR_SIZE, len - PKT_HDR_SIZE,
                     ad, sizeof(ad), tag);
}

/* A key is retired before it has protected SEC_EPOCH_PACKETS packets or
 * SEC_EPOCH_BYTES bytes (AES-GCM's usage bounds, comfortably), and a
 * packet number never repeats under one key. */
static int tx_next_epoch_if_due(struct sec_session *s)
{
    uint8_t key[SEC_KEY_LEN];

    if (s->tx.pn < s->max_packets && s->tx.bytes < s->max_bytes)
        return 0;
    if (s->tx.epoch == UINT32_MAX)
        return RPC2_ELIMIT;
    epoch_key(s->tx_base, s->tx.epoch + 1, key);
    if (s->tx.gcm && gcm_rekey(s->tx.gcm, key) != 0) {
        /* The epoch stays (it is due again next time): a context that is
         * keyed for neither epoch seals nothing the peer accepts. */
        sodium_memzero(key, sizeof(key));
        return RPC2_ESYSTEM;
    }
    s->tx.epoch++;
    s->tx.pn = 0;
    s->tx.bytes = 0;
    memcpy(s->tx.key, key, SEC_KEY_LEN);
    sodium_memzero(key, sizeof(key));
    return 0;
}

static int header_says(const uint8_t *dg, size_t len, int level)
{
    return dg[OFF_SECURITY] == level && load_u32(dg + OFF_BODY_LEN) == len - PKT_HDR_SIZE &&
           dg[OFF_TRAILER_LEN] == 0 && dg[OFF_TRAILER_LEN + 1] == SEC_TRAILER_LEN;
}

int sec_protect(struct sec_session *s, uint8_t *datagram, size_t len, size_t cap, size_t *out_len)
{
    int rc;

    if (!s || !datagram || !out_len || !level_ok(s->level) || len < PKT_HDR_SIZE ||
        len - PKT_HDR_SIZE > UINT32_MAX || !header_says(datagram, len, s->level))
        return RPC2_EINVAL;
    *out_len = 0;
    if (cap < len || cap - len < SEC_TRAILER_LEN)
        return RPC2_ETOOBIG;
    rc = tx_next_epoch_if_due(s);
    if (rc != 0)
        return rc;
    store_u32(datagram + OFF_KEY_EPOCH, s->tx.epoch);
    store_u64(datagram + len, s->tx.pn);
    rc = protect_at(s, datagram, len);
    /* The number is spent even when sealing failed part way: a nonce is
     * never used twice, whatever became of the datagram. */
    s->tx.pn++;
    s->tx.bytes += len;
    if (rc != 0)
        return RPC2_ESYSTEM;
    *out_len = len + SEC_TRAILER_LEN;
    return 0;
}

/*
 * The replay window: the highest packet number accepted (top) and a ring of
 * bits for the SEC_WINDOW numbers up to it. The ring has one word more than
 * the window because it is cleared a word at a time as top advances: with
 * exactly SEC_WINDOW bits, clearing the word top moves into would also
 * forget numbers still inside the window, and let them be replayed.
 */
#define WIN_WORDS (SEC_WINDOW / 64 + 1)

static int window_seen(const struct sec_rx_epoch *rx, uint64_t pn)
{
    if (!rx->any || pn > rx->top)
        return 0;
    if (rx->top - pn >= SEC_WINDOW)
        return 1; /* too old to tell: refused as if seen */
    return (int)(rx->bits[(pn / 64) % WIN_WORDS] >> (pn % 64) & 1);
}

static void window_mark(struct sec_rx_epoch *rx, uint64_t pn)
{
    if (!rx->any) {
        memset(rx->bits, 0, sizeof(rx->bits));
        rx->any = 1;
        rx->top = pn;
    } else if (pn > rx->top) {
        uint64_t from = rx->top / 64, n = pn / 64 - from;

        if (n > WIN_WORDS)
            n = WIN_WORDS;
        for (uint64_t i = 1; i <= n; i++)
            rx->bits[(from + i) % WIN_WORDS] = 0;
        rx->top = pn;
    }
    rx->bits[(pn / 64) % WIN_WORDS] |= UINT64_C(1) << (pn % 64);
}

/* The receive state for the datagram's epoch: the current one, the one
 * before it, or the next one derived into *next (never further ahead).
 * NULL with *verdict set for any other epoch. */
static struct sec_rx_epoch *rx_for(struct sec_session *s, uint32_t epoch, struct sec_rx_epoch *next,
                                   int *verdict)
{
    uint32_t cur = s->rx_cur.epoch;

    if (epoch == cur)
        return &s->rx_cur;
    if (cur > 0 && epoch == cur - 1 && s->rx_prev.valid)
        return &s->rx_prev;
    if (cur < UINT32_MAX && epoch == cur + 1) {
        memset(next, 0, sizeof(*next));
        next->epoch = epoch;
        next->valid = 1;
        epoch_key(s->rx_base, epoch, next->key);
        next->gcm = s->gcm_next; /* already keyed for it */
        return next;
    }
    *verdict = epoch < cur ? SEC_EREPLAY : SEC_EFORGED;
    return NULL;
}

static int open_at(const struct sec_session *s, const struct sec_rx_epoch *rx, uint8_t *dg,
                   size_t len)
{
    size_t clear = len - SEC_TRAILER_LEN; /* header and body */
    const uint8_t *pn = dg + clear, *tag = pn + SEC_PN_LEN;
    uint8_t ad[PKT_HDR_SIZE + SEC_PN_LEN], nonce[24];

    nonce_of(rx->epoch, load_u64(pn), nonce);
    if (s->level == RPC2_SEC_AUTH)
        return aead_open(s->suite, rx->key, rx->gcm, nonce, dg, 0, dg, clear + SEC_PN_LEN, tag);
    memcpy(ad, dg, PKT_HDR_SIZE);
    memcpy(ad + PKT_HDR_SIZE, pn, SEC_PN_LEN);
    return aead_open(s->suite, rx->key, rx->gcm, nonce, dg + PKT_HDR_SIZE, clear - PKT_HDR_SIZE,
                     ad, sizeof(ad), tag);
}

/* ---- the primitives as sessions call them, for known-answer tests ------------ */

/* A context made for the call, so the vector goes through the same
 * aead_seal/aead_open (and gcm_seal/gcm_open) as every datagram. */
int sec_kat_aead(int seal, unsigned suite, const uint8_t key[SEC_KEY_LEN], const uint8_t *nonce,
                 uint8_t *m, size_t mlen, const uint8_t *ad, size_t adlen, uint8_t tag[SEC_TAG_LEN])
{
    EVP_CIPHER_CTX *gcm = NULL;
    uint8_t n24[24] = {0};
    int rc;

    if (suite != SEC_SUITE_AES256GCM && suite != SEC_SUITE_XCHACHA20)
        return -1;
    if (sec_init() != 0)
        return -1;
    memcpy(n24, nonce, suite == SEC_SUITE_AES256GCM ? GCM_NONCE_LEN : sizeof(n24));
    if (suite == SEC_SUITE_AES256GCM && !(gcm = gcm_new(seal, key)))
        return -1;
    rc = seal ? aead_seal(suite, key, gcm, n24, m, mlen, ad, adlen, tag)
              : aead_open(suite, key, gcm, n24, m, mlen, ad, adlen, tag);
    EVP_CIPHER_CTX_free(gcm);
    return rc;
}

void sec_kat_blake2b(uint8_t *out, size_t outlen, const uint8_t *key, size_t keylen,
                     const uint8_t *m, size_t mlen)
{
    hash3(out, outlen, key, keylen, m, mlen, NULL, 0, NULL, 0);
}

/* The next epoch becomes current; the one before the current is forgotten.
 * At AES-256-GCM the forgotten epoch's context is keyed for the epoch after
 * the new current one (which overwrites the old key schedule) and waits as
 * gcm_next: contexts move, none is made or freed. Were that rekeying ever
 * to fail, the next epoch's datagrams would fail to verify and the
 * connection end as if its peer were gone. */
static void rx_advance(struct sec_session *s, struct sec_rx_epoch *next)
{
    EVP_CIPHER_CTX *spare = s->rx_prev.gcm;

    sodium_memzero(&s->rx_prev, sizeof(s->rx_prev));
    s->rx_prev = s->rx_cur;
    s->rx_cur = *next;
    s->gcm_next = spare;
    if (spare && s->rx_cur.epoch < UINT32_MAX) {
        uint8_t key[SEC_KEY_LEN];

        epoch_key(s->rx_base, s->rx_cur.epoch + 1, key);
        (void)gcm_rekey(spare, key);
        sodium_memzero(key, sizeof(key));
    }
}

/* Authentication first, then everything else: a verdict other than
 * SEC_EFORGED is only given about a datagram the peer really sent. */
static int judge(struct sec_session *s, struct sec_rx_epoch *rx, uint8_t *dg, size_t len)
{
    uint64_t pn = load_u64(dg + len - SEC_TRAILER_LEN);

    if (open_at(s, rx, dg, len) != 0)
        return SEC_EFORGED;
    if (!header_says(dg, len - SEC_TRAILER_LEN, s->level))
        return SEC_EMALFORMED;
    if (window_seen(rx, pn))
        return SEC_EREPLAY;
    return SEC_OK;
}

int sec_unprotect(struct sec_session *s, uint8_t *datagram, size_t len)
{
    struct sec_rx_epoch next, *rx;
    int verdict = SEC_OK;

    if (!s || !datagram || !level_ok(s->level) || len < PKT_HDR_SIZE + SEC_TRAILER_LEN ||
        datagram[OFF_SECURITY] != s->level)
        return SEC_EMALFORMED;
    rx = rx_for(s, load_u32(datagram + OFF_KEY_EPOCH), &next, &verdict);
    if (!rx)
        return verdict;
    verdict = judge(s, rx, datagram, len);
    if (verdict == SEC_OK) {
        if (rx == &next) {
            rx_advance(s, &next);
            rx = &s->rx_cur;
        }
        window_mark(rx, load_u64(datagram + len - SEC_TRAILER_LEN));
    }
    sodium_memzero(&next, sizeof(next));
    return verdict;
}

/* EVP_CIPHER_CTX_free() cleanses the key schedule it frees. */
void sec_session_wipe(struct sec_session *s)
{
    if (!s)
        return;
    EVP_CIPHER_CTX_free(s->tx.gcm);
    EVP_CIPHER_CTX_free(s->rx_cur.gcm);
    EVP_CIPHER_CTX_free(s->rx_prev.gcm);
    EVP_CIPHER_CTX_free(s->gcm_next);
    sodium_memzero(s, sizeof(*s));
}

/* ---- the client hello replay cache -------------------------------------------- */

#define WAYS 8

int sec_replay_init(struct sec_replay *r, size_t slots, uint64_t lifetime)
{
    memset(r, 0, sizeof(*r));
    if (slots == 0 || lifetime == 0 || slots > SIZE_MAX / 2 / sizeof(*r->e))
        return RPC2_EINVAL;
    if (sec_init() != 0)
        return RPC2_ESYSTEM;
    r->sets = (slots + WAYS - 1) / WAYS;
    r->e = calloc(r->sets * WAYS, sizeof(*r->e));
    if (!r->e)
        return RPC2_ENOMEM;
    r->lifetime = lifetime;
    crypto_shorthash_keygen(r->hash_key);
    return 0;
}

void sec_replay_dispose(struct sec_replay *r)
{
    if (!r)
        return;
    free(r->e);
    memset(r, 0, sizeof(*r));
}

static int fresh(const struct sec_replay *r, const struct sec_replay_entry *e, uint64_t now)
{
    return e->seen != 0 && now >= e->seen && now - e->seen < r->lifetime;
}

/* The set of a Ce: chosen by SipHash under a random key, so even a peer
 * that knows a secret cannot aim its hellos at one set to push another's
 * out. */
static struct sec_replay_entry *replay_set(const struct sec_replay *r, const struct sec_hello *h)
{
    uint8_t hash[crypto_shorthash_BYTES];

    crypto_shorthash(hash, h->ce, SEC_PUB_LEN, r->hash_key);
    return r->e + (load_u64(hash) % r->sets) * WAYS;
}

int sec_replay_seen(const struct sec_replay *r, const struct sec_hello *h, uint64_t now)
{
    const struct sec_replay_entry *set;

    if (!r || !r->e || !h || now == 0)
        return 0;
    set = replay_set(r, h);
    for (size_t i = 0; i < WAYS; i++)
        if (fresh(r, &set[i], now) && memcmp(set[i].ce, h->ce, SEC_PUB_LEN) == 0)
            return 1;
    return 0;
}

int sec_replay_check(struct sec_replay *r, const struct sec_hello *h, uint64_t now)
{
    struct sec_replay_entry *set, *victim;

    if (!r || !r->e || !h || now == 0)
        return RPC2_EINVAL;
    if (sec_replay_seen(r, h, now))
        return RPC2_ESECURITY;
    set = replay_set(r, h);
    victim = set;
    for (size_t i = 0; i < WAYS; i++) {
        if (!fresh(r, &set[i], now))
            victim = &set[i];
        else if (fresh(r, victim, now) && set[i].seen < victim->seen)
            victim = &set[i];
    }
    memcpy(victim->ce, h->ce, SEC_PUB_LEN);
    victim->seen = now;
    return 0;
}
