/* `kortvagt card settings`: per-card settings kept in the store (see cli.h, authorize.h). */
#include "src/authorize/authorize.h"
#include "src/app/app.h"
#include "src/attempts/attempts.h"
#include "src/base/err.h"
#include "src/cli/cli.h"
#include "src/limits/limits.h"
#include "src/store/keyed.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void settings_usage(FILE *f)
{
    fprintf(f,
            "Usage: kortvagt card settings --pan PAN [--ecommerce on|off]\n"
            "           [--spend-single-max N|none] [--spend-daily-max N|none] [--unblock-sca]\n"
            "           [--reset-tries] [--pvv DDDD --pvki N] [--ibm-offset DIGITS] [--json]\n\n"
            "Show or change a card's settings in the store (keyed by the PAN token; the PAN\n"
            "itself is never stored):\n"
            "  --ecommerce on|off        allow remote (ecommerce) payments; off declines them\n"
            "                            with ecommerce_disabled (default on)\n"
            "  --spend-single-max N      a child's wallet card: the most one payment may be,\n"
            "                            in minor units (none: no limit)\n"
            "  --spend-daily-max N       the most all approved payments of one day may sum to\n"
            "                            (Europe/Copenhagen calendar day; none: no limit)\n"
            "  --unblock-sca             clear the count of failed authentication attempts\n"
            "                            after 5 failures blocked the card (sca_failed_attempts)\n"
            "  --reset-tries             clear the counts of wrong PINs and wrong card codes\n"
            "                            (CVC2/CVC3) after [verify] pin_tries_max (default 3)\n"
            "                            or code_tries_max (default 5) blocked the card's\n"
            "                            verifications ('blocked')\n"
            "  --pvv DDDD --pvki N       the card's Visa PVV and its key index: PIN\n"
            "                            verifications use it instead of a PVV the client sends\n"
            "  --ibm-offset DIGITS       the card's IBM 3624 offset (4 to 12 digits), likewise\n\n"
            "Every change is recorded in the evidence chain. Without a change the settings\n"
            "are only shown, with the card's SCA counters (count and amount since the last\n"
            "SCA, per family), its verification attempts and whether it has a PVV or an IBM\n"
            "offset (never the values).\n\n"
            "Options:\n"
            "  --json          machine output\n"
            "  --store URL     sqlite:PATH (default $KORTVAGT_STORE, [store] url, then\n"
            "                  sqlite:./kortvagt.db)\n"
            "  --config PATH   the INI file\n"
            "  --help          show this help\n\n"
            "Exit codes: 0 shown or changed, 2 usage error, 5 HSM, 6 store.\n");
}

static int parse_limit(const char *opt, const char *v, int64_t *out)
{
    char *end;
    long long x;
    if (strcmp(v, "none") == 0) {
        *out = -1;
        return 0;
    }
    errno = 0;
    x = strtoll(v, &end, 10);
    if (v[0] < '0' || v[0] > '9' || errno != 0 || *end != '\0' || x < 0)
        return kv_cli_usage_error("card",
                                  "settings: %s '%s' is not an amount in minor units "
                                  "or none",
                                  opt, v);
    *out = x;
    return 0;
}

int kv_cmd_card_settings(int argc, char **argv)
{
    kv_card_settings_change ch;
    kv_attempts_change ach;
    const kv_attempts_config *acfg;
    int64_t aev = 0;
    const char *pvki_s = NULL;
    char why[256];
    kv_app_opts so = {.config = NULL};
    kv_app *s = NULL;
    kv_card_state st;
    const char *pan = NULL;
    char err[1024];
    int64_t ev = 0;
    int json = 0, rc, r;

    memset(&ch, 0, sizeof(ch));
    memset(&ach, 0, sizeof(ach));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            settings_usage(stdout);
            return KV_EXIT_OK;
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "--unblock-sca") == 0) {
            ch.unblock_sca = 1;
        } else if (strcmp(a, "--reset-tries") == 0) {
            ach.reset_tries = 1;
        } else if (strcmp(a, "--pvv") == 0 || strcmp(a, "--pvki") == 0 ||
                   strcmp(a, "--ibm-offset") == 0) {
            if (i + 1 >= argc)
                return kv_cli_usage_error("card", "settings: %s needs a value", a);
            const char *v = argv[++i];
            size_t n = strspn(v, "0123456789");
            if (strcmp(a, "--pvv") == 0) {
                if (n != 4 || v[n] != '\0')
                    return kv_cli_usage_error("card", "settings: --pvv must be 4 digits");
                ach.set_pvv = 1;
                memcpy(ach.pvv, v, 5);
            } else if (strcmp(a, "--pvki") == 0) {
                if (n != 1 || v[n] != '\0')
                    return kv_cli_usage_error("card", "settings: --pvki must be one digit");
                pvki_s = v;
                ach.pvki = v[0] - '0';
            } else {
                if (n < 4 || n > 12 || v[n] != '\0')
                    return kv_cli_usage_error("card",
                                              "settings: --ibm-offset must be 4 to 12 digits");
                ach.set_ibm_offset = 1;
                memcpy(ach.ibm_offset, v, n + 1);
            }
        } else if (strcmp(a, "--pan") == 0 || strcmp(a, "--ecommerce") == 0 ||
                   strcmp(a, "--spend-single-max") == 0 || strcmp(a, "--spend-daily-max") == 0 ||
                   strcmp(a, "--store") == 0 || strcmp(a, "--config") == 0) {
            if (i + 1 >= argc)
                return kv_cli_usage_error("card", "settings: %s needs a value", a);
            const char *v = argv[++i];
            if (strcmp(a, "--pan") == 0) {
                pan = v;
            } else if (strcmp(a, "--ecommerce") == 0) {
                if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0)
                    return kv_cli_usage_error("card", "settings: --ecommerce '%s' is not on or off",
                                              v);
                ch.set_ecommerce = 1;
                ch.ecommerce_enabled = strcmp(v, "on") == 0;
            } else if (strcmp(a, "--spend-single-max") == 0) {
                if ((rc = parse_limit(a, v, &ch.spend_single_max)) != 0)
                    return rc;
                ch.set_single = 1;
            } else if (strcmp(a, "--spend-daily-max") == 0) {
                if ((rc = parse_limit(a, v, &ch.spend_daily_max)) != 0)
                    return rc;
                ch.set_daily = 1;
            } else if (strcmp(a, "--store") == 0) {
                so.store = v;
            } else {
                so.config = v;
            }
        } else {
            return kv_cli_usage_error("card", "settings: unexpected argument '%s'", a);
        }
    }
    if (pan == NULL)
        return kv_cli_usage_error("card", "settings: --pan is required");
    if (!kv_pan_valid(pan))
        return kv_cli_usage_error("card", "settings: --pan must be 12..19 digits");
    if (ach.set_pvv != (pvki_s != NULL))
        return kv_cli_usage_error("card", "settings: --pvv and --pvki go together");

    if ((r = kv_app_open(&so, &s, err, sizeof(err))) != 0) {
        fprintf(stderr, "kortvagt card settings: %s\n", err);
        return kv_exit_code(r);
    }
    acfg = kv_app_attempts(s);
    /* the verification attempts and reference values (src/attempts), their own evidence record */
    if ((ach.reset_tries || ach.set_pvv || ach.set_ibm_offset) &&
        (r = kv_attempts_set(kv_app_store(s), kv_app_token_mac(s), kv_app_evidence_mac(s), pan,
                             &ach, NULL, &aev, why, sizeof(why))) != 0) {
        fprintf(stderr, "kortvagt card settings: %s\n", why);
        rc = kv_exit_code(r);
        goto out;
    }
    if ((r = kv_authz_card_settings(kv_app_authz(s), pan, &ch, &st, &ev)) != 0) {
        fprintf(stderr, "kortvagt card settings: %s\n", kv_authz_last_error(kv_app_authz(s)));
        rc = kv_exit_code(r);
        goto out;
    }
    if (ev == 0)
        ev = aev;
    if (json) {
        char id[24];
        snprintf(id, sizeof(id), "%lld", (long long)ev);
        json_t *j = json_pack(
            "{sssbsosososbss?s{sIsIsIsI}}", "card", st.pan_masked, "ecommerce_enabled",
            st.policy.ecommerce_enabled, "spend_single_max",
            st.policy.spend_single_max < 0 ? json_null()
                                           : json_integer((json_int_t)st.policy.spend_single_max),
            "spend_daily_max",
            st.policy.spend_daily_max < 0 ? json_null()
                                          : json_integer((json_int_t)st.policy.spend_daily_max),
            "sca_failures", json_integer(st.policy.sca_failures), "sca_blocked",
            st.policy.sca_failures >= KV_SCA_MAX_FAILURES, "evidence", ev > 0 ? id : NULL,
            "counters", "contactless_count", (json_int_t)st.policy.contactless.count,
            "contactless_amount", (json_int_t)st.policy.contactless.amount, "remote_count",
            (json_int_t)st.policy.remote.count, "remote_amount",
            (json_int_t)st.policy.remote.amount);
        if (j != NULL) {
            json_object_set_new(j, "pin_failures", json_integer(st.pin_failures));
            json_object_set_new(j, "pin_blocked", json_boolean(st.pin_failures >= acfg->pin_max));
            json_object_set_new(j, "code_failures", json_integer(st.code_failures));
            json_object_set_new(j, "code_blocked",
                                json_boolean(st.code_failures >= acfg->code_max));
            json_object_set_new(j, "pvv", json_boolean(st.has_pvv));
            json_object_set_new(j, "ibm_offset", json_boolean(st.has_ibm_offset));
        }
        char *text = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(j);
        if (text == NULL) {
            rc = kv_cli_fail(KV_ERR_NOMEM, "card settings");
            goto out;
        }
        printf("%s\n", text);
        free(text);
    } else {
        printf("card              %s\n", st.pan_masked);
        printf("ecommerce         %s\n", st.policy.ecommerce_enabled ? "on" : "off");
        if (st.policy.spend_single_max < 0)
            printf("spend-single-max  none\n");
        else
            printf("spend-single-max  %lld\n", (long long)st.policy.spend_single_max);
        if (st.policy.spend_daily_max < 0)
            printf("spend-daily-max   none\n");
        else
            printf("spend-daily-max   %lld\n", (long long)st.policy.spend_daily_max);
        printf("sca failures      %d%s\n", st.policy.sca_failures,
               st.policy.sca_failures >= KV_SCA_MAX_FAILURES ? " (blocked: --unblock-sca)" : "");
        printf("counters          contactless %lld (%lld), remote %lld (%lld) since the last SCA\n",
               (long long)st.policy.contactless.count, (long long)st.policy.contactless.amount,
               (long long)st.policy.remote.count, (long long)st.policy.remote.amount);
        printf("wrong PINs        %d of %d%s\n", st.pin_failures, acfg->pin_max,
               st.pin_failures >= acfg->pin_max ? " (blocked: --reset-tries)" : "");
        printf("wrong card codes  %d of %d%s\n", st.code_failures, acfg->code_max,
               st.code_failures >= acfg->code_max ? " (blocked: --reset-tries)" : "");
        printf("reference values  %s%s%s\n", st.has_pvv ? "PVV" : "",
               st.has_pvv && st.has_ibm_offset ? ", " : "",
               st.has_ibm_offset ? "IBM offset"
               : !st.has_pvv     ? "none"
                                 : "");
        if (ev > 0)
            printf("evidence          %lld\n", (long long)ev);
    }
    rc = KV_EXIT_OK;
out:
    kv_app_close(s);
    return rc;
}
