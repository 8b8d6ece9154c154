/*
 * `kortvagt diagnose` (src/RULES.md §4): walk PC/SC service -> reader -> card
 * present -> ATR -> application selection -> expiry -> PIN try counter ->
 * block list -> recent declines and stop at the first failure, printing its
 * cause and the advice of the card-problems guide [0] (src/blocklist/diagnose.h).
 *
 * Exit: 0 all is well, 1 a cause was found, 2 usage, 5 HSM / 6 store when
 * the block list or the declines cannot be looked up.
 */
#include "apdu/emv.h"
#include "apdu/reader.h"
#include "src/app/app.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/base/secure.h"
#include "src/blocklist/blocklist.h"
#include "src/blocklist/diagnose.h"
#include "src/cli/cli.h"
#include "src/base/caltime.h"

#include <jansson.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RECENT_TXNS 20

static void diagnose_usage(FILE *f)
{
    fprintf(f,
            "Usage: kortvagt diagnose [--reader NAME] [--pan P] [--lang da|en] [--json]\n"
            "                         [--now T] [--config FILE] [--store URL]\n\n"
            "Find why a card does not work. Walks: PC/SC service -> reader -> card present ->\n"
            "ATR -> application selection -> expiry -> PIN try counter -> block list ->\n"
            "recent declines, stops at the first failure and prints its cause and advice\n"
            "(Danish by default, --lang en for English).\n\n"
            "  --reader NAME  the reader (default $KORTVAGT_READER, else the first with a card)\n"
            "  --pan P        the card number for the block list and the declines (default:\n"
            "                 the PAN read from the card)\n"
            "  --now T        the time to judge expiry at (RFC 3339; default: now)\n"
            "  --json         {\"steps\":[{\"step\",\"ok\",\"detail\"}],\"cause\",\"cause_text\","
            "\"advice\"}\n\n"
            "Exit: 0 no problem found, 1 a cause was found, 2 usage, 5 HSM, 6 store.\n");
}

typedef struct {
    const char *reader, *pan, *lang, *now, *config, *store;
    int json;
} diag_opts;

static int parse(int argc, char **argv, diag_opts *o)
{
    static const char *const names[] = {"reader", "pan", "lang", "now", "config", "store"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (strcmp(a, "--json") == 0) {
            o->json = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0)
            return kv_cli_usage_error("diagnose", "unexpected argument '%s'", a);
        for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
            if (strcmp(a + 2, names[k]) == 0) {
                const char **slots[] = {&o->reader, &o->pan,    &o->lang,
                                        &o->now,    &o->config, &o->store};
                slot = slots[k];
            }
        if (slot == NULL)
            return kv_cli_usage_error("diagnose", "unknown option '%s'", a);
        if (i + 1 >= argc)
            return kv_cli_usage_error("diagnose", "option %s needs a value", a);
        if (*slot != NULL)
            return kv_cli_usage_error("diagnose", "option %s given twice", a);
        *slot = argv[++i];
    }
    return KV_EXIT_OK;
}

typedef struct {
    const diag_opts *o;
    kv_diag_report *rep;
    int64_t now;
    char reader[KV_READER_NAME_MAX];
    char pan[20];
    int err; /* a KV_ERR_* that stopped the walk (not a cause) */
    char errtext[1024];
} walk;

/* PC/SC service, reader, card present. Returns 1 to go on. */
static int walk_pcsc(walk *w)
{
    kv_reader_info *infos = NULL;
    size_t n = 0, pick = 0;
    kv_settings st; /* --reader > $KORTVAGT_READER (src/app/settings.h) */
    kv_settings_flags sf = {.reader = w->o->reader};
    const char *want;
    int r, found = 0, go = 0;

    if ((r = kv_settings_init(&st, &sf, NULL, 0)) != 0) {
        w->err = r;
        return 0;
    }
    want = kv_settings_opt(st.reader.name);

    r = kv_reader_list(&infos, &n);
    if (r == KV_ERR_PCSC_NO_SERVICE || (r != 0 && r != KV_ERR_PCSC_NO_READER)) {
        kv_diag_add(w->rep, KV_DIAG_PCSC, 0, KV_CAUSE_NO_PCSC_SERVICE, "%s", kv_strerror(r));
        goto out;
    }
    kv_diag_add(w->rep, KV_DIAG_PCSC, 1, KV_CAUSE_NONE, "running");
    if (r == KV_ERR_PCSC_NO_READER || n == 0) {
        kv_diag_add(w->rep, KV_DIAG_READER, 0, KV_CAUSE_NO_READER, "no reader is connected");
        goto out;
    }
    if (want != NULL && want[0] != '\0') {
        for (size_t i = 0; i < n && !found; i++)
            if (strcmp(infos[i].name, want) == 0) {
                pick = i;
                found = 1;
            }
        for (size_t i = 0; i < n && !found; i++)
            if (strncmp(infos[i].name, want, strlen(want)) == 0) {
                pick = i;
                found = 1;
            }
        if (!found) {
            kv_diag_add(w->rep, KV_DIAG_READER, 0, KV_CAUSE_NO_READER,
                        "reader '%.100s' not found (%zu other reader%s)", want, n,
                        n == 1 ? "" : "s");
            goto out;
        }
    } else {
        for (size_t i = 0; i < n && !found; i++)
            if (infos[i].card_present) {
                pick = i;
                found = 1;
            }
    }
    snprintf(w->reader, sizeof(w->reader), "%s", infos[pick].name);
    kv_diag_add(w->rep, KV_DIAG_READER, 1, KV_CAUSE_NONE, "%.120s", w->reader);
    if (!infos[pick].card_present) {
        kv_diag_add(w->rep, KV_DIAG_CARD, 0, KV_CAUSE_NO_CARD, "no card in %.120s", w->reader);
        goto out;
    }
    kv_diag_add(w->rep, KV_DIAG_CARD, 1, KV_CAUSE_NONE, "card present");
    go = 1;
out:
    free(infos);
    return go;
}

/* ATR, application, expiry, PIN try counter. Returns 1 to go on. */
static int walk_card(walk *w)
{
    kv_reader *rd = NULL;
    kv_emv *s = NULL;
    const kv_emv_card *c;
    uint8_t atr[KV_ATR_MAX];
    char atr_hex[2 * KV_ATR_MAX + 1];
    size_t atr_len = 0;
    int r, go = 0, expired;

    r = kv_reader_open_pcsc(w->reader, &rd);
    if (r == KV_ERR_PCSC_NO_CARD || r == KV_ERR_PCSC_REMOVED) {
        kv_diag_add(w->rep, KV_DIAG_ATR, 0, KV_CAUSE_NO_CARD, "the card left the reader");
        goto out;
    }
    if (r == 0)
        r = kv_reader_atr(rd, atr, sizeof(atr), &atr_len);
    if (r != 0 || atr_len == 0) {
        kv_diag_add(w->rep, KV_DIAG_ATR, 0, KV_CAUSE_CHIP_UNREADABLE, "no answer to reset: %s",
                    r != 0 ? kv_strerror(r) : "empty ATR");
        goto out;
    }
    kv_hex_encode(atr, atr_len, atr_hex);
    kv_diag_add(w->rep, KV_DIAG_ATR, 1, KV_CAUSE_NONE, "%s", atr_hex);

    if ((r = kv_emv_new(rd, NULL, &s)) != 0) {
        w->err = r;
        snprintf(w->errtext, sizeof(w->errtext), "EMV session: %s", kv_strerror(r));
        goto out;
    }
    if ((r = kv_emv_select(s, KV_EMV_IFACE_ANY)) != 0) {
        kv_diag_add(w->rep, KV_DIAG_APP, 0,
                    r == KV_ERR_NO_APPLICATION || r == KV_ERR_CARD_NOT_FOUND
                        ? KV_CAUSE_NO_APPLICATION
                        : KV_CAUSE_CHIP_UNREADABLE,
                    "selection failed: %s", kv_strerror(r));
        goto out;
    }
    if ((r = kv_emv_gpo(s)) != 0 || (r = kv_emv_read_records(s)) != 0) {
        kv_diag_add(w->rep, KV_DIAG_APP, 0, KV_CAUSE_CHIP_UNREADABLE,
                    "the application's data could not be read: %s", kv_strerror(r));
        goto out;
    }
    if ((r = kv_emv_get_data_all(s)) != 0) {
        kv_diag_add(w->rep, KV_DIAG_APP, 0, KV_CAUSE_CHIP_UNREADABLE, "GET DATA failed: %s",
                    kv_strerror(r));
        goto out;
    }
    c = kv_emv_card_data(s);
    {
        char aid[2 * KV_AID_MAX + 1];
        kv_hex_encode(c->selected.aid, c->selected.aid_len, aid);
        kv_diag_add(w->rep, KV_DIAG_APP, 1, KV_CAUSE_NONE, "%s%s%s (%s)", aid,
                    c->selected.label[0] ? " " : "", c->selected.label,
                    kv_emv_selection_name(c->selection));
    }
    if (c->pan[0] != '\0')
        snprintf(w->pan, sizeof(w->pan), "%s", c->pan);

    expired = c->expiry[0] != '\0' ? kv_card_expired(c->expiry, w->now) : KV_ERR_FORMAT;
    if (expired < 0) {
        kv_diag_add(w->rep, KV_DIAG_EXPIRY, 0, KV_CAUSE_CHIP_UNREADABLE,
                    "the card holds no valid expiry date (5F24)");
        goto out;
    }
    if (expired) {
        kv_diag_add(w->rep, KV_DIAG_EXPIRY, 0, KV_CAUSE_CARD_EXPIRED,
                    "expired: valid through %.2s/%.2s", c->expiry + 2, c->expiry);
        goto out;
    }
    kv_diag_add(w->rep, KV_DIAG_EXPIRY, 1, KV_CAUSE_NONE, "valid through %.2s/%.2s", c->expiry + 2,
                c->expiry);

    if (c->pin_try_counter == 0) {
        kv_diag_add(w->rep, KV_DIAG_PIN, 0, KV_CAUSE_PIN_BLOCKED, "0 tries left");
        goto out;
    }
    if (c->pin_try_counter < 0)
        kv_diag_add(w->rep, KV_DIAG_PIN, 1, KV_CAUSE_NONE, "not disclosed by the card (no 9F17)");
    else
        kv_diag_add(w->rep, KV_DIAG_PIN, 1, KV_CAUSE_NONE, "%d tr%s left", c->pin_try_counter,
                    c->pin_try_counter == 1 ? "y" : "ies");
    go = 1;
out:
    kv_emv_free(s);
    kv_reader_free(rd);
    return go;
}

typedef struct {
    kv_diag_report *rep;
    int decided; /* a decline or an approval was found */
} decline_ctx;

static const char *channel_name(kv_channel ch)
{
    static const char *const names[KV_CH__COUNT] = {
        "contact", "contactless",          "ecommerce",          "moto",
        "atm",     "unattended_transport", "unattended_parking", "wallet",
    };
    return (unsigned)ch < KV_CH__COUNT ? names[ch] : "?";
}

static int decline_cb(void *ctx, const kv_txn *t)
{
    decline_ctx *d = ctx;
    char at[KV_TIME_TEXT];
    if (t->decision == KV_DECISION_APPROVE && !t->reversed) {
        kv_time_format(t->at, at);
        kv_diag_add(d->rep, KV_DIAG_DECLINES, 1, KV_CAUSE_NONE,
                    "the last payment (%s, %s) was approved", at, channel_name(t->channel));
        d->decided = 1;
        return 1;
    }
    if (t->decision == KV_DECISION_DECLINE) {
        kv_time_format(t->at, at);
        kv_diag_add(d->rep, KV_DIAG_DECLINES, 0, kv_diag_cause_of_decline(t->reason),
                    "declined %s (%s, %lld.%02lld): %s", at, channel_name(t->channel),
                    (long long)(t->amount / 100), (long long)(t->amount % 100), t->reason);
        d->decided = 1;
        return 1;
    }
    return 0; /* SCA required or reversed: look further back */
}

/* Block list and recent declines (need the store and the HSM's token key). */
static void walk_store(walk *w)
{
    kv_app_opts so = {.config = w->o->config, .store = w->o->store};
    kv_app *ss = NULL;
    kv_blocklist bl;
    uint8_t token[KV_TOKEN_LEN];
    decline_ctx d = {w->rep, 0};
    char masked[KV_PAN_MASKED_MAX];
    int r, blocked = 0;

    if (!kv_pan_valid(w->pan)) {
        kv_diag_add(w->rep, KV_DIAG_BLOCKLIST, 0, KV_CAUSE_CHIP_UNREADABLE,
                    "the card's number (5A) could not be read");
        return;
    }
    kv_pan_mask(w->pan, masked);
    if ((r = kv_app_open(&so, &ss, w->errtext, sizeof(w->errtext))) != 0) {
        w->err = r;
        return;
    }
    /* the check needs the token key only (no "pan-enc"): the store and the app's PAN-token MAC */
    memset(&bl, 0, sizeof(bl));
    bl.store = kv_app_store(ss);
    bl.token_mac = *kv_app_token_mac(ss);
    if ((r = kv_bl_check(&bl, w->pan, &blocked)) != 0) {
        w->err = r;
        snprintf(w->errtext, sizeof(w->errtext), "block list: %s", kv_strerror(r));
        goto out;
    }
    if (blocked) {
        kv_diag_add(w->rep, KV_DIAG_BLOCKLIST, 0, KV_CAUSE_CARD_BLOCKED, "%s is on the block list",
                    masked);
        goto out;
    }
    kv_diag_add(w->rep, KV_DIAG_BLOCKLIST, 1, KV_CAUSE_NONE, "%s is not on the block list", masked);
    if ((r = kv_pan_token(&bl.token_mac, w->pan, token)) != 0 ||
        (r = kv_store_txn_scan_card(bl.store, token, RECENT_TXNS, decline_cb, &d)) != 0) {
        w->err = r;
        snprintf(w->errtext, sizeof(w->errtext), "recent payments: %s", kv_strerror(r));
        goto out;
    }
    if (!d.decided)
        kv_diag_add(w->rep, KV_DIAG_DECLINES, 1, KV_CAUSE_NONE, "no recent declines");
out:
    kv_wipe(token, sizeof(token));
    kv_app_close(ss);
}

int kv_cmd_diagnose(int argc, char **argv)
{
    diag_opts o;
    kv_diag_report rep;
    walk w;
    kv_lang lang = KV_LANG_DA;
    int rc;

    memset(&o, 0, sizeof(o));
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            diagnose_usage(stdout);
            return KV_EXIT_OK;
        }
    if ((rc = parse(argc, argv, &o)) != 0)
        return rc;
    if (o.lang != NULL) {
        if (strcmp(o.lang, "en") == 0)
            lang = KV_LANG_EN;
        else if (strcmp(o.lang, "da") != 0)
            return kv_cli_usage_error("diagnose", "--lang '%s' is not da or en", o.lang);
    }
    if (o.pan != NULL && !kv_pan_valid(o.pan))
        return kv_cli_usage_error("diagnose", "--pan must be 12..19 digits");
    memset(&w, 0, sizeof(w));
    w.o = &o;
    w.rep = &rep;
    w.now = (int64_t)time(NULL);
    if (o.now != NULL && kv_time_parse(o.now, &w.now) != 0)
        return kv_cli_usage_error("diagnose", "--now '%s' is not RFC 3339", o.now);
    kv_disable_core_dumps();
    kv_diag_init(&rep);
    if (walk_pcsc(&w) && walk_card(&w)) {
        if (o.pan != NULL)
            snprintf(w.pan, sizeof(w.pan), "%s", o.pan);
        walk_store(&w);
    }
    kv_wipe(w.pan, sizeof(w.pan));
    if (w.err != 0) {
        fprintf(stderr, "kortvagt diagnose: %s\n", w.errtext);
        return kv_exit_code(w.err);
    }
    if (o.json) {
        json_t *j = kv_diag_json(&rep, lang);
        char *s = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (s == NULL)
            return kv_cli_fail(KV_ERR_NOMEM, "diagnose");
        printf("%s\n", s);
        free(s);
    } else {
        kv_diag_print(stdout, &rep, lang);
    }
    return rep.cause == KV_CAUSE_NONE ? KV_EXIT_OK : KV_EXIT_MISMATCH;
}
