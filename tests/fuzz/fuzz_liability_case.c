/*
 * libFuzzer target for the liability case decoder (src/liability/liability.h):
 * any bytes either decode into a case or give KV_ERR_JSON with a message; a
 * decoded case is assessed (with and without an evidence lookup) and rendered
 * as JSON, text and SVG, and the amounts must add up.
 */
#include "src/base/err.h"
#include "src/liability/liability.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Evidence ids decide the record's fate, so the fuzzer reaches every branch. */
static int fuzz_lookup(void *ctx, const char *id, const struct kv_liability_txn *txn,
                       struct kv_liability_verification *v)
{
    (void)ctx;
    (void)txn;
    switch (id[0] % 4) {
    case 0:
        v->method = KV_LIABILITY_METHOD_ONLINE_PIN;
        v->proven = true;
        return 0;
    case 1:
        return KV_ERR_EVIDENCE_BROKEN;
    case 2:
        return KV_ERR_NOT_FOUND;
    default:
        return KV_ERR_STORE;
    }
}

static void check(const struct kv_liability_case *c, const struct kv_liability_result *r)
{
    int64_t total = 0;
    for (size_t i = 0; i < c->n_txns; i++) {
        const struct kv_liability_txn_result *x = &r->txns[i];
        if (x->cardholder < 0 || x->issuer < 0 || x->cardholder + x->issuer != c->txns[i].amount)
            abort();
        if (x->cap != 0 && x->cardholder > x->cap)
            abort();
        total += c->txns[i].amount;
    }
    if (r->total != total || r->cardholder + r->issuer != r->total)
        abort();
}

static void render(const struct kv_liability_case *c, const struct kv_liability_result *r)
{
    char *buf = NULL;
    size_t len = 0;
    json_t *j = NULL;
    FILE *f = open_memstream(&buf, &len);
    if (f != NULL) {
        (void)kv_liability_write_text(f, c, r, KV_LIABILITY_LANG_DA);
        (void)kv_liability_write_svg(f, c, r, KV_LIABILITY_LANG_EN);
        fclose(f);
    }
    free(buf);
    if (kv_liability_result_to_json(c, r, &j) == 0)
        json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kv_liability_case *c = NULL;
    struct kv_liability_result *r = NULL;
    char why[256];
    int rc = kv_liability_case_parse((const char *)data, size, &c, why, sizeof why);
    if (rc != 0) {
        if (c != NULL || why[0] == '\0' || memchr(why, '\0', sizeof why) == NULL)
            abort();
        return 0;
    }
    if (kv_liability_assess(c, NULL, NULL, &r) != 0)
        abort(); /* without a lookup nothing can fail but memory */
    check(c, r);
    render(c, r);
    kv_liability_result_free(r);
    r = NULL;
    if (kv_liability_assess(c, fuzz_lookup, NULL, &r) == 0) {
        check(c, r);
        kv_liability_result_free(r);
    }
    kv_liability_case_free(c);
    return 0;
}
