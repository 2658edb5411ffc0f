/*
 * hash.h - xxHash as rpc2 uses it (the datagram check, transfer checksums,
 * cookies). Debian's libxxhash reaches AVX2/AVX-512 only through its
 * *_dispatch entry points, which xxh_x86dispatch.h substitutes for the plain
 * names (those are its baseline SSE2 code): on x86-64 about five times
 * faster over 64 KiB, which a 2 GB/s transfer notices twice per packet and
 * end. Only builds that have the dispatcher install that header.
 */
#ifndef RPC2_HASH_H
#define RPC2_HASH_H

#include <xxhash.h>
#if defined(__x86_64__) && defined(__has_include)
#if __has_include(<xxh_x86dispatch.h>)
#include <xxh_x86dispatch.h>
#endif
#endif

#endif
