/*
 * see vcard.h: the persistent counters (PIN try counter, ATC) and the state
 * file that keeps them across restarts.
 */
#include "apdu/vcard/card.h"
#include "apdu/vcard/card_fault.h"
#include "apdu/vcard/vcard.h"
#include "src/base/err.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* see vcard.h */
int kv_vcard_pin_tries(const kv_vcard *vc)
{
    return (vc->prof != NULL && vc->prof->pin_block != NULL) ? (int)vc->pin_tries : -1;
}

/* see vcard.h */
unsigned kv_vcard_atc(const kv_vcard *vc)
{
    return vc->atc;
}

/*
 * State file: {"pin_tries_left": n, "atc": n}. Fields are optional so that
 * a file written for a card without a PIN still loads. A card with a
 * transaction log adds "log": {"AID hex": ["record hex", ...]}, newest first.
 */

/* see vcard.h */
int kv_vcard_state_attach(kv_vcard *vc, const char *path)
{
    json_t *root = NULL, *v;
    json_error_t e;
    FILE *f = NULL;
    char *copy = NULL;
    unsigned tries = vc->pin_tries, atc = vc->atc;
    struct stat st;
    int r = KV_ERR_NOMEM;

    if ((copy = strdup(path)) == NULL)
        goto out;
    /* the state is replaced by rename on save: only ever a regular file (never a device or a
       link someone points at another file) */
    if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        r = KV_ERR_ARG;
        goto out;
    }
    if ((f = fopen(path, "r")) == NULL) {
        r = errno == ENOENT ? 0 : KV_ERR_IO;
        if (r != 0)
            goto out;
        goto attach;
    }
    r = KV_ERR_FORMAT;
    if ((root = json_loadf(f, 0, &e)) == NULL || !json_is_object(root))
        goto out;
    /* counters of another card (another profile was inserted since): a fresh card */
    if ((v = json_object_get(root, "card")) != NULL) {
        if (!json_is_string(v))
            goto out;
        if (vc->card_id[0] != '\0' && strcmp(json_string_value(v), vc->card_id) != 0)
            goto attach;
    }
    if ((v = json_object_get(root, "pin_tries_left")) != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) > KV_VCARD_PIN_TRY_MAX)
            goto out;
        tries = (unsigned)json_integer_value(v);
        /* a profile with a lower limit than the one that wrote the file */
        if (vc->prof != NULL && tries > vc->prof->pin_try_limit)
            tries = vc->prof->pin_try_limit;
    }
    if ((v = json_object_get(root, "atc")) != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 0xFFFF)
            goto out;
        atc = (unsigned)json_integer_value(v);
    }
    /* the transaction log's records (card_log.c); the last step: it fills the card's log */
    if ((v = json_object_get(root, "log")) != NULL && kv_vcard_log_from_json(vc, v) != 0)
        goto out;
    /* card risk management, blocks and per-application counters (card_sm.c) */
    if (kv_vcard_crm_from_json(vc, root) != 0)
        goto out;
attach:
    if (vc->prof != NULL && vc->prof->pin_block != NULL)
        vc->pin_tries = tries;
    vc->atc = atc;
    free(vc->state_path);
    vc->state_path = copy;
    copy = NULL; /* transferred */
    r = 0;
out:
    free(copy);
    json_decref(root);
    if (f != NULL)
        fclose(f);
    return r;
}

/* see vcard.h */
int kv_vcard_state_save(kv_vcard *vc)
{
    char *tmp = NULL, *text = NULL;
    json_t *root = NULL;
    size_t len;
    int fd = -1, r = KV_ERR_NOMEM;

    if (vc->state_path == NULL)
        return 0;
    if ((root = json_object()) == NULL)
        goto out;
    if (kv_vcard_pin_tries(vc) >= 0 &&
        json_object_set_new(root, "pin_tries_left", json_integer(vc->pin_tries)) != 0)
        goto out;
    if (json_object_set_new(root, "atc", json_integer(vc->atc)) != 0 ||
        (vc->card_id[0] != '\0' &&
         json_object_set_new(root, "card", json_string(vc->card_id)) != 0) ||
        kv_vcard_log_to_json(vc, root) != 0 || kv_vcard_crm_to_json(vc, root) != 0 ||
        (text = json_dumps(root, JSON_INDENT(2))) == NULL)
        goto out;
    len = strlen(text);
    if ((tmp = malloc(strlen(vc->state_path) + 8)) == NULL)
        goto out;
    sprintf(tmp, "%s.XXXXXX", vc->state_path);
    r = KV_ERR_IO;
    if ((fd = mkstemp(tmp)) < 0) {
        free(tmp);
        tmp = NULL;
        goto out;
    }
    /* temporary file in the same directory, fsync, rename: the old or the new file, never half */
    if (write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 || fsync(fd) != 0)
        goto out;
    r = close(fd);
    fd = -1;
    if (r != 0 || rename(tmp, vc->state_path) != 0) {
        r = KV_ERR_IO;
        goto out;
    }
    free(tmp);
    tmp = NULL;
    r = 0;
out:
    if (fd >= 0)
        close(fd);
    if (tmp != NULL) {
        unlink(tmp);
        free(tmp);
    }
    free(text);
    json_decref(root);
    return r;
}
