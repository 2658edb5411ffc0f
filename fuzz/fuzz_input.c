/*
 * fuzz_input.c - the input cursor, the datagram seal and the invariant
 * abort shared by the fuzz targets (see fuzz_input.h).
 */
#include "fuzz_input.h"

#include <stdio.h>
#include <stdlib.h>

#include "packet.h"

void fin_init(struct fuzz_in *in, const uint8_t *data, size_t size)
{
    in->p = data;
    in->left = data ? size : 0;
}

int fin_empty(const struct fuzz_in *in)
{
    return in->left == 0;
}

uint8_t fin_u8(struct fuzz_in *in)
{
    if (in->left == 0)
        return 0;
    in->left--;
    return *in->p++;
}

uint16_t fin_u16(struct fuzz_in *in)
{
    uint16_t hi = fin_u8(in);
    return (uint16_t)(hi << 8 | fin_u8(in));
}

uint32_t fin_u32(struct fuzz_in *in)
{
    uint32_t hi = fin_u16(in);
    return hi << 16 | fin_u16(in);
}

const uint8_t *fin_bytes(struct fuzz_in *in, size_t n, size_t *got)
{
    const uint8_t *p = in->p;

    *got = n < in->left ? n : in->left;
    in->p += *got;
    in->left -= *got;
    return p;
}

void fuzz_store_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

uint32_t fuzz_load_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The header must say how long its trailer is before the check covers it;
 * a datagram too short for a header gets the check all the same. */
size_t fuzz_seal(uint8_t *buf, size_t len)
{
    if (len >= PKT_HDR_SIZE) {
        buf[FUZZ_OFF_TRAILER_LEN] = (uint8_t)(PKT_CHECK_SIZE >> 8);
        buf[FUZZ_OFF_TRAILER_LEN + 1] = (uint8_t)PKT_CHECK_SIZE;
    }
    pkt_check_write(buf, len);
    return len + PKT_CHECK_SIZE;
}

int fuzz_datagram_ok(const uint8_t *buf, size_t len)
{
    struct pkt_hdr h;

    return pkt_hdr_decode(buf, len, &h) == PKT_OK;
}

_Noreturn void fuzz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, what);
    abort();
}
