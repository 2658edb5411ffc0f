/*
 * fileio_impl.h - the inside of struct fileio, shared by the files that
 * make up fileio: fileio.c (moving and finishing the bytes),
 * fileopen.c (turning a descriptor into an open one) and filesum.c (the
 * named sum). Nothing else includes it.
 */
#ifndef RPC2_SFTP_FILEIO_IMPL_H
#define RPC2_SFTP_FILEIO_IMPL_H

#include <stdint.h>
#include <sys/types.h>

#include "atomicsink.h"
#include "fileio.h"
#include "fileversion.h"
#include "hash.h"
#include "namedsum.h"
#include "streamio.h"

enum fio_kind {
    FIO_POSITIONAL, /* pread/pwrite at start + pos */
    FIO_STREAM,     /* read/write in order: pipes, sockets, devices, O_APPEND */
    FIO_VM,         /* the descriptor's memory buffer */
};

enum fio_sync {
    SYNC_NONE,
    SYNC_FULL, /* fsync: asked for, or an atomic sink's (its mode and mtime too) */
};

struct fileio {
    struct rpc2_se_desc *d;
    enum fio_kind kind;
    int sink;
    int strict;
    int fd;                     /* -1 for memory */
    int own_fd;                 /* opened here, so closed at finish */
    int reposition;             /* a caller's seekable fd: lseek past what moved at finish */
    int64_t start;              /* file offset of stream byte 0 (positional) */
    uint64_t skip;              /* stream source: bytes still to discard (the seek offset) */
    int64_t quota;              /* the descriptor's, lowered by fileio_limit; -1: none */
    int64_t size;               /* source: bytes it will deliver; -1 unknown */
    int64_t file_size;          /* a regular file's size when opened; -1: not a regular file */
    struct fileversion version; /* source: the regular file's version at open */
    uint64_t moved;  /* source: bytes taken from the file; sink: end of the furthest write */
    uint8_t *peeked; /* source: bytes taken by fileio_peek and not yet delivered */
    size_t peeked_len, peeked_off;
    int quota_hit;
    int eof;
    int finished;
    int result;
    enum fio_sync sync;
    int atomic; /* a sink by name, put at its name by atomic_sink_commit */
    struct atomic_sink at;
    int64_t reserved_end;           /* sink: file offset up to which fspace_reserve made room */
    struct fileio_info peer_source; /* sink: the source as the peer reported it */
    int have_peer_source;
    const char *why;
    int nonblocking;        /* FILEIO_NONBLOCK: streams say SFTP_IO_WAIT */
    struct streamio stream; /* FIO_STREAM */
    XXH3_state_t *hash;     /* every byte delivered (source) or given to write (sink) */
    uint64_t hashed;        /* sink: the stream position the hash has reached */
    int hash_gap;           /* sink: a write came out of order; no checksum */
    struct namedsum *named; /* the descriptor's sum_type, over the same bytes as hash */
};

static inline int refuse(const char **why, const char *text, int code)
{
    if (why)
        *why = text;
    return code;
}

static inline int fail(struct fileio *f, const char *text, int code)
{
    return refuse(&f->why, text, code);
}

/* Frees f and what it holds (an atomic sink's temporary is removed),
 * without finishing it. */
void fileio_release(struct fileio *f);

#endif
