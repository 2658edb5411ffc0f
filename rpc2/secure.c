/*
 * secure.c - the handshake (pre-shared secret plus ephemeral X25519), its
 * key schedule, and the cache that refuses a replayed client hello; the
 * session it yields protects datagrams in protect.c. docs/security-
 * protocol.md specifies every byte; docs/SECURITY.md gives the reasons.
 *
 * Everything keyed is BLAKE2b (crypto_generichash, keyed) with a distinct
 * label per use, so a second implementation needs nothing but BLAKE2b,
 * X25519 and the two AEADs. Secrets live in caller-owned structs and on
 * the stack; every stack copy is wiped before its function returns.
 */
#include "secure.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include <rpc2/rpc2.h>

#include "bytes.h"
#include "packet.h"

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
void sec_epoch_key(const uint8_t base[SEC_KEY_LEN], uint32_t epoch, uint8_t out[SEC_KEY_LEN])
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

int sec_level_ok(int level)
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

/* ---- client ------------------------------------------------------------------ */

static int hello_args_ok(const char *identity, size_t id_len, const struct sec_psk *psk, int level,
                         const struct sec_binding *b, const uint8_t *out, const size_t *len)
{
    return identity && sec_identity_ok((const uint8_t *)identity, id_len) && psk &&
           sec_level_ok(level) && b && out && len;
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

    if (!hs || !sec_level_ok(hs->level) || !out || server_conn == 0)
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
        rc = sec_session_init(out, hs->level, suite, k.c2s, k.s2c);
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
        rc = sec_session_init(out, h->level, suite, k.s2c, k.c2s);
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
    if (!sec_level_ok(h->level))
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

/* ---- BLAKE2b as the key schedule calls it, for known-answer tests ---------- */

void sec_kat_blake2b(uint8_t *out, size_t outlen, const uint8_t *key, size_t keylen,
                     const uint8_t *m, size_t mlen)
{
    hash3(out, outlen, key, keylen, m, mlen, NULL, 0, NULL, 0);
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
