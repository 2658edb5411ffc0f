/*
 * stall.c - the stall bound of stall.h. One timer per transfer, armed once
 * per timeout rather than moved on every packet: when it fires it looks at
 * when the transfer last moved, and either ends it or sleeps again.
 */
#include "stall.h"

static void fired(struct engine_timer *t, uint64_t now)
{
    struct stall *s = (struct stall *)((char *)t - offsetof(struct stall, timer));
    uint64_t due = s->moved_at + s->timeout;

    if (now < due) {
        engine_timer_set(s->engine, &s->timer, due);
        return;
    }
    s->timeout = 0;
    s->expired(s, now);
}

void stall_start(struct stall *s, struct engine *e, uint64_t timeout, uint64_t bytes, uint64_t now,
                 void (*expired)(struct stall *s, uint64_t now))
{
    engine_timer_init(&s->timer, fired);
    s->engine = e;
    s->timeout = timeout;
    s->bytes = bytes;
    s->started_at = now;
    s->moved_at = now;
    s->expired = expired;
    if (timeout)
        engine_timer_set(e, &s->timer, now + timeout);
}

void stall_progress(struct stall *s, uint64_t bytes, uint64_t now)
{
    if (!s->timeout || bytes == s->bytes)
        return;
    s->bytes = bytes;
    s->moved_at = now;
}

void stall_stop(struct stall *s)
{
    if (s->engine)
        engine_timer_set(s->engine, &s->timer, UINT64_MAX);
    s->timeout = 0;
}
