/*
 * recovery.h - how the SFTP source tells a lost packet from one still on
 * its way, and when it stops waiting for ACKs (after QUIC's loss recovery,
 * RFC 9002, and RACK, RFC 8985).
 *
 * Kept beside the source, not inside a rate policy: every policy sees the
 * same losses. What it judges from:
 *
 *   - each ACK names the newest transmission the sink has received
 *     (largest_tx) and how long the sink held it (ack_delay); the source
 *     knows when it sent that transmission, so the two give an RTT sample
 *     that neither a resend nor an ACK batch can falsify;
 *   - a packet whose latest transmission went before largest_tx, and is
 *     not acknowledged, is lost once it is PACKET_THRESHOLD transmissions
 *     behind or was sent more than 9/8 of an RTT ago: a reordering
 *     allowance in time, so a queue that only delays packets is never
 *     taken for loss; a timer catches the packets the ACKs stop short of;
 *   - the probe timeout (PTO) is the last resort: srtt + max(4 rttvar,
 *     1 ms) + the sink's largest ack delay, counted from the newest send
 *     or the latest ACK that acknowledged something, whichever is later,
 *     so it never fires while ACKs keep coming; it doubles with each
 *     firing. A PTO does not judge anything lost: it sends probes, and
 *     only when the ACK of a probe shows packets sent before it were lost
 *     is the timeout *confirmed* — then, and only then, the rate policy
 *     hears of it (on_timeout). An ACK of an original sent before the PTO
 *     shows the timeout was spurious, and nothing is cut.
 */
#ifndef RPC2_SFTP_RECOVERY_H
#define RPC2_SFTP_RECOVERY_H

#include <stdint.h>

#include "rtt.h"
#include "sentmap.h"

#define RECOVERY_PACKET_THRESHOLD 3u
#define RECOVERY_GRANULARITY_US 1000u

struct recovery {
    struct rtt rtt;           /* srtt and rttvar of ack-delay-adjusted samples; backoff = PTOs */
    uint32_t latest_rtt_us;   /* the latest sample, ack delay included */
    uint32_t min_rtt_us;      /* the smallest sample seen: the path without queues */
    uint32_t max_ack_delay_us; /* the largest ack delay the sink reported */
    uint64_t largest_acked_tx; /* the newest transmission the sink has received */
    uint64_t loss_time;        /* when the oldest packet before it is lost by time; UINT64_MAX */
    uint64_t probe_tx;         /* the first transmission after a PTO, until judged; 0: none */
    uint64_t last_ack_time;    /* the latest ACK that acknowledged something */
};

/* What one ACK judged. */
struct recovery_verdict {
    uint32_t lost;         /* packets moved to the worried queue */
    uint64_t lost_bytes;
    int timeout_confirmed; /* a PTO's probe came back and packets before it were lost */
    int timeout_spurious;  /* an original sent before the PTO came back instead */
};

void recovery_init(struct recovery *r, uint32_t initial_us, uint32_t min_us, uint32_t max_us);

/*
 * An ACK whose largest_tx is transmission tx, sent at sent_time and held
 * ack_delay_us by the sink. Returns the RTT sample it gives (0: none: the
 * largest did not advance).
 */
uint32_t recovery_on_largest(struct recovery *r, uint64_t tx, uint64_t sent_time,
                             uint32_t ack_delay_us, uint64_t now);

/* Moves the packets judged lost from m's flight queue to its worried queue. */
struct recovery_verdict recovery_detect(struct recovery *r, struct sentmap *m, uint64_t now);

/* The probe timeout now, backoff applied. */
uint32_t recovery_pto(const struct recovery *r);

/* The next thing recovery waits for with packets in flight: the loss
 * timer, or the PTO. UINT64_MAX with nothing in flight. */
uint64_t recovery_deadline(const struct recovery *r, struct sentmap *m);

/* The PTO fired: it backs off, and the next transmission (next_tx) is the
 * probe whose ACK judges it. */
void recovery_on_pto(struct recovery *r, uint64_t next_tx);

/* The srtt a caller may use for its own timers (the initial value before a sample). */
uint32_t recovery_srtt(const struct recovery *r);

#endif
