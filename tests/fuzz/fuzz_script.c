/*
 * Fuzz target: issuer script templates (apdu/script.h) from an issuer's
 * answer, untrusted bytes: kv_script_parse_all over the whole input and
 * kv_script_parse over it as one template.
 *
 * Invariants: a parsed template is 71 or 72 with 1..KV_SCRIPT_MAX_CMDS
 * commands, each 4..KV_SCRIPT_CMD_MAX bytes whose Lc agrees with its length;
 * it encodes again, and the encoding parses to the same script; the 9F5B of
 * its commands is 5 bytes each.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "apdu/script.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const kv_script *sc)
{
    static uint8_t enc[2048];
    kv_script again;
    kv_script_result res[KV_SCRIPT_MAX_CMDS];
    uint8_t b[5 * KV_SCRIPT_MAX_CMDS];
    size_t n;

    if ((sc->tag != 0x71 && sc->tag != 0x72) || sc->ncmds == 0 || sc->ncmds > KV_SCRIPT_MAX_CMDS)
        abort();
    for (size_t i = 0; i < sc->ncmds; i++) {
        const kv_script_cmd *c = &sc->cmds[i];
        if (c->len < 4 || c->len > KV_SCRIPT_CMD_MAX)
            abort();
        if (c->len > 5 &&
            (c->apdu[4] == 0 || (c->len != 5u + c->apdu[4] && c->len != 6u + c->apdu[4])))
            abort();
    }
    if (kv_script_encode(sc, enc, sizeof(enc), &n) != 0)
        abort();
    if (kv_script_parse(enc, n, &again) != 0 || again.tag != sc->tag || again.ncmds != sc->ncmds ||
        again.has_id != sc->has_id || (sc->has_id && memcmp(again.id, sc->id, 4) != 0))
        abort();
    for (size_t i = 0; i < sc->ncmds; i++)
        if (again.cmds[i].len != sc->cmds[i].len ||
            memcmp(again.cmds[i].apdu, sc->cmds[i].apdu, sc->cmds[i].len) != 0)
            abort();
    memset(res, 0, sizeof(res));
    for (size_t i = 0; i < sc->ncmds; i++) {
        res[i].seq = (unsigned)(i + 1);
        res[i].result = 2;
    }
    if (kv_script_results_9f5b(res, sc->ncmds, b, sizeof(b)) != 5 * sc->ncmds)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static kv_script all[KV_SCRIPT_MAX];
    static kv_script one;
    size_t n = 0;

    if (kv_script_parse_all(data, size, all, KV_SCRIPT_MAX, &n) == 0) {
        if (n > KV_SCRIPT_MAX)
            abort();
        for (size_t i = 0; i < n; i++)
            check(&all[i]);
    }
    if (kv_script_parse(data, size, &one) == 0)
        check(&one);
    return 0;
}
