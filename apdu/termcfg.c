/* The terminal's configuration per AID: see termcfg.h and README "Terminal configuration" */
#include "apdu/termcfg.h"

#include <string.h>

/*
 * Terminal action codes. Visa (Visa, Visa Electron, V PAY; also Dankort,
 * which is issued co-branded with Visa in Denmark) as in Visa's Transaction
 * Acceptance Device Guide; Mastercard (Mastercard, Maestro) as in M/Chip
 * Requirements for Contact and Contactless. README "Terminal configuration"
 * gives the bits each one acts on.
 */
static const uint8_t visa_denial[5] = {0x00, 0x10, 0x00, 0x00, 0x00};
static const uint8_t visa_online[5] = {0xDC, 0x40, 0x04, 0xF8, 0x00};
static const uint8_t visa_default[5] = {0xDC, 0x40, 0x00, 0xA8, 0x00};
static const uint8_t mc_denial[5] = {0x00, 0x00, 0x00, 0x00, 0x00};
static const uint8_t mc_online[5] = {0xF4, 0x50, 0x84, 0x80, 0x0C};
static const uint8_t mc_default[5] = {0xF4, 0x50, 0x84, 0x80, 0x0C};
/*
 * EMV leaves the TAC values to the acquirer and the schemes; for an AID of an unknown
 * RID this terminal takes the conservative set of a cautious online
 * terminal: deny nothing by itself (the issuer's IAC-Denial still applies),
 * go online and decline by default on every failure of data
 * authentication, processing restrictions, cardholder verification and
 * risk management (bytes 1-4 all ones but the RFU bits and "SDA selected";
 * byte 5 zero).
 */
static const uint8_t generic_denial[5] = {0x00, 0x00, 0x00, 0x00, 0x00};
static const uint8_t generic_online[5] = {0xFC, 0xF8, 0xFC, 0xF8, 0x00};
static const uint8_t generic_default[5] = {0xFC, 0xF8, 0xFC, 0xF8, 0x00};

/* the default DDOL asks for the unpredictable number (Book 2 §6.5.1, dynamic data authentication)
 */
static const uint8_t default_ddol[] = {0x9F, 0x37, 0x04};
/* amount, currency, date, type, TVR, unpredictable number */
static const uint8_t default_tdol[] = {0x9F, 0x02, 0x06, 0x5F, 0x2A, 0x02, 0x9A, 0x03,
                                       0x9C, 0x01, 0x95, 0x05, 0x9F, 0x37, 0x04};
/* 9F66 as kv_terminal_init: EMV mode, contact chip, online PIN, signature; issuer update */
static const uint8_t default_ttq[4] = {0x36, 0x00, 0x40, 0x00};

enum scheme { SCHEME_VISA, SCHEME_MASTERCARD, SCHEME_DANKORT, SCHEME_OTHER };

static const struct builtin {
    const char *name;
    uint8_t aid[7];
    enum scheme scheme;
    uint8_t version[2];
    int kernel;
} builtins[] = {
    {"visa", {0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10}, SCHEME_VISA, {0x00, 0x8C}, 3},
    {"visa_electron", {0xA0, 0x00, 0x00, 0x00, 0x03, 0x20, 0x10}, SCHEME_VISA, {0x00, 0x8C}, 3},
    {"vpay", {0xA0, 0x00, 0x00, 0x00, 0x03, 0x20, 0x20}, SCHEME_VISA, {0x00, 0x8C}, 3},
    {"mastercard", {0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10}, SCHEME_MASTERCARD, {0x00, 0x02}, 2},
    {"maestro", {0xA0, 0x00, 0x00, 0x00, 0x04, 0x30, 0x60}, SCHEME_MASTERCARD, {0x00, 0x02}, 2},
    {"dankort", {0xA0, 0x00, 0x00, 0x01, 0x21, 0x10, 0x10}, SCHEME_DANKORT, {0x00, 0x02}, 0},
};

#define NBUILTINS (sizeof(builtins) / sizeof(builtins[0]))

/* The Danish contactless CVM limit: up to 350 kr without a CVM (src/RULES.md §1). */
#define DK_CL_CVM_LIMIT 35001u

/* The values every entry of scheme s starts from (aid, name and version set by the caller). */
static void scheme_values(kv_aid_config *a, enum scheme s)
{
    const uint8_t *den = generic_denial, *onl = generic_online, *def = generic_default;

    if (s == SCHEME_VISA || s == SCHEME_DANKORT) {
        den = visa_denial;
        onl = visa_online;
        def = visa_default;
    } else if (s == SCHEME_MASTERCARD) {
        den = mc_denial;
        onl = mc_online;
        def = mc_default;
    }
    a->asi = KV_ASI_PARTIAL;
    /* every transaction online (README: floor limit 0 for attended POS in Denmark) */
    a->floor_limit = 0;
    a->threshold = 0;
    a->target_percent = 0;
    a->max_target_percent = 0;
    memcpy(a->tac_denial, den, 5);
    memcpy(a->tac_online, onl, 5);
    memcpy(a->tac_default, def, 5);
    memcpy(a->ddol_default, default_ddol, sizeof(default_ddol));
    a->ddol_default_len = sizeof(default_ddol);
    memcpy(a->tdol_default, default_tdol, sizeof(default_tdol));
    a->tdol_default_len = sizeof(default_tdol);
    a->kernel = 0;
    a->cl_transaction_limit = UINT64_MAX;
    a->cl_floor_limit = 0;
    a->cl_cvm_limit = DK_CL_CVM_LIMIT;
    memcpy(a->ttq, default_ttq, 4);
    a->status_check = 0;
    a->zero_amount = KV_ZERO_AMOUNT_ONLINE;
}

/* Terminal type (9F35, n2): second digit 3 or 6 is offline only (Book 4 Annex A1). */
static int type_online_capable(uint8_t terminal_type)
{
    unsigned d = terminal_type % 10u;
    return !(d == 3 || d == 6);
}

/* see termcfg.h */
void kv_term_config_defaults(kv_term_config *c)
{
    /* the kv_terminal_init values (test_termcfg checks that both agree) */
    static const uint8_t caps[3] = {0xE0, 0xF8, 0xC8};
    static const uint8_t addcaps[5] = {0x60, 0x00, 0xF0, 0xA0, 0x01};

    memset(c, 0, sizeof(*c));
    c->country = 208;
    c->currency = 208;
    c->terminal_type = 22;
    memcpy(c->capabilities, caps, 3);
    memcpy(c->add_capabilities, addcaps, 5);
    c->mcc = 5999;
    c->online_capable = type_online_capable(c->terminal_type);
    for (size_t i = 0; i < NBUILTINS; i++) {
        kv_aid_config *a = &c->aids[c->naids++];
        memcpy(a->aid, builtins[i].aid, 7);
        a->aid_len = 7;
        memcpy(a->name, builtins[i].name, strlen(builtins[i].name) + 1); /* all < 17 */
        memcpy(a->app_version, builtins[i].version, 2);
        scheme_values(a, builtins[i].scheme);
        a->kernel = builtins[i].kernel;
    }
}

/* see termcfg.h */
const kv_aid_config *kv_term_config_match(const kv_term_config *c, const uint8_t *aid,
                                          size_t aid_len)
{
    const kv_aid_config *best = NULL;

    if (c == NULL || aid == NULL)
        return NULL;
    for (size_t i = 0; i < c->naids; i++) {
        const kv_aid_config *a = &c->aids[i];
        if (a->aid_len == 0 || a->aid_len > aid_len || memcmp(a->aid, aid, a->aid_len) != 0)
            continue;
        if (a->asi == KV_ASI_EXACT && a->aid_len != aid_len)
            continue;
        if (best == NULL || a->aid_len > best->aid_len)
            best = a;
    }
    return best;
}

/* see termcfg.h */
kv_aid_config *kv_term_config_find(kv_term_config *c, const uint8_t *aid, size_t aid_len)
{
    for (size_t i = 0; i < c->naids; i++)
        if (c->aids[i].aid_len == aid_len && memcmp(c->aids[i].aid, aid, aid_len) == 0)
            return &c->aids[i];
    return NULL;
}

/* see termcfg.h */
kv_aid_config *kv_term_config_add(kv_term_config *c, const uint8_t *aid, size_t aid_len)
{
    kv_aid_config *a;
    const struct builtin *b = NULL;

    if (aid == NULL || aid_len < 5 || aid_len > sizeof(a->aid))
        return NULL;
    if ((a = kv_term_config_find(c, aid, aid_len)) != NULL)
        return a;
    if (c->naids >= KV_TERMCFG_MAX_AIDS)
        return NULL;
    for (size_t i = 0; i < NBUILTINS && b == NULL; i++)
        if (memcmp(builtins[i].aid, aid, 5) == 0)
            b = &builtins[i];
    a = &c->aids[c->naids++];
    memset(a, 0, sizeof(*a));
    memcpy(a->aid, aid, aid_len);
    a->aid_len = aid_len;
    scheme_values(a, b != NULL ? b->scheme : SCHEME_OTHER);
    if (b != NULL) {
        memcpy(a->app_version, b->version, 2);
        a->kernel = b->kernel;
    }
    return a;
}

/* see termcfg.h */
void kv_term_config_apply_terminal(const kv_term_config *c, kv_terminal *t)
{
    t->country = c->country;
    t->currency = c->currency;
    t->terminal_type = c->terminal_type;
    memcpy(t->capabilities, c->capabilities, 3);
    memcpy(t->add_capabilities, c->add_capabilities, 5);
    t->mcc = c->mcc;
}

/* see termcfg.h */
void kv_term_config_apply_app(const kv_aid_config *a, kv_terminal *t)
{
    memcpy(t->app_version, a->app_version, 2);
}

/* see termcfg.h */
int kv_term_config_online_capable(uint8_t terminal_type)
{
    return type_online_capable(terminal_type);
}
