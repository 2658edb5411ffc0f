/*
 * test_kat.c - known answers from the standards, for every primitive the
 * secure connections use, run through the calls secure.c makes.
 *
 * test_secure checks the handshake and the sealing against vectors the
 * code itself printed (kept in docs/PROTOCOL.md): they catch a change, but
 * not a primitive used wrongly from the start (a nonce laid out wrongly, a
 * key length passed as the tag's, additional data dropped). These come
 * from outside: RFC 7748 (X25519), the GCM specification's AES-256 test
 * cases (McGrew and Viega; NIST SP 800-38D), draft-irtf-cfrg-xchacha-03
 * (XChaCha20-Poly1305) and RFC 7693 with the BLAKE2 reference KAT
 * (BLAKE2b, keyed and not). Each vector is also refused when one bit of its
 * ciphertext, tag or additional data is changed.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "secure.h"
#include "check_run.h"

/* Hex to bytes; the vectors are well-formed, so a bad one is a test bug. */
static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex) / 2;
    ck_assert_uint_le(n, cap);
    ck_assert_uint_eq(strlen(hex) % 2, 0);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    return n;
}

static void expect_hex(const uint8_t *got, size_t n, const char *want, const char *what)
{
    uint8_t w[256];
    size_t wn = unhex(want, w, sizeof w);
    ck_assert_msg(wn == n && memcmp(got, w, n) == 0, "%s: not the standard's answer", what);
}

/* ---- X25519, RFC 7748 -------------------------------------------------------- */

/* Section 5.2: the scalar multiplication itself (crypto_scalarmult, as the
 * server and the client call it on the peer's ephemeral key). */
static const struct {
    const char *scalar, *u, *out;
} x25519_52[] = {
    {"a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
     "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
     "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"},
    {"4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
     "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
     "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"},
};

START_TEST(x25519_rfc7748_scalarmult)
{
    uint8_t k[32], u[32], out[32];

    unhex(x25519_52[_i].scalar, k, sizeof k);
    unhex(x25519_52[_i].u, u, sizeof u);
    ck_assert_int_eq(crypto_scalarmult(out, k, u), 0);
    expect_hex(out, sizeof out, x25519_52[_i].out, "X25519 5.2");
}
END_TEST

/* Section 6.1: both public keys (crypto_scalarmult_base, as ephemeral()
 * makes them) and the shared secret both sides reach. */
START_TEST(x25519_rfc7748_diffie_hellman)
{
    uint8_t a[32], b[32], a_pub[32], b_pub[32], k_ab[32], k_ba[32];

    unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", a, sizeof a);
    unhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb", b, sizeof b);
    ck_assert_int_eq(crypto_scalarmult_base(a_pub, a), 0);
    ck_assert_int_eq(crypto_scalarmult_base(b_pub, b), 0);
    expect_hex(a_pub, 32, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
               "Alice's public key");
    expect_hex(b_pub, 32, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
               "Bob's public key");
    ck_assert_int_eq(crypto_scalarmult(k_ab, a, b_pub), 0);
    ck_assert_int_eq(crypto_scalarmult(k_ba, b, a_pub), 0);
    expect_hex(k_ab, 32, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
               "shared secret (Alice)");
    expect_hex(k_ba, 32, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
               "shared secret (Bob)");
}
END_TEST

/* ---- the AEADs, through sec_kat_aead (aead_seal/aead_open) ------------------ */

struct aead_vector {
    const char *name;
    unsigned suite;
    const char *key, *nonce, *ad, *plain, *cipher, *tag;
};

#define GCM_P60                                                                                    \
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e24"     \
    "49a6b525b16aedf5aa0de657ba637b39"
#define GCM_C60                                                                                    \
    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b10"     \
    "56828838c5f61e6393ba7a0abcc9f662"
#define GCM_K "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"
#define ZERO32 "0000000000000000000000000000000000000000000000000000000000000000"
#define LADIES                                                                                     \
    "4c616469657320616e642047656e746c656d656e206f662074686520636c617373206f66202739393a20496620"   \
    "4920636f756c64206f6666657220796f75206f6e6c79206f6e652074697020666f7220746865206675747572"     \
    "652c2073756e73637265656e20776f756c642062652069742e"

static const struct aead_vector aead_vectors[] = {
    {"AES-256-GCM test case 13 (empty)", SEC_SUITE_AES256GCM, ZERO32, "000000000000000000000000",
     "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    {"AES-256-GCM test case 14", SEC_SUITE_AES256GCM, ZERO32, "000000000000000000000000", "",
     "00000000000000000000000000000000", "cea7403d4d606b6e074ec5d3baf39d18",
     "d0d1c8a799996bf0265b98b5d48ab919"},
    {"AES-256-GCM test case 15", SEC_SUITE_AES256GCM, GCM_K, "cafebabefacedbaddecaf888", "",
     GCM_P60 "1aafd255", GCM_C60 "898015ad", "b094dac5d93471bdec1a502270e3cc6c"},
    {"AES-256-GCM test case 16 (additional data)", SEC_SUITE_AES256GCM, GCM_K,
     "cafebabefacedbaddecaf888", "feedfacedeadbeeffeedfacedeadbeefabaddad2", GCM_P60, GCM_C60,
     "76fc6ece0f4e1768cddf8853bb2d551b"},
    {"XChaCha20-Poly1305 draft-irtf-cfrg-xchacha-03 A.3.1", SEC_SUITE_XCHACHA20,
     "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
     "404142434445464748494a4b4c4d4e4f5051525354555657", "50515253c0c1c2c3c4c5c6c7", LADIES,
     "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f"
     "4eda7e39ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f"
     "76b2383565d3fff921f9664c97637da9768812f615c68b13b52e",
     "c0875924c1c7987947deafd8780acf49"},
};
#define N_AEAD (sizeof aead_vectors / sizeof aead_vectors[0])

struct aead_case {
    uint8_t key[32], nonce[24], ad[64], plain[256], cipher[256], tag[16];
    size_t ad_len, len;
};

static void load(const struct aead_vector *v, struct aead_case *c)
{
    memset(c, 0, sizeof *c);
    unhex(v->key, c->key, sizeof c->key);
    unhex(v->nonce, c->nonce, sizeof c->nonce);
    c->ad_len = unhex(v->ad, c->ad, sizeof c->ad);
    c->len = unhex(v->plain, c->plain, sizeof c->plain);
    ck_assert_uint_eq(unhex(v->cipher, c->cipher, sizeof c->cipher), c->len);
    unhex(v->tag, c->tag, sizeof c->tag);
}

START_TEST(aead_seals_the_vector)
{
    const struct aead_vector *v = &aead_vectors[_i];
    struct aead_case c;
    uint8_t m[256], tag[16];

    load(v, &c);
    memcpy(m, c.plain, c.len);
    ck_assert_int_eq(sec_kat_aead(1, v->suite, c.key, c.nonce, m, c.len, c.ad, c.ad_len, tag), 0);
    ck_assert_msg(memcmp(m, c.cipher, c.len) == 0, "%s: ciphertext", v->name);
    ck_assert_msg(memcmp(tag, c.tag, 16) == 0, "%s: tag", v->name);
}
END_TEST

START_TEST(aead_opens_the_vector)
{
    const struct aead_vector *v = &aead_vectors[_i];
    struct aead_case c;
    uint8_t m[256];

    load(v, &c);
    memcpy(m, c.cipher, c.len);
    ck_assert_msg(sec_kat_aead(0, v->suite, c.key, c.nonce, m, c.len, c.ad, c.ad_len, c.tag) == 0,
                  "%s: refused", v->name);
    ck_assert_msg(memcmp(m, c.plain, c.len) == 0, "%s: plaintext", v->name);
}
END_TEST

/* One bit changed anywhere the tag covers: refused. */
START_TEST(aead_refuses_each_changed_bit)
{
    const struct aead_vector *v = &aead_vectors[_i];
    struct aead_case c;
    uint8_t m[256], ad[64], tag[16];

    load(v, &c);
    size_t bits = 8 * (c.len + c.ad_len + 16);
    for (size_t b = 0; b < bits; b += 7) { /* every seventh: all bytes, every bit position */
        memcpy(m, c.cipher, c.len);
        memcpy(ad, c.ad, c.ad_len);
        memcpy(tag, c.tag, 16);
        size_t byte = b / 8;
        uint8_t flip = (uint8_t)(1u << (b % 8));
        if (byte < c.len)
            m[byte] ^= flip;
        else if (byte < c.len + c.ad_len)
            ad[byte - c.len] ^= flip;
        else
            tag[byte - c.len - c.ad_len] ^= flip;
        ck_assert_msg(sec_kat_aead(0, v->suite, c.key, c.nonce, m, c.len, ad, c.ad_len, tag) != 0,
                      "%s: bit %zu changed and still accepted", v->name, b);
    }
}
END_TEST

/* ---- BLAKE2b, RFC 7693 and the BLAKE2 reference KAT ------------------------ */

START_TEST(blake2b_rfc7693_abc)
{
    uint8_t out[64];

    sec_kat_blake2b(out, sizeof out, NULL, 0, (const uint8_t *)"abc", 3);
    expect_hex(out, sizeof out,
               "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
               "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923",
               "BLAKE2b-512(\"abc\")");
}
END_TEST

/* The reference KAT: key 00..3f, input 00..(n-1). */
START_TEST(blake2b_keyed_reference_kat)
{
    uint8_t key[64], in[2], out[64];

    for (int i = 0; i < 64; i++)
        key[i] = (uint8_t)i;
    in[0] = 0;
    sec_kat_blake2b(out, sizeof out, key, sizeof key, in, 0);
    expect_hex(out, sizeof out,
               "10ebb67700b1868efb4417987acf4690ae9d972fb7a590c2f02871799aaa4786"
               "b5e996e8f0f4eb981fc214b005f42d2ff4233499391653df7aefcbc13fc51568",
               "keyed BLAKE2b, empty input");
    sec_kat_blake2b(out, sizeof out, key, sizeof key, in, 1);
    expect_hex(out, sizeof out,
               "961f6dd1e4dd30f63901690c512e78e4b45e4742ed197c3c5e45c549fd25f2e4"
               "187b0bc9fe30492b16b0d0bc4ef9b0f34c7003fac09a5ef1532e69430234cebd",
               "keyed BLAKE2b, one byte");
}
END_TEST

static Suite *kat_suite(void)
{
    Suite *s = suite_create("kat");
    TCase *t = tcase_create("standards");

    tcase_add_loop_test(t, x25519_rfc7748_scalarmult, 0,
                        (int)(sizeof x25519_52 / sizeof x25519_52[0]));
    tcase_add_test(t, x25519_rfc7748_diffie_hellman);
    tcase_add_loop_test(t, aead_seals_the_vector, 0, (int)N_AEAD);
    tcase_add_loop_test(t, aead_opens_the_vector, 0, (int)N_AEAD);
    tcase_add_loop_test(t, aead_refuses_each_changed_bit, 0, (int)N_AEAD);
    tcase_add_test(t, blake2b_rfc7693_abc);
    tcase_add_test(t, blake2b_keyed_reference_kat);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    if (sodium_init() < 0)
        return EXIT_FAILURE;
    return check_run(kat_suite());
}
