/*
 * verdict.h - what a failed call means to rcat's user: an exit code, a
 * symbolic name for --json, the file to name and a message.
 */
#ifndef RCAT_VERDICT_H
#define RCAT_VERDICT_H

#include <stdint.h>

#include <rpc2/rpc2.h>
#include <rpc2/se.h>

/* A failure, judged. */
struct verdict {
    int code;         /* rcat's exit code */
    const char *name; /* symbolic, for --json */
    const char *file; /* the name the message gives */
    char text[512];
};

/* The server a call went to, and what rcat asked of it. */
struct verdict_peer {
    const char *host;
    unsigned port;
    uint32_t dead_peer_us;       /* the silence after which a peer counts as dead */
    uint64_t max_time_us;        /* --max-time; 0: none */
    enum rpc2_security security; /* the level asked for */
    int no_clobber;
    const char *listen;          /* --listen: where rcat waited for the server; NULL: none */
};

/* rc: the call's outcome; d: its side effect (NULL for none); remote and
 * local: the names a message gives for either end. */
void verdict_judge(const struct verdict_peer *peer, int rc, const struct rpc2_se_desc *d,
                   const char *remote, const char *local, struct verdict *v);

/* A local system call failed on name: reports "name: what: error" and
 * returns RCAT_EXIT_LOCAL; *result gets the errno's name for STOP. */
int verdict_fail_local(const char *name, const char *what, int err, const char **result);

#endif
