/*
 * fuzz_input.h - what every fuzz target shares: a cursor that takes the
 * fields of a structured input from libFuzzer's bytes (an input that runs
 * dry yields zeros, never a read past its end, so every prefix of an
 * interesting input is still a valid one), the one function that seals a
 * datagram with a valid check trailer, and the abort that turns a broken
 * invariant into a crash libFuzzer reports and minimises.
 */
#ifndef RPC2_FUZZ_INPUT_H
#define RPC2_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

/* libFuzzer's entry point, declared for -Wmissing-prototypes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_in {
    const uint8_t *p;
    size_t left;
};

void fin_init(struct fuzz_in *in, const uint8_t *data, size_t size);
int fin_empty(const struct fuzz_in *in);
uint8_t fin_u8(struct fuzz_in *in);
/* Big-endian, like the wire, so seeds read the same in a hex dump. */
uint16_t fin_u16(struct fuzz_in *in);
uint32_t fin_u32(struct fuzz_in *in);
/* Up to n bytes in place (fewer when the input ends); *got says how many. */
const uint8_t *fin_bytes(struct fuzz_in *in, size_t n, size_t *got);

/* Header field offsets (packet.h draws the layout) for patching raw bytes. */
enum {
    FUZZ_OFF_TYPE = 1,
    FUZZ_OFF_SECURITY = 3,
    FUZZ_OFF_DST_CONN = 8,
    FUZZ_OFF_SRC_CONN = 12,
    FUZZ_OFF_SEQ = 16,
    FUZZ_OFF_TRANSFER = 20,
    FUZZ_OFF_BODY_LEN = 32,
    FUZZ_OFF_TRAILER_LEN = 36,
};

/* Big-endian, for header fields in raw bytes. */
void fuzz_store_u32(uint8_t *p, uint32_t v);
uint32_t fuzz_load_u32(const uint8_t *p);

/* The room a sealed datagram needs beyond its length without trailer. */
#define FUZZ_SEAL_ROOM 64

/* Appends a valid check trailer to the datagram of len bytes (buf has
 * FUZZ_SEAL_ROOM bytes to spare); returns the sealed length. Random bytes
 * almost never carry a valid check, so without this a fuzzer would stop at
 * the check and never reach the protocol behind it. */
size_t fuzz_seal(uint8_t *buf, size_t len);

/* Whether a datagram the library itself produced passes every check a
 * receiver makes before believing it (header and trailer). */
int fuzz_datagram_ok(const uint8_t *buf, size_t len);

/* Aborts with a message: a broken invariant is a crash to libFuzzer. */
#define FUZZ_REQUIRE(cond)                                                                         \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fuzz_fail(__FILE__, __LINE__, #cond);                                                  \
    } while (0)

_Noreturn void fuzz_fail(const char *file, int line, const char *what);

#endif
