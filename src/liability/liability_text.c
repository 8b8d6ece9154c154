/* see liability.h: human output (Danish or English), money and class texts */
#include "src/liability/liability.h"

#include "src/base/err.h"
#include "src/base/hex.h"

#include <string.h>

static const char *const CLASS_TEXT_DA[KV_LIABILITY_CLASS_COUNT] = {
    "kortholder har handlet svigagtigt: kortholder hæfter for hele tabet",
    "indsigelse mere end 13 måneder efter debiteringen: kravet er tabt",
    "kortholder har med forsæt tilsidesat sine pligter: kortholder hæfter for hele tabet",
    "transaktionen er ikke korrekt registreret og bogført: udstederen hæfter",
    "foretaget efter at spærring blev anmodet: udstederen hæfter",
    "forårsaget af udstederens ansatte, agenter eller filialer: udstederen hæfter",
    "kortholder kunne ikke spærre på grund af forhold hos udstederen: udstederen hæfter",
    "betalingsmodtageren vidste eller burde vide, at brugen var uberettiget: udstederen hæfter",
    "tabet kunne ikke opdages af kortholder før brugen: udstederen hæfter",
    "udstederen krævede ikke stærk kundeautentifikation: udstederen hæfter",
    "det er ikke bevist, at den personlige sikkerhedsforanstaltning blev brugt: udstederen hæfter",
    "kortholder gav sikkerhedsforanstaltningen videre og burde have indset risikoen: "
    "kortholder hæfter fuldt for dette kort",
    "sikkerhedsforanstaltning brugt, og kortholder meldte for sent, gav koden videre eller var "
    "groft uforsvarlig: højst 8.000 kr for hændelsen",
    "personlig sikkerhedsforanstaltning brugt: højst 375 kr for hændelsen",
};

static const char *const CLASS_TEXT_EN[KV_LIABILITY_CLASS_COUNT] = {
    "the cardholder acted fraudulently: the cardholder bears the whole loss",
    "objection more than 13 months after the debit: the claim is lost",
    "the cardholder intentionally failed their obligations: the cardholder bears the whole loss",
    "the transaction was not correctly recorded and booked: the issuer bears it",
    "made after the block was requested: the issuer bears it",
    "caused by the issuer's staff, agents or branches: the issuer bears it",
    "the cardholder could not block the card because of the issuer: the issuer bears it",
    "the payee knew or should have known the use was unauthorised: the issuer bears it",
    "the loss could not be detected by the cardholder before the use: the issuer bears it",
    "the issuer did not require strong customer authentication: the issuer bears it",
    "use of the personal security credential is not proven: the issuer bears it",
    "the cardholder handed over the credential and should have seen the risk: "
    "the cardholder bears all for this card",
    "credential used, and the cardholder notified late, handed over the code or acted with gross "
    "negligence: at most 8,000 kr for the incident",
    "personal security credential used: at most 375 kr for the incident",
};

/* see liability.h */
const char *kv_liability_class_text(enum kv_liability_class cls, enum kv_liability_lang lang)
{
    if ((unsigned)cls >= KV_LIABILITY_CLASS_COUNT)
        return "?";
    return lang == KV_LIABILITY_LANG_EN ? CLASS_TEXT_EN[cls] : CLASS_TEXT_DA[cls];
}

/* see liability.h */
const char *kv_liability_objection_text(enum kv_liability_objection o, enum kv_liability_lang lang)
{
    int en = lang == KV_LIABILITY_LANG_EN;
    switch (o) {
    case KV_LIABILITY_TIMELY:
        return en ? "timely" : "rettidig";
    case KV_LIABILITY_LATE:
        return en ? "late (after 14 days; amounts unchanged)"
                  : "for sen (efter 14 dage; beløbene er uændrede)";
    case KV_LIABILITY_OBJECTION_BARRED:
        return en ? "barred (the claim is lost)" : "forældet (kravet er tabt)";
    }
    return "?";
}

/* see liability.h */
const char *kv_liability_money_format(int64_t ore, enum kv_liability_lang lang, char out[48])
{
    char digits[24], grouped[40];
    const char sep = lang == KV_LIABILITY_LANG_EN ? ',' : '.';
    const char dec = lang == KV_LIABILITY_LANG_EN ? '.' : ',';
    uint64_t mag = ore < 0 ? (uint64_t)0 - (uint64_t)ore : (uint64_t)ore;
    size_t n, g = 0;
    snprintf(digits, sizeof digits, "%llu", (unsigned long long)(mag / 100));
    n = strlen(digits);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            grouped[g++] = sep;
        grouped[g++] = digits[i];
    }
    grouped[g] = '\0';
    snprintf(out, 48, "%s%s%c%02u kr", ore < 0 ? "-" : "", grouped, dec, (unsigned)(mag % 100));
    return out;
}

/* see liability.h */
void kv_liability_display_id(const char *id, char out[KV_LIABILITY_ID_MAX + 1])
{
    if (strlen(id) <= KV_LIABILITY_ID_MAX && kv_is_digits(id, 12, 19)) {
        kv_pan_mask(id, out); /* PANs are masked in human output */
        return;
    }
    snprintf(out, KV_LIABILITY_ID_MAX + 1, "%s", id);
}

/* "2026-03-01 10:00 UTC" */
static void human_time(int64_t ms, char out[40])
{
    char iso[32];
    kv_liability_time_format(ms, iso);
    snprintf(out, 40, "%.10s %.5s UTC", iso, iso + 11);
}

static const char *evidence_note(enum kv_liability_evidence_status s, enum kv_liability_lang lang)
{
    int en = lang == KV_LIABILITY_LANG_EN;
    switch (s) {
    case KV_LIABILITY_EVIDENCE_NONE:
        return NULL;
    case KV_LIABILITY_EVIDENCE_VERIFIED:
        return en ? "record verified (chain and MAC good); verification taken from it"
                  : "registrering kontrolleret (kæde og MAC i orden); verifikationen er taget "
                    "herfra";
    case KV_LIABILITY_EVIDENCE_NOT_FOUND:
        return en ? "record not found for this transaction: not proven"
                  : "registreringen findes ikke for denne transaktion: ikke bevist";
    case KV_LIABILITY_EVIDENCE_BROKEN:
        return en ? "record's chain or MAC is broken: it proves nothing, not proven"
                  : "registreringens kæde eller MAC er brudt: den beviser intet, ikke bevist";
    case KV_LIABILITY_EVIDENCE_UNAVAILABLE:
        return en ? "no evidence store available: not proven"
                  : "intet bevislager til rådighed: ikke bevist";
    }
    return NULL;
}

/* see liability.h */
int kv_liability_write_text(FILE *f, const struct kv_liability_case *c,
                            const struct kv_liability_result *r, enum kv_liability_lang lang)
{
    int en = lang == KV_LIABILITY_LANG_EN;
    char a[48], b[48], d[48], t1[40], t2[80], t3[40], id[KV_LIABILITY_ID_MAX + 1];

    human_time(c->discovered_at, t1);
    human_time(c->objection_at, t3);
    if (c->notified) {
        human_time(c->notified_at, b);
        snprintf(t2, sizeof t2, en ? "block requested %s" : "spærring anmodet %s", b);
    } else {
        snprintf(t2, sizeof t2, "%s", en ? "no block requested" : "ingen spærring anmodet");
    }
    fprintf(f,
            en ? "Incident: %zu transaction(s); discovered %s, %s, objection %s.\n\n"
               : "Hændelse: %zu transaktion(er); opdaget %s, %s, indsigelse %s.\n\n",
            c->n_txns, t1, t2, t3);

    for (size_t i = 0; i < c->n_txns; i++) {
        const struct kv_liability_txn *t = &c->txns[i];
        const struct kv_liability_txn_result *x = &r->txns[i];
        const char *note = evidence_note(x->evidence, lang);
        const char *what = kv_liability_class_text(x->cls, lang);
        char lim[40];

        kv_liability_display_id(c->cards[t->card].id, id);
        human_time(t->at, t1);
        fprintf(f, en ? "%s: card %s, %s, %s\n" : "%s: kort %s, %s, %s\n", t->id, id, t1,
                kv_liability_money_format(t->amount, lang, a));
        if (x->cls == KV_LIABILITY_BARRED && t->final_amount_unknown)
            what = en ? "payment authorised without its final amount, objection more than 8 weeks "
                        "after the debit: the claim is lost"
                      : "betaling godkendt uden det endelige beløb, indsigelse mere end 8 uger "
                        "efter debiteringen: kravet er tabt";
        fprintf(f, "  %s — %s.\n", x->rule, what);
        if (x->cap != 0) {
            const struct kv_liability_card *mine = &c->cards[t->card];
            int shared = 0;
            /* the same grouping as the engine: same credential, same non-null blocked_at */
            for (size_t k = 0; k < c->n_cards && mine->blocked && mine->credential[0] != '\0'; k++)
                if (k != t->card && c->cards[k].blocked &&
                    c->cards[k].blocked_at == mine->blocked_at &&
                    strcmp(c->cards[k].credential, mine->credential) == 0)
                    shared = 1;
            fprintf(f,
                    en ? "  Cap %s%s, taken in time order.\n" : "  Loft %s%s, taget i tidsorden.\n",
                    kv_liability_money_format(x->cap, lang, b),
                    shared ? (en ? " shared by the cards with the same credential blocked together"
                                 : " delt af kortene med samme sikkerhedsforanstaltning, spærret "
                                   "samtidig")
                           : (en ? " for this card" : " for dette kort"));
        }
        if (note != NULL)
            fprintf(f, en ? "  Evidence %s: %s.\n" : "  Bevis %s: %s.\n", t->evidence, note);
        human_time(x->objection_limit, lim);
        fprintf(f,
                en ? "  Cardholder %s, issuer %s. Objection %s; the deadline %s %s.\n\n"
                   : "  Kortholder %s, udsteder %s. Indsigelse %s; fristen %s %s.\n\n",
                kv_liability_money_format(x->cardholder, lang, a),
                kv_liability_money_format(x->issuer, lang, b),
                kv_liability_objection_text(x->objection, lang),
                x->objection == KV_LIABILITY_OBJECTION_BARRED ? (en ? "expired" : "udløb")
                                                              : (en ? "expires" : "udløber"),
                lim);
    }
    fprintf(f,
            en ? "Total %s: cardholder %s, issuer %s. Objection: %s.\n"
               : "I alt %s: kortholder %s, udsteder %s. Indsigelse: %s.\n",
            kv_liability_money_format(r->total, lang, a),
            kv_liability_money_format(r->cardholder, lang, b),
            kv_liability_money_format(r->issuer, lang, d),
            kv_liability_objection_text(r->objection, lang));
    if (ferror(f))
        return KV_ERR_IO;
    return 0;
}
