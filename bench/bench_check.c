/*
 * bench_check.c - what the datagram check (rpc2/packet.c: pkt_check_write,
 * pkt_check_ok; XXH3-64 over the whole datagram) costs per packet, as a
 * ratio against memcpy of the same bytes measured in the same run.
 *
 * Two cases per size: "hot", the datagram just written and still in cache
 * (what the send path and a receive straight after recvmmsg see), and
 * "cold", a ring of datagrams larger than the caches, read once each (the
 * worst case). Sizes: a full loopback SFTP DATA packet (63 KiB of data in a
 * 65,000-byte-class datagram), a 1,400-byte MTU packet, and a bare header.
 * Each figure is the best of several trials: on a shared machine other load
 * only ever adds time.
 *
 * Not built by make; from the top of the tree:
 *   cc -O2 -std=gnu11 -Iinclude -Irpc2 $(pkg-config --cflags libtirpc) \
 *      bench/bench_check.c rpc2/packet.c -lxxhash -o /tmp/bench_check && /tmp/bench_check
 * Add -DXXH_DISPATCH_DISABLE_REPLACE to measure libxxhash's plain (SSE2)
 * entry points instead of the AVX2/AVX-512 dispatch packet.c uses on x86-64.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "packet.h"

#define RING_BYTES (256u << 20) /* well past any cache */
#define MIN_SECONDS 0.05
#define TRIALS 9 /* the best of these: other load on a 2-core machine only adds */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

enum op { OP_MEMCPY, OP_WRITE, OP_VERIFY };

/* Runs op over n datagrams of len bytes (their check included) laid out in
 * buf, stride apart, round and round until MIN_SECONDS have passed;
 * returns nanoseconds per datagram. */
static double run(enum op op, uint8_t *buf, uint8_t *dst, size_t stride, size_t n, size_t len)
{
    volatile unsigned sink = 0;
    size_t done = 0, reps = n >= 4096 ? 1 : 4096 / n; /* the clock read is not the cost */
    double t0 = now_s(), t;
    do {
        for (size_t r = 0; r < reps; r++) {
            for (size_t i = 0; i < n; i++) {
                uint8_t *d = buf + i * stride;
                if (op == OP_MEMCPY)
                    memcpy(dst, d, len), sink += dst[len / 2];
                else if (op == OP_WRITE)
                    pkt_check_write(d, len - PKT_CHECK_SIZE);
                else
                    sink += (unsigned)pkt_check_ok(d, len);
            }
        }
        done += reps * n;
        t = now_s() - t0;
    } while (t < MIN_SECONDS);
    (void)sink;
    return t * 1e9 / (double)done;
}

/* The fastest of TRIALS runs, memcpy and the check interleaved so that a
 * burst of other load hits both alike. */
static void best_of(uint8_t *buf, uint8_t *dst, size_t stride, size_t n, size_t len, double out[3])
{
    out[0] = out[1] = out[2] = 1e30;
    for (int t = 0; t < TRIALS; t++) {
        for (int op = OP_MEMCPY; op <= OP_VERIFY; op++) {
            double ns = run((enum op)op, buf, dst, stride, n, len);
            out[op] = ns < out[op] ? ns : out[op];
        }
    }
}

static void bench_size(const char *what, size_t len)
{
    size_t stride = (len + 63) & ~(size_t)63;
    size_t cold_n = RING_BYTES / stride;
    uint8_t *ring = malloc(cold_n * stride), *dst = malloc(stride);
    if (!ring || !dst) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < cold_n * stride; i++)
        ring[i] = (uint8_t)(i * 131 + 7);
    for (size_t i = 0; i < cold_n; i++)
        pkt_check_write(ring + i * stride, len - PKT_CHECK_SIZE);

    printf("%s (%zu bytes)\n", what, len);
    for (int cold = 0; cold <= 1; cold++) {
        double ns[3];
        best_of(ring, dst, stride, cold ? cold_n : 1, len, ns);
        double copy = ns[OP_MEMCPY], wr = ns[OP_WRITE], ver = ns[OP_VERIFY];
        printf(
            "  %-4s memcpy %8.1f ns (%5.1f GB/s) | check write %8.1f ns (%5.1f GB/s, %.2fx memcpy)"
            " | verify %8.1f ns (%.2fx memcpy)\n",
            cold ? "cold" : "hot", copy, (double)len / copy, wr, (double)len / wr, wr / copy, ver,
            ver / copy);
    }
    free(ring);
    free(dst);
}

int main(void)
{
    bench_size("loopback SFTP DATA: 63 KiB of data", PKT_HDR_SIZE + 4 + 63 * 1024 + PKT_CHECK_SIZE);
    bench_size("the largest datagram", PKT_MAX_DATAGRAM);
    bench_size("MTU SFTP DATA: 1,400 bytes of data", PKT_HDR_SIZE + 4 + 1400 + PKT_CHECK_SIZE);
    bench_size("a bare header (BUSY, UNKNOWN_CONN)", PKT_HDR_SIZE + PKT_CHECK_SIZE);
    return 0;
}
