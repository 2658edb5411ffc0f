/*
 * test_errors.c - the error list: every code has its own name and text,
 * codes are unique and negative (0 is success), and codes outside the list
 * still get a string, never NULL; every name reads back as its code.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <rpc2/rpc2.h>

#include "check_run.h"

static const int codes[] = {
#define CODE(name, value, text) value,
    RPC2_ERRORS(CODE)
#undef CODE
};
#define N_CODES (sizeof codes / sizeof codes[0])

START_TEST(codes_are_unique_and_named)
{
    for (size_t i = 0; i < N_CODES; i++) {
        ck_assert_int_le(codes[i], 0);
        ck_assert_str_ne(rpc2_errname(codes[i]), "RPC2_UNKNOWN");
        ck_assert_str_ne(rpc2_strerror(codes[i]), "unknown error");
        ck_assert_int_eq(rpc2_errcode(rpc2_errname(codes[i])), codes[i]);
        for (size_t j = 0; j < i; j++) {
            ck_assert_int_ne(codes[i], codes[j]);
            ck_assert_str_ne(rpc2_strerror(codes[i]), rpc2_strerror(codes[j]));
        }
    }
}
END_TEST

START_TEST(known_names_and_strangers)
{
    ck_assert_str_eq(rpc2_errname(RPC2_EDEAD), "RPC2_EDEAD");
    ck_assert_str_eq(rpc2_errname(RPC2_OK), "RPC2_OK");
    ck_assert_str_eq(rpc2_errname(-9999), "RPC2_UNKNOWN");
    ck_assert_str_eq(rpc2_strerror(-9999), "unknown error");
    ck_assert_str_eq(rpc2_strerror(42), "application error");
    ck_assert_int_eq(rpc2_errcode("RPC2_EBUSY"), RPC2_EBUSY);
    ck_assert_int_eq(rpc2_errcode("RPC2_UNKNOWN"), RPC2_EINVAL);
    ck_assert_int_eq(rpc2_errcode("rpc2_ebusy"), RPC2_EINVAL);
    ck_assert_int_eq(rpc2_errcode("RPC2_EBUSYX"), RPC2_EINVAL);
    ck_assert_int_eq(rpc2_errcode(""), RPC2_EINVAL);
    ck_assert_int_eq(rpc2_errcode(NULL), RPC2_EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("errors");
    TCase *t = tcase_create("errors");
    tcase_add_test(t, codes_are_unique_and_named);
    tcase_add_test(t, known_names_and_strangers);
    suite_add_tcase(s, t);
    return check_run(s);
}
