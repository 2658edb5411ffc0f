/*
 * vmbuf.h - the room of a memory sink (rpc2_se_desc.file.vm): fixed, as the
 * caller gave it, or grown by the library as data comes (vm.grow).
 */
#ifndef RPC2_SFTP_VMBUF_H
#define RPC2_SFTP_VMBUF_H

#include <stdint.h>
#include <rpc2/se.h>

/* Whether the sink can take bytes up to `end`, counted from the seek
 * offset: 0 (a growing buffer grown as needed, new bytes zero), or
 * RPC2_EOVERFLOW past max, RPC2_ENOMEM. */
int vmbuf_room(struct rpc2_se_desc *d, uint64_t end);

/* Whether the sink may start: 0, or RPC2_EINVAL with *why. */
int vmbuf_open(const struct rpc2_se_desc *d, const char **why);

#endif
