/*
 * test_protocol_doc.c - keeps docs/PROTOCOL.md true to rpc2/packet.c.
 *
 * The document is what an implementer in another language reads, so a
 * worked example that the real codec would refuse, or decode to something
 * other than the prose says, is a bug. This test pulls every
 * ```hex example=NAME block out of the document, decodes it with the codec
 * (which verifies its trailer) and checks every field against the story
 * the document tells; it also checks that the error table and the type and
 * header tables name what the headers define, and that the trailer's
 * constants and known answer are the ones the code uses.
 */
#include <check.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include <rpc2/rpc2.h>

#include "packet.h"
#include "seblock.h"
#include "wire.h"
#include "check_run.h"

#ifndef SRCDIR
#define SRCDIR "."
#endif

#define DOC_PATH SRCDIR "/docs/PROTOCOL.md"
#define FENCE_PREFIX "```hex example="
#define MAX_EXAMPLE 1024

/* The ids and clocks of the document's story. */
#define CLIENT_ID 0x1a2b3c4du
#define SERVER_ID 0x5e6f7081u

static char *load_doc(void)
{
    FILE *f = fopen(DOC_PATH, "rb");
    char *text;
    long size;

    ck_assert_msg(f != NULL, "cannot open %s", DOC_PATH);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    size = ftell(f);
    ck_assert_int_ge(size, 0);
    rewind(f);
    text = malloc((size_t)size + 1);
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(fread(text, 1, (size_t)size, f), (size_t)size);
    text[size] = '\0';
    fclose(f);
    return text;
}

/* ---- what each example must decode to ------------------------------------ */

static uint32_t u32_at(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The XDR arguments of procedure 2 in the story: u32 7, u32 35. */
static void check_add_call(const uint8_t *body, size_t len, uint8_t flags)
{
    struct pkt_call c;

    ck_assert_int_eq(pkt_call_decode(body, len, flags, &c), PKT_OK);
    ck_assert_uint_eq(c.proc, 2);
    ck_assert_uint_eq(c.args_len, 8);
    ck_assert_uint_eq(u32_at(c.args), 7);
    ck_assert_uint_eq(u32_at(c.args + 4), 35);
    ck_assert_ptr_null(c.se);
}

static void check_bind_req(const uint8_t *body, size_t len, uint8_t flags)
{
    struct pkt_bind_req m;
    uint8_t again[64];
    size_t again_len;

    (void)flags;
    ck_assert_int_eq(pkt_bind_req_decode(body, len, &m), PKT_OK);
    ck_assert_uint_eq(m.subsystem, 42);
    ck_assert_uint_eq(m.se_type, 0);
    ck_assert_uint_eq(m.cookie_len, 0);
    ck_assert_uint_eq(m.identity_len, 5);
    ck_assert_mem_eq(m.identity, "alice", 5);
    /* The document's bytes are what our encoder writes, not just what it accepts. */
    ck_assert_int_eq(pkt_bind_req_encode(&m, again, sizeof(again), &again_len), PKT_OK);
    ck_assert_uint_eq(again_len, len);
    ck_assert_mem_eq(again, body, len);
}

static void check_bind_ok(const uint8_t *body, size_t len, uint8_t flags)
{
    int32_t server_flags;

    (void)flags;
    ck_assert_int_eq(pkt_i32_decode(body, len, &server_flags), PKT_OK);
    ck_assert_int_eq(server_flags, 0);
}

static void check_bind_err(const uint8_t *body, size_t len, uint8_t flags)
{
    int32_t err;

    (void)flags;
    ck_assert_int_eq(pkt_i32_decode(body, len, &err), PKT_OK);
    ck_assert_int_eq(err, RPC2_ENOSUBSYS);
}

static void check_reply(const uint8_t *body, size_t len, uint8_t flags)
{
    struct pkt_reply r;

    ck_assert_int_eq(pkt_reply_decode(body, len, flags, &r), PKT_OK);
    ck_assert_int_eq(r.status, 0);
    ck_assert_uint_eq(r.result_len, 4);
    ck_assert_uint_eq(u32_at(r.result), 42);
    ck_assert_ptr_null(r.se);
}

static void check_empty(const uint8_t *body, size_t len, uint8_t flags)
{
    (void)body;
    (void)flags;
    ck_assert_uint_eq(len, 0);
}

/* ---- the SFTP story: call 7 stores 8,405 bytes in packets of 1,400 --------- */

#define SFTP_TRANSFER 7u

static void check_sftp_start(const uint8_t *body, size_t len, uint8_t flags)
{
    struct sftp_start st;
    uint8_t again[SFTP_START_SIZE];
    size_t again_len;

    (void)flags;
    ck_assert_int_eq(sftp_start_decode(body, len, &st), PKT_OK);
    ck_assert_uint_eq(st.window, 256);
    ck_assert_uint_eq(st.packet_size, 1400);
    ck_assert_int_eq(sftp_start_encode(&st, again, sizeof(again), &again_len), PKT_OK);
    ck_assert_uint_eq(again_len, len);
    ck_assert_mem_eq(again, body, len);
}

static void check_sftp_data(const uint8_t *body, size_t len, uint8_t flags)
{
    struct sftp_data d;

    (void)flags;
    ck_assert_int_eq(sftp_data_decode(body, len, &d), PKT_OK);
    ck_assert_uint_eq(d.flags, SFTP_DATA_LAST | SFTP_DATA_ACKME);
    ck_assert_uint_eq(d.tx, 7);
    ck_assert_uint_eq(d.len, 5);
    ck_assert_mem_eq(d.bytes, "hello", 5);
    /* The last packet: 6 full packets before it, 8,405 bytes in all. */
    ck_assert_uint_eq(6 * 1400 + d.len, 8405);
}

static void check_sftp_ack(const uint8_t *body, size_t len, uint8_t flags)
{
    struct sftp_ack a;
    uint8_t again[64];
    size_t again_len;

    (void)flags;
    ck_assert_int_eq(sftp_ack_decode(body, len, &a), PKT_OK);
    ck_assert_uint_eq(a.got_them_all, 2);
    ck_assert_uint_eq(a.window_end, 2 + 64);
    ck_assert_uint_eq(a.flags, 0);
    ck_assert_uint_eq(a.delivered, 4 * 1400 + 5);
    ck_assert_uint_eq(a.largest_tx, 7);
    ck_assert_uint_eq(a.ack_delay_us, 0);
    ck_assert_uint_eq(a.bitmap_len, 1);
    ck_assert_uint_eq(a.bitmap[0], 0x0b); /* seqs 4, 5 and 7 */
    ck_assert_uint_eq(sftp_ack_highest(&a), 7);
    ck_assert_int_eq(sftp_ack_encode(&a, again, sizeof(again), &again_len), PKT_OK);
    ck_assert_uint_eq(again_len, len);
    ck_assert_mem_eq(again, body, len);
}

static void check_sftp_abort(const uint8_t *body, size_t len, uint8_t flags)
{
    int32_t err;

    (void)flags;
    ck_assert_int_eq(sftp_abort_decode(body, len, &err), PKT_OK);
    ck_assert_int_eq(err, RPC2_EIO);
}

#define HDR(type_, flags_, dst, src, seq_, transfer_, ts_, echo, body)                             \
    {                                                                                              \
        .version = PKT_VERSION, .type = (type_), .flags = (flags_), .security = RPC2_SEC_NONE,     \
        .key_epoch = 0, .dst_conn = (dst), .src_conn = (src), .seq = (seq_),                       \
        .transfer = (transfer_), .ts = (ts_), .ts_echo = (echo), .body_len = (body),               \
        .trailer_len = PKT_CHECK_SIZE,                                                             \
    }

/* Side-effect blocks: the SFTP opaque at the end of a CALL or REPLY body. */
/* A decoded CALL block encodes to the very bytes it came from. */
static void assert_call_reencodes(const struct seblock_call *b, const uint8_t *body, size_t len)
{
    uint8_t again[64];
    struct pkt_writer w;
    pkt_writer_init(&w, again, sizeof again);
    seblock_call_encode(b, &w);
    ck_assert_uint_eq((size_t)(w.p - again), len);
    ck_assert_mem_eq(again, body, len);
}

static void check_se_call_fetch(const uint8_t *body, size_t len, uint8_t flags)
{
    struct seblock_call b;
    ck_assert_int_eq(seblock_call_decode(body, len, &b), PKT_OK);
    ck_assert_uint_eq(b.direction, 1);
    ck_assert_uint_eq(b.flags, SEBLOCK_PIGGY_OK);
    ck_assert_int_eq(b.quota, 100000);
    ck_assert_uint_eq(b.packet_size, 64512);
    ck_assert_uint_eq(b.window, 130);
    ck_assert_uint_eq(b.piggyback_max, 60000);
    ck_assert_uint_eq(b.data_len, 0);
    ck_assert_uint_eq(b.checksum_len, 0);
    assert_call_reencodes(&b, body, len);
}

static void check_se_call_named(const uint8_t *body, size_t len, uint8_t flags)
{
    struct seblock_call b;
    ck_assert_int_eq(seblock_call_decode(body, len, &b), PKT_OK);
    ck_assert_uint_eq(b.direction, 1);
    ck_assert_uint_eq(b.flags, SEBLOCK_PIGGY_OK | SEBLOCK_NAMED_SUM);
    ck_assert_int_eq(b.quota, -1);
    ck_assert_uint_eq(b.packet_size, 64512);
    ck_assert_uint_eq(b.window, 130);
    ck_assert_uint_eq(b.piggyback_max, 60000);
    ck_assert_uint_eq(b.data_len + b.checksum_len + b.named_sum_len, 0);
    ck_assert_uint_eq(b.sum_type, RPC2_SE_SUM_SHA256);
    assert_call_reencodes(&b, body, len);
}

static void check_se_reply_piggy(const uint8_t *body, size_t len, uint8_t flags)
{
    struct seblock_reply b;
    ck_assert_int_eq(seblock_reply_decode(body, len, &b), PKT_OK);
    ck_assert_int_eq(b.status, 0);
    ck_assert_uint_eq(b.bytes, 5);
    ck_assert_uint_eq(b.flags, SEBLOCK_PIGGY);
    ck_assert_uint_eq(b.data_len, 5);
    ck_assert_mem_eq(b.data, "hello", 5);
    ck_assert_uint_eq(b.checksum_len, 0);
}

/* A block example has no datagram header: its hdr stays zero. */
#define BLOCK {0}

static const struct example {
    const char *name;
    struct pkt_hdr hdr;
    void (*check_body)(const uint8_t *body, size_t len, uint8_t flags);
} examples[] = {
    {"BIND_REQ", HDR(PKT_BIND_REQ, 0, 0, CLIENT_ID, 0, 0, 1000000, 0, 24), check_bind_req},
    /* Answers echo the ts of what prompted them: the story's RTT samples. */
    {"BIND_OK", HDR(PKT_BIND_OK, 0, CLIENT_ID, SERVER_ID, 0, 0, 2000000000, 1000000, 4),
     check_bind_ok},
    {"BIND_ERR", HDR(PKT_BIND_ERR, 0, CLIENT_ID, 0, 0, 0, 2000000000, 1000000, 4), check_bind_err},
    {"CALL", HDR(PKT_CALL, 0, SERVER_ID, CLIENT_ID, 1, 0, 1000250, 0, 16), check_add_call},
    {"CALL_RETRY", HDR(PKT_CALL, PKT_F_RETRANSMIT, SERVER_ID, CLIENT_ID, 5, 0, 4001000, 0, 16),
     check_add_call},
    {"BUSY", HDR(PKT_BUSY, 0, CLIENT_ID, SERVER_ID, 5, 0, 2003000000, 4001000, 0), check_empty},
    {"REPLY", HDR(PKT_REPLY, 0, CLIENT_ID, SERVER_ID, 1, 0, 2000000180, 1000250, 12), check_reply},
    {"UNKNOWN_CONN", HDR(PKT_UNKNOWN_CONN, 0, CLIENT_ID, SERVER_ID, 6, 0, 500, 9000000, 0),
     check_empty},
    /* seq = highest version spoken, transfer = lowest: both 1 here. */
    {"VERSION_ERR",
     HDR(PKT_VERSION_ERR, 0, 0x0badcafe, 0, PKT_VERSION, PKT_VERSION, 2000500000, 0, 0),
     check_empty},
    /* SFTP: DATA echoes the START, the ACK echoes that DATA. */
    {"SFTP_START", HDR(PKT_SFTP_START, 0, CLIENT_ID, SERVER_ID, 1, SFTP_TRANSFER, 2000300000, 0, 8),
     check_sftp_start},
    {"SFTP_DATA",
     HDR(PKT_SFTP_DATA, 0, SERVER_ID, CLIENT_ID, 7, SFTP_TRANSFER, 1010000, 2000300000, 13),
     check_sftp_data},
    {"SFTP_ACK",
     HDR(PKT_SFTP_ACK, 0, CLIENT_ID, SERVER_ID, 2, SFTP_TRANSFER, 2000301000, 1010000, 36),
     check_sftp_ack},
    {"SFTP_ABORT", HDR(PKT_SFTP_ABORT, 0, SERVER_ID, CLIENT_ID, 0, SFTP_TRANSFER, 1020000, 0, 4),
     check_sftp_abort},
    {"SE_CALL_FETCH", BLOCK, check_se_call_fetch},
    {"SE_REPLY_PIGGY", BLOCK, check_se_reply_piggy},
    {"SE_CALL_NAMED", BLOCK, check_se_call_named},
};
#define N_EXAMPLES (sizeof(examples) / sizeof(examples[0]))

static void check_example(const struct example *ex, const uint8_t *bytes, size_t len)
{
    struct pkt_hdr h;
    uint8_t again[PKT_HDR_SIZE];

    if (ex->hdr.version == 0) {
        ex->check_body(bytes, len, 0);
        return;
    }
    ck_assert_msg(pkt_hdr_decode(bytes, len, &h) == PKT_OK, "%s: header refused", ex->name);
    /* The decoder verified the check; say so on its own, for the reader. */
    ck_assert_msg(pkt_check_ok(bytes, len), "%s: check does not verify", ex->name);
    ck_assert_uint_eq(len, PKT_HDR_SIZE + h.body_len + PKT_CHECK_SIZE);
    ck_assert_uint_eq(h.version, ex->hdr.version);
    ck_assert_uint_eq(h.type, ex->hdr.type);
    ck_assert_uint_eq(h.flags, ex->hdr.flags);
    ck_assert_uint_eq(h.security, ex->hdr.security);
    ck_assert_uint_eq(h.key_epoch, ex->hdr.key_epoch);
    ck_assert_uint_eq(h.dst_conn, ex->hdr.dst_conn);
    ck_assert_uint_eq(h.src_conn, ex->hdr.src_conn);
    ck_assert_uint_eq(h.seq, ex->hdr.seq);
    ck_assert_uint_eq(h.transfer, ex->hdr.transfer);
    ck_assert_uint_eq(h.ts, ex->hdr.ts);
    ck_assert_uint_eq(h.ts_echo, ex->hdr.ts_echo);
    ck_assert_uint_eq(h.body_len, ex->hdr.body_len);
    ck_assert_uint_eq(h.trailer_len, ex->hdr.trailer_len);
    pkt_hdr_encode(&h, again);
    ck_assert_mem_eq(again, bytes, PKT_HDR_SIZE);
    ex->check_body(bytes + PKT_HDR_SIZE, h.body_len, h.flags);
}

/* ---- extracting the examples --------------------------------------------- */

static int hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * Parses the block's lines up to the closing fence: whitespace-separated
 * two-digit hex bytes and nothing else, so a typo cannot hide a byte.
 * Returns where the text after the closing fence starts.
 */
static const char *parse_hex_block(const char *s, const char *name, uint8_t *out, size_t *len)
{
    *len = 0;
    for (;;) {
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
            s++;
        ck_assert_msg(*s != '\0', "%s: block never closed", name);
        if (strncmp(s, "```", 3) == 0)
            return s + 3;
        ck_assert_msg(hex_digit(s[0]) >= 0 && hex_digit(s[1]) >= 0 && !isxdigit((uint8_t)s[2]),
                      "%s: not a hex byte at \"%.8s\"", name, s);
        ck_assert_msg(*len < MAX_EXAMPLE, "%s: too long", name);
        out[(*len)++] = (uint8_t)(hex_digit(s[0]) << 4 | hex_digit(s[1]));
        s += 2;
    }
}

static const struct example *find_example(const char *name, size_t n)
{
    size_t i;

    for (i = 0; i < N_EXAMPLES; i++)
        if (strlen(examples[i].name) == n && strncmp(examples[i].name, name, n) == 0)
            return &examples[i];
    return NULL;
}

START_TEST(every_example_decodes_as_documented)
{
    char *doc = load_doc();
    const char *s = doc;
    int seen[N_EXAMPLES] = {0};
    uint8_t bytes[MAX_EXAMPLE];
    size_t i, len;

    while ((s = strstr(s, "```hex")) != NULL) {
        const char *name, *eol;
        const struct example *ex;
        size_t n;

        /* Any hex fence must be an example, so none is skipped by a typo. */
        ck_assert_msg(strncmp(s, FENCE_PREFIX, strlen(FENCE_PREFIX)) == 0,
                      "a ```hex block without example=: \"%.30s\"", s);
        name = s + strlen(FENCE_PREFIX);
        eol = strchr(name, '\n');
        ck_assert_ptr_nonnull(eol);
        n = (size_t)(eol - name);
        if (n > 0 && name[n - 1] == '\r')
            n--;
        ex = find_example(name, n);
        ck_assert_msg(ex != NULL, "example %.*s has no expectations in this test", (int)n, name);
        ck_assert_msg(!seen[ex - examples], "example %s appears twice", ex->name);
        seen[ex - examples] = 1;
        s = parse_hex_block(eol + 1, ex->name, bytes, &len);
        check_example(ex, bytes, len);
    }
    for (i = 0; i < N_EXAMPLES; i++)
        ck_assert_msg(seen[i], "example %s missing from %s", examples[i].name, DOC_PATH);
    free(doc);
}
END_TEST

/* ---- the tables ------------------------------------------------------------ */

START_TEST(error_table_matches_rpc2_errors)
{
    char *doc = load_doc();
    char row[256];

#define CHECK_ROW(name, value, text)                                                               \
    snprintf(row, sizeof(row), "| RPC2_%s | %d | %s |\n", #name, (value), (text));                 \
    ck_assert_msg(strstr(doc, row) != NULL, "error table lacks: %s", row);
    RPC2_ERRORS(CHECK_ROW)
#undef CHECK_ROW
    free(doc);
}
END_TEST

START_TEST(title_names_the_version)
{
    char *doc = load_doc();
    char title[64];

    snprintf(title, sizeof(title), "# rpc2 wire protocol, version %d\n", PKT_VERSION);
    ck_assert_msg(strncmp(doc, title, strlen(title)) == 0, "title is not \"%s\"", title);
    free(doc);
}
END_TEST

START_TEST(type_and_header_tables_match_packet_h)
{
    static const struct {
        int value;
        const char *name;
    } types[] = {
        {PKT_BIND_REQ, "BIND_REQ"},
        {PKT_BIND_COOKIE, "BIND_COOKIE"},
        {PKT_BIND_OK, "BIND_OK"},
        {PKT_BIND_ERR, "BIND_ERR"},
        {PKT_UNBIND, "UNBIND"},
        {PKT_UNBIND_ACK, "UNBIND_ACK"},
        {PKT_CALL, "CALL"},
        {PKT_REPLY, "REPLY"},
        {PKT_BUSY, "BUSY"},
        {PKT_UNKNOWN_CONN, "UNKNOWN_CONN"},
        {PKT_VERSION_ERR, "VERSION_ERR"},
        {PKT_ANNOUNCE, "ANNOUNCE"},
        {PKT_SFTP_DATA, "SFTP_DATA"},
        {PKT_SFTP_ACK, "SFTP_ACK"},
        {PKT_SFTP_START, "SFTP_START"},
        {PKT_SFTP_ABORT, "SFTP_ABORT"},
        {PKT_SFTP_PROBE, "SFTP_PROBE"},
    };
    static const char *const header_rows[] = {
        "| 0 | u8 | version |",       "| 1 | u8 | type |",       "| 2 | u8 | flags |",
        "| 3 | u8 | security |",      "| 4 | u32 | key_epoch |", "| 8 | u32 | dst_conn |",
        "| 12 | u32 | src_conn |",    "| 16 | u32 | seq |",      "| 20 | u32 | transfer |",
        "| 24 | u32 | ts |",          "| 28 | u32 | ts_echo |",  "| 32 | u32 | body_len |",
        "| 36 | u16 | trailer_len |", "| 38 | u16 | reserved |",
    };
    char *doc = load_doc();
    char row[64];
    size_t i;

    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        snprintf(row, sizeof(row), "\n| %d | %s |", types[i].value, types[i].name);
        ck_assert_msg(strstr(doc, row) != NULL, "type table lacks: %s", row + 1);
    }
    for (i = 0; i < sizeof(header_rows) / sizeof(header_rows[0]); i++)
        ck_assert_msg(strstr(doc, header_rows[i]) != NULL, "header table lacks: %s",
                      header_rows[i]);
    snprintf(row, sizeof(row), "| 0x%02x | PKT_F_RETRANSMIT |", PKT_F_RETRANSMIT);
    ck_assert_msg(strstr(doc, row) != NULL, "flag table lacks: %s", row);
    snprintf(row, sizeof(row), "| 0x%02x | PKT_F_SE |", PKT_F_SE);
    ck_assert_msg(strstr(doc, row) != NULL, "flag table lacks: %s", row);
    free(doc);
}
END_TEST

/* The numbers the trailer's prose gives are the code's. */
START_TEST(trailer_prose_matches_code)
{
    char *doc = load_doc();
    char text[96];

    snprintf(text, sizeof(text), "`%016llx`", (unsigned long long)XXH3_64bits("", 0));
    ck_assert_msg(strstr(doc, text) != NULL, "known answer %s missing", text);
    snprintf(text, sizeof(text), "`PKT_ECHECK` (%d)", PKT_ECHECK);
    ck_assert_msg(strstr(doc, text) != NULL, "refusal table lacks %s", text);
    snprintf(text, sizeof(text), "`trailer_len` is %d (`PKT_CHECK_SIZE`)", PKT_CHECK_SIZE);
    ck_assert_msg(strstr(doc, text) != NULL, "trailer prose lacks %s", text);
    snprintf(text, sizeof(text), "`PKT_MAX_BODY` (%d", PKT_MAX_BODY);
    ck_assert_msg(strstr(doc, text) != NULL, "datagram prose lacks %s", text);
    free(doc);
}
END_TEST

static Suite *protocol_doc_suite(void)
{
    Suite *s = suite_create("protocol_doc");
    TCase *tc = tcase_create("doc");

    tcase_add_test(tc, every_example_decodes_as_documented);
    tcase_add_test(tc, error_table_matches_rpc2_errors);
    tcase_add_test(tc, title_names_the_version);
    tcase_add_test(tc, type_and_header_tables_match_packet_h);
    tcase_add_test(tc, trailer_prose_matches_code);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(protocol_doc_suite());
}
