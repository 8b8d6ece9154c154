/* see jalloc.h */
#include "src/base/jalloc.h"
#include "src/base/secure.h"

#include <jansson.h>
#include <malloc.h>
#include <stdlib.h>

void *kv_jalloc_malloc(size_t n)
{
    return malloc(n);
}

void kv_jalloc_free(void *p)
{
    if (p == NULL)
        return;
    /* the usable size covers every byte jansson may have written */
    kv_wipe(p, malloc_usable_size(p));
    free(p);
}

void kv_jalloc_install(void)
{
    json_set_alloc_funcs(kv_jalloc_malloc, kv_jalloc_free);
}
