/*
 * mailbox.c - the one way into the loop thread from elsewhere. Worker
 * threads and other application threads post (function, argument) pairs;
 * the loop thread runs them, in posting order, where protocol state may be
 * touched. Items run outside the lock so they may post again, or take
 * their time, without holding up the threads that post.
 */
#include <errno.h>
#include <stdlib.h>

#include <rpc2/rpc2.h>

#include "mailbox.h"

struct mailbox_item {
    mailbox_fn fn;
    void *arg;
    struct mailbox_item *next;
};

int mailbox_init(struct mailbox *m, void (*wake)(void *), void *wake_arg)
{
    int err = pthread_mutex_init(&m->lock, NULL);

    if (err) {
        errno = err;
        return RPC2_ESYSTEM;
    }
    m->head = m->tail = NULL;
    m->closed = 0;
    m->wake = wake;
    m->wake_arg = wake_arg;
    return 0;
}

static void free_list(struct mailbox_item *it)
{
    while (it) {
        struct mailbox_item *next = it->next;

        free(it);
        it = next;
    }
}

void mailbox_dispose(struct mailbox *m)
{
    free_list(m->head);
    m->head = m->tail = NULL;
    pthread_mutex_destroy(&m->lock);
}

int mailbox_post(struct mailbox *m, mailbox_fn fn, void *arg)
{
    struct mailbox_item *it = malloc(sizeof *it);

    if (!it)
        return RPC2_ENOMEM;
    it->fn = fn;
    it->arg = arg;
    it->next = NULL;
    pthread_mutex_lock(&m->lock);
    if (m->closed) {
        pthread_mutex_unlock(&m->lock);
        free(it);
        return RPC2_ECLOSED;
    }
    if (m->tail)
        m->tail->next = it;
    else
        m->head = it;
    m->tail = it;
    pthread_mutex_unlock(&m->lock);
    /* Woken after the item is visible, so the loop cannot wake, find the
     * queue empty and go back to sleep with this item in it. */
    if (m->wake)
        m->wake(m->wake_arg);
    return 0;
}

void mailbox_close(struct mailbox *m)
{
    pthread_mutex_lock(&m->lock);
    m->closed = 1;
    pthread_mutex_unlock(&m->lock);
}

int mailbox_drain(struct mailbox *m)
{
    pthread_mutex_lock(&m->lock);
    struct mailbox_item *it = m->head;

    m->head = m->tail = NULL;
    pthread_mutex_unlock(&m->lock);
    /* Only what was queued at the swap runs now: an item that posts again
     * cannot keep the loop here forever. */
    int n = 0;

    while (it) {
        struct mailbox_item *next = it->next;
        mailbox_fn fn = it->fn;
        void *arg = it->arg;

        free(it);
        fn(arg);
        it = next;
        n++;
    }
    return n;
}
