/*
 * see vcard.h: a card from a JSON card profile (profile.h) or from a recorded
 * trace card (apdu/recorded.h), its identity, and freeing it.
 */
#include "apdu/vcard/card.h"
#include "apdu/vcard/card_fault.h"
#include "apdu/vcard/vcard.h"
#include "src/base/err.h"
#include "src/base/secure.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* see card.h */
kv_vcard *kv_vcard_alloc(void)
{
    kv_vcard *vc = calloc(1, sizeof(*vc));
    if (vc != NULL)
        vc->selected = -1;
    return vc;
}

/* The profile card of a parsed JSON root. */
static int card_from_json(json_t *root, kv_vcard **out, char *why, size_t whylen)
{
    kv_vcard *vc = NULL;
    int r = KV_ERR_NOMEM;

    if ((vc = kv_vcard_alloc()) == NULL)
        goto out;
    if ((r = kv_vcard_profile_build(root, &vc->prof, why, whylen)) != 0)
        goto out;
    snprintf(vc->name, sizeof(vc->name), "%s", vc->prof->name);
    memcpy(vc->atr, vc->prof->atr, vc->prof->atr_len);
    vc->atr_len = vc->prof->atr_len;
    vc->quirks = vc->prof->quirks;
    vc->pin_tries = vc->prof->pin_tries;
    vc->atc = vc->prof->atc;
    if ((r = kv_vcard_lab_init(vc)) != 0) /* faults and log (card_fault.h) */
        goto out;
    *out = vc;
    vc = NULL; /* transferred */
    r = 0;
out:
    kv_vcard_free(vc);
    return r;
}

static int card_from_recording(const char *path, json_t *root, kv_vcard **out, char *why,
                               size_t whylen)
{
    kv_vcard *vc = NULL;
    int r = KV_ERR_NOMEM;

    if ((vc = kv_vcard_alloc()) == NULL)
        goto out;
    if ((r = kv_recorded_load(path, &vc->rec)) != 0) {
        snprintf(why, whylen, "not a valid trace card: %s", kv_strerror(r));
        goto out;
    }
    vc->atr_len = kv_recorded_atr(vc->rec, vc->atr, sizeof(vc->atr));
    if (vc->atr_len == 0 || vc->atr_len > sizeof(vc->atr)) {
        r = KV_ERR_JSON;
        snprintf(why, whylen, "atr: a trace card needs an ATR of 1..%d bytes", KV_VCARD_ATR_MAX);
        goto out;
    }
    snprintf(vc->name, sizeof(vc->name), "%s",
             json_is_string(json_object_get(root, "name"))
                 ? json_string_value(json_object_get(root, "name"))
                 : "recorded card");
    *out = vc;
    vc = NULL; /* transferred */
    r = 0;
out:
    kv_vcard_free(vc);
    return r;
}

/* The code and reason of a failed jansson load. */
static int json_failure(const json_error_t *e, char *why, size_t whylen)
{
    if (json_error_code(e) == json_error_cannot_open_file) {
        snprintf(why, whylen, "%s", e->text);
        return KV_ERR_IO;
    }
    snprintf(why, whylen, "line %d: %s", e->line, e->text);
    return KV_ERR_JSON;
}

/* A card from a parsed file (path) or text (path NULL: no trace cards, they load by path). */
static int card_from_root(json_t *root, const char *path, kv_vcard **out, char *why, size_t whylen)
{
    if (json_object_get(root, "exchanges") == NULL)
        return card_from_json(root, out, why, whylen);
    if (path == NULL) {
        snprintf(why, whylen, "a trace card loads from its file only");
        return KV_ERR_UNSUPPORTED;
    }
    return card_from_recording(path, root, out, why, whylen);
}

/* see vcard.h */
int kv_vcard_load(const char *path, kv_vcard **out, char *why, size_t whylen)
{
    json_error_t e;
    json_t *root;
    int r;

    *out = NULL;
    if ((root = json_load_file(path, JSON_REJECT_DUPLICATES, &e)) == NULL)
        return json_failure(&e, why, whylen);
    r = card_from_root(root, path, out, why, whylen);
    json_decref(root);
    if (r == 0) {
        char *rp = realpath(path, NULL);
        snprintf((*out)->card_id, sizeof((*out)->card_id), "%s", rp != NULL ? rp : path);
        free(rp);
    }
    return r;
}

/* see vcard.h */
int kv_vcard_new(const char *path, kv_vcard **out)
{
    return kv_vcard_load(path, out, NULL, 0);
}

/* see vcard.h */
int kv_vcard_load_text(const char *text, size_t len, kv_vcard **out, char *why, size_t whylen)
{
    json_error_t e;
    json_t *root;
    int r;

    *out = NULL;
    if ((root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e)) == NULL)
        return json_failure(&e, why, whylen);
    r = card_from_root(root, NULL, out, why, whylen);
    json_decref(root);
    return r;
}

/* see vcard.h */
void kv_vcard_free(kv_vcard *vc)
{
    if (vc == NULL)
        return;
    kv_vcard_profile_free(vc->prof);
    kv_recorded_free(vc->rec);
    free(vc->state_path);
    kv_vcard_lab_free(vc);
    kv_wipe(vc, sizeof(*vc));
    free(vc);
}

/* see vcard.h */
size_t kv_vcard_atr(const kv_vcard *vc, uint8_t *out, size_t cap)
{
    if (cap < vc->atr_len)
        return 0;
    memcpy(out, vc->atr, vc->atr_len);
    return vc->atr_len;
}

/* see vcard.h */
int kv_vcard_is_recorded(const kv_vcard *vc)
{
    return vc->rec != NULL;
}

/* see vcard.h */
const char *kv_vcard_name(const kv_vcard *vc)
{
    return vc->name;
}
