/*
 * secure.h - authenticated and encrypted connections: the handshake that
 * turns a pre-shared secret into session keys, and the protection of each
 * datagram with them. Pure: bytes in, bytes out, no I/O, no clock but the
 * one the caller passes, no global state (libsodium's and OpenSSL's own
 * initialisation aside). Suite 1 (AES-256-GCM) runs on OpenSSL's EVP
 * interface, everything else on libsodium.
 *
 * docs/PROTOCOL.md ("Secure connections") is the prose of this file (every byte of the
 * hellos, the key schedule, the trailer); docs/SECURITY.md says what it
 * protects against and what it does not.
 *
 * How an engine uses it:
 *
 *   client                                 server
 *   sec_client_hello() -> BIND_REQ ------> sec_server_parse_hello()
 *                                          sec_replay_seen(): refuse a replay
 *                                          look the identity's secret up
 *                                          sec_server_check() (proof1)
 *                                          sec_server_accept() (X25519)
 *                                          sec_replay_check(): remember Ce
 *   sec_client_finish() <-- BIND_OK <----- reply: session keys ready,
 *   session keys ready                     connection "unconfirmed"
 *   sec_protect() -> first CALL ---------> sec_unprotect() ok: confirmed
 *
 * Every datagram of the connection after the bind carries the trailer of
 * sec_protect(); the bind packets themselves travel at level none.
 */
#ifndef RPC2_SECURE_H
#define RPC2_SECURE_H

#include <stddef.h>
#include <stdint.h>

#define SEC_KEY_LEN 32   /* a pre-shared secret, a base or epoch key */
#define SEC_PUB_LEN 32   /* an X25519 public key */
#define SEC_NONCE_LEN 16 /* Nc, Ns */
#define SEC_PROOF_LEN 32 /* keyed BLAKE2b-256 */
#define SEC_TAG_LEN 16   /* the AEAD tag in the trailer */
#define SEC_PN_LEN 8     /* the packet number in the trailer */
#define SEC_TRAILER_LEN (SEC_PN_LEN + SEC_TAG_LEN)
#define SEC_MAX_IDENTITY 255
/* The longest client hello (an identity of 255 bytes) and the server hello. */
#define SEC_HELLO_MAX (4 + 4 + 4 + 256 + SEC_PUB_LEN + SEC_NONCE_LEN + SEC_PROOF_LEN)
#define SEC_REPLY_LEN (4 + SEC_PUB_LEN + SEC_NONCE_LEN + SEC_PROOF_LEN)
/* Characters of a secret in base64 (with padding), without the NUL. */
#define SEC_PSK_B64_LEN 44

/* Suites, as bits of an offer. A server picks exactly one. */
#define SEC_SUITE_AES256GCM 1u
#define SEC_SUITE_XCHACHA20 2u
#define SEC_SUITES_ALL (SEC_SUITE_AES256GCM | SEC_SUITE_XCHACHA20)

/* The receive replay window of each epoch, in packets. */
#define SEC_WINDOW 4096
/* When a sender moves to the next epoch (whichever comes first). */
#define SEC_EPOCH_PACKETS (UINT64_C(1) << 31)
#define SEC_EPOCH_BYTES (UINT64_C(1) << 36)

struct sec_psk {
    uint8_t key[SEC_KEY_LEN];
};

/* Initialises libsodium. Idempotent and thread-safe (sodium_init() is), so
 * call it from anywhere: the handshake, key and key file functions call it
 * themselves, and an engine calls it once when it creates a context, to
 * fail there rather than at the first bind. (sec_protect and sec_unprotect
 * do not: they need a session, which only a handshake makes.) It also
 * detects the CPU's features, which sec_suites_available() reports.
 * 0 or RPC2_ESYSTEM. */
int sec_init(void);

/* The suites this end offers: XChaCha20-Poly1305 always; AES-256-GCM only
 * on CPUs with AES-NI and PCLMUL (OpenSSL would run it anywhere, but its
 * software AES is slower than XChaCha20 and not built to be constant-time;
 * see docs/SECURITY.md). */
unsigned sec_suites_available(void);

/* A fresh random secret. */
int sec_genkey(struct sec_psk *psk);
/* Standard base64 with padding: out gets SEC_PSK_B64_LEN characters and a NUL. */
void sec_psk_to_base64(const struct sec_psk *psk, char out[SEC_PSK_B64_LEN + 1]);
/* 0, or RPC2_EINVAL when b64 is not exactly 32 bytes in standard base64. */
int sec_psk_from_base64(const char *b64, size_t len, struct sec_psk *psk);

/* True when an identity may be used: 1 to 255 bytes, none of them a space or
 * an ASCII control character (so it fits a key file line and a log line). */
int sec_identity_ok(const uint8_t *identity, size_t len);

/*
 * The bind fields outside the hello that the handshake authenticates, so an
 * on-path change to any of them fails a proof: both ends fill this from the
 * BIND_REQ (the client from what it sends, the server from what arrived).
 * The cookie is not in it: it changes between two BIND_REQs of one bind.
 */
struct sec_binding {
    uint32_t client_conn; /* the BIND_REQ's src_conn */
    uint32_t subsystem;
    uint32_t se_type;
};

/* Randomness of one side of a handshake. Test vectors only: production
 * code passes NULL and gets fresh random bytes; fixed values here destroy
 * every guarantee of docs/SECURITY.md. */
struct sec_rand {
    uint8_t secret[SEC_KEY_LEN]; /* the ephemeral X25519 secret */
    uint8_t nonce[SEC_NONCE_LEN];
};

/* ---- sessions ------------------------------------------------------------ */

/* OpenSSL's EVP_CIPHER_CTX, named here so this header needs no OpenSSL. */
struct evp_cipher_ctx_st;

/* The receive state of one key epoch. */
struct sec_rx_epoch {
    uint32_t epoch;
    int valid;
    uint8_t key[SEC_KEY_LEN];
    struct evp_cipher_ctx_st *gcm; /* AES-256-GCM: keyed with key once; else NULL */
    uint64_t top;                  /* the highest packet number accepted; meaningful when any */
    int any;
    uint64_t bits[SEC_WINDOW / 64 + 1]; /* a ring; one word more than the window, see secure.c */
};

/* One direction-pair of keys of an established connection. An engine
 * embeds it; at suite AES-256-GCM it owns four OpenSSL cipher contexts
 * (keyed once per epoch, so no datagram pays a key setup or an
 * allocation), so it must end with sec_session_wipe(), which frees them,
 * and a copy must not be used alongside the original (they would share the
 * contexts). A handshake fills a session that is zeroed or wiped, never a
 * live one (its contexts would leak). One thread at a time per session. */
struct sec_session {
    int level;      /* RPC2_SEC_AUTH or RPC2_SEC_ENCRYPT */
    unsigned suite; /* one SEC_SUITE_* bit */
    uint8_t tx_base[SEC_KEY_LEN], rx_base[SEC_KEY_LEN];
    struct {
        uint32_t epoch;
        uint64_t pn;    /* the next packet number */
        uint64_t bytes; /* protected in this epoch */
        uint8_t key[SEC_KEY_LEN];
        struct evp_cipher_ctx_st *gcm; /* AES-256-GCM: keyed with key; else NULL */
    } tx;
    struct sec_rx_epoch rx_cur, rx_prev;
    /* AES-256-GCM: always keyed for epoch rx_cur.epoch + 1, to try a
     * datagram of the next epoch without changing anything else; it becomes
     * rx_cur's when one verifies. */
    struct evp_cipher_ctx_st *gcm_next;
    /* The sender's rotation limits: SEC_EPOCH_PACKETS and SEC_EPOCH_BYTES;
     * tests lower them to see epochs change. */
    uint64_t max_packets, max_bytes;
};

/* Bytes of trailer at a security level: 24 at auth and encrypt, 0 else
 * (level none carries packet.c's check instead). */
size_t sec_trailer_len(int level);

/*
 * Seals the datagram datagram[0 .. len): its 40-byte header is encoded with
 * security = the session's level, trailer_len = SEC_TRAILER_LEN and
 * body_len = len - 40. Writes key_epoch into the header, encrypts the body
 * in place at level encrypt, appends the trailer (cap must leave room for
 * it) and sets *out_len = len + SEC_TRAILER_LEN. Moves to the next epoch
 * first when this one has had its packets or bytes.
 * 0; RPC2_EINVAL (header not as above); RPC2_ETOOBIG (no room);
 * RPC2_ELIMIT (every epoch used up: bind again); RPC2_ESYSTEM (OpenSSL
 * failed: not seen in practice; the packet number is spent all the same).
 */
int sec_protect(struct sec_session *s, uint8_t *datagram, size_t len, size_t cap, size_t *out_len);

/* What sec_unprotect() found; the engine counts each reason apart. These
 * are per-datagram verdicts, like packet.h's pkt_reject, never shown to an
 * application. */
enum sec_verdict {
    SEC_OK = 0,
    SEC_EMALFORMED = -1, /* too short, another level, or lengths that disagree */
    SEC_EFORGED = -2,    /* the tag does not verify (damage or forgery), or an epoch
                          * ahead of anything the peer can have reached */
    SEC_EREPLAY = -3,    /* genuine but seen before, older than the window, or of
                          * an epoch already forgotten */
};

/*
 * Verifies the whole datagram (header, body, trailer; len is its length)
 * and decrypts the body in place at level encrypt. The replay window and
 * the epochs change only when it returns SEC_OK; on any other verdict the
 * body may have been overwritten, so the datagram must be dropped. On
 * SEC_OK the datagram is header || body (len - SEC_TRAILER_LEN bytes) in
 * clear, and its header's lengths are the ones checked here.
 */
int sec_unprotect(struct sec_session *s, uint8_t *datagram, size_t len);

void sec_session_wipe(struct sec_session *s);

/* Between the handshake (secure.c) and the session (protect.c): a session
 * for level and suite from the two directions' base keys (0, or
 * RPC2_ENOMEM with s wiped); k_epoch = BLAKE2b-256(base, "rpc2 v1 epoch" ||
 * u32 epoch); whether level is one that protects datagrams. */
int sec_session_init(struct sec_session *s, int level, unsigned suite,
                     const uint8_t tx_base[SEC_KEY_LEN], const uint8_t rx_base[SEC_KEY_LEN]);
void sec_epoch_key(const uint8_t base[SEC_KEY_LEN], uint32_t epoch, uint8_t out[SEC_KEY_LEN]);
int sec_level_ok(int level);

/* Known-answer tests (tests/test_kat.c) run the standards' vectors through
 * the same AEAD and hash calls sessions make. seal 1 seals m in place and
 * writes tag, 0 opens it (0, or -1 when the tag does not verify); nonce is
 * 12 bytes at AES-256-GCM, 24 at XChaCha20. */
int sec_kat_aead(int seal, unsigned suite, const uint8_t key[SEC_KEY_LEN], const uint8_t *nonce,
                 uint8_t *m, size_t mlen, const uint8_t *ad, size_t adlen, uint8_t tag[SEC_TAG_LEN]);
/* BLAKE2b-outlen, keyed when key is not NULL, as the key schedule calls it. */
void sec_kat_blake2b(uint8_t *out, size_t outlen, const uint8_t *key, size_t keylen,
                     const uint8_t *m, size_t mlen);

/* ---- the handshake --------------------------------------------------------- */

/* The client's state between its hello and the server's reply. */
struct sec_hs {
    int level;
    unsigned offered;
    struct sec_psk psk;
    uint8_t secret[SEC_KEY_LEN]; /* the ephemeral X25519 secret e */
    uint8_t transcript[13 + 12 + SEC_HELLO_MAX];
    size_t transcript_len;
};

/*
 * Writes the client hello for a bind at `level` (RPC2_SEC_AUTH or
 * RPC2_SEC_ENCRYPT) offering `suites` (only those sec_suites_available()
 * are offered) into out[0 .. cap), at most SEC_HELLO_MAX bytes; *len its
 * length. The hello may be sent again unchanged with every retransmission
 * of the BIND_REQ. 0; RPC2_EINVAL (bad identity or level, cap too small);
 * RPC2_ESECURITY (no offered suite runs here).
 */
int sec_client_hello(struct sec_hs *hs, const char *identity, size_t id_len,
                     const struct sec_psk *psk, int level, unsigned suites,
                     const struct sec_binding *b, uint8_t *out, size_t cap, size_t *len);

/*
 * Checks the server's reply: the suite is one we offered, and proof2 shows
 * the server knows the secret, saw our exact hello and the same binding,
 * and chose server_conn (the BIND_OK's src_conn). On success fills *out
 * (client side) and wipes the handshake state. 0; RPC2_EBADPACKET
 * (malformed reply); RPC2_ESECURITY (bad proof, suite not offered, weak
 * server key); RPC2_ENOMEM (no memory for the AES-256-GCM contexts; *out
 * then holds nothing to free). On failure hs is kept, so a forged reply does not end a
 * bind that the genuine reply can still complete.
 */
int sec_client_finish(struct sec_hs *hs, const uint8_t *reply, size_t len, uint32_t server_conn,
                      struct sec_session *out);

/* Wipes the client's handshake state (the secret among it). */
void sec_hs_wipe(struct sec_hs *hs);

/* A client hello as the server parsed it (a copy: it does not point into
 * the datagram). */
struct sec_hello {
    char identity[SEC_MAX_IDENTITY + 1]; /* NUL-terminated; no NUL inside */
    size_t identity_len;
    int level;
    unsigned suites;
    uint8_t ce[SEC_PUB_LEN], nc[SEC_NONCE_LEN], proof[SEC_PROOF_LEN];
    uint8_t raw[SEC_HELLO_MAX]; /* the hello's bytes, for the transcript */
    size_t raw_len;
};

/* Parses a client hello, checking its form only (nothing here is proved
 * yet). 0 or RPC2_EBADPACKET. */
int sec_server_parse_hello(const uint8_t *in, size_t len, struct sec_hello *out);

/*
 * Verifies proof1 with the secret found for h->identity, then accepts the
 * level and picks a suite from h->suites & server_suites (AES-256-GCM
 * first, see docs/SECURITY.md); derives the session (server side) and
 * writes the reply (SEC_REPLY_LEN bytes) for the BIND_OK. Returns 0;
 * RPC2_EACCES when proof1 fails: the client does not know this secret (or
 * the hello or binding was changed on the way); RPC2_ESECURITY for a level
 * other than auth or encrypt, no common suite, or a weak client key;
 * RPC2_EINVAL for a bad argument (cap below SEC_REPLY_LEN, no server_conn);
 * RPC2_ENOMEM (no memory for the AES-256-GCM contexts; *out then holds
 * nothing to free).
 * Proof1 is checked first, so any error but RPC2_EACCES means the peer
 * knows the secret.
 */
int sec_server_accept(const struct sec_hello *h, const struct sec_psk *psk,
                      const struct sec_binding *b, uint32_t server_conn, unsigned server_suites,
                      struct sec_session *out, uint8_t *reply, size_t cap, size_t *reply_len);

/*
 * The checks of sec_server_accept() without the key exchange: proof1, the
 * level and a common suite, for two BLAKE2b runs. A server runs it before
 * it spends anything on the bind (a connection id, an X25519). The same
 * errors as sec_server_accept().
 */
int sec_server_check(const struct sec_hello *h, const struct sec_psk *psk,
                     const struct sec_binding *b, unsigned server_suites);

/* sec_client_hello() and sec_server_accept() with the randomness given:
 * for test vectors only (see struct sec_rand). rnd NULL: fresh randomness. */
int sec_client_hello_det(struct sec_hs *hs, const char *identity, size_t id_len,
                         const struct sec_psk *psk, int level, unsigned suites,
                         const struct sec_binding *b, uint8_t *out, size_t cap, size_t *len,
                         const struct sec_rand *rnd);
int sec_server_accept_det(const struct sec_hello *h, const struct sec_psk *psk,
                          const struct sec_binding *b, uint32_t server_conn, unsigned server_suites,
                          struct sec_session *out, uint8_t *reply, size_t cap, size_t *reply_len,
                          const struct sec_rand *rnd);

/* ---- the client hello replay cache ----------------------------------------- */

/*
 * Remembers the ephemeral keys (Ce) of accepted hellos for `lifetime`, in
 * fixed memory: a set-associative table of `slots` entries (rounded up to a
 * multiple of 8) where a full set forgets its oldest entry. A server asks
 * sec_replay_seen() before it spends anything on a hello (no key exchange
 * for a replay), and records the hello with sec_replay_check() only once
 * the bind succeeded: so only hellos that proved the secret take a slot
 * (strangers cannot flush the cache or poison a genuine client's hello),
 * and a bind refused for another reason can be retried. A BIND_REQ that is
 * a retransmission of a bind already answered gets the saved BIND_OK
 * again, before any of this.
 */
struct sec_replay_entry {
    uint8_t ce[SEC_PUB_LEN];
    uint64_t seen; /* when; 0: empty */
};
struct sec_replay {
    struct sec_replay_entry *e;
    size_t sets;
    uint64_t lifetime;
    uint8_t hash_key[16];
};

/* 0, RPC2_EINVAL (no slots or no lifetime), RPC2_ENOMEM or RPC2_ESYSTEM (no
 * libsodium). Times are the
 * caller's clock in any unit, the same for lifetime and now; now > 0. */
int sec_replay_init(struct sec_replay *r, size_t slots, uint64_t lifetime);
void sec_replay_dispose(struct sec_replay *r);
/* Whether h's Ce was recorded within the lifetime; changes nothing. */
int sec_replay_seen(const struct sec_replay *r, const struct sec_hello *h, uint64_t now);
/* 0: not seen within the lifetime, now remembered; RPC2_ESECURITY: a replay. */
int sec_replay_check(struct sec_replay *r, const struct sec_hello *h, uint64_t now);

#endif
