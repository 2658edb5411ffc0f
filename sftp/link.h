/*
 * link.h - what the SFTP source and sink do the same way: bound their
 * configuration, keep their one timer armed through the link, echo the
 * peer's latest ts, and send ABORT. One copy, so the two ends of a
 * transfer cannot drift apart on these.
 */
#ifndef RPC2_SFTP_LINK_H
#define RPC2_SFTP_LINK_H

#include <stdint.h>

#include "machine.h"

uint32_t sftp_clamp_u32(uint32_t v, uint32_t lo, uint32_t hi);

/* Every field of c within its bounds (each machine reads the ones it needs). */
void sftp_config_clamp(struct sftp_config *c);

/* Asks the link for the timer at deadline, unless *armed says it is set. */
void sftp_link_arm(const struct sftp_link *l, uint64_t *armed, uint64_t deadline);

/* The ts to echo: the peer's latest (0: none yet), advanced by the time we
 * held it since arrival, so the peer measures the network, not us. */
uint32_t sftp_echo(uint32_t peer_ts, uint64_t arrival, uint64_t now);

/* Tells the peer the transfer failed with error (a lost ABORT is fine: the
 * peer's own retries find the end gone). */
void sftp_link_abort(const struct sftp_link *l, int error);

#endif
