/*
 * link.c - the parts of the SFTP machines that source and sink share
 * (link.h).
 */
#include "link.h"

#include "wire.h"

uint32_t sftp_clamp_u32(uint32_t v, uint32_t lo, uint32_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

void sftp_config_clamp(struct sftp_config *c)
{
    c->packet_size = sftp_clamp_u32(c->packet_size, 1, SFTP_MAX_PACKET);
    c->window = sftp_clamp_u32(c->window, 1, SFTP_MAX_WINDOW);
    c->send_ahead = sftp_clamp_u32(c->send_ahead, 1, c->window);
    c->ack_point = sftp_clamp_u32(c->ack_point, 1, c->window);
    c->dup_threshold = sftp_clamp_u32(c->dup_threshold, 1, UINT32_MAX);
    c->retry_min_us = sftp_clamp_u32(c->retry_min_us, 1, UINT32_MAX);
    c->retry_max_us = sftp_clamp_u32(c->retry_max_us, c->retry_min_us, UINT32_MAX);
    c->retry_initial_us = sftp_clamp_u32(c->retry_initial_us, c->retry_min_us, c->retry_max_us);
}

void sftp_link_arm(const struct sftp_link *l, uint64_t *armed, uint64_t deadline)
{
    if (deadline == *armed)
        return;
    *armed = deadline;
    l->set_timer(l->arg, deadline);
}

uint32_t sftp_echo(uint32_t peer_ts, uint64_t arrival, uint64_t now)
{
    uint32_t echo;

    if (peer_ts == 0)
        return 0;
    echo = peer_ts + (uint32_t)(now - arrival);
    return echo != 0 ? echo : 1; /* 0 means "no echo" on the wire */
}

void sftp_link_abort(const struct sftp_link *l, int error)
{
    size_t cap, len;
    uint8_t *buf = l->begin(l->arg, &cap);

    if (buf != NULL && sftp_abort_encode(error, buf, cap, &len) == PKT_OK)
        l->commit(l->arg, PKT_SFTP_ABORT, 0, 0, 0, len);
}
