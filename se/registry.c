/*
 * registry.c - the side-effect types registered on one context: a small
 * fixed table, looked up by the se_type a bind names.
 */
#include "se_ops.h"

int se_register(struct se_registry *r, uint32_t id, const struct se_ops *ops, void *type,
                void (*free_type)(void *type))
{
    void *existing;
    if (id == 0 || !ops || se_lookup(r, id, &existing))
        return RPC2_EINVAL;
    if (r->count == SE_MAX_TYPES)
        return RPC2_ELIMIT;
    r->entries[r->count].id = id;
    r->entries[r->count].ops = ops;
    r->entries[r->count].type = type;
    r->entries[r->count].free_type = free_type;
    r->count++;
    return 0;
}

const struct se_ops *se_lookup(const struct se_registry *r, uint32_t id, void **type)
{
    for (int i = 0; i < r->count; i++) {
        if (r->entries[i].id == id) {
            *type = r->entries[i].type;
            return r->entries[i].ops;
        }
    }
    return NULL;
}

void se_registry_dispose(struct se_registry *r)
{
    for (int i = 0; i < r->count; i++)
        if (r->entries[i].free_type)
            r->entries[i].free_type(r->entries[i].type);
    r->count = 0;
}
