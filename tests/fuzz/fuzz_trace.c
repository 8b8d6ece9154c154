/*
 * libFuzzer target for the trace format of apdu/trace.h (JSON lines of
 * command/response hex, as --trace writes and the replay transport reads):
 * any input parses or is refused with KV_ERR_TRACE, never a crash, and a
 * parsed script holds what the parser promised.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "apdu/trace.h"
#include "src/base/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kv_trace_script *s = NULL;
    int r = kv_trace_parse((const char *)data, size, &s);

    if (r != 0) {
        if (s != NULL || (r != KV_ERR_TRACE && r != KV_ERR_NOMEM))
            abort();
        return 0;
    }
    if (s == NULL || s->atr_len > sizeof(s->atr))
        abort();
    for (size_t i = 0; i < s->n; i++) {
        const kv_trace_entry *e = &s->e[i];
        /* a command is at least CLA INS P1 P2; a response at least SW1 SW2 */
        if (e->clen < 4 || e->rlen < 2 || e->c == NULL || e->r == NULL || e->cmask == NULL)
            abort();
    }
    kv_trace_script_free(s);
    return 0;
}
