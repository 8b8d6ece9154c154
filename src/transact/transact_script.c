/*
 * Issuer scripts of one transaction (EMV Book 3 §10.10, Book 2 §9): the
 * --issuer-script command built in the HSM for this card and cryptogram
 * (secure messaging under the SMI/SMC session keys of imk-smi, imk-smc),
 * the issuer host's raw 71/72 templates, and their delivery to the card
 * before (71) and after (72) the 2nd GENERATE AC. See transact_int.h.
 */
#include <string.h>

#include "apdu/script.h"
#include "hsm/issuer_script.h"
#include "src/base/err.h"
#include "src/transact/transact_int.h"

#define DEFAULT_IMK_SMI "imk-smi"
#define DEFAULT_IMK_SMC "imk-smc"

/* The command of --issuer-script, MACed (and the PIN enciphered) in the HSM, as one template. */
static int build_kind(txn_ctx *x, kv_script *sc)
{
    const kv_transact_params *p = x->p;
    kv_transact_result *res = x->res;
    kv_hsm_key smi, smc;
    kv_script_txn st;
    kv_script_spec spec;
    int r, need_smc = p->script_kind == KV_SCRIPT_PIN_CHANGE;

    if ((r = kv_hsm_key_find(p->hsm, p->imk_smi ? p->imk_smi : DEFAULT_IMK_SMI, &smi)) != 0)
        return r;
    if (need_smc &&
        (r = kv_hsm_key_find(p->hsm, p->imk_smc ? p->imk_smc : DEFAULT_IMK_SMC, &smc)) != 0)
        return r;
    memset(&st, 0, sizeof(st));
    st.cvn = res->cvn;
    st.pan = res->pan;
    st.psn = res->psn;
    memcpy(st.atc, x->g1.atc, 2);
    memcpy(st.arqc, x->g1.ac, 8);
    memcpy(st.un, x->t->un, 4);
    memset(&spec, 0, sizeof(spec));
    spec.kind = p->script_kind;
    if (need_smc) {
        if (p->new_pin == NULL || p->new_pin_len == 0)
            return KV_ERR_ARG;
        spec.new_pin = p->new_pin;
        spec.pin_len = p->new_pin_len;
    }
    memset(sc, 0, sizeof(*sc));
    sc->tag = p->script_after ? 0x72 : 0x71;
    if ((r = kv_hsm_script_command(p->hsm, &smi, need_smc ? &smc : NULL, &st, &spec,
                                   sc->cmds[0].apdu, sizeof(sc->cmds[0].apdu), &sc->cmds[0].len)) !=
        0)
        return r;
    sc->ncmds = 1;
    return 0;
}

/*
 * see transact_int.h. Scripts answer an authenticated request: nothing is
 * built or taken when the ARQC did not verify (the issuer would not answer
 * with scripts) or when there is no issuer (unable to go online).
 */
int txn_scripts_prepare(txn_ctx *x)
{
    const kv_transact_params *p = x->p;
    size_t n = 0;
    int r;

    x->nscripts = 0;
    if (!x->online || !x->res->arqc_verified)
        return 0;
    if (p->issuer_scripts != NULL && p->issuer_scripts_len > 0) {
        if ((r = kv_script_parse_all(p->issuer_scripts, p->issuer_scripts_len, x->scripts,
                                     KV_SCRIPT_MAX - 1, &n)) != 0)
            return r == KV_ERR_CARD_DATA ? KV_ERR_ARG : r;
        x->nscripts = n;
    }
    if (p->script_kind != 0) {
        if ((r = build_kind(x, &x->scripts[x->nscripts])) != 0)
            return r;
        x->nscripts++;
    }
    return 0;
}

/* see transact_int.h */
int txn_scripts_run(txn_ctx *x, uint8_t tag)
{
    kv_transact_result *res = x->res;
    size_t n;
    int r;

    for (size_t i = 0; i < x->nscripts; i++) {
        if (x->scripts[i].tag != tag || res->nscripts >= KV_TXN_MAX_SCRIPT_RESULTS)
            continue;
        n = 0;
        r = kv_emv_script_run(x->s, &x->scripts[i], res->tvr, res->tsi,
                              res->scripts + res->nscripts,
                              KV_TXN_MAX_SCRIPT_RESULTS - res->nscripts, &n);
        res->nscripts += n;
        if (r != 0)
            return r;
    }
    return 0;
}
