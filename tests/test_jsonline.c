/*
 * test_jsonline.c - a string field read back from an event line
 * (rcat/jsonline.c): the lines rcat itself writes, every escape, and every
 * line that is not a flat object refused rather than half read.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "jsonline.h"
#include "check_run.h"

static const char error_line[] =
    "{\"Type\":\"ERROR\",\"Code\":3,\"Error\":\"RPC2_EBUSY\",\"Description\":\"busy on server: "
    "another transfer of \\\"up\\\" is still running\",\"File\":\"up\",\"ArgIndex\":1}";

START_TEST(fields_of_an_error_event)
{
    char v[256];

    ck_assert_int_eq(jsonline_str(error_line, "Type", v, sizeof v), 1);
    ck_assert_str_eq(v, "ERROR");
    ck_assert_int_eq(jsonline_str(error_line, "Error", v, sizeof v), 1);
    ck_assert_str_eq(v, "RPC2_EBUSY");
    ck_assert_int_eq(jsonline_str(error_line, "Description", v, sizeof v), 1);
    ck_assert_str_eq(v, "busy on server: another transfer of \"up\" is still running");
    /* a number is no string, an absent key is absent, values are not keys */
    ck_assert_int_eq(jsonline_str(error_line, "Code", v, sizeof v), 0);
    ck_assert_int_eq(jsonline_str(error_line, "Size", v, sizeof v), 0);
    ck_assert_int_eq(jsonline_str(error_line, "ERROR", v, sizeof v), 0);
    ck_assert_str_eq(v, "");
}
END_TEST

START_TEST(escapes_are_undone)
{
    char v[64];

    ck_assert_int_eq(jsonline_str("{\"k\":\"a\\\\b\\/c\\n\\t\\u0001\"}", "k", v, sizeof v), 1);
    ck_assert_str_eq(v, "a\\b/c\n\t\x01");
    ck_assert_int_eq(jsonline_str("{\"k\":\"\\u00e9\\u20ac\\ud83d\\ude00\"}", "k", v, sizeof v), 1);
    ck_assert_str_eq(v, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"); /* é € 😀 */
    ck_assert_int_eq(jsonline_str("{\"k\":\"\\ud83dx\"}", "k", v, sizeof v), 1);
    ck_assert_str_eq(v, "\xef\xbf\xbdx"); /* a lone surrogate half: U+FFFD */
    ck_assert_int_eq(jsonline_str("{\"k\":\"caf\xc3\xa9\"}", "k", v, sizeof v), 1);
    ck_assert_str_eq(v, "caf\xc3\xa9");
    ck_assert_int_eq(jsonline_str(" { \"n\" : 5 , \"k\" : \"x\" } \n", "k", v, sizeof v), 1);
    ck_assert_str_eq(v, "x");
    ck_assert_int_eq(jsonline_str("{\"k\":\"first\",\"k\":\"second\"}", "k", v, sizeof v), 1);
    ck_assert_str_eq(v, "first");
    ck_assert_int_eq(jsonline_str("{}", "k", v, sizeof v), 0);
}
END_TEST

START_TEST(what_is_not_a_flat_object_is_refused)
{
    static const char *const bad[] = {
        "",
        "rcat: up: busy on server",
        "[\"k\",\"v\"]",
        "{\"k\":\"v\"",              /* cut off */
        "{\"k\":\"v}",               /* unclosed string */
        "{\"k\":\"v\",}",            /* a comma before the end */
        "{\"k\" \"v\"}",             /* no colon */
        "{\"k\":{\"Error\":\"x\"}}", /* nested */
        "{\"k\":[1]}",               /* an array */
        "{\"k\":\"v\"} trailing",    /* more after the object */
        "{\"k\":\"a\\qb\"}",         /* no such escape */
        "{\"k\":\"\\u12\"}",         /* a short \u */
        "{\"k\":\"a\tb\"}",          /* a raw control character */
        "{\"k\":\"v\",\"n\":}",      /* no value */
        "{k:\"v\"}",                 /* a bare key */
    };
    char v[64];

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(jsonline_str(bad[i], "k", v, sizeof v) == -1, "accepted: %s", bad[i]);
    /* a value that does not fit is refused, not cut */
    ck_assert_int_eq(jsonline_str("{\"k\":\"0123456789\"}", "k", v, 10), -1);
    ck_assert_int_eq(jsonline_str("{\"k\":\"012345678\"}", "k", v, 10), 1);
    ck_assert_int_eq(jsonline_str("{\"k\":\"v\"}", "k", v, 0), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("jsonline");
    TCase *t = tcase_create("jsonline");

    tcase_add_test(t, fields_of_an_error_event);
    tcase_add_test(t, escapes_are_undone);
    tcase_add_test(t, what_is_not_a_flat_object_is_refused);
    suite_add_tcase(s, t);
    return check_run(s);
}
