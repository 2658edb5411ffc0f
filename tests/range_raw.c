/*
 * range_raw.c - STORE_RANGE as a client that is not rcat sends it, for
 * test_split_put.sh: ranges rcat never sends (empty, negative, past the
 * largest file, more bytes than the range says) must each get a clear
 * refusal and write nothing outside the range; a path that names no file
 * is not created; a good range lands at its offset and nowhere else.
 * SPLIT_BEGIN with a bad flag or path and SPLIT_END of anything but a
 * temporary SPLIT_BEGIN made for the name are refused.
 *
 *   range_raw PORT      (rcatd on 127.0.0.1:PORT, --writable, serving a
 *                        root with in/f holding "abcdefgh" and a directory
 *                        in/d)
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
        printf("FAIL: %s: status %d (%s), want %d\n", what, rc, rc < 0 ? rpc2_errname(rc) : "rcat",
               want);
        failures++;
    }
}

/* STORE_RANGE of path at offset for length, the client sending data. */
static int store_range(rpc2_conn *c, const char *path, uint64_t offset, int64_t length,
                       const char *data)
{
    store_range_args a = {.path = (char *)path, .offset = offset, .length = length};
    struct rpc2_se_desc d = RPC2_SE_DESC_INIT(RPC2_SE_STORE);
    file_info info;

    memset(&info, 0, sizeof info);
    d.file_kind = RPC2_SE_FILE_VM;
    d.file.vm.buf = (void *)data;
    d.file.vm.len = strlen(data);
    return rpc2_call(c, RCAT_STORE_RANGE, (xdrproc_t)xdr_store_range_args, &a,
                     (xdrproc_t)xdr_file_info, &info, &(struct rpc2_call_opts){.se = &d});
}

static int split_begin(rpc2_conn *c, const char *path, unsigned flags)
{
    split_begin_args a = {.path = (char *)path, .flags = flags};
    split_begin_result r = {0};
    int rc = rpc2_call(c, RCAT_SPLIT_BEGIN, (xdrproc_t)xdr_split_begin_args, &a,
                       (xdrproc_t)xdr_split_begin_result, &r, NULL);

    xdr_free((xdrproc_t)xdr_split_begin_result, (char *)&r);
    return rc;
}

/* SPLIT_END of from to to: only a temporary SPLIT_BEGIN made for to. */
static int split_end(rpc2_conn *c, const char *from, const char *to)
{
    rename_args a = {.from = (char *)from, .to = (char *)to, .flags = 0};
    file_info info;

    return rpc2_call(c, RCAT_SPLIT_END, (xdrproc_t)xdr_rename_args, &a, (xdrproc_t)xdr_file_info,
                     &info, NULL);
}

int main(int argc, char **argv)
{
    rpc2_ctx *ctx;
    rpc2_conn *conn;

    if (argc != 2) {
        fprintf(stderr, "usage: range_raw PORT\n");
        return 2;
    }
    if (raw_bind("range_raw", argv[1], &ctx, &conn) != 0)
        return 2;
    expect("length 0", store_range(conn, "in/f", 0, 0, ""), RPC2_EINVAL);
    expect("length -1", store_range(conn, "in/f", 0, -1, "x"), RPC2_EINVAL);
    expect("offset 2^63 - 1", store_range(conn, "in/f", INT64_MAX, 1, "x"), RPC2_EINVAL);
    expect("offset 2^64 - 1", store_range(conn, "in/f", UINT64_MAX, 1, "x"), RPC2_EINVAL);
    expect("offset + length past 2^63 - 1", store_range(conn, "in/f", INT64_MAX - 2, 3, "xyz"),
           RPC2_EINVAL);
    /* more bytes than the range: refused, nothing past its end written */
    expect("5 bytes into a range of 2", store_range(conn, "in/f", 5, 2, "VWXYZ"), RPC2_EINVAL);
    expect("a file that is not there", store_range(conn, "in/none", 0, 1, "x"), RCAT_NOT_FOUND);
    expect("a directory", store_range(conn, "in/d", 0, 1, "x"), RCAT_IS_DIR);
    expect("outside the root", store_range(conn, "../f", 0, 1, "x"), RCAT_OUTSIDE_ROOT);
    expect("a good range", store_range(conn, "in/f", 1, 3, "BCD"), 0);
    /* SPLIT_BEGIN and SPLIT_END called as rcat never calls them */
    expect("SPLIT_BEGIN with an unknown flag", split_begin(conn, "in/g", 1u << 7), RPC2_EINVAL);
    expect("SPLIT_BEGIN onto a directory", split_begin(conn, "in/d", 0), RCAT_IS_DIR);
    expect("SPLIT_BEGIN outside the root", split_begin(conn, "../g", 0), RCAT_OUTSIDE_ROOT);
    expect("SPLIT_END of a file no SPLIT_BEGIN made", split_end(conn, "in/f", "in/g"), RPC2_EINVAL);
    expect("SPLIT_END of a look-alike for another name",
           split_end(conn, "in/.f.rcat-split-0000000g", "in/f"), RPC2_EINVAL);
    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
    return failures ? 1 : 0;
}
