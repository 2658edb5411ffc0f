/*
 * restart.c - encoding, reading and appending restart points (restart.h
 * says why the file is shaped this way).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <rpc2/rpc2.h>

#include "bytes.h"
#include "fileio.h"
#include "hash.h"
#include "restart.h"

#define RESTART_MAGIC 0x52435250u /* "RCRP" */
#define RESTART_VERSION 1u
#define RESTART_BODY 32 /* the bytes the record's own checksum covers */
#define PART_SUFFIX ".rcat-part"
#define POINTS_SUFFIX ".rcat-part.rp"

void restart_record_encode(const struct restart_point *p, uint8_t out[RESTART_RECORD_SIZE])
{
    store_u32(out, RESTART_MAGIC);
    store_u32(out + 4, RESTART_VERSION);
    store_u64(out + 8, p->offset);
    memcpy(out + 16, p->sum, RESTART_SUM_BYTES);
    store_u64(out + RESTART_BODY, XXH64(out, RESTART_BODY, 0));
}

int restart_record_decode(const uint8_t in[RESTART_RECORD_SIZE], struct restart_point *p)
{
    if (load_u64(in + RESTART_BODY) != XXH64(in, RESTART_BODY, 0) || load_u32(in) != RESTART_MAGIC ||
        load_u32(in + 4) != RESTART_VERSION || load_u64(in + 8) > INT64_MAX)
        return RPC2_EINTEGRITY;
    p->offset = load_u64(in + 8);
    memcpy(p->sum, in + 16, RESTART_SUM_BYTES);
    return 0;
}

int restart_last(int fd, struct restart_point *p)
{
    struct stat st;
    uint8_t rec[RESTART_RECORD_SIZE];

    if (fstat(fd, &st) < 0)
        return fileio_errno_code(errno);
    if (st.st_size == 0)
        return 0;
    if (st.st_size % RESTART_RECORD_SIZE != 0)
        return RPC2_EINTEGRITY; /* a torn append, or a file cut short */
    ssize_t n = pread(fd, rec, sizeof rec, st.st_size - RESTART_RECORD_SIZE);
    if (n < 0)
        return fileio_errno_code(errno);
    if (n != RESTART_RECORD_SIZE)
        return RPC2_EINTEGRITY;
    return restart_record_decode(rec, p) == 0 ? 1 : RPC2_EINTEGRITY;
}

int restart_append(int fd, const struct restart_point *p)
{
    uint8_t rec[RESTART_RECORD_SIZE];
    struct stat st;

    restart_record_encode(p, rec);
    if (fstat(fd, &st) < 0)
        return fileio_errno_code(errno);
    /* at a record boundary, whatever an earlier torn append left */
    off_t at = st.st_size - st.st_size % RESTART_RECORD_SIZE;
    errno = 0;
    if (pwrite(fd, rec, sizeof rec, at) != (ssize_t)sizeof rec || fdatasync(fd) < 0)
        return fileio_errno_code(errno ? errno : EIO);
    return 0;
}

int restart_clear(int fd)
{
    if (ftruncate(fd, 0) < 0 || fdatasync(fd) < 0)
        return fileio_errno_code(errno);
    return 0;
}

static char *beside(const char *base, const char *suffix)
{
    size_t keep = strlen(base), room = NAME_MAX - 1 - strlen(POINTS_SUFFIX);
    char *name = malloc(NAME_MAX + 1);

    if (keep > room)
        keep = room; /* both names shortened alike, so they stay a pair */
    if (name)
        snprintf(name, NAME_MAX + 1, ".%.*s%s", (int)keep, base, suffix);
    return name;
}

char *restart_part_name(const char *base)
{
    return beside(base, PART_SUFFIX);
}

char *restart_points_name(const char *base)
{
    return beside(base, POINTS_SUFFIX);
}
