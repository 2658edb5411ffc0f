/*
 * test_duration.c - every form a duration option takes, and every refusal
 * (rcat/duration.c): one row each.
 */
#include <check.h>
#include <stdlib.h>

#include "duration.h"
#include "check_run.h"

#define S DURATION_US_PER_S

static const struct {
    const char *text;
    uint64_t us;
} good[] = {
    {"30", 30 * S},     {"0", 0},
    {"1.5", 1500000},   {"0.001", 1000},
    {".5", 500000},     {"90s", 90 * S},
    {"5m", 300 * S},    {"2h", 7200 * S},
    {"1d", 86400 * S},  {"1.5m", 90 * S},
    {"0.25h", 900 * S}, {"007", 7 * S},
    {"0.0000001", 0},   {"36500d", DURATION_MAX_US},
};

static const char *const bad[] = {
    "",
    "s",
    "-5",
    "+5",
    " 5",
    "5 ",
    "5x",
    "5ms",
    "1e3",
    "0x10",
    "inf",
    "nan",
    "5..",
    "5.5.5",
    "1m30s",
    "36501d",
    "99999999999999999999",
    "m5",
};

START_TEST(durations_parse)
{
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint64_t us = 12345;

        ck_assert_msg(duration_parse(good[i].text, &us) == 0, "'%s' refused", good[i].text);
        ck_assert_msg(us == good[i].us, "'%s' gave %llu us", good[i].text, (unsigned long long)us);
    }
}
END_TEST

START_TEST(non_durations_are_refused)
{
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t us = 12345;

        ck_assert_msg(duration_parse(bad[i], &us) == -1, "'%s' accepted", bad[i]);
        ck_assert_msg(us == 12345, "'%s' changed the output", bad[i]);
    }
    ck_assert_int_eq(duration_parse(NULL, NULL), -1);
}
END_TEST

START_TEST(durations_format_for_messages)
{
    char t[32];

    duration_format(1500000, t, sizeof t);
    ck_assert_str_eq(t, "1.5 s");
    duration_format(300 * S, t, sizeof t);
    ck_assert_str_eq(t, "5 min");
    duration_format(7200 * S, t, sizeof t);
    ck_assert_str_eq(t, "2 h");
    duration_format(90 * S, t, sizeof t);
    ck_assert_str_eq(t, "90 s");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("duration");
    TCase *t = tcase_create("duration");

    tcase_add_test(t, durations_parse);
    tcase_add_test(t, non_durations_are_refused);
    tcase_add_test(t, durations_format_for_messages);
    suite_add_tcase(s, t);
    return check_run(s);
}
