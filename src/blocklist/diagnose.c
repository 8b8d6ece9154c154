/* see diagnose.h — advice after the card-problems guide [0] (src/RULES.md, Sources) */
#include "src/blocklist/diagnose.h"

#include <stdarg.h>
#include <string.h>

static const char *const step_names[KV_DIAG__STEPS] = {
    "pcsc_service",    "reader",     "card_present",    "atr", "application", "expiry",
    "pin_try_counter", "block_list", "recent_declines",
};

typedef struct {
    const char *name;
    const char *text[2];   /* da, en */
    const char *advice[2]; /* da, en */
} cause_info;

/* clang-format off */
static const cause_info causes[KV_CAUSE__COUNT] = {
    [KV_CAUSE_NONE] = {"none", {"", ""}, {"", ""}},
    [KV_CAUSE_NO_PCSC_SERVICE] = {"no_pcsc_service",
        {"Kortlæsertjenesten (PC/SC, pcscd) kører ikke.",
         "The card reader service (PC/SC, pcscd) is not running."},
        {"Start kortlæsertjenesten (pcscd), og prøv igen. Fortsætter problemet, så kontakt support.",
         "Start the card reader service (pcscd) and try again. If the problem persists, contact support."}},
    [KV_CAUSE_NO_READER] = {"no_reader",
        {"Der er ingen kortlæser.",
         "There is no card reader."},
        {"Tilslut kortlæseren (eller vælg den rigtige med --reader), og prøv igen.",
         "Connect the card reader (or name the right one with --reader) and try again."}},
    [KV_CAUSE_NO_CARD] = {"no_card",
        {"Der er intet kort i kortlæseren.",
         "There is no card in the reader."},
        {"Sæt kortet i læseren med chippen først, og prøv igen.",
         "Insert the card, chip first, and try again."}},
    [KV_CAUSE_CHIP_UNREADABLE] = {"chip_unreadable",
        {"Kortet kan ikke aflæses: chippen svarer ikke og kan være beskadiget.",
         "The card cannot be read: the chip does not answer and may be damaged."},
        {"Prøv at betale kontaktløst, hvis muligt. Rens kortet forsigtigt med en tør klud. "
         "Hvis problemet fortsætter, skal du kontakte banken for at få et nyt kort.",
         "Try paying contactless if possible. Clean the card gently with a dry cloth. "
         "If the problem persists, contact your bank for a new card."}},
    [KV_CAUSE_NO_APPLICATION] = {"no_application",
        {"Kortet kan ikke aflæses: der findes ingen betalingsapplikation på chippen.",
         "The card cannot be read: no payment application could be selected on the chip."},
        {"Prøv at betale kontaktløst, hvis muligt. Rens kortet forsigtigt med en tør klud. "
         "Hvis problemet fortsætter, skal du kontakte banken for at få et nyt kort.",
         "Try paying contactless if possible. Clean the card gently with a dry cloth. "
         "If the problem persists, contact your bank for a new card."}},
    [KV_CAUSE_CARD_EXPIRED] = {"card_expired",
        {"Kortet er udløbet.",
         "The card has expired."},
        {"Et udløbet kort kan ikke bruges. Tjek i din netbank eller app, om du har fået et nyt "
         "kort, ellers kontakt banken for at få et. Bestil et nyt kort i god tid, inden det "
         "gamle udløber.",
         "An expired card cannot be used. Check your online bank or app for a new card, or "
         "contact your bank for one. Order a new card in good time before the old one expires."}},
    [KV_CAUSE_PIN_BLOCKED] = {"pin_blocked",
        {"Pinkoden er spærret: der er ingen forsøg tilbage (PIN-forsøgstæller 0).",
         "The PIN is blocked: no tries are left (PIN try counter 0)."},
        {"Pinkoden er spærret efter for mange forkerte forsøg. Kontakt banken for at få den "
         "låst op eller få en ny pinkode. Prøv ikke flere pinkoder.",
         "The PIN is blocked after too many wrong tries. Contact your bank to unblock it or "
         "get a new PIN. Do not try more PINs."}},
    [KV_CAUSE_CARD_BLOCKED] = {"card_blocked",
        {"Kortet er spærret (det står på spærrelisten).",
         "The card is blocked (it is on the block list)."},
        {"Kortet er spærret og kan ikke bruges, heller ikke i wallets. Log ind i din netbank "
         "eller app for at se spærringen, og kontakt banken, hvis du ikke selv har spærret kortet.",
         "The card is blocked and cannot be used, not in wallets either. Log in to your online "
         "bank or app to see the block, and contact your bank if you did not block the card "
         "yourself."}},
    [KV_CAUSE_ECOMMERCE_DISABLED] = {"ecommerce_disabled",
        {"En betaling på nettet blev afvist: kortet er ikke aktiveret til onlinehandel.",
         "A remote payment was declined: the card is not enabled for online shopping."},
        {"Aktivér kortet til onlinehandel i din netbank eller app, og prøv igen. Kontrollér, at "
         "kortnummer, udløbsdato og kontrolcifre er indtastet korrekt.",
         "Enable online shopping for the card in your online bank or app and try again. Check "
         "that the card number, expiry date and security code are entered correctly."}},
    [KV_CAUSE_SCA_LOCKED] = {"sca_locked",
        {"Betalinger afvises efter for mange mislykkede godkendelser (MitID/3-D Secure).",
         "Payments are declined after too many failed authentications (MitID/3-D Secure)."},
        {"Kontakt banken for at få godkendelsen låst op. Sørg for, at du har den nyeste "
         "version af MitID-appen og internetforbindelse, og prøv igen efter et par minutter.",
         "Contact your bank to have authentication unblocked. Make sure you have the latest "
         "MitID app and an internet connection, and try again after a few minutes."}},
    [KV_CAUSE_LIMIT_REACHED] = {"limit_reached",
        {"En betaling blev afvist, fordi en beløbsgrænse er nået.",
         "A payment was declined because a spending limit was reached."},
        {"Tjek saldo og beløbsgrænser i din netbank eller app; selv små beløb kan afvises, hvis "
         "saldoen er for lav. Virker kortet andre steder, så prøv igen senere.",
         "Check your balance and limits in your online bank or app; even small amounts can be "
         "declined when the balance is too low. If the card works elsewhere, try again later."}},
    [KV_CAUSE_DECLINED] = {"declined",
        {"En betaling blev afvist.",
         "A payment was declined."},
        {"Kontakt banken eller kortudstederen. Hav tidspunkt og sted for den afviste betaling "
         "og eventuelle fejlmeddelelser klar (de sidste fire cifre af kortnummeret er nok).",
         "Contact your bank or card issuer. Have the time and place of the declined payment and "
         "any error messages ready (the last four digits of the card number are enough)."}},
};
/* clang-format on */

const char *kv_diag_step_name(kv_diag_step s)
{
    return (unsigned)s < KV_DIAG__STEPS ? step_names[s] : "";
}

const char *kv_diag_cause_name(kv_diag_cause c)
{
    return (unsigned)c < KV_CAUSE__COUNT ? causes[c].name : "";
}

const char *kv_diag_cause_text(kv_diag_cause c, kv_lang lang)
{
    return (unsigned)c < KV_CAUSE__COUNT ? causes[c].text[lang == KV_LANG_EN] : "";
}

const char *kv_diag_advice(kv_diag_cause c, kv_lang lang)
{
    return (unsigned)c < KV_CAUSE__COUNT ? causes[c].advice[lang == KV_LANG_EN] : "";
}

kv_diag_cause kv_diag_cause_of_decline(const char *reason)
{
    static const struct {
        const char *reason;
        kv_diag_cause cause;
    } map[] = {
        {"card_blocked", KV_CAUSE_CARD_BLOCKED},
        {"card_expired", KV_CAUSE_CARD_EXPIRED},
        {"ecommerce_disabled", KV_CAUSE_ECOMMERCE_DISABLED},
        {"sca_failed_attempts", KV_CAUSE_SCA_LOCKED},
        {"limit_card", KV_CAUSE_LIMIT_REACHED},
        {"limit_atm_daily", KV_CAUSE_LIMIT_REACHED},
        {"limit_gambling_daily", KV_CAUSE_LIMIT_REACHED},
    };
    for (size_t i = 0; reason != NULL && i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(reason, map[i].reason) == 0)
            return map[i].cause;
    return KV_CAUSE_DECLINED;
}

void kv_diag_init(kv_diag_report *r)
{
    memset(r, 0, sizeof(*r));
    r->cause = KV_CAUSE_NONE;
}

int kv_diag_add(kv_diag_report *r, kv_diag_step step, int ok, kv_diag_cause cause, const char *fmt,
                ...)
{
    va_list ap;
    kv_diag_result *s;
    if (r->n >= KV_DIAG__STEPS)
        return ok;
    s = &r->steps[r->n++];
    s->step = step;
    s->ok = ok != 0;
    va_start(ap, fmt);
    vsnprintf(s->detail, sizeof(s->detail), fmt, ap);
    va_end(ap);
    if (!ok && r->cause == KV_CAUSE_NONE)
        r->cause = cause;
    return ok;
}

json_t *kv_diag_json(const kv_diag_report *r, kv_lang lang)
{
    json_t *j = json_object(), *steps = json_array();
    if (j == NULL || steps == NULL) {
        json_decref(j);
        json_decref(steps);
        return NULL;
    }
    for (size_t i = 0; i < r->n; i++)
        json_array_append_new(steps,
                              json_pack("{sssbss}", "step", kv_diag_step_name(r->steps[i].step),
                                        "ok", r->steps[i].ok, "detail", r->steps[i].detail));
    json_object_set_new(j, "steps", steps);
    if (r->cause == KV_CAUSE_NONE) {
        json_object_set_new(j, "cause", json_null());
        json_object_set_new(j, "cause_text", json_null());
        json_object_set_new(j, "advice", json_null());
    } else {
        json_object_set_new(j, "cause", json_string(kv_diag_cause_name(r->cause)));
        json_object_set_new(j, "cause_text", json_string(kv_diag_cause_text(r->cause, lang)));
        json_object_set_new(j, "advice", json_string(kv_diag_advice(r->cause, lang)));
    }
    return j;
}

void kv_diag_print(FILE *f, const kv_diag_report *r, kv_lang lang)
{
    for (size_t i = 0; i < r->n; i++)
        fprintf(f, "%-4s %-16s %s\n", r->steps[i].ok ? "ok" : "FAIL",
                kv_diag_step_name(r->steps[i].step), r->steps[i].detail);
    if (r->cause == KV_CAUSE_NONE) {
        fprintf(f, "\n%s\n",
                lang == KV_LANG_EN ? "No problem found: the card, its PIN and the block list "
                                     "are in order."
                                   : "Intet problem fundet: kortet, pinkoden og spærrelisten "
                                     "er i orden.");
        return;
    }
    fprintf(f, "\n%s %s\n%s %s\n",
            lang == KV_LANG_EN ? "Cause:" : "Årsag:", kv_diag_cause_text(r->cause, lang),
            lang == KV_LANG_EN ? "Advice:" : "Råd:", kv_diag_advice(r->cause, lang));
}
