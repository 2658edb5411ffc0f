/*
 * sftp.c - the SFTP side-effect type: the hook table rpc2 calls (the ends
 * are sftp_client.c and sftp_server.c, one transfer is xfer.c), its
 * activation on a context, and what a caller may change or read of a
 * running transfer (docs/RATE.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sftp_type.h"
#include "xfer.h"

static const char *kind_name(enum rpc2_se_file_kind k)
{
    switch (k) {
    case RPC2_SE_FILE_NAME:
        return "name";
    case RPC2_SE_FILE_FD:
        return "fd";
    case RPC2_SE_FILE_INODE:
        return "inode";
    case RPC2_SE_FILE_VM:
        return "memory";
    }
    return "?";
}

static int sftp_describe(void *type, const struct rpc2_se_desc *d, char *buf, size_t cap)
{
    char file[96] = "";
    if (d->file_kind == RPC2_SE_FILE_NAME)
        snprintf(file, sizeof file, " %.80s%s", d->file.name.path,
                 d->file.name.atomic ? " (atomic)" : "");
    else if (d->file_kind == RPC2_SE_FILE_FD)
        snprintf(file, sizeof file, " %d", d->file.fd.fd);
    return snprintf(buf, cap, "sftp %s %s%s offset %lld quota %lld",
                    d->direction == RPC2_SE_FETCH ? "fetch" : "store", kind_name(d->file_kind),
                    file, (long long)d->seek_offset, (long long)d->quota);
}

static const struct se_ops sftp_ops = {
    .name = "sftp",
    .call_before = sftp_client_call_before,
    .call_after = sftp_client_call_after,
    .call_abandon = sftp_client_call_abandon,
    .request = sftp_server_request,
    .init = sftp_server_init,
    .check = sftp_server_check,
    .reply = sftp_server_reply,
    .abort = xfer_server_abort,
    .request_free = sftp_server_request_free,
    .receive = xfer_receive,
    .unbind = sftp_server_unbind,
    .describe = sftp_describe,
};

int sftp_register(struct engine *e, const struct rpc2_sftp_params *p)
{
    struct rpc2_sftp_params defaults;
    if (!p) {
        rpc2_sftp_params_init(&defaults);
        p = &defaults;
    }
    if (rpc2_sftp_params_check(p) != 0)
        return RPC2_EINVAL;
    struct sftp_type *t = calloc(1, sizeof *t);
    if (!t)
        return RPC2_ENOMEM;
    t->params = *p;
    memshare_init(&t->memory, p->memory_cap);
    int rc = engine_se_register(e, RPC2_SE_SFTP, &sftp_ops, t, free);
    if (rc != 0)
        free(t);
    return rc;
}

int sftp_stats_of(const struct engine *e, struct rpc2_sftp_stats *out)
{
    const struct sftp_type *t = engine_se_type(e, RPC2_SE_SFTP);
    if (!t || !out)
        return RPC2_EINVAL;
    *out = t->stats;
    return 0;
}

int rpc2_sftp_activate(rpc2_ctx *ctx, const struct rpc2_sftp_params *p)
{
    return ctx ? sftp_register(ctx_engine(ctx), p) : RPC2_EINVAL;
}

int rpc2_sftp_stats(const rpc2_ctx *ctx, struct rpc2_sftp_stats *out)
{
    return ctx ? sftp_stats_of(ctx_engine((rpc2_ctx *)ctx), out) : RPC2_EINVAL;
}

static struct xfer *running_xfer(rpc2_conn *c)
{
    if (!c || c->se_ops != &sftp_ops)
        return NULL;
    if (conn_is_client(c))
        return c->call ? c->call->se_transfer : NULL;
    return c->running ? c->running->se_transfer : NULL;
}

int rpc2_sftp_set_rate(rpc2_conn *c, const struct rpc2_sftp_rate *r)
{
    struct xfer *x = running_xfer(c);
    if (!r || r->policy > SFTP_POLICY_MAX)
        return RPC2_EINVAL;
    if (!x || x->result <= 0)
        return RPC2_ENOENT;
    x->now = ctx_now();
    if (x->source) {
        int rc = sftp_source_set_rate(x->source, r->policy, r->rate_bps, r->min_rate_bps, x->now);
        xfer_after_event(x);
        return rc;
    }
    x->wish = (struct sftp_wish){r->policy, r->rate_bps, r->min_rate_bps};
    x->has_wish = 1;
    if (x->sink)
        sftp_sink_set_wish(x->sink, &x->wish);
    if (xfer_is_source(x)) { /* not started yet: the source starts with it */
        x->cfg.policy = r->policy ? r->policy : x->cfg.policy;
        x->cfg.rate_bps = r->rate_bps;
        x->cfg.min_rate_bps = r->min_rate_bps;
    }
    return 0;
}

int rpc2_sftp_transfer_info(rpc2_conn *c, struct rpc2_sftp_transfer_info *out)
{
    struct xfer *x = running_xfer(c);
    if (!out)
        return RPC2_EINVAL;
    memset(out, 0, sizeof *out);
    return x ? xfer_info(x, out) : RPC2_ENOENT;
}
