/*
 * raw_bind.h - the connection a raw test client (remote_raw.c,
 * range_raw.c) sends rcatd's procedures on: anonymous, to 127.0.0.1:port,
 * with SFTP for the calls that move bytes.
 */
#ifndef TESTS_RAW_BIND_H
#define TESTS_RAW_BIND_H

#include <stdio.h>
#include <rpc2/rpc2.h>
#include <rpc2/sftp.h>

#include "rcat_proto.h"

/* 0, or 2 (said on stderr, as who) when the server cannot be reached. */
static inline int raw_bind(const char *who, const char *port, rpc2_ctx **ctx, rpc2_conn **conn)
{
    struct rpc2_params params;

    rpc2_params_init(&params);
    params.dead_peer_us = 10 * 1000 * 1000;
    if (rpc2_ctx_new(&params, ctx) != 0)
        return 2;
    struct rpc2_bind_params bind = {.host = "127.0.0.1",
                                    .port = port,
                                    .subsystem = RCAT_SUBSYS,
                                    .se_type = RPC2_SE_SFTP,
                                    .identity = who};
    if (rpc2_sftp_activate(*ctx, NULL) != 0 || rpc2_bind(*ctx, &bind, conn) != 0) {
        fprintf(stderr, "%s: cannot bind to port %s\n", who, port);
        rpc2_ctx_free(*ctx);
        return 2;
    }
    return 0;
}

#endif
