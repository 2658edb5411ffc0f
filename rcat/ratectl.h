/*
 * ratectl.h - how fast rcat moves data, and changing it while it runs:
 * --rate, --min-rate and --policy at start, and a control FIFO
 * (--rate-control PATH) whose lines change them live (docs/RATE.md).
 *
 * Rates are bits per second with an optional k, M, G or T (powers of
 * 1000): what people quote for links; the library takes bytes per second.
 */
#ifndef RCAT_RATECTL_H
#define RCAT_RATECTL_H

#include <stdint.h>

#include <ev.h>
#include <rpc2/rpc2.h>
#include <rpc2/sftp.h>

struct ratectl_config {
    uint32_t policy;       /* enum rpc2_sftp_policy */
    uint64_t rate_bps;     /* bytes/s; 0: none */
    uint64_t min_rate_bps; /* bytes/s; 0: none */
    const char *control;   /* the FIFO's path; NULL: none */
};

/* "100M" (bits/s) -> bytes/s; 0 and -1 on a bad text. "0" means none. */
int ratectl_parse_rate(const char *text, uint64_t *bytes_per_s);
/* "adaptive,fixed" -> 1 << RPC2_SFTP_POLICY_ADAPTIVE | ...; -1 on a bad list. */
int ratectl_parse_policies(const char *text, uint32_t *mask);
/* One control line: "rate 50M", "min-rate 10M", "policy background"
 * (rate none, min-rate none); 0, or -1 with nothing changed. */
int ratectl_apply_line(struct ratectl_config *c, const char *line);

struct ratectl;

/* Watches the control FIFO on loop (making it if needed); *in_call names
 * the connection whose call is running (NULL: none) and gets each change.
 * NULL when there is neither a FIFO to watch nor a rate to share (then
 * nothing changes live, and the library's parameters are the rates). */
typedef void (*ratectl_say_fn)(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
struct ratectl *ratectl_start(const struct ratectl_config *c, struct ev_loop *loop,
                              rpc2_conn *const *in_call, ratectl_say_fn say);
void ratectl_stop(struct ratectl *r);
/* A transfer runs on *in_call: it gets the latest change if it has not yet
 * (a call that started after it). r may be NULL. */
void ratectl_sync(struct ratectl *r);
/* The rates are one total for the run: each transfer in flight on a
 * connection that joined (a lane of -j or --split, from its call's start
 * to its end) gets an equal share, with the single call *in_call, and the
 * shares follow every join, leave and live change. r may be NULL. */
void ratectl_join(struct ratectl *r, rpc2_conn *conn);
void ratectl_leave(struct ratectl *r, rpc2_conn *conn);
/* The total rate now (bytes/s; 0: none): configured when r is NULL. */
uint64_t ratectl_rate(const struct ratectl *r, uint64_t configured);
/* Puts the configured policy and rates into the SFTP parameters. */
void ratectl_params(const struct ratectl_config *c, struct rpc2_sftp_params *p);

#endif
