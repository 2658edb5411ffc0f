/*
 * handoff_state.h - what rcat handoff does with one batch, decided from
 * what it finds on the two sides alone. The run keeps no state of its own:
 * every step leaves the disks in a state this table reads back, so a run
 * killed at any point is continued by the next one, and a run with nothing
 * to do changes nothing.
 */
#ifndef RCAT_HANDOFF_STATE_H
#define RCAT_HANDOFF_STATE_H

/* One batch (a directory NAME in both spools), as found. */
struct handoff_seen {
    int source;    /* SOURCE/NAME is a directory */
    int ready;     /* ... holding the ready marker: the producer finished it */
    int dest;      /* DEST/NAME is a directory: delivered (it only appears whole) */
    int processed; /* ... holding the processed marker: the consumer is done with it */
};

enum handoff_action {
    HANDOFF_NOTHING,        /* neither side has it */
    HANDOFF_WAIT_SENDER,    /* the source is not marked ready yet */
    HANDOFF_SEND,           /* copy into the hidden incoming name, verify, rename into place */
    HANDOFF_WAIT_RECEIVER,  /* delivered, not processed yet */
    HANDOFF_CLEAR_BOTH,     /* processed: clear the source, then the destination */
    HANDOFF_CLEAR_DEST,     /* processed and the source already cleared */
};

enum handoff_action handoff_decide(const struct handoff_seen *s);
/* A word for the action, as the per-batch line on standard output says it. */
const char *handoff_action_name(enum handoff_action a);

#endif
