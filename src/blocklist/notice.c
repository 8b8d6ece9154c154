/* see blocklist.h — the written notice of Datatilsynet [2] "Hvad er dine rettigheder?" */
#include "src/base/err.h"
#include "src/blocklist/blocklist.h"
#include "src/base/caltime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *or_default(const char *s, const char *d)
{
    return s != NULL && s[0] != '\0' ? s : d;
}

int kv_bl_notice(const kv_blocklist *bl, const char *pan, int *due, char **text)
{
    kv_bl_entry e;
    char recipients[KV_BL_TEXT_MAX], day[KV_DAY_TEXT];
    const char *issuer = or_default(bl->issuer_name, "(udsteder ikke konfigureret)");
    const char *address = or_default(bl->issuer_address, "(adresse ikke konfigureret)");
    int64_t local;
    int r, found = 0;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = NULL;

    *due = 0;
    *text = NULL;
    if ((r = kv_bl_show(bl, pan, &e, &found)) != 0)
        return r;
    if (!found)
        return KV_ERR_NOT_FOUND;
    if (!kv_bl_entry_notice_due(&e))
        return 0;
    if ((r = kv_bl_recipients_of(bl, &e, recipients, sizeof(recipients))) != 0)
        return r;
    kv_time_cph_day(e.listed_at, day);
    local = e.listed_at + kv_time_cph_offset(e.listed_at);
    if ((f = open_memstream(&buf, &len)) == NULL)
        return KV_ERR_NOMEM;
    fprintf(f, "Meddelelse om spærring og optagelse på spærreliste\n\n");
    fprintf(f, "Kortudsteder: %s\n", issuer);
    fprintf(f, "Adresse: %s\n\n", address);
    fprintf(f,
            "Dit betalingskort %s blev spærret den %s kl. %02d:%02d (dansk tid) og er optaget "
            "på %s' spærreliste",
            e.pan_masked, day, (int)((local / 3600) % 24 + 24) % 24,
            (int)((local / 60) % 60 + 60) % 60, issuer);
    if (bl->permission != NULL && bl->permission[0] != '\0')
        fprintf(f, " (Datatilsynets tilladelse, j.nr. %s)", bl->permission);
    fprintf(f, ".\n\n");
    fprintf(f,
            "Modtagere: Oplysningen om, at dit kort er spærret, er videregivet til: %s. "
            "Der videregives kun kortnummeret, aldrig grunden til spærringen.\n\n",
            recipients[0] != '\0' ? recipients : "ingen endnu");
    fprintf(f,
            "Ret til indsigt: Du har ret til indsigt i de oplysninger, %s behandler om dig. "
            "Bed %s om indsigt; du får svar inden 4 uger, og du kan forlange svaret "
            "skriftligt.\n\n",
            issuer, issuer);
    fprintf(f, "Indsigelse: Du kan gøre indsigelse mod registreringen af dit spærrede kort. "
               "Vi besvarer indsigelsen skriftligt snarest og inden 4 uger. Urigtige "
               "oplysninger retter eller sletter vi, og rettelsen sendes til alle modtagere.\n\n");
    fprintf(f,
            "Klageadgang: Fastholder vi registreringen, kan du klage til %s, som træffer "
            "afgørelse i sagen.\n\n",
            or_default(bl->authority, KV_BL_AUTHORITY));
    if (e.expiry_yymm != 0)
        fprintf(f,
                "Sletning: Oplysningen slettes senest ved udgangen af kortets udløbsmåned "
                "(%02d/%02d), og straks når kortet er erstattet af et nyt.\n",
                e.expiry_yymm % 100, e.expiry_yymm / 100);
    else
        fprintf(f, "Sletning: Oplysningen slettes senest ved udgangen af kortets udløbsmåned, "
                   "og straks når kortet er erstattet af et nyt.\n");
    if (fclose(f) != 0 || buf == NULL) {
        free(buf);
        return KV_ERR_NOMEM;
    }
    *text = buf;
    *due = 1;
    return 0;
}
