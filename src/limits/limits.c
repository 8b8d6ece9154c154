/* see limits.h */
#include "src/limits/limits.h"
#include "src/base/err.h"

#include <string.h>

static const char *const channel_names[KV_CH__COUNT] = {
    [KV_CH_CONTACT] = "contact",
    [KV_CH_CONTACTLESS] = "contactless",
    [KV_CH_ECOMMERCE] = "ecommerce",
    [KV_CH_MOTO] = "moto",
    [KV_CH_ATM] = "atm",
    [KV_CH_UNATTENDED_TRANSPORT] = "unattended_transport",
    [KV_CH_UNATTENDED_PARKING] = "unattended_parking",
    [KV_CH_WALLET] = "wallet",
};

int kv_channel_parse(const char *name, kv_channel *out)
{
    for (int i = 0; i < KV_CH__COUNT; i++) {
        if (strcmp(name, channel_names[i]) == 0) {
            *out = (kv_channel)i;
            return 0;
        }
    }
    return KV_ERR_NOT_FOUND;
}

const char *kv_channel_name(kv_channel ch)
{
    return (unsigned)ch < KV_CH__COUNT ? channel_names[ch] : "?";
}

kv_family kv_channel_family(kv_channel ch)
{
    switch (ch) {
    case KV_CH_CONTACTLESS:
        return KV_FAMILY_CONTACTLESS;
    case KV_CH_ECOMMERCE:
        return KV_FAMILY_REMOTE;
    default:
        return KV_FAMILY_NONE;
    }
}

int kv_mcc_is_gambling(const char *mcc)
{
    static const char *const gambling[] = {"7800", "7801", "7802", "7995"};
    if (mcc == NULL)
        return 0;
    for (size_t i = 0; i < sizeof(gambling) / sizeof(gambling[0]); i++)
        if (strcmp(mcc, gambling[i]) == 0)
            return 1;
    return 0;
}

void kv_limits_defaults(kv_limits_config *c)
{
    memset(c, 0, sizeof(*c));
    c->contactless.single_max = 35000; /* Danish practice since 1 Feb 2018 */
    c->contactless.counter = KV_COUNTER_COUNT;
    c->contactless.count_max = 5;           /* RTS Art. 11(c) */
    c->contactless.cumulative_max = 112500; /* RTS Art. 11(b), about EUR 150 */
    c->remote.single_max = 22500;           /* Finanstilsynet practice for Art. 16 */
    c->remote.counter = KV_COUNTER_COUNT;
    c->remote.count_max = 5;          /* RTS Art. 16(c) */
    c->remote.cumulative_max = 75000; /* RTS Art. 16(b) */
    c->atm_daily_max = 200000;
    c->gambling_daily_max = 500000;
    c->include_current = 1;
}

void kv_card_policy_init(kv_card_policy *p)
{
    memset(p, 0, sizeof(*p));
    p->ecommerce_enabled = 1;
    p->spend_single_max = -1;
    p->spend_daily_max = -1;
}

const char *kv_decision_name(kv_decision d)
{
    switch (d) {
    case KV_DECISION_APPROVE:
        return "approve";
    case KV_DECISION_SCA_REQUIRED:
        return "sca_required";
    case KV_DECISION_DECLINE:
        return "decline";
    }
    return "?";
}

kv_decision kv_decision_from_name(const char *name)
{
    if (name != NULL && strcmp(name, "approve") == 0)
        return KV_DECISION_APPROVE;
    if (name != NULL && strcmp(name, "sca_required") == 0)
        return KV_DECISION_SCA_REQUIRED;
    return KV_DECISION_DECLINE;
}

/*
 * With include_current the transaction itself is part of the check: with the
 * count counter and max 5 the 6th payment since the last SCA needs SCA; with
 * the amount counter the payment that takes the sum past the max does.
 */
static int counter_within(const kv_family_limits *fl, const kv_counter *c, int64_t amount,
                          int include_current)
{
    if (fl->counter == KV_COUNTER_COUNT)
        return c->count + (include_current ? 1 : 0) <= fl->count_max;
    return c->amount + (include_current ? amount : 0) <= fl->cumulative_max;
}

static void counter_reset(kv_counter *c)
{
    c->count = 0;
    c->amount = 0;
    c->epoch++;
}

static const char *hsm_decline_reason(kv_factor_type t)
{
    switch (t) {
    case KV_FACTOR_PIN_ONLINE:
        return "pin_incorrect";
    case KV_FACTOR_CHIP_CRYPTOGRAM:
        return "cryptogram_invalid";
    default:
        return "cvc_invalid";
    }
}

static void set(kv_decision_out *out, kv_decision d, const char *reason, const char *rule)
{
    out->decision = d;
    out->reason = reason;
    out->rule = rule;
}

static void approve_exempt(kv_decision_out *out, const kv_decision_in *in, const char *exemption,
                           const char *rule)
{
    kv_family fam = kv_channel_family(in->channel);
    set(out, KV_DECISION_APPROVE, exemption, rule);
    out->exemption = exemption;
    out->approved_amount = 1;
    /* every approved transaction of the family without SCA counts, whichever exemption */
    if (fam != KV_FAMILY_NONE) {
        kv_counter *c = fam == KV_FAMILY_CONTACTLESS ? &out->card.contactless : &out->card.remote;
        c->count++;
        c->amount += in->amount;
        out->counted = fam;
    }
}

void kv_limits_decide(const kv_limits_config *cfg, const kv_card_policy *card,
                      const kv_decision_in *in, kv_decision_out *out)
{
    memset(out, 0, sizeof(*out));
    out->card = *card;
    out->counted = KV_FAMILY_NONE;

    if (in->card_blocked) {
        set(out, KV_DECISION_DECLINE, "card_blocked", "block list");
        return;
    }
    if (in->card_expired) {
        set(out, KV_DECISION_DECLINE, "card_expired", "card expiry");
        return;
    }
    /* the card itself reports its PIN blocked (CVR inside the verified ARQC) */
    if (in->pin_blocked) {
        set(out, KV_DECISION_DECLINE, "pin_blocked", "CVR: PIN try limit exceeded");
        return;
    }
    /* RTS Art. 4(3)(b): blocked after 5 consecutive failed attempts until unblocked */
    if (card->sca_failures >= KV_SCA_MAX_FAILURES) {
        set(out, KV_DECISION_DECLINE, "sca_failed_attempts", "RTS Art. 4(3)(b)");
        return;
    }
    if (in->sca.failed) {
        out->card.sca_failures++;
        if (out->card.sca_failures >= KV_SCA_MAX_FAILURES) {
            set(out, KV_DECISION_DECLINE, "sca_failed_attempts", "RTS Art. 4(3)(b)");
            return;
        }
        if (in->sca.hsm_failed) {
            set(out, KV_DECISION_DECLINE, hsm_decline_reason(in->sca.hsm_failed_type),
                "RTS Art. 4");
            return;
        }
    } else if (in->sca.satisfied && in->channel != KV_CH_MOTO) {
        /* the failure count and the family's counters restart at a successful SCA */
        out->card.sca_failures = 0;
        if (in->channel == KV_CH_ECOMMERCE)
            counter_reset(&out->card.remote);
        else
            counter_reset(&out->card.contactless); /* Q&A 2018_4226: any non-remote SCA */
    }

    if (in->channel == KV_CH_ECOMMERCE && !card->ecommerce_enabled) {
        set(out, KV_DECISION_DECLINE, "ecommerce_disabled", "card settings");
        return;
    }
    if (card->spend_single_max >= 0 && in->amount > card->spend_single_max) {
        set(out, KV_DECISION_DECLINE, "limit_card", "card limit spend_single_max");
        return;
    }
    if (in->channel == KV_CH_ATM && in->day_atm + in->amount > cfg->atm_daily_max) {
        set(out, KV_DECISION_DECLINE, "limit_atm_daily", "limit atm_daily_max");
        return;
    }
    if (in->gambling && in->day_gambling + in->amount > cfg->gambling_daily_max) {
        set(out, KV_DECISION_DECLINE, "limit_gambling_daily", "limit gambling_daily_max");
        return;
    }
    if (card->spend_daily_max >= 0 && in->day_total + in->amount > card->spend_daily_max) {
        set(out, KV_DECISION_DECLINE, "limit_card", "card limit spend_daily_max");
        return;
    }

    if (in->channel == KV_CH_MOTO) {
        /* mail and telephone orders are outside SCA (PSD2 recital 95); no counter */
        set(out, KV_DECISION_APPROVE, "moto_out_of_scope", "PSD2 recital 95");
        out->exemption = "moto_out_of_scope";
        out->approved_amount = 1;
        return;
    }
    if (in->sca.satisfied) {
        set(out, KV_DECISION_APPROVE, "sca_satisfied",
            in->channel == KV_CH_ECOMMERCE ? "RTS Art. 5" : "RTS Art. 4");
        out->approved_amount = 1;
        return;
    }

    /* exemptions, first match applies (src/RULES.md §1 table order) */
    int cl_single = in->amount <= cfg->contactless.single_max;
    int cl_within =
        counter_within(&cfg->contactless, &card->contactless, in->amount, cfg->include_current);
    int rm_single = in->amount <= cfg->remote.single_max;
    int rm_within = counter_within(&cfg->remote, &card->remote, in->amount, cfg->include_current);

    if (in->channel == KV_CH_UNATTENDED_TRANSPORT || in->channel == KV_CH_UNATTENDED_PARKING) {
        approve_exempt(out, in, "unattended_transport_parking", "RTS Art. 12");
        return;
    }
    if (in->channel == KV_CH_CONTACTLESS && cl_single && cl_within) {
        approve_exempt(out, in, "contactless_low_value", "RTS Art. 11");
        return;
    }
    if (in->trusted_beneficiary) {
        approve_exempt(out, in, "trusted_beneficiary", "RTS Art. 13");
        return;
    }
    if (in->recurring_ok) {
        approve_exempt(out, in, "recurring", "RTS Art. 14");
        return;
    }
    if (in->channel == KV_CH_ECOMMERCE && rm_single && rm_within) {
        approve_exempt(out, in, "low_value_remote", "RTS Art. 16");
        return;
    }

    /* no exemption: say why, so the front end can ask for the right thing */
    if (in->sca.dynamic_linking == 0 &&
        (in->sca.binding_mismatch ||
         (in->sca.categories & (in->sca.categories - 1)) != 0)) /* two or more categories */
        set(out, KV_DECISION_SCA_REQUIRED, "dynamic_linking", "RTS Art. 5");
    else if (in->channel == KV_CH_CONTACTLESS && !cl_single)
        set(out, KV_DECISION_SCA_REQUIRED, "contactless_single_max", "RTS Art. 11");
    else if (in->channel == KV_CH_CONTACTLESS)
        set(out, KV_DECISION_SCA_REQUIRED, "contactless_counter", "RTS Art. 11");
    else if (in->channel == KV_CH_ECOMMERCE && !rm_single)
        set(out, KV_DECISION_SCA_REQUIRED, "remote_single_max", "RTS Art. 16");
    else if (in->channel == KV_CH_ECOMMERCE)
        set(out, KV_DECISION_SCA_REQUIRED, "remote_counter", "RTS Art. 16");
    else
        set(out, KV_DECISION_SCA_REQUIRED, "sca_required", "RTS Art. 4");
}

void kv_limits_reverse(kv_card_policy *card, kv_family family, int64_t epoch, int64_t amount)
{
    kv_counter *c;
    if (family == KV_FAMILY_CONTACTLESS)
        c = &card->contactless;
    else if (family == KV_FAMILY_REMOTE)
        c = &card->remote;
    else
        return;
    if (c->epoch != epoch)
        return; /* reset by an SCA since: the transaction is no longer in the counter */
    c->count = c->count > 0 ? c->count - 1 : 0;
    c->amount = c->amount > amount ? c->amount - amount : 0;
}
