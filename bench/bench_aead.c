/*
 * bench_aead.c - how fast each suite protects a datagram, to choose the one
 * a server prefers (docs/SECURITY.md records the figures).
 *
 * For each suite, use and size it times seal-then-open of one datagram in
 * a loop, as the two ends of a connection would, and prints the rate in MB/s
 * of datagram bytes (each datagram counted once, for its seal and its open).
 * The baseline, measured in the same run, is what level "none" costs: the
 * XXH3-64 check written and verified.
 *
 *   use "auth":    an empty message, the whole datagram as additional data
 *   use "encrypt": the body encrypted in place, the header as additional data
 *
 * The suites run as rpc2 runs them: sec_protect() then sec_unprotect() on
 * the two sessions of a real handshake at that level (suite aes256gcm is
 * OpenSSL's EVP, xchacha20poly1305 libsodium's), trailer, packet number,
 * replay window and all. For comparison, libsodium_aes256gcm is the
 * previous AES-256-GCM backend called directly (libsodium's detached API
 * with the key schedule kept, beforenm/afternm): what rpc2 ran before.
 *
 *   bench/bench_aead [--rounds N] [--ms MS]
 * prints one key=value line per case; the figure is the median of N rounds.
 */
#include <rpc2/rpc2.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "packet.h"
#include "secure.h"
/* The same XXH3 entry points as packet.c (see there): the baseline must be
 * what level "none" really costs. */
#if defined(__x86_64__) && defined(__has_include)
#if __has_include(<xxh_x86dispatch.h>)
#include <xxh_x86dispatch.h>
#endif
#endif

#define HDR PKT_HDR_SIZE
#define TAG 16

enum use { AUTH, ENCRYPT };

struct job {
    const char *name;
    /* Protects then verifies buf[0 .. len): returns 0 when the open verified.
     * buf has SEC_TRAILER_LEN bytes of room after len. */
    int (*seal_open)(uint8_t *buf, size_t len, enum use use, uint64_t n);
    unsigned suite; /* through rpc2's sessions at this suite; 0: called directly */
};

static uint8_t key[32];
/* libsodium wants a pointer even for an empty message. */
static uint8_t empty[1];
static crypto_aead_aes256gcm_state gcm_state;
/* The client's and the server's session of the job being measured. */
static struct sec_session tx, rx;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nonce_of(uint8_t *nonce, size_t nonce_len, uint64_t n)
{
    memset(nonce, 0, nonce_len);
    for (int i = 0; i < 8; i++)
        nonce[4 + i] = (uint8_t)(n >> (56 - 8 * i));
}

static int baseline(uint8_t *buf, size_t len, enum use use, uint64_t n)
{
    uint64_t check = XXH3_64bits(buf, len);

    (void)use;
    (void)n;
    return XXH3_64bits(buf, len) == check ? 0 : -1;
}

/* What rpc2 runs: the client seals, the server opens. */
static int session(uint8_t *buf, size_t len, enum use use, uint64_t n)
{
    size_t out;

    (void)use;
    (void)n;
    if (sec_protect(&tx, buf, len, len + SEC_TRAILER_LEN, &out) != 0)
        return -1;
    return sec_unprotect(&rx, buf, out) == SEC_OK ? 0 : -1;
}

static int gcm_pre(uint8_t *buf, size_t len, enum use use, uint64_t n)
{
    uint8_t nonce[12], tag[TAG];
    size_t body = len - HDR;

    nonce_of(nonce, sizeof(nonce), n);
    if (use == AUTH) {
        crypto_aead_aes256gcm_encrypt_detached_afternm(empty, tag, NULL, empty, 0, buf, len, NULL,
                                                       nonce, &gcm_state);
        return crypto_aead_aes256gcm_decrypt_detached_afternm(empty, NULL, empty, 0, tag, buf, len,
                                                              nonce, &gcm_state);
    }
    crypto_aead_aes256gcm_encrypt_detached_afternm(buf + HDR, tag, NULL, buf + HDR, body, buf, HDR,
                                                   NULL, nonce, &gcm_state);
    return crypto_aead_aes256gcm_decrypt_detached_afternm(buf + HDR, NULL, buf + HDR, body, tag,
                                                          buf, HDR, nonce, &gcm_state);
}

/* A handshake at this level and suite: tx is the client's session, rx the
 * server's. */
static void sessions(int level, unsigned suite)
{
    static const struct sec_binding b = {1, 42, 0};
    uint8_t hello[SEC_HELLO_MAX], reply[SEC_REPLY_LEN];
    size_t hello_len, reply_len;
    struct sec_psk psk;
    struct sec_hello h;
    struct sec_hs hs;

    memcpy(psk.key, key, sizeof(psk.key));
    if (sec_client_hello(&hs, "bench", 5, &psk, level, suite, &b, hello, sizeof(hello),
                         &hello_len) != 0 ||
        sec_server_parse_hello(hello, hello_len, &h) != 0 ||
        sec_server_accept(&h, &psk, &b, 2, suite, &rx, reply, sizeof(reply), &reply_len) != 0 ||
        sec_client_finish(&hs, reply, reply_len, 2, &tx) != 0 || tx.suite != suite) {
        fprintf(stderr, "bench_aead: no session at suite %u\n", suite);
        exit(1);
    }
}

/* The header a session wants: this level, this body, a 24-byte trailer. */
static void header(uint8_t *buf, size_t len, int level)
{
    struct pkt_hdr h = {.type = PKT_CALL,
                        .security = (uint8_t)level,
                        .dst_conn = 2,
                        .src_conn = 1,
                        .seq = 1,
                        .body_len = (uint32_t)(len - PKT_HDR_SIZE),
                        .trailer_len = SEC_TRAILER_LEN};

    pkt_hdr_encode(&h, buf);
}

/* One timed round: as many datagrams as fit in `ms` milliseconds. */
static double round_mbps(const struct job *j, uint8_t *buf, size_t len, enum use use, double ms)
{
    double start = now_s(), elapsed;
    uint64_t n = 0;

    do {
        for (int i = 0; i < 64; i++, n++)
            if (j->seal_open(buf, len, use, n) != 0) {
                fprintf(stderr, "bench_aead: %s failed to open its own datagram\n", j->name);
                exit(1);
            }
        elapsed = now_s() - start;
    } while (elapsed * 1000.0 < ms);
    return (double)n * (double)len / elapsed / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* Rounds of the job alternate with rounds of the baseline, so a machine
 * that slows down during the run slows both. */
static void measure(const struct job *j, size_t len, enum use use, int rounds, double ms)
{
    static const struct job base = {"xxh3", baseline, 0};
    double rate[64], ratio[64];
    uint8_t *buf = malloc(len + SEC_TRAILER_LEN);

    if (!buf)
        exit(1);
    randombytes_buf(buf, len);
    if (j->suite) {
        int level = use == AUTH ? RPC2_SEC_AUTH : RPC2_SEC_ENCRYPT;

        sessions(level, j->suite);
        header(buf, len, level);
    }
    for (int r = 0; r < rounds; r++) {
        double b = round_mbps(&base, buf, len, use, ms);

        rate[r] = round_mbps(j, buf, len, use, ms);
        ratio[r] = rate[r] / b;
    }
    qsort(rate, (size_t)rounds, sizeof(rate[0]), cmp_double);
    qsort(ratio, (size_t)rounds, sizeof(ratio[0]), cmp_double);
    printf("suite=%s use=%s size=%zu MBps=%.0f ns_per_packet=%.0f ratio_to_xxh3=%.3f\n", j->name,
           use == AUTH ? "auth" : "encrypt", len, rate[rounds / 2],
           (double)len / rate[rounds / 2] * 1e3, ratio[rounds / 2]);
    fflush(stdout);
    free(buf);
    if (j->suite) {
        sec_session_wipe(&tx);
        sec_session_wipe(&rx);
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_aead [--rounds N (1-63)] [--ms MILLISECONDS]\n");
    exit(1);
}

int main(int argc, char **argv)
{
    static const size_t sizes[] = {1400, 63 * 1024};
    struct job jobs[3];
    size_t n_jobs = 0;
    int rounds = 5;
    double ms = 200;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--ms") == 0 && i + 1 < argc)
            ms = atof(argv[++i]);
        else
            usage();
    }
    if (rounds < 1 || rounds > 63 || ms <= 0)
        usage();
    if (sec_init() != 0)
        return 1;
    randombytes_buf(key, sizeof(key));
    if (sec_suites_available() & SEC_SUITE_AES256GCM) {
        crypto_aead_aes256gcm_beforenm(&gcm_state, key);
        jobs[n_jobs++] = (struct job){"aes256gcm", session, SEC_SUITE_AES256GCM};
        jobs[n_jobs++] = (struct job){"libsodium_aes256gcm", gcm_pre, 0};
    } else {
        printf("suite=aes256gcm available=0 (no AES-NI/PCLMUL on this CPU)\n");
    }
    jobs[n_jobs++] = (struct job){"xchacha20poly1305", session, SEC_SUITE_XCHACHA20};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        measure(&(struct job){"xxh3", baseline, 0}, sizes[s], AUTH, rounds, ms);
        for (int use = AUTH; use <= ENCRYPT; use++)
            for (size_t j = 0; j < n_jobs; j++)
                measure(&jobs[j], sizes[s], (enum use)use, rounds, ms);
    }
    return 0;
}
