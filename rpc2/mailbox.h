/*
 * mailbox.h - how other threads hand work to the loop thread: a locked
 * queue of (function, argument) pairs plus a wake-up callback (the driver
 * wires it to an ev_async). Only the loop thread drains it.
 */
#ifndef RPC2_MAILBOX_H
#define RPC2_MAILBOX_H

#include <pthread.h>

typedef void (*mailbox_fn)(void *arg);

struct mailbox_item;

struct mailbox {
    pthread_mutex_t lock;
    struct mailbox_item *head, *tail;
    int closed;
    void (*wake)(void *wake_arg);
    void *wake_arg;
};

int mailbox_init(struct mailbox *m, void (*wake)(void *), void *wake_arg);
/* Runs nothing still queued; frees the queue. */
void mailbox_dispose(struct mailbox *m);
/* From any thread. Returns 0, RPC2_ENOMEM, or RPC2_ECLOSED once closed. */
int mailbox_post(struct mailbox *m, mailbox_fn fn, void *arg);
/* Refuses posts from now on; what is queued can still be drained. */
void mailbox_close(struct mailbox *m);
/* Loop thread: runs every queued item in posting order; returns how many. */
int mailbox_drain(struct mailbox *m);

#endif
