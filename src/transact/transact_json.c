/* The verification result as JSON (transact.h kv_transact_result_json). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "apdu/cvm.h"
#include "apdu/emv_txn.h"
#include "apdu/oda.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/transact/transact_int.h"

/* see transact.h */
const char *kv_transact_cvm_name(int method)
{
    switch (method) {
    case KV_TXN_CVM_OFFLINE_PLAIN:
        return "offline_pin_plain";
    case KV_TXN_CVM_OFFLINE_ENCIPHERED:
        return "offline_pin_enciphered";
    case KV_TXN_CVM_ONLINE_PIN:
        return "online_pin";
    case KV_TXN_CVM_SIGNATURE:
        return "signature";
    case KV_TXN_CVM_NO_CVM:
        return "no_cvm";
    case KV_TXN_CVM_FAILED:
        return "failed";
    default:
        return "none";
    }
}

static json_t *hex_json(const uint8_t *p, size_t n)
{
    char buf[2 * 16 + 1];
    if (n > 16)
        return json_null();
    kv_hex_encode(p, n, buf);
    return json_string(buf);
}

/* see transact.h */
const char *kv_transact_outcome_name(int outcome)
{
    switch (outcome) {
    case KV_TXN_OUT_APPROVED_OFFLINE:
        return "approved_offline";
    case KV_TXN_OUT_DECLINED_OFFLINE:
        return "declined_offline";
    case KV_TXN_OUT_APPROVED_ONLINE:
        return "approved_online";
    case KV_TXN_OUT_DECLINED_ONLINE:
        return "declined_online";
    case KV_TXN_OUT_APPROVED_UNABLE_ONLINE:
        return "approved_unable_online";
    case KV_TXN_OUT_DECLINED_UNABLE_ONLINE:
        return "declined_unable_online";
    default:
        return "terminated";
    }
}

/* "aac", "tc", "arqc" of a KV_AC_* type; null when none. */
static json_t *ac_json(int type)
{
    if (type < 0)
        return json_null();
    return json_string(kv_ac_type_name((uint8_t)type));
}

/* One named CVR bit: byte index into kv_cvr_info.cvr, mask, name. */
typedef struct {
    uint8_t byte, mask;
    const char *name;
} cvr_bit;

/*
 * The CVR bits each layout names (the public layouts apdu/cvr.h lists: VIS
 * 1.5 CVR bytes 2-4, M/Chip 4 CVR bytes 1, 2, 4, 5, EMV Book 3 Annex C7.3
 * CCD CVR bytes 1-4). Two-bit AC type fields are reported separately.
 */
static const cvr_bit visa_bits[] = {
    {0, 0x08, "issuer_authentication_failed"},
    {0, 0x04, "offline_pin_performed"},
    {0, 0x02, "offline_pin_failed"},
    {0, 0x01, "unable_to_go_online"},
    {1, 0x80, "last_online_not_completed"},
    {1, 0x40, "pin_try_limit_exceeded"},
    {1, 0x20, "velocity_exceeded"},
    {1, 0x10, "new_card"},
    {1, 0x08, "issuer_authentication_failed_last_online"},
    {1, 0x04, "issuer_authentication_not_performed"},
    {1, 0x02, "application_blocked_pin_try_limit"},
    {1, 0x01, "sda_failed_last_transaction"},
    {2, 0x08, "script_failed"},
    {2, 0x04, "dda_failed_last_transaction"},
    {2, 0x02, "dda_performed"},
};
static const cvr_bit visa2_bits[] = {
    {2, 0x40, "pin_try_limit_exceeded"},
};
static const cvr_bit mchip_bits[] = {
    {0, 0x04, "offline_pin_performed"},
    {0, 0x02, "offline_encrypted_pin_performed"},
    {0, 0x01, "offline_pin_successful"},
    {1, 0x80, "dda_returned"},
    {1, 0x40, "cda_first_ac"},
    {1, 0x20, "cda_second_ac"},
    {1, 0x10, "issuer_authentication_performed"},
    {3, 0x80, "last_online_not_completed"},
    {3, 0x40, "unable_to_go_online"},
    {3, 0x20, "offline_pin_not_performed"},
    {3, 0x10, "offline_pin_failed"},
    {3, 0x08, "pin_try_limit_exceeded"},
    {3, 0x04, "international"},
    {3, 0x02, "domestic"},
    {3, 0x01, "terminal_erroneously_considers_offline_pin_ok"},
    {4, 0x80, "lower_consecutive_offline_limit_exceeded"},
    {4, 0x40, "upper_consecutive_offline_limit_exceeded"},
    {4, 0x20, "lower_cumulative_offline_limit_exceeded"},
    {4, 0x10, "upper_cumulative_offline_limit_exceeded"},
    {4, 0x08, "go_online_on_next_transaction"},
    {4, 0x04, "issuer_authentication_failed"},
    {4, 0x02, "script_received"},
    {4, 0x01, "script_failed"},
};
static const cvr_bit ccd_bits[] = {
    {0, 0x08, "cda_performed"},
    {0, 0x04, "dda_performed"},
    {0, 0x02, "issuer_authentication_not_performed"},
    {0, 0x01, "issuer_authentication_failed"},
    {1, 0x08, "offline_pin_performed"},
    {1, 0x04, "offline_pin_failed"},
    {1, 0x02, "pin_try_limit_exceeded"},
    {1, 0x01, "last_online_not_completed"},
    {2, 0x80, "lower_offline_count_exceeded"},
    {2, 0x40, "upper_offline_count_exceeded"},
    {2, 0x20, "lower_cumulative_offline_exceeded"},
    {2, 0x10, "upper_cumulative_offline_exceeded"},
    {3, 0x08, "script_failed"},
    {3, 0x04, "oda_failed_previous_transaction"},
    {3, 0x02, "go_online_on_next_transaction"},
    {3, 0x01, "unable_to_go_online"},
};

/* The AC types a CVR reports in its first byte (b6-5 1st AC, b8-7 2nd AC). */
static void cvr_ac_types(json_t *o, uint8_t b)
{
    static const char *const first[] = {"aac", "tc", "arqc", "rfu"};
    static const char *const second[] = {"aac", "tc", "not_requested", "rfu"};
    json_object_set_new(o, "first_ac", json_string(first[(b >> 4) & 3]));
    json_object_set_new(o, "second_ac", json_string(second[(b >> 6) & 3]));
}

/* The existing CVR keys plus the decoded CVR (layout, bytes, named bits). */
static json_t *cvr_json(const kv_transact_result *res)
{
    json_t *o = json_object(), *bits;
    const cvr_bit *tab = NULL;
    size_t ntab = 0;
    const kv_cvr_info *c = &res->cvr;

    if (o == NULL)
        return NULL;
    json_object_set_new(o, "offline_pin_performed", json_boolean(res->offline_pin_performed));
    json_object_set_new(o, "offline_pin_verified", json_boolean(res->offline_pin_verified));
    json_object_set_new(o, "offline_pin_failed", json_boolean(res->offline_pin_failed));
    json_object_set_new(o, "pin_try_limit_exceeded", json_boolean(res->pin_try_limit_exceeded));
    json_object_set_new(o, "layout", json_string(kv_cvr_layout_name(c->layout)));
    json_object_set_new(o, "hex", c->cvr_len ? hex_json(c->cvr, c->cvr_len) : json_null());
    json_object_set_new(o, "offline_pin", json_string(kv_cvr_pin_name(c->offline_pin)));
    switch (c->layout) {
    case KV_CVR_LAYOUT_VISA:
        tab = visa_bits, ntab = sizeof(visa_bits) / sizeof(visa_bits[0]);
        break;
    case KV_CVR_LAYOUT_VISA_2:
        tab = visa2_bits, ntab = sizeof(visa2_bits) / sizeof(visa2_bits[0]);
        break;
    case KV_CVR_LAYOUT_MCHIP:
        tab = mchip_bits, ntab = sizeof(mchip_bits) / sizeof(mchip_bits[0]);
        break;
    case KV_CVR_LAYOUT_CCD:
        tab = ccd_bits, ntab = sizeof(ccd_bits) / sizeof(ccd_bits[0]);
        break;
    default:
        break;
    }
    if (c->cvr_len > 0 && c->layout != KV_CVR_LAYOUT_VISA_2)
        cvr_ac_types(o, c->cvr[0]);
    bits = json_array();
    for (size_t i = 0; bits != NULL && i < ntab; i++)
        if (tab[i].byte < c->cvr_len && (c->cvr[tab[i].byte] & tab[i].mask) != 0)
            json_array_append_new(bits, json_string(tab[i].name));
    json_object_set_new(o, "bits", bits != NULL ? bits : json_null());
    return o;
}

/* Every issuer script command sent: template, id, sequence, INS, SW, result. */
static json_t *scripts_json(const kv_transact_result *res)
{
    static const char *const results[] = {"not_performed", "failed", "successful"};
    json_t *a = json_array();
    char sw[5];

    for (size_t i = 0; a != NULL && i < res->nscripts && i < KV_TXN_MAX_SCRIPT_RESULTS; i++) {
        const kv_script_result *sr = &res->scripts[i];
        json_t *o = json_object();
        if (o == NULL)
            break;
        snprintf(sw, sizeof(sw), "%04X", (unsigned)sr->sw);
        json_object_set_new(o, "template", json_string(sr->tag == 0x72 ? "72" : "71"));
        json_object_set_new(o, "id", hex_json(sr->id, 4));
        json_object_set_new(o, "seq", json_integer((json_int_t)sr->seq));
        json_object_set_new(o, "ins", hex_json(&sr->ins, 1));
        json_object_set_new(o, "sw", sr->sw ? json_string(sw) : json_null());
        json_object_set_new(
            o, "result", json_string(results[sr->result >= 0 && sr->result <= 2 ? sr->result : 0]));
        json_array_append_new(a, o);
    }
    return a;
}

/* see transact.h */
json_t *kv_transact_result_json(const kv_transact_result *res)
{
    json_t *j = json_object(), *o;
    char at[32];
    struct tm tm;
    time_t tt = (time_t)res->at;
    const char *cvm_res = res->cvm_result == KV_CVM_RESULT_SUCCESSFUL ? "successful"
                          : res->cvm_result == KV_CVM_RESULT_FAILED   ? "failed"
                                                                      : "unknown";
    const char *oda_res;

    if (j == NULL)
        return NULL;
    if (res->cvm_method == KV_TXN_CVM_FAILED)
        cvm_res = "failed";
    o = json_object();
    json_object_set_new(o, "method", json_string(kv_transact_cvm_name(res->cvm_method)));
    json_object_set_new(o, "result", json_string(cvm_res));
    json_object_set_new(o, "cvm_results", hex_json(res->cvm_results, 3));
    json_object_set_new(j, "cvm", o);

    oda_res = res->oda_state == KV_ODA_ST_OK       ? "passed"
              : res->oda_state == KV_ODA_ST_FAILED ? "failed"
                                                   : "not_performed";
    o = json_object();
    json_object_set_new(o, "method", json_string(kv_oda_method_name(res->oda_method)));
    json_object_set_new(o, "result", json_string(oda_res));
    json_object_set_new(o, "reason",
                        res->oda_reason ? json_string(kv_strerror(res->oda_reason))
                        : res->oda_state == KV_ODA_ST_NO_SIGNATURE
                            ? json_string("card answered an AAC without a CDA signature")
                            : json_null());
    json_object_set_new(j, "oda", o);

    o = json_object();
    json_object_set_new(o, "verified", json_boolean(res->arqc_verified));
    json_object_set_new(o, "cvn", res->cvn >= 0 ? json_integer(res->cvn) : json_null());
    json_object_set_new(o, "atc", res->has_atc ? hex_json(res->atc, 2) : json_null());
    json_object_set_new(j, "arqc", o);

    o = json_object();
    json_object_set_new(o, "sent", json_boolean(res->arpc_sent));
    json_object_set_new(o, "method",
                        res->arpc_method ? json_integer(res->arpc_method) : json_null());
    json_object_set_new(o, "via",
                        !res->arpc_sent       ? json_null()
                        : res->arpc_via_genac ? json_string("generate_ac")
                                              : json_string("external_authenticate"));
    json_object_set_new(j, "arpc", o);

    if (res->cvc3_present) {
        o = json_object();
        json_object_set_new(o, "verified", json_boolean(res->cvc3_verified));
        json_object_set_new(j, "cvc3", o);
    }
    json_object_set_new(j, "card_decision",
                        res->card_decision < 0
                            ? json_null()
                            : json_string(kv_ac_type_name((uint8_t)res->card_decision)));
    json_object_set_new(j, "cvr", cvr_json(res));
    json_object_set_new(j, "tvr", hex_json(res->tvr, 5));
    json_object_set_new(j, "tsi", hex_json(res->tsi, 2));
    json_object_set_new(j, "atc", res->has_atc ? hex_json(res->atc, 2) : json_null());
    json_object_set_new(j, "pan", json_string(res->pan_masked));
    json_object_set_new(j, "amount", json_integer((json_int_t)res->amount));
    json_object_set_new(j, "currency", json_string(res->currency));
    if (gmtime_r(&tt, &tm) != NULL && strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm) > 0)
        json_object_set_new(j, "at", json_string(at));
    else
        json_object_set_new(j, "at", json_null());
    json_object_set_new(j, "decision", json_string(res->approved ? "approved" : "declined"));
    json_object_set_new(j, "reason", json_string(res->reason));
    json_object_set_new(j, "apdu_count", json_integer((json_int_t)res->apdus));
    /* the terminal's view (issue 12): action analysis, outcome, issuer authentication */
    json_object_set_new(j, "aid", res->aid[0] ? json_string(res->aid) : json_null());
    json_object_set_new(j, "first_ac_requested", ac_json(res->first_ac_requested));
    json_object_set_new(j, "first_ac", ac_json(res->first_ac));
    json_object_set_new(j, "second_ac", ac_json(res->second_ac));
    o = json_object();
    json_object_set_new(o, "advice_required", json_boolean((res->cid_flags & 0x08) != 0));
    json_object_set_new(o, "reason", json_integer(res->cid_flags & 0x07));
    json_object_set_new(j, "cid", o);
    json_object_set_new(j, "outcome", json_string(kv_transact_outcome_name(res->outcome)));
    json_object_set_new(j, "issuer_authentication",
                        json_string(res->issuer_authentication == 1   ? "ok"
                                    : res->issuer_authentication == 2 ? "failed"
                                                                      : "not_performed"));
    json_object_set_new(j, "cda_second",
                        json_string(res->cda_second == 1   ? "ok"
                                    : res->cda_second == 2 ? "failed"
                                                           : "not_requested"));
    json_object_set_new(j, "arc",
                        res->arc[0] ? json_stringn((const char *)res->arc, 2) : json_null());
    json_object_set_new(j, "cvn", res->cvn >= 0 ? json_integer(res->cvn) : json_null());
    json_object_set_new(j, "scripts", scripts_json(res));
    if (res->nscripts > 0) {
        uint8_t r9f5b[5 * KV_TXN_MAX_SCRIPT_RESULTS];
        char hx[2 * sizeof(r9f5b) + 1];
        size_t n = kv_script_results_9f5b(res->scripts, res->nscripts, r9f5b, sizeof(r9f5b));
        kv_hex_encode(r9f5b, n, hx);
        json_object_set_new(j, "script_results", json_string(hx));
    }
    return j;
}
