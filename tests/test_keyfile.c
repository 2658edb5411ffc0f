/*
 * test_keyfile.c - unit tests of rpc2/keyfile.c: server and client key
 * files, their permission rule, every kind of bad line, and the promise
 * that no error text ever carries a piece of a secret.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rpc2/rpc2.h>

#include "keyfile.h"
#include "check_run.h"

/* Secrets of alice (bytes 1..32) and bob (bytes 0x41..0x60) in base64. */
#define ALICE_B64 "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="
#define BOB_B64 "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVpbXF1eX2A="
/* 30 and 36 bytes: valid base64 of the wrong length. */
#define SHORT_B64 "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0e"
#define LONG_B64 "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMk"

static char dir[64];
static char path[128];
static char err[KEYFILE_ERR_MAX];

static void setup(void)
{
    strcpy(dir, "/tmp/test_keyfile.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/keys", dir);
}

static void teardown(void)
{
    unlink(path);
    rmdir(dir);
}

static void write_file(const char *text, size_t len, mode_t mode)
{
    FILE *f;

    unlink(path);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(chmod(path, mode), 0);
}

static void write_text(const char *text, mode_t mode)
{
    write_file(text, strlen(text), mode);
}

static int contains(const char *text, const void *needle, size_t n)
{
    for (size_t i = 0; text[i] != '\0'; i++)
        if (strlen(text + i) >= n && memcmp(text + i, needle, n) == 0)
            return 1;
    return 0;
}

/* No 6 characters in a row of any secret used here appear in the error,
 * nor any 4 raw bytes of one. */
static void assert_no_secret(const char *text)
{
    static const char *const secrets[] = {ALICE_B64, BOB_B64, SHORT_B64, LONG_B64};

    for (size_t s = 0; s < sizeof(secrets) / sizeof(secrets[0]); s++)
        for (size_t i = 0; i + 6 <= strlen(secrets[s]); i++)
            ck_assert_msg(!contains(text, secrets[s] + i, 6), "error text quotes a secret: %s",
                          text);
    for (uint8_t b = 1; b + 4 <= 33; b++) {
        const uint8_t raw[4] = {b, (uint8_t)(b + 1), (uint8_t)(b + 2), (uint8_t)(b + 3)};

        ck_assert(!contains(text, raw, 4));
    }
}

/* The server file must be refused with code `want`, an error naming the
 * file (and line, when not 0), and no secret in it. */
static void assert_refused(int want, size_t line)
{
    struct keyfile kf = {(void *)1, 99, 99};
    char where[160];

    ck_assert_int_eq(keyfile_load_server(&kf, path, err, sizeof(err)), want);
    ck_assert_ptr_null(kf.e);
    ck_assert_uint_eq(kf.n, 0);
    if (line)
        snprintf(where, sizeof(where), "%s:%zu: ", path, line);
    else
        snprintf(where, sizeof(where), "%s: ", path);
    ck_assert_msg(strncmp(err, where, strlen(where)) == 0, "error \"%s\" does not start \"%s\"",
                  err, where);
    assert_no_secret(err);
}

/* ---- server files ------------------------------------------------------- */

START_TEST(server_good_file)
{
    struct keyfile kf;
    struct sec_psk alice, bob;
    const struct sec_psk *p;

    ck_assert_int_eq(sec_psk_from_base64(ALICE_B64, strlen(ALICE_B64), &alice), 0);
    ck_assert_int_eq(sec_psk_from_base64(BOB_B64, strlen(BOB_B64), &bob), 0);
    write_text("# rpc2 keys\n"
               "\n"
               "bob " BOB_B64 "\n"
               "   # an indented comment\n"
               "\talice\t\t" ALICE_B64 "   \r\n"
               "   \n"
               "carol@example.org " BOB_B64, /* no final newline */
               0600);
    ck_assert_int_eq(keyfile_load_server(&kf, path, err, sizeof(err)), 0);
    ck_assert_str_eq(err, "");
    ck_assert_uint_eq(kf.n, 3);
    p = keyfile_lookup(&kf, "alice", 5);
    ck_assert_ptr_nonnull(p);
    ck_assert_mem_eq(p->key, alice.key, SEC_KEY_LEN);
    p = keyfile_lookup(&kf, "bob", 3);
    ck_assert_ptr_nonnull(p);
    ck_assert_mem_eq(p->key, bob.key, SEC_KEY_LEN);
    ck_assert_ptr_nonnull(keyfile_lookup(&kf, "carol@example.org", 17));
    ck_assert_ptr_null(keyfile_lookup(&kf, "alic", 4));
    ck_assert_ptr_null(keyfile_lookup(&kf, "alicee", 6));
    ck_assert_ptr_null(keyfile_lookup(&kf, "mallory", 7));
    ck_assert_ptr_null(keyfile_lookup(&kf, "", 0));
    keyfile_dispose(&kf);
    ck_assert_ptr_null(kf.e);
    ck_assert_uint_eq(kf.n, 0);
    ck_assert_ptr_null(keyfile_lookup(&kf, "alice", 5));
}
END_TEST

START_TEST(server_empty_file)
{
    struct keyfile kf;

    write_text("# nobody yet\n\n", 0600);
    ck_assert_int_eq(keyfile_load_server(&kf, path, err, sizeof(err)), 0);
    ck_assert_uint_eq(kf.n, 0);
    ck_assert_ptr_null(keyfile_lookup(&kf, "alice", 5));
    keyfile_dispose(&kf);
}
END_TEST

START_TEST(server_many_identities)
{
    static char text[2000 * 64];
    struct keyfile kf;
    size_t len = 0;
    char id[16];

    for (int i = 0; i < 2000; i++)
        len += (size_t)sprintf(text + len, "user%d %s\n", (i * 7919) % 2000, ALICE_B64);
    write_file(text, len, 0600);
    ck_assert_int_eq(keyfile_load_server(&kf, path, err, sizeof(err)), 0);
    ck_assert_uint_eq(kf.n, 2000);
    for (int i = 0; i < 2000; i++) {
        int n = sprintf(id, "user%d", i);

        ck_assert_ptr_nonnull(keyfile_lookup(&kf, id, (size_t)n));
    }
    keyfile_dispose(&kf);
}
END_TEST

/* Mode bits that let group or others read or write are refused. */
START_TEST(server_bad_permissions)
{
    static const mode_t bad[] = {0644, 0640, 0604, 0620, 0602, 0666, 0660};
    struct keyfile kf;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char mode[16];

        write_text("alice " ALICE_B64 "\n", bad[i]);
        assert_refused(RPC2_EACCES, 0);
        snprintf(mode, sizeof(mode), "mode %04o", (unsigned)bad[i]);
        ck_assert_msg(strstr(err, mode) && strstr(err, "chmod 600"), "%s", err);
    }
    /* Owner-only modes, and execute bits alone, are fine. */
    for (mode_t m = 0400; m <= 0700; m += 0100) {
        write_text("alice " ALICE_B64 "\n", m | 0011);
        ck_assert_int_eq(keyfile_load_server(&kf, path, err, sizeof(err)), 0);
        keyfile_dispose(&kf);
    }
}
END_TEST

/* Only root can give a file away; as another user the test has nothing to try. */
START_TEST(server_other_owner)
{
    if (geteuid() != 0)
        return;
    write_text("alice " ALICE_B64 "\n", 0600);
    ck_assert_int_eq(chown(path, 65534, 65534), 0);
    assert_refused(RPC2_EACCES, 0);
    ck_assert_ptr_nonnull(strstr(err, "owned by uid 65534"));
}
END_TEST

START_TEST(server_duplicate_identity)
{
    write_text("alice " ALICE_B64 "\nbob " BOB_B64 "\nalice " BOB_B64 "\n", 0600);
    assert_refused(RPC2_EINVAL, 3);
    ck_assert_ptr_nonnull(strstr(err, "already listed on line 1"));
    ck_assert_ptr_null(strstr(err, "alice"));
}
END_TEST

static const struct {
    const char *text;
    size_t line;
    const char *says;
} bad_lines[] = {
    {"alice " ALICE_B64 "\nbob\n", 2, "found 1 word"},
    {ALICE_B64 "\n", 1, "found 1 word"}, /* a secret with no identity */
    {"alice " ALICE_B64 " extra\n", 1, "found 3 words"},
    {"alice " ALICE_B64 " # comment\n", 1, "found 4 words"},
    {"# ok\nalice " SHORT_B64 "\n", 2, "is 30 bytes, not 32"},
    {"alice " LONG_B64 "\n", 1, "is 36 bytes, not 32"},
    {"alice " LONG_B64 LONG_B64 "\n", 1, "longer than 32 bytes"},
    {"alice AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA\n", 1, "not valid base64"},
    {"alice AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYG*obHB0eHyA=\n", 1, "not valid base64"},
    {"alice AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA==\n", 1, "not valid base64"},
    {"alice AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=\xff\n", 1, "not valid base64"},
    {"al\x01ice " ALICE_B64 "\n", 1, "identity"},
    {"alice\v " ALICE_B64 "\n", 1, "identity"},
};

START_TEST(server_bad_line)
{
    write_text(bad_lines[_i].text, 0600);
    assert_refused(RPC2_EINVAL, bad_lines[_i].line);
    ck_assert_msg(strstr(err, bad_lines[_i].says), "case %d: %s", _i, err);
}
END_TEST

START_TEST(server_identity_too_long)
{
    char text[512];

    memset(text, 'x', 256);
    sprintf(text + 256, " %s\n", ALICE_B64);
    write_text(text, 0600);
    assert_refused(RPC2_EINVAL, 1);
    text[255] = ' ';
    text[256] = '\0';
    strcat(text, ALICE_B64 "\n"); /* 255 bytes: fine */
    write_text(text, 0600);
    {
        struct keyfile kf;

        ck_assert_int_eq(keyfile_load_server(&kf, path, err, sizeof(err)), 0);
        keyfile_dispose(&kf);
    }
}
END_TEST

START_TEST(server_nul_byte_refused)
{
    static const char text[] = "alice " ALICE_B64 "\nb\0b " BOB_B64 "\n";

    write_file(text, sizeof(text) - 1, 0600);
    assert_refused(RPC2_EINVAL, 2);
}
END_TEST

START_TEST(server_missing_or_odd_file)
{
    struct keyfile kf;

    ck_assert_int_eq(keyfile_load_server(&kf, path, err, sizeof(err)), RPC2_ENOENT);
    ck_assert_ptr_nonnull(strstr(err, path));
    ck_assert_int_eq(keyfile_load_server(&kf, dir, err, sizeof(err)), RPC2_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
    ck_assert_int_eq(keyfile_load_server(&kf, NULL, err, sizeof(err)), RPC2_EINVAL);
    /* err may be NULL. */
    ck_assert_int_eq(keyfile_load_server(&kf, path, NULL, 0), RPC2_ENOENT);
}
END_TEST

START_TEST(server_too_large)
{
    size_t len = KEYFILE_MAX_SIZE + 1;
    char *text = malloc(len);

    ck_assert_ptr_nonnull(text);
    memset(text, '\n', len);
    write_file(text, len, 0600);
    free(text);
    assert_refused(RPC2_EINVAL, 0);
    ck_assert_ptr_nonnull(strstr(err, "larger than"));
}
END_TEST

/* A FIFO at the path: refused at once, not read until a writer comes (a
 * server's SIGHUP would hang in the open; Check's timeout fails the test). */
START_TEST(server_fifo_refused)
{
    struct keyfile kf;
    struct sec_psk psk;

    ck_assert_int_eq(mkfifo(path, 0600), 0);
    ck_assert_int_eq(keyfile_load_server(&kf, path, err, sizeof(err)), RPC2_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
    ck_assert_int_eq(keyfile_load_client(&psk, path, err, sizeof(err)), RPC2_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
}
END_TEST

static int all_zero(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

/* What a parse read is wiped, whatever its outcome: the text, and on
 * failure the entries already decoded (the loader's buffer is this one). */
START_TEST(parse_wipes_text)
{
    static const char *const texts[] = {
        "alice " ALICE_B64 "\nbob " BOB_B64 "\n",                  /* loads */
        "alice " ALICE_B64 "\nbob " BOB_B64 "\nbad line here x\n", /* a bad third line */
        "bob " BOB_B64 "\nalice " ALICE_B64 "\nbob " BOB_B64 "\n", /* a duplicate, after sorting */
        "alice " ALICE_B64 "\nbob " SHORT_B64 "\n",                /* a bad secret */
    };
    const char *t = texts[_i];
    char *buf = strdup(t);
    struct keyfile kf;
    int rc;

    ck_assert_ptr_nonnull(buf);
    rc = keyfile_parse_server(&kf, buf, strlen(t), "mem", err, sizeof(err));
    ck_assert_int_eq(rc, _i == 0 ? 0 : RPC2_EINVAL);
    ck_assert_msg(all_zero(buf, strlen(t)), "text %d not wiped", _i);
    if (rc == 0) {
        ck_assert_uint_eq(kf.n, 2);
        ck_assert_ptr_nonnull(keyfile_lookup(&kf, "alice", 5));
        ck_assert_ptr_nonnull(keyfile_lookup(&kf, "bob", 3));
        keyfile_dispose(&kf);
    } else {
        ck_assert_ptr_null(kf.e);
        ck_assert_uint_eq(kf.n, 0);
    }
    assert_no_secret(err);
    free(buf);
}
END_TEST

/* A short error buffer truncates, never overflows. */
START_TEST(short_error_buffer)
{
    struct keyfile kf;
    char small[8];

    memset(small, 'Z', sizeof(small));
    write_text("alice " ALICE_B64 "\n", 0644);
    ck_assert_int_eq(keyfile_load_server(&kf, path, small, 5), RPC2_EACCES);
    ck_assert_uint_eq(strlen(small), 4);
    ck_assert_int_eq(small[5], 'Z');
}
END_TEST

/* ---- client files ---------------------------------------------------------- */

START_TEST(client_good_files)
{
    static const char *const texts[] = {ALICE_B64, ALICE_B64 "\n", ALICE_B64 "\r\n",
                                        ALICE_B64 "  \n\n"};
    struct sec_psk want, psk;

    ck_assert_int_eq(sec_psk_from_base64(ALICE_B64, strlen(ALICE_B64), &want), 0);
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        memset(&psk, 0, sizeof(psk));
        write_text(texts[i], 0600);
        ck_assert_int_eq(keyfile_load_client(&psk, path, err, sizeof(err)), 0);
        ck_assert_mem_eq(psk.key, want.key, SEC_KEY_LEN);
    }
}
END_TEST

static void assert_client_refused(const char *text, mode_t mode, int want, const char *says)
{
    struct sec_psk psk;

    memset(&psk, 0x5a, sizeof(psk));
    write_text(text, mode);
    ck_assert_int_eq(keyfile_load_client(&psk, path, err, sizeof(err)), want);
    ck_assert_msg(strncmp(err, path, strlen(path)) == 0, "%s", err);
    ck_assert_msg(strstr(err, says), "\"%s\" does not say \"%s\"", err, says);
    assert_no_secret(err);
    for (int i = 0; i < SEC_KEY_LEN; i++)
        ck_assert_int_eq(psk.key[i], 0x5a); /* untouched */
}

START_TEST(client_bad_files)
{
    assert_client_refused(ALICE_B64 "\n", 0644, RPC2_EACCES, "chmod 600");
    assert_client_refused(ALICE_B64 "\n", 0660, RPC2_EACCES, "mode 0660");
    assert_client_refused("", 0600, RPC2_EINVAL, "empty");
    assert_client_refused("\n\n", 0600, RPC2_EINVAL, "empty");
    assert_client_refused(SHORT_B64 "\n", 0600, RPC2_EINVAL, "is 30 bytes, not 32");
    assert_client_refused(LONG_B64 "\n", 0600, RPC2_EINVAL, "is 36 bytes, not 32");
    assert_client_refused(LONG_B64 LONG_B64, 0600, RPC2_EINVAL, "longer than 32");
    assert_client_refused("alice " ALICE_B64 "\n", 0600, RPC2_EINVAL, "not valid base64");
    assert_client_refused(ALICE_B64 "\nAQID\n", 0600, RPC2_EINVAL, "not valid base64");
}
END_TEST

static Suite *keyfile_suite(void)
{
    Suite *s = suite_create("keyfile");
    TCase *server = tcase_create("server"), *client = tcase_create("client");

    tcase_add_checked_fixture(server, setup, teardown);
    tcase_add_test(server, server_good_file);
    tcase_add_test(server, server_empty_file);
    tcase_add_test(server, server_many_identities);
    tcase_add_test(server, server_bad_permissions);
    tcase_add_test(server, server_other_owner);
    tcase_add_test(server, server_duplicate_identity);
    tcase_add_loop_test(server, server_bad_line, 0,
                        (int)(sizeof(bad_lines) / sizeof(bad_lines[0])));
    tcase_add_test(server, server_identity_too_long);
    tcase_add_test(server, server_nul_byte_refused);
    tcase_add_test(server, server_missing_or_odd_file);
    tcase_add_test(server, server_too_large);
    tcase_add_test(server, short_error_buffer);
    tcase_add_test(server, server_fifo_refused);
    tcase_add_loop_test(server, parse_wipes_text, 0, 4);
    suite_add_tcase(s, server);

    tcase_add_checked_fixture(client, setup, teardown);
    tcase_add_test(client, client_good_files);
    tcase_add_test(client, client_bad_files);
    suite_add_tcase(s, client);
    return s;
}

int main(void)
{
    return check_run(keyfile_suite());
}
