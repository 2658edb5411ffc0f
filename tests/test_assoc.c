/*
 * test_assoc.c - rcat's associations files (rcat/assoc.c): a section and
 * its options as rcat will parse them, the lines refused (named by line,
 * wherever they are in the file), the files searched and refused, and
 * @NAME:PATH operands beneath the association's directory.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "assoc.h"
#include "check_run.h"

static struct assoc a;
static char err[ASSOC_ERR_MAX];

static int parse(const char *text, const char *name)
{
    err[0] = '\0';
    return assoc_parse(text, strlen(text), "/cfg/associations", name, &a, err, sizeof err);
}

static const char file[] = "# destinations\n"
                           "[other]\n"
                           "host = elsewhere\n"
                           "\n"
                           "[archive]   # the archive\n"
                           "  host = archive.example.org\n"
                           "port=7755\n"
                           "directory = incoming/reports\n"
                           "identity = ops\n"
                           "key-file = ~/keys/ops.key\n"
                           "security = encrypt\n"
                           "retries = 5\n"
                           "checksum = sha256\n"
                           "mkdirs = yes\n"
                           "preserve = no\n";

START_TEST(a_section_gives_its_destination_and_options)
{
    setenv("HOME", "/home/op", 1);
    ck_assert_int_eq(parse(file, "archive"), 1);
    ck_assert_str_eq(a.host, "archive.example.org");
    ck_assert_str_eq(a.dir, "incoming/reports");
    const char *want[] = {"--port=7755",
                          "--identity=ops",
                          "--key-file=/home/op/keys/ops.key",
                          "--security=encrypt",
                          "--retries=5",
                          "--checksum=sha256",
                          "--mkdirs"};
    ck_assert_int_eq(a.n_opts, (int)(sizeof want / sizeof want[0]));
    for (int i = 0; i < a.n_opts; i++)
        ck_assert_str_eq(a.opts[i], want[i]);
    assoc_dispose(&a);
    ck_assert_int_eq(parse(file, "other"), 1);
    ck_assert_str_eq(a.host, "elsewhere");
    ck_assert_int_eq(a.n_opts, 0);
    assoc_dispose(&a);
    ck_assert_int_eq(parse(file, "missing"), 0);
}
END_TEST

START_TEST(a_relative_key_file_is_beside_the_file)
{
    ck_assert_int_eq(parse("[a]\nhost = h\nkey-file = ops.key\n", "a"), 1);
    ck_assert_str_eq(a.opts[0], "--key-file=/cfg/ops.key");
    assoc_dispose(&a);
    ck_assert_int_eq(parse("[a]\nhost = h\nkey-file = /k/ops.key\n", "a"), 1);
    ck_assert_str_eq(a.opts[0], "--key-file=/k/ops.key");
    assoc_dispose(&a);
}
END_TEST

static const struct {
    const char *text, *why;
} bad[] = {
    {"[a]\nhost = h\npassword = x\n", "line 3: unknown key"},
    {"[b]\nsecret = x\n[a]\nhost = h\n", "line 2: unknown key"}, /* anywhere in the file */
    {"[a]\nhost = h\nmkdirs = maybe\n", "line 3: a flag takes yes or no"},
    {"[a b]\nhost = h\n", "line 1: a section is [NAME]"},
    {"[]\n", "line 1: a section is [NAME]"},
    {"[a]\nhost h\n", "line 2: expected [NAME] or KEY = VALUE"},
    {"[a]\n = h\n", "line 2: a key or value too long, or no key"},
    {"[a]\nhost = h\n[a]\nhost = i\n", "line 3: a second section of the same name"},
    {"[a]\nport = 1\n", "[a] names no host"},
    {"[a]\nhost =\n", "line 2: host is empty"},
};

START_TEST(bad_lines_are_refused)
{
    ck_assert_int_eq(parse(bad[_i].text, "a"), -1);
    ck_assert_msg(strstr(err, bad[_i].why), "%s: got \"%s\"", bad[_i].text, err);
    ck_assert_ptr_nonnull(strstr(err, "/cfg/associations"));
}
END_TEST

START_TEST(operands_name_an_association)
{
    char name[ASSOC_NAME_MAX + 1];
    const char *path, *why;
    struct url u;

    ck_assert_int_eq(assoc_operand("host:path", name, &path, &why), 0);
    ck_assert_int_eq(assoc_operand("./@x:y", name, &path, &why), 0);
    ck_assert_int_eq(assoc_operand("@archive:", name, &path, &why), 1);
    ck_assert_str_eq(name, "archive");
    ck_assert_str_eq(path, "");
    ck_assert_int_eq(assoc_operand("@archive:a/b:c", name, &path, &why), 1);
    ck_assert_str_eq(path, "a/b:c");
    ck_assert_int_eq(assoc_operand("@archive", name, &path, &why), -1);
    ck_assert_int_eq(assoc_operand("@:x", name, &path, &why), -1);
    ck_assert_int_eq(assoc_operand("@a b:x", name, &path, &why), -1);

    ck_assert_int_eq(parse(file, "archive"), 1);
    ck_assert_int_eq(assoc_url(&a, "", 7755, &u, &why), 0);
    ck_assert(u.remote);
    ck_assert_str_eq(u.host, "archive.example.org");
    ck_assert_uint_eq(u.port, 7755);
    ck_assert_str_eq(u.path, "incoming/reports/"); /* --put names the file after the source */
    ck_assert_int_eq(assoc_url(&a, "x/y.csv", 1, &u, &why), 0);
    ck_assert_str_eq(u.path, "incoming/reports/x/y.csv");
    ck_assert_int_eq(assoc_url(&a, "/etc/passwd", 1, &u, &why), -1);
    assoc_dispose(&a);
    ck_assert_int_eq(parse("[r]\nhost = h\n", "r"), 1);
    ck_assert_int_eq(assoc_url(&a, "f", 1, &u, &why), 0);
    ck_assert_str_eq(u.path, "f");
    assoc_dispose(&a);
}
END_TEST

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

START_TEST(the_user_file_then_the_system_one)
{
    char dir[] = "/tmp/test_assoc.XXXXXX", path[256], sub[256];

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(sub, sizeof sub, "%s/rcat", dir);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    snprintf(path, sizeof path, "%s/rcat/associations", dir);
    write_file(path, "[mine]\nhost = h1\n", 0644);
    unsetenv("RCAT_ASSOCIATIONS");
    setenv("XDG_CONFIG_HOME", dir, 1);
    ck_assert_int_eq(assoc_find("mine", &a, err, sizeof err), 1);
    ck_assert_str_eq(a.host, "h1");
    assoc_dispose(&a);
    ck_assert_int_eq(assoc_find("nowhere-at-all", &a, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(err, path));
    ck_assert_ptr_nonnull(strstr(err, ASSOC_SYSTEM_FILE));
    chmod(path, 0664); /* group may write: refused, not skipped */
    ck_assert_int_eq(assoc_find("mine", &a, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "writable by group or others"));
    chmod(path, 0644);
    setenv("RCAT_ASSOCIATIONS", path, 1);
    ck_assert_int_eq(assoc_find("mine", &a, err, sizeof err), 1);
    assoc_dispose(&a);
    setenv("RCAT_ASSOCIATIONS", "/nonexistent/associations", 1);
    ck_assert_int_eq(assoc_find("mine", &a, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/associations: cannot open"));
    unsetenv("RCAT_ASSOCIATIONS");
    unlink(path);
    rmdir(sub);
    rmdir(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("assoc");
    TCase *t = tcase_create("assoc");

    tcase_add_test(t, a_section_gives_its_destination_and_options);
    tcase_add_test(t, a_relative_key_file_is_beside_the_file);
    tcase_add_loop_test(t, bad_lines_are_refused, 0, sizeof bad / sizeof bad[0]);
    tcase_add_test(t, operands_name_an_association);
    tcase_add_test(t, the_user_file_then_the_system_one);
    suite_add_tcase(s, t);
    return check_run(s);
}
