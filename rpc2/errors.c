/*
 * errors.c - names and descriptions of the error codes, generated from the
 * one X-macro list in rpc2.h so the enum and its text can never disagree.
 */
#include <string.h>
#include <rpc2/rpc2.h>

const char *rpc2_strerror(int code)
{
    switch (code) {
#define RPC2_ERROR_TEXT(name, value, text)                                                         \
    case value:                                                                                    \
        return text;
        RPC2_ERRORS(RPC2_ERROR_TEXT)
#undef RPC2_ERROR_TEXT
    }
    return code > 0 ? "application error" : "unknown error";
}

const char *rpc2_errname(int code)
{
    switch (code) {
#define RPC2_ERROR_NAME(name, value, text)                                                         \
    case value:                                                                                    \
        return "RPC2_" #name;
        RPC2_ERRORS(RPC2_ERROR_NAME)
#undef RPC2_ERROR_NAME
    }
    return "RPC2_UNKNOWN";
}

int rpc2_errcode(const char *name)
{
    if (!name)
        return RPC2_EINVAL;
#define RPC2_ERROR_BY_NAME(name_, value, text)                                                     \
    if (strcmp(name, "RPC2_" #name_) == 0)                                                         \
        return value;
    RPC2_ERRORS(RPC2_ERROR_BY_NAME)
#undef RPC2_ERROR_BY_NAME
    return RPC2_EINVAL;
}
