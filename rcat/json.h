/*
 * json.h - rcat's --json lines: the line builder every JSON event and
 * stat/ls entry goes through, and the serialiser of the library's transfer
 * events (include/rpc2/event.h), so that a transfer's events reach the
 * operator field for field as the library delivered them.
 */
#ifndef RCAT_JSON_H
#define RCAT_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <rpc2/event.h>

/* One line at a time: open, add fields, close (which writes it whole). */
void json_open(const char *type);                       /* {"Type":TYPE */
void json_open_key(const char *key, const char *value); /* {KEY:VALUE (no Type) */
void json_str(const char *key, const char *value);
void json_u64(const char *key, uint64_t v);
void json_i64(const char *key, int64_t v);
/* Ends the line and writes it with one write() to fd (stdio for stdout). */
void json_close(int fd);

/* The length of a valid UTF-8 sequence at s (left bytes), or 0. */
size_t json_utf8_seq(const unsigned char *s, size_t left);

/* The fields of a library event, as its type has them (event.h):
 * Direction, the range and sizes, the path, the outcome, the checksum.
 * extra_retransmissions: resends the library's transfer did not count (the
 * call's own packets), added to its Retransmissions. */
void json_event_fields(const struct rpc2_event *ev, uint64_t extra_retransmissions);

#endif
