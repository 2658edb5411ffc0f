/*
 * params.h - per-transfer choices derived from the SFTP parameters and
 * the path (loopback takes 64 KiB datagrams; elsewhere assume 1500 bytes).
 */
#ifndef RPC2_SFTP_PARAMS_H
#define RPC2_SFTP_PARAMS_H

#include <stddef.h>
#include <stdint.h>
#include <rpc2/sftp.h>

#include "addr.h"
#include "machine.h"
#include "packet.h"
#include "wire.h" /* SFTP_MAX_PACKET, SFTP_MAX_WINDOW */

int sftp_path_is_loopback(const struct rpc2_addr *peer);
uint32_t sftp_choose_packet_size(const struct rpc2_sftp_params *p, const struct rpc2_addr *peer);
uint32_t sftp_choose_window(const struct rpc2_sftp_params *p, uint32_t packet_size);
/* room: the body bytes left in the datagram for the side-effect block. */
uint32_t sftp_choose_piggyback_max(const struct rpc2_sftp_params *p, const struct rpc2_addr *peer,
                                   size_t room);
struct sftp_config sftp_config_of(const struct rpc2_sftp_params *p, uint32_t packet_size,
                                  uint32_t window);

#endif
