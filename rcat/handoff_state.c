/*
 * handoff_state.c - the handoff's state table (handoff_state.h). The order
 * of the steps is what makes it safe to kill: the destination appears only
 * by an atomic rename of a verified copy, so "delivered" is never a partial
 * directory; the source is cleared before the destination, so a source
 * still there always has its delivered copy beside it and is never sent
 * twice; a destination whose source is gone is cleared once processed.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include "handoff_state.h"

enum handoff_action handoff_decide(const struct handoff_seen *s)
{
    if (s->dest && s->processed)
        return s->source ? HANDOFF_CLEAR_BOTH : HANDOFF_CLEAR_DEST;
    if (s->dest)
        return HANDOFF_WAIT_RECEIVER;
    if (!s->source)
        return HANDOFF_NOTHING;
    return s->ready ? HANDOFF_SEND : HANDOFF_WAIT_SENDER;
}

const char *handoff_action_name(enum handoff_action a)
{
    switch (a) {
    case HANDOFF_NOTHING:
        return "gone";
    case HANDOFF_WAIT_SENDER:
        return "waiting-for-sender";
    case HANDOFF_SEND:
        return "sent";
    case HANDOFF_WAIT_RECEIVER:
        return "waiting-for-receiver";
    case HANDOFF_CLEAR_BOTH:
    case HANDOFF_CLEAR_DEST:
        return "cleared";
    }
    return "?";
}
