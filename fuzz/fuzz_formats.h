/*
 * fuzz_formats.h - the constants of the fuzz targets' input formats, in one
 * place for the targets that read them and gen_corpus.c that writes seeds
 * in them (the formats themselves are described atop each target).
 */
#ifndef RPC2_FUZZ_FORMATS_H
#define RPC2_FUZZ_FORMATS_H

/* The subsystem the server targets export. */
#define FZ_SUBSYS 4242u

/* The one identity whose secret the server targets know (fuzz_psk). */
#define FUZZ_IDENTITY "alice"

/* The limits byte that starts fuzz_server's and fuzz_handshake's inputs
 * (fuzz_engine_limits): one choice from each group, or'ed. */
enum {
    LIM_NONE = 0x00,
    LIM_COOKIE_ALWAYS = 0x01,
    LIM_COOKIE_AFTER_1 = 0x02, /* half-open connections before cookies are required */
    LIM_COOKIE_AFTER_2 = 0x03,
    LIM_PER_ADDR_1 = 0x04,
    LIM_PER_ADDR_2 = 0x08,
    LIM_PER_ADDR_3 = 0x0c,
    LIM_RUNNING_1 = 0x10,
    LIM_RUNNING_2 = 0x20,
    LIM_RUNNING_8 = 0x30,
    LIM_SAVED_0 = 0x40,
    LIM_SAVED_100 = 0x80,
    LIM_SAVED_64K = 0xc0,
};

/* fuzz_server's procedures. */
enum {
    P_NULL = 1,
    P_BLOB = 2,
    P_HOLD = 3,
    P_BLOCK = 4,
    P_FETCH = 5, /* memory buffers */
    P_STORE = 6,
    P_FETCH_FILE = 7, /* a file by name; stores atomic */
    P_STORE_FILE = 8,
    P_FETCH_PIPE = 9, /* a pipe, without blocking */
    P_STORE_PIPE = 10,
};

/* fuzz_server's record control byte. */
enum {
    SRV_PEER = 0x03,
    SRV_SEAL = 0x04,
    SRV_FIXUP = 0x08,
    SRV_ECHO_COOKIE = 0x10,
    SRV_ADVANCE = 0x20,
    SRV_ANSWER_HELD = 0x40,
    SRV_TWICE = 0x80,
};

/* fuzz_handshake's record control byte. */
enum {
    HS_PEER = 0x03,
    HS_KIND = 0x0c, /* one of the four below */
    HS_BIND = 0x00,
    HS_COOKIE = 0x04,
    HS_UNBIND = 0x08,
    HS_ECHO = 0x0c,
    HS_SEAL = 0x10,
    HS_ADVANCE = 0x20,
    HS_LEARNED = 0x40,
    HS_RAW_HEADER = 0x80,
};

/* fuzz_sftp's first set-up byte. */
enum {
    FS_SINK = 0x01,
    FS_IN_ORDER = 0x02,
    FS_START = 0x04,
    FS_SEND_START = 0x08,
    FS_CAP_MODE = 0x30, /* two bits: cap mode (fuzz_sftp.c, link_begin) */
    FS_FAIL = 0x40,
    FS_NO_SUMS = 0x80,
};

/* fuzz_sftp's operations: the low 3 bits; 0-4 are packets of type
 * PKT_SFTP_DATA + op. */
enum {
    FS_OP = 0x07,
    FS_OP_ADVANCE = 5,
    FS_OP_TIMER = 6,
    FS_OP_LOCAL = 7,
    /* with FS_OP_LOCAL: what happens here */
    FS_LOCAL = 0x18,
    FS_LOCAL_ABORT = 0x00,
    FS_LOCAL_WAIT = 0x08,
    FS_LOCAL_RESUME = 0x10,
    FS_LOCAL_START = 0x18,
    FS_LOCAL_SEND_START = 0x20, /* with FS_LOCAL_START: the sink sends START */
};

/* fuzz_sftp's packet modifiers byte. */
enum {
    FS_MOD_ENCODE = 0x01,
    FS_MOD_SEQ_COUNTER = 0x02,
    FS_MOD_ECHO = 0x04,
    FS_MOD_RETRANSMIT = 0x08,
    FS_MOD_TS = 0x10,
};

#endif
