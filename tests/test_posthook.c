/*
 * test_posthook.c - rcatd's hooks file (rcat/posthook.c): the lines it
 * takes and the ones it refuses (one row each, with the line named), which
 * rule a stored file gets, and what its command is given: arguments with
 * %-words replaced and nothing else touched (no shell ever sees them), and
 * the RCAT_* environment.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "posthook.h"
#include "check_run.h"

static struct posthook_rules rules;
static char err[POSTHOOK_ERR_MAX];

static int parse(const char *text)
{
    err[0] = '\0';
    return posthook_parse(&rules, text, strlen(text), "hooks", err, sizeof err);
}

START_TEST(a_file_of_rules_parses)
{
    ck_assert_int_eq(parse("# PATTERN IDENTITY EXIT TIME-LIMIT COMMAND [ARG...]\n"
                           "\n"
                           "private/?*  *  -  -  -   # none here\n"
                           "in/?*.csv * 0 30s /usr/bin/ingest --file %p\n"
                           "*  alice  3  1.5  /bin/x \"two words\" \"q\\\"uote\" 100%%\n"),
                     0);
    ck_assert_uint_eq(rules.n, 3);
    ck_assert_ptr_null(rules.r[0].argv);
    ck_assert_str_eq(rules.r[1].pattern, "in/?*.csv");
    ck_assert_ptr_null(rules.r[1].identity);
    ck_assert_int_eq(rules.r[1].expect_exit, 0);
    ck_assert_uint_eq(rules.r[1].limit_us, 30000000);
    ck_assert_uint_eq(rules.r[1].argc, 3);
    ck_assert_str_eq(rules.r[1].argv[2], "%p");
    ck_assert_uint_eq(rules.r[1].line, 4);
    ck_assert_str_eq(rules.r[2].identity, "alice");
    ck_assert_int_eq(rules.r[2].expect_exit, 3);
    ck_assert_uint_eq(rules.r[2].limit_us, 1500000);
    ck_assert_str_eq(rules.r[2].argv[1], "two words");
    ck_assert_str_eq(rules.r[2].argv[2], "q\"uote");
    posthook_dispose(&rules);
}
END_TEST

static const struct {
    const char *text, *why;
} bad[] = {
    {"a * 0 30s\n", "line 1: expected PATTERN"},
    {"\na * 0 30s bin/x\n", "line 2: COMMAND is not an absolute path"},
    {"a * 256 30s /bin/x\n", "EXIT is not an exit code"},
    {"a * -1 30s /bin/x\n", "EXIT is not an exit code"},
    {"a * 0 0 /bin/x\n", "TIME-LIMIT is not a duration above 0"},
    {"a * 0 soon /bin/x\n", "TIME-LIMIT is not a duration"},
    {"a * 0 30s /bin/x %q\n", "an argument has a %"},
    {"a * 0 30s /bin/x 50%\n", "an argument has a %"},
    {"a * 0 30s /bin/x \"open\n", "a quote not closed"},
    {"a * 0 30s /bin/x \"a\"b\n", "a closing quote not followed by a blank"},
    {"a * 0 30s /bin/x a\"b\n", "a quote inside a word"},
    {"a * 0 30s - \n", "a line without a command"},
    {"a * - - - extra\n", "a line without a command"},
};

START_TEST(bad_lines_are_refused_with_their_line)
{
    ck_assert_int_eq(parse(bad[_i].text), -1);
    ck_assert_msg(strstr(err, bad[_i].why), "%s: got \"%s\"", bad[_i].text, err);
    ck_assert_ptr_nonnull(strstr(err, "hooks: line "));
    ck_assert_uint_eq(rules.n, 0);
}
END_TEST

START_TEST(a_nul_byte_is_refused)
{
    ck_assert_int_eq(posthook_parse(&rules, "a * 0 1 /bin/x\0y\n", 17, "hooks", err, sizeof err),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "line 1: a NUL byte"));
}
END_TEST

START_TEST(the_first_matching_line_decides)
{
    ck_assert_int_eq(parse("private/* * - - -\n"
                           "*.csv bob 0 1 /bin/bob\n"
                           "*.csv * 0 1 /bin/csv\n"
                           "* * 0 1 /bin/all\n"),
                     0);
    ck_assert_ptr_null(posthook_match(&rules, "private/a.csv", "bob"));
    ck_assert_str_eq(posthook_match(&rules, "in/deep/a.csv", "bob")->argv[0], "/bin/bob");
    ck_assert_str_eq(posthook_match(&rules, "a.csv", "alice")->argv[0], "/bin/csv");
    ck_assert_str_eq(posthook_match(&rules, "a.txt", "")->argv[0], "/bin/all");
    posthook_dispose(&rules);
    ck_assert_int_eq(parse("in/* * 0 1 /bin/x\n"), 0);
    ck_assert_ptr_null(posthook_match(&rules, "out/a", "bob"));
    posthook_dispose(&rules);
}
END_TEST

static const char *env_of(char **envp, const char *name)
{
    size_t n = strlen(name);

    for (; *envp; envp++)
        if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
            return *envp + n + 1;
    return NULL;
}

START_TEST(a_command_gets_its_words_untouched)
{
    const char *nasty = "d/$(touch pwned); `x` a b\n\"c\".csv";
    struct posthook_file f = {.abs_path = "/srv/d/file",
                              .rel_path = nasty,
                              .identity = "alice",
                              .peer = "[::1]:4000",
                              .security = "encrypt",
                              .size = 12345,
                              .checksum = "sha256:abcd"};
    char *env_in[] = {"PATH=/usr/bin", "RCAT_PATH=/forged", "HOME=/root", NULL};
    struct posthook_job *job;

    ck_assert_int_eq(parse("* * 7 2m /bin/cmd %r --size=%s %c%% %i@%a %p plain\n"), 0);
    ck_assert_int_eq(posthook_job_new(posthook_match(&rules, nasty, "alice"), &f, env_in, &job), 0);
    ck_assert_str_eq(job->argv[0], "/bin/cmd");
    ck_assert_str_eq(job->argv[1], nasty);
    ck_assert_str_eq(job->argv[2], "--size=12345");
    ck_assert_str_eq(job->argv[3], "sha256:abcd%");
    ck_assert_str_eq(job->argv[4], "alice@[::1]:4000");
    ck_assert_str_eq(job->argv[5], "/srv/d/file");
    ck_assert_str_eq(job->argv[6], "plain");
    ck_assert_ptr_null(job->argv[7]);
    ck_assert_int_eq(job->expect_exit, 7);
    ck_assert_uint_eq(job->limit_us, 120000000);
    ck_assert_str_eq(env_of(job->envp, "PATH"), "/usr/bin");
    ck_assert_str_eq(env_of(job->envp, "RCAT_PATH"), "/srv/d/file"); /* not the forged one */
    ck_assert_str_eq(env_of(job->envp, "RCAT_RELPATH"), nasty);
    ck_assert_str_eq(env_of(job->envp, "RCAT_SIZE"), "12345");
    ck_assert_str_eq(env_of(job->envp, "RCAT_CHECKSUM"), "sha256:abcd");
    ck_assert_str_eq(env_of(job->envp, "RCAT_IDENTITY"), "alice");
    ck_assert_str_eq(env_of(job->envp, "RCAT_PEER"), "[::1]:4000");
    ck_assert_str_eq(env_of(job->envp, "RCAT_SECURITY"), "encrypt");
    size_t forged = 0;
    for (char **e = job->envp; *e; e++)
        forged += strcmp(*e, "RCAT_PATH=/forged") == 0;
    ck_assert_uint_eq(forged, 0);
    posthook_job_free(job);
    posthook_dispose(&rules);
}
END_TEST

START_TEST(a_hooks_file_others_may_write_is_refused)
{
    char path[] = "/tmp/test_posthook.XXXXXX";
    int fd = mkstemp(path);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "* * 0 1 /bin/true\n", 18), 18);
    close(fd);
    chmod(path, 0644);
    ck_assert_int_eq(posthook_load(&rules, path, err, sizeof err), 0);
    ck_assert_uint_eq(rules.n, 1);
    posthook_dispose(&rules);
    chmod(path, 0666);
    ck_assert_int_eq(posthook_load(&rules, path, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "writable by group or others"));
    unlink(path);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("posthook");
    TCase *t = tcase_create("posthook");

    tcase_add_test(t, a_file_of_rules_parses);
    tcase_add_loop_test(t, bad_lines_are_refused_with_their_line, 0, sizeof bad / sizeof bad[0]);
    tcase_add_test(t, a_nul_byte_is_refused);
    tcase_add_test(t, the_first_matching_line_decides);
    tcase_add_test(t, a_command_gets_its_words_untouched);
    tcase_add_test(t, a_hooks_file_others_may_write_is_refused);
    suite_add_tcase(s, t);
    return check_run(s);
}
