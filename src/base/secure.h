/*
 * Secrets: wiping, constant-time comparison and locked memory.
 *
 * PINs, PIN blocks and key components live in a kv_secbuf: memory that is
 * mlock'ed (never swapped), excluded from core dumps (MADV_DONTDUMP) and wiped
 * when freed.
 */
#ifndef KV_BASE_SECURE_H
#define KV_BASE_SECURE_H

#include <stddef.h>
#include <stdint.h>

/* Overwrite len bytes at p with zeros; never optimised away. p may be NULL if len is 0. */
void kv_wipe(void *p, size_t len);

/* 1 if the len bytes at a and b are equal, else 0; time depends only on len. */
int kv_ct_equal(const void *a, const void *b, size_t len);

/* A locked, dump-excluded buffer of fixed capacity. */
typedef struct kv_secbuf kv_secbuf;

/*
 * Allocate a locked buffer of cap bytes (zeroed). Returns NULL when memory
 * cannot be allocated or locked (the caller reports KV_ERR_NOMEM).
 */
kv_secbuf *kv_secbuf_new(size_t cap);
/* Wipe, unlock and free. NULL is a no-op. */
void kv_secbuf_free(kv_secbuf *b);
uint8_t *kv_secbuf_ptr(kv_secbuf *b);
size_t kv_secbuf_cap(const kv_secbuf *b);

/*
 * Read one line of a secret (PIN, token PIN, key component) from fd into b,
 * without the trailing newline, NUL-terminated. If fd is a terminal and prompt
 * is non-NULL, the prompt goes to stderr and echo is turned off while reading.
 * Returns the length, or KV_ERR_IO / KV_ERR_BUFFER (line longer than cap-1) /
 * KV_ERR_NOT_FOUND (end of input before any byte).
 */
int kv_secret_read_line(int fd, const char *prompt, kv_secbuf *b);

/* Disable core dumps for this process (daemon, CLI commands holding secrets). */
void kv_disable_core_dumps(void);

#endif
