/*
 * se_ops.h - the hook table of a side-effect type: the only way the rpc2
 * runtime knows side effects. The runtime calls these at fixed points of a
 * connection's life and of each call; a type (SFTP is one) implements them
 * and registers the table on a context with se_register().
 *
 * Every hook runs on the loop thread. Hooks a type does not need are NULL.
 */
#ifndef RPC2_SE_OPS_H
#define RPC2_SE_OPS_H

#include <stddef.h>
#include <stdint.h>
#include <rpc2/rpc2.h>
#include <rpc2/se.h>

#include "packet.h"

struct engine;

/* Called by a type when a server-side check has finished. */
typedef void (*se_check_done_fn)(rpc2_request *req, int status);

struct se_ops {
    const char *name;

    /* client: a bind naming this type is about to go out / has ended */
    int (*bind_before)(void *type, rpc2_conn *c);
    void (*bind_after)(void *type, rpc2_conn *c, int status);
    /* client: a call with a descriptor; write the request's side-effect
     * block into w (it becomes the CALL's se opaque). Returning an error
     * fails the call before anything is sent. *transfer receives the
     * per-call transfer state the type wants back in later hooks. */
    int (*call_before)(void *type, rpc2_conn *c, struct rpc2_se_desc *d, uint32_t seq,
                       struct pkt_writer *w, void **transfer, uint64_t now);
    /* client: the reply arrived (se may be NULL); may turn *status into a
     * side-effect error. Frees the transfer state. */
    void (*call_after)(void *type, rpc2_conn *c, void *transfer, int *status, const uint8_t *se,
                       uint32_t se_len, uint64_t now);
    /* client: the call ended without a reply (timeout, cancel, dead peer) */
    void (*call_abandon)(void *type, rpc2_conn *c, void *transfer, int status, uint64_t now);

    /* server: a connection of this type was made */
    int (*conn_new)(void *type, rpc2_conn *c);
    /* server: a request carried a side-effect block; returns the
     * per-request state or an error (the call is then answered with it) */
    int (*request)(void *type, rpc2_request *req, const uint8_t *se, uint32_t se_len,
                   void **transfer);
    /* server: the handler describes its end of the transfer */
    int (*init)(void *type, rpc2_request *req, void *transfer, struct rpc2_se_desc *d,
                uint64_t now);
    /* server: run the transfer; done() runs when it ends */
    int (*check)(void *type, rpc2_request *req, void *transfer, se_check_done_fn done,
                 uint64_t now);
    /* server: the reply is going out; write the reply's se block into w */
    int (*reply)(void *type, rpc2_request *req, void *transfer, int status, struct pkt_writer *w);
    /* server: end the transfer now with status, telling the peer (a stall,
     * a stopping server); the handler hears it as its check's outcome. One
     * not yet initialised refuses its init with status. */
    void (*abort)(void *type, rpc2_request *req, void *transfer, int status, uint64_t now);
    /* server: the request is being freed (replied, or its connection gone) */
    void (*request_free)(void *type, rpc2_request *req, void *transfer);

    /* both: a datagram of one of the type's packet types for connection c */
    void (*receive)(void *type, rpc2_conn *c, const struct pkt_hdr *h, const uint8_t *body,
                    uint64_t now);
    /* both: the connection is going away */
    void (*unbind)(void *type, rpc2_conn *c);
    /* for logs: a short description of a descriptor */
    int (*describe)(void *type, const struct rpc2_se_desc *d, char *buf, size_t cap);
};

#define SE_MAX_TYPES 4

struct se_registry {
    struct {
        uint32_t id;
        const struct se_ops *ops;
        void *type; /* the type's own state for this context */
        void (*free_type)(void *type);
    } entries[SE_MAX_TYPES];
    int count;
};

int se_register(struct se_registry *r, uint32_t id, const struct se_ops *ops, void *type,
                void (*free_type)(void *type));
/* The ops of a type id, or NULL; *type receives its state. */
const struct se_ops *se_lookup(const struct se_registry *r, uint32_t id, void **type);
void se_registry_dispose(struct se_registry *r);

#endif
