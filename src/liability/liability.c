/* see liability.h: the decision table, caps and objection status of src/RULES.md §2 */
#include "src/liability/liability.h"

#include "src/base/err.h"

#include <stdlib.h>
#include <string.h>

#define MS_PER_DAY 86400000LL

static const char *const CLASS_NAMES[KV_LIABILITY_CLASS_COUNT] = {
    "fraud",
    "barred",
    "intentional_breach",
    "not_booked",
    "after_notification",
    "issuer_staff",
    "no_channel",
    "payee_knew",
    "undetectable",
    "sca_not_required",
    "unauthenticated",
    "credential_disclosed",
    "negligent",
    "credential_used",
};

static const char *const CLASS_RULES[KV_LIABILITY_CLASS_COUNT] = {
    "§ 100 stk. 2",       "§ 97",
    "§ 100 stk. 2",       "§ 100 stk. 1",
    "§ 100 stk. 6 nr. 1", "§ 100 stk. 6 nr. 2",
    "§ 100 stk. 6 nr. 3", "§ 100 stk. 9",
    "§ 100 stk. 8",       "§ 100 stk. 7",
    "§ 100 stk. 1",       "§ 100 stk. 5",
    "§ 100 stk. 4",       "§ 100 stk. 3",
};

/* The 8-week limit for a payment authorised without its final amount (Visa/Dankort rules [3]
   §7.1). */
static const char RULE_EIGHT_WEEKS[] = "PSD2 art. 77";

/* see liability.h */
const char *kv_liability_class_name(enum kv_liability_class cls)
{
    return (unsigned)cls < KV_LIABILITY_CLASS_COUNT ? CLASS_NAMES[cls] : "?";
}

/* see liability.h */
const char *kv_liability_class_rule(enum kv_liability_class cls)
{
    return (unsigned)cls < KV_LIABILITY_CLASS_COUNT ? CLASS_RULES[cls] : "?";
}

/* see liability.h */
const char *kv_liability_objection_name(enum kv_liability_objection o)
{
    switch (o) {
    case KV_LIABILITY_TIMELY:
        return "timely";
    case KV_LIABILITY_LATE:
        return "late";
    case KV_LIABILITY_OBJECTION_BARRED:
        return "barred";
    }
    return "?";
}

/* see liability.h */
unsigned kv_liability_factor_categories(uint32_t factors)
{
    /* src/RULES.md §1 table; card data (cvc2, card_number, expiry) is no category
       (EBA Op-2019-06 §28) */
    static const unsigned cat[KV_LIABILITY_FACTOR_COUNT] = {
        [KV_LIABILITY_FACTOR_PIN_OFFLINE] = KV_LIABILITY_CAT_KNOWLEDGE,
        [KV_LIABILITY_FACTOR_PIN_ONLINE] = KV_LIABILITY_CAT_KNOWLEDGE,
        [KV_LIABILITY_FACTOR_PASSWORD] = KV_LIABILITY_CAT_KNOWLEDGE,
        [KV_LIABILITY_FACTOR_DEVICE_CODE] = KV_LIABILITY_CAT_KNOWLEDGE,
        [KV_LIABILITY_FACTOR_CHIP_CRYPTOGRAM] = KV_LIABILITY_CAT_POSSESSION,
        [KV_LIABILITY_FACTOR_CVC3] = KV_LIABILITY_CAT_POSSESSION,
        [KV_LIABILITY_FACTOR_SMS_OTP] = KV_LIABILITY_CAT_POSSESSION,
        [KV_LIABILITY_FACTOR_WALLET_TOKEN] = KV_LIABILITY_CAT_POSSESSION,
        [KV_LIABILITY_FACTOR_BIOMETRIC] = KV_LIABILITY_CAT_INHERENCE,
        [KV_LIABILITY_FACTOR_MITID] = KV_LIABILITY_CAT_POSSESSION | KV_LIABILITY_CAT_KNOWLEDGE,
        [KV_LIABILITY_FACTOR_CVC2] = 0,
        [KV_LIABILITY_FACTOR_CARD_NUMBER] = 0,
        [KV_LIABILITY_FACTOR_EXPIRY] = 0,
    };
    unsigned cats = 0;
    for (unsigned i = 0; i < KV_LIABILITY_FACTOR_COUNT; i++)
        if (factors & (1u << i))
            cats |= cat[i];
    return cats;
}

static int popcount3(unsigned x)
{
    return (int)((x & 1u) + ((x >> 1) & 1u) + ((x >> 2) & 1u));
}

/* see liability.h */
bool kv_liability_credential_used(const struct kv_liability_verification *v)
{
    if (!v->proven)
        return false; /* § 98: a claim without verified evidence is not proven */
    switch (v->method) {
    case KV_LIABILITY_METHOD_OFFLINE_PIN:
    case KV_LIABILITY_METHOD_ONLINE_PIN:
        return true;
    case KV_LIABILITY_METHOD_SCA:
        /* RTS Art. 4: two or more different categories; an SMS code alone is not SCA */
        return popcount3(kv_liability_factor_categories(v->factors)) >= 2;
    case KV_LIABILITY_METHOD_WALLET_CODE:
    case KV_LIABILITY_METHOD_MOBILE_CODE:
        /* Forbrugerombudsmanden [1]: a code entered for each purchase; a keypad lock entered
           once is not one */
        return v->per_transaction_code;
    case KV_LIABILITY_METHOD_SIGNATURE:
    case KV_LIABILITY_METHOD_NONE:
    case KV_LIABILITY_METHOD_CVC2:
        return false;
    }
    return false;
}

/* see liability.h */
enum kv_liability_objection kv_liability_objection_of(const struct kv_liability_case *c,
                                                      const struct kv_liability_txn *t,
                                                      int64_t *limit)
{
    /* § 97: 13 calendar months after the debit; Visa/Dankort rules [3] §7.1: 8 weeks for an
       unknown final amount */
    int64_t barred_after = t->final_amount_unknown ? t->debited_at + 56 * MS_PER_DAY
                                                   : kv_liability_add_months(t->debited_at, 13);
    if (limit != NULL)
        *limit = barred_after;
    if (c->objection_at > barred_after)
        return KV_LIABILITY_OBJECTION_BARRED;
    /* Forbrugerombudsmanden [1]: within 14 days of the discovery is "as soon as possible" */
    if (c->objection_at > c->discovered_at + 14 * MS_PER_DAY)
        return KV_LIABILITY_LATE;
    return KV_LIABILITY_TIMELY;
}

/* The first matching row of the decision table (src/RULES.md §2), as its class. */
static enum kv_liability_class decide(const struct kv_liability_case *c,
                                      const struct kv_liability_txn *t,
                                      const struct kv_liability_verification *v,
                                      enum kv_liability_objection objection)
{
    const struct kv_liability_facts *f = &c->facts;
    if (f->cardholder_fraud)
        return KV_LIABILITY_FRAUD;
    if (objection == KV_LIABILITY_OBJECTION_BARRED)
        return KV_LIABILITY_BARRED;
    if (f->intentional_breach && v->sca_required)
        return KV_LIABILITY_INTENTIONAL_BREACH; /* stk. 7 spares only fraud */
    if (!t->booked_correctly)
        return KV_LIABILITY_NOT_BOOKED;
    if (c->notified && t->at >= c->notified_at)
        return KV_LIABILITY_AFTER_NOTIFICATION;
    if (f->issuer_staff_caused)
        return KV_LIABILITY_ISSUER_STAFF;
    if (f->no_notification_channel)
        return KV_LIABILITY_NO_CHANNEL;
    if (f->payee_knew)
        return KV_LIABILITY_PAYEE_KNEW;
    if (f->undetectable_before_use)
        return KV_LIABILITY_UNDETECTABLE;
    if (!v->sca_required)
        return KV_LIABILITY_SCA_NOT_REQUIRED;
    if (!kv_liability_credential_used(v))
        return KV_LIABILITY_UNAUTHENTICATED;
    if (f->credential_handed_over && f->risk_foreseeable)
        return KV_LIABILITY_CREDENTIAL_DISCLOSED;
    if (f->late_notification || f->credential_handed_over || f->gross_negligence)
        return KV_LIABILITY_NEGLIGENT;
    return KV_LIABILITY_CREDENTIAL_USED;
}

/* Cards with the same credential and the same non-null blocked_at share one cap
 * (Visa/Dankort rules [3] §10.2).
 */
static size_t cap_group(const struct kv_liability_case *c, size_t card)
{
    const struct kv_liability_card *k = &c->cards[card];
    if (k->credential[0] == '\0' || !k->blocked)
        return card;
    for (size_t j = 0; j < card; j++) {
        const struct kv_liability_card *o = &c->cards[j];
        if (o->blocked && o->blocked_at == k->blocked_at &&
            strcmp(o->credential, k->credential) == 0)
            return j;
    }
    return card;
}

struct order_item {
    int64_t at;
    size_t idx;
};

static int cmp_order(const void *a, const void *b)
{
    const struct order_item *x = a, *y = b;
    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

static int resolve_verification(const struct kv_liability_txn *t, kv_liability_evidence_fn lookup,
                                void *ctx, struct kv_liability_verification *v,
                                enum kv_liability_evidence_status *status)
{
    struct kv_liability_verification fromrec;
    int r;
    *v = t->verification;
    *status = KV_LIABILITY_EVIDENCE_NONE;
    if (!t->has_evidence)
        return 0;
    /* The record, not the case's claim, proves the verification (§ 98). */
    v->proven = false;
    if (lookup == NULL) {
        *status = KV_LIABILITY_EVIDENCE_UNAVAILABLE;
        return 0;
    }
    fromrec = *v;
    r = lookup(ctx, t->evidence, t, &fromrec);
    if (r == 0) {
        *v = fromrec;
        *status = KV_LIABILITY_EVIDENCE_VERIFIED;
        return 0;
    }
    if (r == KV_ERR_EVIDENCE_BROKEN) {
        *status = KV_LIABILITY_EVIDENCE_BROKEN;
        return 0;
    }
    if (r == KV_ERR_NOT_FOUND) {
        *status = KV_LIABILITY_EVIDENCE_NOT_FOUND;
        return 0;
    }
    return r < 0 ? r : KV_ERR_INTERNAL;
}

/* see liability.h */
int kv_liability_assess(const struct kv_liability_case *c, kv_liability_evidence_fn lookup,
                        void *lookup_ctx, struct kv_liability_result **out)
{
    struct kv_liability_result *res = NULL;
    struct order_item *order = NULL;
    int64_t *used = NULL; /* cardholder share taken so far, per cap group (first card index) */
    int r = KV_ERR_INTERNAL;

    if (c == NULL || out == NULL)
        return KV_ERR_ARG;
    *out = NULL;
    if ((res = calloc(1, sizeof *res)) == NULL ||
        (c->n_txns > 0 && (res->txns = calloc(c->n_txns, sizeof *res->txns)) == NULL) ||
        (c->n_txns > 0 && (order = calloc(c->n_txns, sizeof *order)) == NULL) ||
        (c->n_cards > 0 && (used = calloc(c->n_cards, sizeof *used)) == NULL)) {
        r = KV_ERR_NOMEM;
        goto out;
    }
    memcpy(res->currency, c->currency, sizeof res->currency);
    res->n_txns = c->n_txns;
    res->objection = KV_LIABILITY_TIMELY;

    for (size_t i = 0; i < c->n_txns; i++) {
        const struct kv_liability_txn *t = &c->txns[i];
        struct kv_liability_txn_result *x = &res->txns[i];
        struct kv_liability_verification v;
        if ((r = resolve_verification(t, lookup, lookup_ctx, &v, &x->evidence)) != 0)
            goto out;
        x->objection = kv_liability_objection_of(c, t, &x->objection_limit);
        if (x->objection > res->objection)
            res->objection = x->objection;
        x->credential_used = kv_liability_credential_used(&v);
        x->cls = decide(c, t, &v, x->objection);
        x->rule = CLASS_RULES[x->cls];
        if (x->cls == KV_LIABILITY_BARRED && t->final_amount_unknown)
            x->rule = RULE_EIGHT_WEEKS;
        x->cap_group = cap_group(c, t->card);
        switch (x->cls) {
        case KV_LIABILITY_FRAUD:
        case KV_LIABILITY_BARRED:
        case KV_LIABILITY_INTENTIONAL_BREACH:
        case KV_LIABILITY_CREDENTIAL_DISCLOSED:
            /* rows 1, 2, 3, 12: all, uncapped, no cap used up; row 12 card by card (stk. 5) */
            x->cardholder = t->amount;
            break;
        case KV_LIABILITY_NEGLIGENT:
            x->cap = KV_LIABILITY_CAP_STK4;
            break;
        case KV_LIABILITY_CREDENTIAL_USED:
            x->cap = KV_LIABILITY_CAP_STK3;
            break;
        default:
            x->cardholder = 0;
            break;
        }
        order[i].at = t->at;
        order[i].idx = i;
    }

    /* Within a cap the cardholder's share is taken in time order: at, then file order. */
    if (c->n_txns > 1)
        qsort(order, c->n_txns, sizeof *order, cmp_order);
    for (size_t k = 0; k < c->n_txns; k++) {
        size_t i = order[k].idx;
        struct kv_liability_txn_result *x = &res->txns[i];
        int64_t room;
        if (x->cap == 0)
            continue;
        room = x->cap - used[x->cap_group];
        if (room < 0)
            room = 0;
        x->cardholder = c->txns[i].amount < room ? c->txns[i].amount : room;
        used[x->cap_group] += x->cardholder;
    }

    for (size_t i = 0; i < c->n_txns; i++) {
        struct kv_liability_txn_result *x = &res->txns[i];
        x->issuer = c->txns[i].amount - x->cardholder;
        /* amounts are bounded by KV_LIABILITY_AMOUNT_MAX x KV_LIABILITY_TXNS_MAX < 2^63 */
        res->total += c->txns[i].amount;
        res->cardholder += x->cardholder;
        res->issuer += x->issuer;
    }
    *out = res;
    res = NULL; /* transferred */
    r = 0;
out:
    free(order);
    free(used);
    kv_liability_result_free(res);
    return r;
}

/* see liability.h */
void kv_liability_result_free(struct kv_liability_result *r)
{
    if (r == NULL)
        return;
    free(r->txns);
    free(r);
}
