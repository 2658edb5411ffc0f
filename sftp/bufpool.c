/*
 * bufpool.c - the packet buffer pool (see bufpool.h). The spare array has
 * room for max buffers, and the pool never holds more, so a put always
 * fits.
 */
#include "bufpool.h"

#include <stdlib.h>

int bufpool_init(struct bufpool *p, uint32_t max, uint32_t size)
{
    *p = (struct bufpool){.max = max, .keep = max, .size = size > 0 ? size : 1};
    p->spare = calloc(max > 0 ? max : 1, sizeof(*p->spare));
    return p->spare != NULL ? 0 : -1;
}

void bufpool_dispose(struct bufpool *p)
{
    bufpool_trim(p);
    free(p->spare);
    p->spare = NULL;
}

int bufpool_full(const struct bufpool *p)
{
    return p->spare_count == 0 && p->buffers >= p->max;
}

uint8_t *bufpool_get(struct bufpool *p)
{
    uint8_t *b;

    if (p->spare_count > 0)
        return p->spare[--p->spare_count];
    if (p->buffers >= p->max)
        return NULL;
    b = malloc(p->size);
    if (b != NULL)
        p->buffers++;
    return b;
}

void bufpool_drop(struct bufpool *p, uint8_t *b)
{
    if (b == NULL)
        return;
    free(b);
    p->buffers--;
}

void bufpool_put(struct bufpool *p, uint8_t *b)
{
    if (p->buffers > p->keep)
        bufpool_drop(p, b);
    else
        p->spare[p->spare_count++] = b;
}

void bufpool_keep(struct bufpool *p, uint32_t n)
{
    p->keep = n < p->max ? n : p->max;
    while (p->buffers > p->keep && p->spare_count > 0)
        bufpool_drop(p, p->spare[--p->spare_count]);
}

void bufpool_trim(struct bufpool *p)
{
    while (p->spare_count > 0)
        bufpool_drop(p, p->spare[--p->spare_count]);
}
