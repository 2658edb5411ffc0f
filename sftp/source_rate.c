/*
 * source_rate.c - the SFTP source's rate policy in force: the one its
 * configuration names, changed while the transfer runs by this end's
 * caller or by the sink's wishes (carried in ACKs), always within what
 * this end allows (policies_allowed, rate_max_bps); and what it reports of
 * it. The policies themselves live behind the pacer (pacer.h, cc_*.c).
 */
#include "source_impl.h"

#include <string.h>

#include <rpc2/rpc2.h>

const struct pacer_ops *source_policy_ops(uint32_t policy)
{
    switch (policy) {
    case SFTP_POLICY_FIXED:
        return &pacer_fixed_ops;
    case SFTP_POLICY_BACKGROUND:
        return &pacer_background_ops;
    default:
        return &pacer_adaptive_ops;
    }
}

int sftp_source_set_rate(struct sftp_source *s, uint32_t policy, uint64_t rate_bps,
                         uint64_t min_rate_bps, uint64_t now)
{
    if (policy > SFTP_POLICY_MAX)
        return RPC2_EINVAL;
    if (policy != SFTP_POLICY_DEFAULT && s->cfg.policies_allowed != 0 &&
        !(s->cfg.policies_allowed & (1u << policy)))
        return RPC2_EINVAL;
    if (policy != SFTP_POLICY_DEFAULT)
        s->cfg.policy = policy;
    s->cfg.rate_bps = rate_bps;
    s->cfg.min_rate_bps = min_rate_bps;
    if (!s->started || s->state != SFTP_RUNNING)
        return 0; /* start applies the configuration */
    pacer_set_policy(&s->pacer, source_policy_ops(s->cfg.policy), now);
    pacer_set_rates(&s->pacer, rate_bps, min_rate_bps, now);
    source_rearm(s, now);
    return 0;
}

void source_apply_wish(struct sftp_source *s, const struct sftp_wish *w, uint64_t now)
{
    if (memcmp(w, &s->last_wish, sizeof(*w)) == 0)
        return;
    s->last_wish = *w;
    if (sftp_source_set_rate(s, w->policy, w->rate, w->min_rate, now) != 0)
        (void)sftp_source_set_rate(s, SFTP_POLICY_DEFAULT, w->rate, w->min_rate, now);
}

void sftp_source_rate_info(const struct sftp_source *s, struct sftp_rate_info *out)
{
    *out = (struct sftp_rate_info){
        .policy = source_policy_ops(s->cfg.policy)->name,
        .target_bps = s->cfg.rate_bps,
        .min_bps = s->cfg.min_rate_bps,
        .srtt_us = s->rec.rtt.srtt_us,
        .min_rtt_us = s->rec.min_rtt_us,
        .in_flight = s->sent.flight.count,
    };
    if (s->started && s->pacer.ops != NULL) {
        out->rate_bps = pacer_rate(&s->pacer);
        out->cwnd = pacer_cwnd(&s->pacer);
        out->burst = pacer_burst(&s->pacer);
    }
}
