/*
 * protect.c - a session's packet protection: the keys a handshake (secure.c)
 * yields become a session here, and every datagram of a secure connection
 * is sealed and opened here, with per-epoch keys, packet numbers that never
 * repeat under one key, and a replay window. docs/security-protocol.md
 * specifies every byte.
 *
 * XChaCha20-Poly1305 is libsodium's; AES-256-GCM is OpenSSL's EVP (its
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

    sec_epoch_key(s->rx_base, 1, next);
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
int sec_session_init(struct sec_session *s, int level, unsigned suite,
                     const uint8_t tx_base[SEC_KEY_LEN], const uint8_t rx_base[SEC_KEY_LEN])
{
    sodium_memzero(s, sizeof(*s));
    s->level = level;
    s->suite = suite;
    memcpy(s->tx_base, tx_base, SEC_KEY_LEN);
    memcpy(s->rx_base, rx_base, SEC_KEY_LEN);
    sec_epoch_key(s->tx_base, 0, s->tx.key);
    sec_epoch_key(s->rx_base, 0, s->rx_cur.key);
    s->rx_cur.valid = 1;
    s->max_packets = SEC_EPOCH_PACKETS;
    s->max_bytes = SEC_EPOCH_BYTES;
    return suite == SEC_SUITE_AES256GCM ? session_gcm_init(s) : 0;
}

/* ---- packet protection --------------------------------------------------------- */

size_t sec_trailer_len(int level)
{
    return sec_level_ok(level) ? SEC_TRAILER_LEN : 0;
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
    sec_epoch_key(s->tx_base, s->tx.epoch + 1, key);
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

    if (!s || !datagram || !out_len || !sec_level_ok(s->level) || len < PKT_HDR_SIZE ||
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
        sec_epoch_key(s->rx_base, epoch, next->key);
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
    return aead_open(s->suite, rx->key, rx->gcm, nonce, dg + PKT_HDR_SIZE, clear - PKT_HDR_SIZE, ad,
                     sizeof(ad), tag);
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

        sec_epoch_key(s->rx_base, s->rx_cur.epoch + 1, key);
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

    if (!s || !datagram || !sec_level_ok(s->level) || len < PKT_HDR_SIZE + SEC_TRAILER_LEN ||
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
