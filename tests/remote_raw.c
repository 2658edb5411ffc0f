/*
 * remote_raw.c - the remote operations as a client that is not rcat sends
 * them, for test_remote.sh: arguments rcat never sends (unknown flags, a
 * setuid mode, a nanosecond count past a second, names with a NUL inside
 * that C strings would cut short, an unknown sum type, a negative length)
 * must each get a clear refusal and change nothing; SETATTR, SUM of a
 * range, SYMLINK's replace flag and SYNC of what is not a directory, which
 * rcat's own modes do not use, must do what rcat_proto.x says.
 *
 *   remote_raw PORT     (rcatd on 127.0.0.1:PORT, --writable, serving a
 *                        root with raw/f holding "abcd", raw/g a file and
 *                        raw/l a symlink)
 *
 * Prints one line per case that went wrong; exits 0 when none did.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <rpc2/rpc2.h>
#include <rpc2/se.h>
#include <rpc2/sftp.h>

#include "rcat_proto.h"
#include "raw_bind.h"

static int failures;

static void expect(const char *what, int rc, int want)
{
    if (rc != want) {
        printf("FAIL: %s: status %d, want %d\n", what, rc, want);
        failures++;
    }
}

/* A string as XDR carries it, bytes as given (a NUL included). */
struct raw {
    const char *p;
    u_int len;
};

static bool_t xdr_raw(XDR *x, struct raw *s)
{
    return xdr_u_int(x, &s->len) && xdr_opaque(x, (char *)s->p, s->len);
}

/* RENAME's and SYMLINK's arguments: two strings and flags. */
struct two_names {
    struct raw a, b;
    u_int flags;
};

static bool_t xdr_two_names(XDR *x, struct two_names *t)
{
    return xdr_raw(x, &t->a) && xdr_raw(x, &t->b) && xdr_u_int(x, &t->flags);
}

#define RAW(s)                                                                                     \
    {                                                                                              \
        (s), sizeof(s) - 1                                                                         \
    }

static int call_info(rpc2_conn *c, uint32_t proc, xdrproc_t enc, void *args, file_info *info)
{
    memset(info, 0, sizeof *info);
    return rpc2_call(c, proc, enc, args, (xdrproc_t)xdr_file_info, info, NULL);
}

static void setattr_cases(rpc2_conn *c)
{
    file_info info;
    setattr_args a = {.path = "raw/f",
                      .flags = RCAT_SETATTR_MODE | RCAT_SETATTR_MTIME,
                      .mode = 0600,
                      .mtime_sec = 1000000000,
                      .mtime_nsec = 500000000};

    expect("SETATTR mode and mtime",
           call_info(c, RCAT_SETATTR, (xdrproc_t)xdr_setattr_args, &a, &info), 0);
    if (info.mode != 0600 || info.mtime_sec != 1000000000 || info.mtime_nsec != 500000000) {
        printf("FAIL: SETATTR answered mode %o mtime %" PRId64 ".%09u\n", info.mode,
               (int64_t)info.mtime_sec, info.mtime_nsec);
        failures++;
    }
    a.path = "raw/l";
    expect("SETATTR a link's mode",
           call_info(c, RCAT_SETATTR, (xdrproc_t)xdr_setattr_args, &a, &info), RCAT_PERMISSION);
    a.flags = RCAT_SETATTR_MTIME;
    expect("SETATTR a link's mtime",
           call_info(c, RCAT_SETATTR, (xdrproc_t)xdr_setattr_args, &a, &info), 0);
    a = (setattr_args){.path = "raw/f", .flags = 0};
    expect("SETATTR no flag", call_info(c, RCAT_SETATTR, (xdrproc_t)xdr_setattr_args, &a, &info),
           RPC2_EINVAL);
    a.flags = 4;
    expect("SETATTR an unknown flag",
           call_info(c, RCAT_SETATTR, (xdrproc_t)xdr_setattr_args, &a, &info), RPC2_EINVAL);
    a.flags = RCAT_SETATTR_MODE;
    a.mode = 04755;
    expect("SETATTR setuid", call_info(c, RCAT_SETATTR, (xdrproc_t)xdr_setattr_args, &a, &info),
           RPC2_EINVAL);
    a = (setattr_args){.path = "raw/f", .flags = RCAT_SETATTR_MTIME, .mtime_nsec = 1000000000};
    expect("SETATTR a second of nanoseconds",
           call_info(c, RCAT_SETATTR, (xdrproc_t)xdr_setattr_args, &a, &info), RPC2_EINVAL);
    a = (setattr_args){.path = "raw/../..", .flags = RCAT_SETATTR_MODE, .mode = 0777};
    expect("SETATTR up", call_info(c, RCAT_SETATTR, (xdrproc_t)xdr_setattr_args, &a, &info),
           RCAT_OUTSIDE_ROOT);
}

static void flag_cases(rpc2_conn *c)
{
    file_info info;
    mkdir_args m = {.path = "raw/d", .mode = 0755, .flags = 2};
    delete_args d = {.path = "raw/f", .flags = 4};
    delete_result dr = {0};

    expect("MKDIR an unknown flag", call_info(c, RCAT_MKDIR, (xdrproc_t)xdr_mkdir_args, &m, &info),
           RPC2_EINVAL);
    m = (mkdir_args){.path = "raw/d", .mode = 01777};
    expect("MKDIR sticky", call_info(c, RCAT_MKDIR, (xdrproc_t)xdr_mkdir_args, &m, &info),
           RPC2_EINVAL);
    expect("DELETE an unknown flag",
           rpc2_call(c, RCAT_DELETE, (xdrproc_t)xdr_delete_args, &d, (xdrproc_t)xdr_delete_result,
                     &dr, NULL),
           RPC2_EINVAL);
    struct two_names r = {RAW("raw/f"), RAW("raw/g"), 2};
    expect("RENAME an unknown flag", call_info(c, RCAT_RENAME, (xdrproc_t)xdr_two_names, &r, &info),
           RPC2_EINVAL);
    struct two_names s = {RAW("raw/s"), RAW("f"), 2};
    expect("SYMLINK an unknown flag",
           call_info(c, RCAT_SYMLINK, (xdrproc_t)xdr_two_names, &s, &info), RPC2_EINVAL);
}

/* SYNC flushes a directory's filesystem, beneath the root only. */
static void sync_cases(rpc2_conn *c)
{
    file_info info;
    path_args p = {.path = "raw"};

    expect("SYNC a directory", call_info(c, RCAT_SYNC, (xdrproc_t)xdr_path_args, &p, &info), 0);
    if (info.type != RCAT_DIR) {
        printf("FAIL: SYNC a directory: the reply does not describe it\n");
        failures++;
    }
    p.path = "raw/f";
    expect("SYNC a file", call_info(c, RCAT_SYNC, (xdrproc_t)xdr_path_args, &p, &info),
           RCAT_NOT_DIR);
    p.path = "raw/../..";
    expect("SYNC up", call_info(c, RCAT_SYNC, (xdrproc_t)xdr_path_args, &p, &info),
           RCAT_OUTSIDE_ROOT);
}

/* Names cut short by a NUL would name something else: refused whole. */
static void nul_cases(rpc2_conn *c)
{
    file_info info;
    struct two_names r = {RAW("raw/f"), RAW("raw/g\0/../../x"), 0};
    struct two_names f = {RAW("raw/f\0x"), RAW("raw/g"), 0};
    struct two_names s = {RAW("raw/s"), RAW("f\0/etc/passwd"), 0};

    expect("RENAME to a name with a NUL",
           call_info(c, RCAT_RENAME, (xdrproc_t)xdr_two_names, &r, &info), RCAT_BAD_PATH);
    expect("RENAME from a name with a NUL",
           call_info(c, RCAT_RENAME, (xdrproc_t)xdr_two_names, &f, &info), RCAT_BAD_PATH);
    expect("SYMLINK to a target with a NUL",
           call_info(c, RCAT_SYMLINK, (xdrproc_t)xdr_two_names, &s, &info), RCAT_BAD_PATH);
}

static void sum_cases(rpc2_conn *c)
{
    sum_args a = {.path = "raw/f", .type = RCAT_SUM_MD5, .offset = 1, .length = 2};
    sum_result r;
    /* md5("bc") */
    static const unsigned char want[16] = {0x53, 0x60, 0xaf, 0x35, 0xbd, 0xe9, 0xeb, 0xd8,
                                           0xf0, 0x1f, 0x49, 0x2d, 0xc0, 0x59, 0x59, 0x3c};

    memset(&r, 0, sizeof r);
    expect("SUM of a range",
           rpc2_call(c, RCAT_SUM, (xdrproc_t)xdr_sum_args, &a, (xdrproc_t)xdr_sum_result, &r, NULL),
           0);
    if (r.bytes != 2 || r.sum.sum_len != 16 || memcmp(r.sum.sum_val, want, 16) != 0) {
        printf("FAIL: SUM of bytes 1-2: %" PRIu64 " bytes, %u-byte sum\n", (uint64_t)r.bytes,
               r.sum.sum_len);
        failures++;
    }
    xdr_free((xdrproc_t)xdr_sum_result, (char *)&r);
    static const struct {
        const char *what;
        u_int type;
        int64_t length;
    } bad[] = {{"SUM type 0", 0, -1}, {"SUM type 5", 5, -1}, {"SUM length -2", RCAT_SUM_MD5, -2}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sum_args b = {.path = "raw/f", .type = bad[i].type, .length = bad[i].length};
        memset(&r, 0, sizeof r);
        expect(bad[i].what,
               rpc2_call(c, RCAT_SUM, (xdrproc_t)xdr_sum_args, &b, (xdrproc_t)xdr_sum_result, &r,
                         NULL),
               RPC2_EINVAL);
        xdr_free((xdrproc_t)xdr_sum_result, (char *)&r);
    }
}

/* SYMLINK with replace over a file, then READLINK says the new target. */
static void replace_case(rpc2_conn *c)
{
    file_info info;
    symlink_args s = {.path = "raw/g", .target = "f", .flags = RCAT_SYMLINK_REPLACE};
    path_args p = {.path = "raw/g"};
    readlink_result r = {0};

    expect("SYMLINK replacing a file",
           call_info(c, RCAT_SYMLINK, (xdrproc_t)xdr_symlink_args, &s, &info), 0);
    expect("READLINK",
           rpc2_call(c, RCAT_READLINK, (xdrproc_t)xdr_path_args, &p, (xdrproc_t)xdr_readlink_result,
                     &r, NULL),
           0);
    if (!r.target || strcmp(r.target, "f") != 0) {
        printf("FAIL: READLINK raw/g: '%s'\n", r.target ? r.target : "(none)");
        failures++;
    }
    xdr_free((xdrproc_t)xdr_readlink_result, (char *)&r);
}

int main(int argc, char **argv)
{
    rpc2_ctx *ctx;
    rpc2_conn *conn;

    if (argc != 2) {
        fprintf(stderr, "usage: remote_raw PORT\n");
        return 2;
    }
    if (raw_bind("remote_raw", argv[1], &ctx, &conn) != 0)
        return 2;
    setattr_cases(conn);
    flag_cases(conn);
    nul_cases(conn);
    sum_cases(conn);
    replace_case(conn);
    sync_cases(conn);
    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
    return failures ? 1 : 0;
}
