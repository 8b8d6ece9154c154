/* see vcard.h (kv_vcard_reader, kv_vcard_open_reader) */
#include "apdu/vcard/vcard.h"
#include "src/base/err.h"

static int vc_transmit(void *ctx, const uint8_t *c, size_t len, uint8_t *out, size_t cap,
                       size_t *outlen)
{
    return kv_vcard_process(ctx, c, len, out, cap, outlen);
}

static int vc_atr(void *ctx, uint8_t *out, size_t cap, size_t *len)
{
    *len = kv_vcard_atr(ctx, out, cap);
    return *len ? 0 : KV_ERR_BUFFER;
}

static int vc_reset(void *ctx)
{
    kv_vcard_reset(ctx);
    return 0;
}

static void vc_close(void *ctx)
{
    kv_vcard_free(ctx);
}

/* the card belongs to the reader (kv_vcard_open_reader) or to the caller (kv_vcard_reader) */
static const kv_transport_ops vcard_owned_ops = {"vcard", vc_transmit, vc_atr, vc_reset, vc_close};
static const kv_transport_ops vcard_borrowed_ops = {"vcard", vc_transmit, vc_atr, vc_reset, NULL};

int kv_vcard_reader(kv_vcard *vc, kv_reader **out)
{
    return kv_reader_new(&vcard_borrowed_ops, vc, out);
}

int kv_vcard_open_reader(const char *path, kv_reader **out, char *why, size_t whylen)
{
    kv_vcard *vc = NULL;
    int r;

    *out = NULL;
    if ((r = kv_vcard_load(path, &vc, why, whylen)) != 0)
        return r;
    return kv_reader_new(&vcard_owned_ops, vc, out); /* vc transferred: closed on failure too */
}
