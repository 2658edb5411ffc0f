/*
 * bench_aead.c - how fast each candidate suite protects a datagram, to
 * choose the one a server prefers (docs/SECURITY.md records the figures).
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
 * AES-256-GCM runs twice: with the key schedule expanded for every datagram
 * (the plain API) and expanded once (beforenm/afternm), to see whether a
 * session should keep the expanded state.
 *
 *   bench/bench_aead [--rounds N] [--ms MS]
 * prints one key=value line per case; the figure is the median of N rounds.
 */
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>
/* The same XXH3 entry points as packet.c (see there): the baseline must be
 * what level "none" really costs. */
#if defined(__x86_64__) && defined(__has_include)
#if __has_include(<xxh_x86dispatch.h>)
#include <xxh_x86dispatch.h>
#endif
#endif

#define HDR 40
#define TAG 16

enum use { AUTH, ENCRYPT };

struct job {
    const char *name;
    /* Protects then verifies buf[0 .. len): returns 0 when the open verified. */
    int (*seal_open)(uint8_t *buf, size_t len, enum use use, uint64_t n);
};

static uint8_t key[32];
/* libsodium wants a pointer even for an empty message. */
static uint8_t empty[1];
static crypto_aead_aes256gcm_state gcm_state;

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

static int gcm(uint8_t *buf, size_t len, enum use use, uint64_t n)
{
    uint8_t nonce[12], tag[TAG];
    size_t body = len - HDR;

    nonce_of(nonce, sizeof(nonce), n);
    if (use == AUTH) {
        crypto_aead_aes256gcm_encrypt_detached(empty, tag, NULL, empty, 0, buf, len, NULL, nonce,
                                               key);
        return crypto_aead_aes256gcm_decrypt_detached(empty, NULL, empty, 0, tag, buf, len, nonce,
                                                      key);
    }
    crypto_aead_aes256gcm_encrypt_detached(buf + HDR, tag, NULL, buf + HDR, body, buf, HDR, NULL,
                                           nonce, key);
    return crypto_aead_aes256gcm_decrypt_detached(buf + HDR, NULL, buf + HDR, body, tag, buf, HDR,
                                                  nonce, key);
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

static int xchacha(uint8_t *buf, size_t len, enum use use, uint64_t n)
{
    uint8_t nonce[24], tag[TAG];
    size_t body = len - HDR;

    nonce_of(nonce, sizeof(nonce), n);
    if (use == AUTH) {
        crypto_aead_xchacha20poly1305_ietf_encrypt_detached(empty, tag, NULL, empty, 0, buf, len,
                                                            NULL, nonce, key);
        return crypto_aead_xchacha20poly1305_ietf_decrypt_detached(empty, NULL, empty, 0, tag, buf,
                                                                   len, nonce, key);
    }
    crypto_aead_xchacha20poly1305_ietf_encrypt_detached(buf + HDR, tag, NULL, buf + HDR, body, buf,
                                                        HDR, NULL, nonce, key);
    return crypto_aead_xchacha20poly1305_ietf_decrypt_detached(buf + HDR, NULL, buf + HDR, body,
                                                               tag, buf, HDR, nonce, key);
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
    static const struct job base = {"xxh3", baseline};
    double rate[64], ratio[64];
    uint8_t *buf = malloc(len);

    if (!buf)
        exit(1);
    randombytes_buf(buf, len);
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
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_aead [--rounds N (1-63)] [--ms MILLISECONDS]\n");
    exit(1);
}

int main(int argc, char **argv)
{
    static const size_t sizes[] = {1400, 63 * 1024};
    struct job jobs[4];
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
    if (sodium_init() < 0)
        return 1;
    randombytes_buf(key, sizeof(key));
    if (crypto_aead_aes256gcm_is_available()) {
        crypto_aead_aes256gcm_beforenm(&gcm_state, key);
        jobs[n_jobs++] = (struct job){"aes256gcm", gcm};
        jobs[n_jobs++] = (struct job){"aes256gcm_pre", gcm_pre};
    } else {
        printf("suite=aes256gcm available=0 (no AES-NI/PCLMUL on this CPU)\n");
    }
    jobs[n_jobs++] = (struct job){"xchacha20poly1305", xchacha};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        measure(&(struct job){"xxh3", baseline}, sizes[s], AUTH, rounds, ms);
        for (int use = AUTH; use <= ENCRYPT; use++)
            for (size_t j = 0; j < n_jobs; j++)
                measure(&jobs[j], sizes[s], (enum use)use, rounds, ms);
    }
    return 0;
}
