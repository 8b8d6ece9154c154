/*
 * A wiping allocator for jansson. JSON trees of the daemon and the CLI hold
 * PIN blocks, card codes and PVVs as strings; jansson frees them with its
 * free function. kv_jalloc_install makes that function overwrite every block
 * with zeros (kv_wipe, the whole usable size of the block) before it goes
 * back to the C library. The blocks are ordinary malloc blocks (no header),
 * so text that jansson hands out and a caller releases with free() (e.g. the
 * result of json_dumps) stays valid; only that copy is then not wiped.
 *
 * Call once, early in main(), before any JSON value exists (jansson requires
 * it): values allocated before and freed after the switch would still be
 * fine here, but the rule of jansson holds.
 */
#ifndef KV_BASE_JALLOC_H
#define KV_BASE_JALLOC_H

#include <stddef.h>

/* Install the wiping allocator as jansson's (json_set_alloc_funcs). */
void kv_jalloc_install(void);

/* The two functions themselves (tests). */
void *kv_jalloc_malloc(size_t n);
void kv_jalloc_free(void *p);

#endif
