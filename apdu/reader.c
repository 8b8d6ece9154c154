/* see reader.h */
#include "apdu/reader.h"
#include "src/base/err.h"
#include "src/base/secure.h"

#include <stdlib.h>
#include <string.h>

struct kv_reader {
    const kv_transport_ops *ops;
    void *ctx;
    char *name;
    unsigned long count;
    kv_trace *trace; /* borrowed */
};

int kv_reader_new(const kv_transport_ops *ops, void *ctx, kv_reader **out)
{
    kv_reader *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        if (ops->close != NULL)
            ops->close(ctx);
        return KV_ERR_NOMEM;
    }
    r->ops = ops;
    r->ctx = ctx;
    *out = r;
    return 0;
}

void kv_reader_free(kv_reader *r)
{
    if (r == NULL)
        return;
    if (r->ops->close != NULL)
        r->ops->close(r->ctx);
    free(r->name);
    free(r);
}

int kv_reader_set_name(kv_reader *r, const char *name)
{
    char *n = strdup(name);
    if (n == NULL)
        return KV_ERR_NOMEM;
    free(r->name);
    r->name = n;
    return 0;
}

const char *kv_reader_name(const kv_reader *r)
{
    return r->name != NULL ? r->name : r->ops->name;
}

const char *kv_reader_backend(const kv_reader *r)
{
    return r->ops->name;
}

const kv_transport_ops *kv_reader_ops(const kv_reader *r)
{
    return r->ops;
}

void *kv_reader_ctx(const kv_reader *r)
{
    return r->ctx;
}

unsigned long kv_reader_apdu_count(const kv_reader *r)
{
    return r->count;
}

void kv_reader_set_trace(kv_reader *r, kv_trace *t)
{
    r->trace = t;
}

int kv_reader_atr(kv_reader *r, uint8_t *out, size_t cap, size_t *len)
{
    return r->ops->atr(r->ctx, out, cap, len);
}

int kv_reader_reset(kv_reader *r)
{
    if (r->ops->reset == NULL)
        return KV_ERR_UNSUPPORTED;
    return r->ops->reset(r->ctx);
}

int kv_reader_transmit_raw(kv_reader *r, const uint8_t *capdu, size_t len, uint8_t *out, size_t cap,
                           size_t *outlen)
{
    int ret;
    if (cap < 2)
        return KV_ERR_BUFFER;
    if ((ret = r->ops->transmit(r->ctx, capdu, len, out, cap, outlen)) != 0)
        return ret;
    r->count++;
    if (*outlen < 2 || *outlen > cap)
        return KV_ERR_APDU;
    if (r->trace != NULL && (ret = kv_trace_write(r->trace, capdu, len, out, *outlen)) != 0)
        return ret;
    return 0;
}

/*
 * One command and, if the card answers 6Cxx, the same command once more
 * with Le = xx (ISO/IEC 7816-3 §12.2.2: a case 1/3 command gains the Le
 * field; nothing else changes).
 */
static int exchange_6c(kv_reader *r, const uint8_t *capdu, size_t len, uint8_t *out, size_t cap,
                       size_t *outlen)
{
    int ret;
    kv_capdu c;
    uint8_t *again = NULL;
    size_t alen;

    if ((ret = kv_reader_transmit_raw(r, capdu, len, out, cap, outlen)) != 0)
        goto out;
    if (out[*outlen - 2] != 0x6C || kv_capdu_parse(capdu, len, &c) != 0)
        goto out;
    c.le = out[*outlen - 1] == 0 ? KV_APDU_SHORT_LE_MAX : out[*outlen - 1];
    if ((again = malloc(len + 3)) == NULL) {
        ret = KV_ERR_NOMEM;
        goto out;
    }
    if ((ret = kv_capdu_encode(&c, again, len + 3, &alen)) != 0)
        goto out;
    ret = kv_reader_transmit_raw(r, again, alen, out, cap, outlen);
out:
    if (again != NULL)
        kv_wipe(again, len + 3); /* may be a VERIFY: its data is a PIN block */
    free(again);
    return ret;
}

int kv_reader_transmit(kv_reader *r, const uint8_t *capdu, size_t len, uint8_t *out, size_t cap,
                       size_t *outlen)
{
    int ret;
    size_t n, data = 0;
    unsigned rounds = 0;

    if ((ret = exchange_6c(r, capdu, len, out, cap, &n)) != 0)
        goto out;
    /* 61xx: fetch the rest with GET RESPONSE; each answer lands where the last SW was */
    while (out[data + n - 2] == 0x61) {
        uint8_t gr[5] = {0x00, 0xC0, 0x00, 0x00, out[data + n - 1]};
        data += n - 2;
        if (++rounds > KV_READER_MAX_GET_RESPONSE) {
            ret = KV_ERR_APDU;
            goto out;
        }
        if (cap - data < 2) {
            ret = KV_ERR_BUFFER;
            goto out;
        }
        if ((ret = exchange_6c(r, gr, sizeof(gr), out + data, cap - data, &n)) != 0)
            goto out;
    }
    *outlen = data + n;
out:
    return ret;
}

int kv_reader_exchange(kv_reader *r, const kv_capdu *c, uint8_t *out, size_t cap, size_t *outlen)
{
    int ret;
    uint8_t small[4 + 1 + 255 + 1];
    uint8_t *buf = small;
    size_t len;

    if (c->lc > KV_APDU_SHORT_LC_MAX || c->extended) {
        if ((buf = malloc(KV_CAPDU_MAX)) == NULL)
            return KV_ERR_NOMEM;
    }
    if ((ret = kv_capdu_encode(c, buf, buf == small ? sizeof(small) : KV_CAPDU_MAX, &len)) == 0)
        ret = kv_reader_transmit(r, buf, len, out, cap, outlen);
    kv_wipe(buf, buf == small ? sizeof(small) : KV_CAPDU_MAX);
    if (buf != small)
        free(buf);
    return ret;
}
