/*
 * sftp_type.h - registering the SFTP side-effect type on an engine
 * directly: what rpc2_sftp_activate does for a context, and what the
 * in-memory tests do for the engines of a fake link.
 */
#ifndef RPC2_SFTP_TYPE_H
#define RPC2_SFTP_TYPE_H

#include <rpc2/sftp.h>

struct engine;

int sftp_register(struct engine *e, const struct rpc2_sftp_params *p);
int sftp_stats_of(const struct engine *e, struct rpc2_sftp_stats *out);

#endif
