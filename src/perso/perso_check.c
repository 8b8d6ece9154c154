/* see perso_profile.h: checking the certificates of a personalized profile */
#include "src/perso/perso_profile.h"

#include "apdu/oda.h"
#include "apdu/tlv.h"
#include "src/base/err.h"
#include "src/base/hex.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Values of the tags perso check needs, pointing into the decoded records. */
typedef struct {
    uint8_t recs[3][KV_PERSO_REC_MAX + 3];
    size_t rec_len[3];
    kv_oda_record oda[1];
} check_recs;

static const uint8_t *find_in(const check_recs *cr, size_t nrec, uint32_t tag, size_t *len)
{
    kv_tlv t;
    for (size_t i = 0; i < nrec; i++)
        if (kv_tlv_find(cr->recs[i], cr->rec_len[i], tag, &t) == 0) {
            *len = t.len;
            return t.value;
        }
    *len = 0;
    return NULL;
}

static uint32_t today(void)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    return (uint32_t)((tm.tm_year % 100) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday);
}

/* see perso_profile.h */
int kv_perso_profile_check(const json_t *profile, const kv_capk_store *store, uint32_t date,
                           kv_perso_check_result *res, char *why, size_t whylen)
{
    const json_t *app, *recs, *rj;
    const kv_capk *ca;
    check_recs *cr = NULL;
    size_t nrec = 0, i, l90, l92, l9f32, l8f, l5a, l46, l47, l48, l93;
    const uint8_t *p8f, *p5a, *p46, *p93;
    uint8_t aid[16], rid[5];
    kv_oda_cert_in in;
    kv_oda_pubkey iss, icc;
    kv_oda_static sd;
    int rc = KV_ERR_NOMEM, r;

    res->ok = 1;
    res->issuer = "not checked";
    res->icc = res->icc_key = res->ssad = "absent";
    if (date == 0)
        date = today();
    app = json_array_get(json_object_get(profile, "applications"), 0);
    recs = json_object_get(app, "records");
    if (!json_is_string(json_object_get(app, "aid")) ||
        kv_hex_decode(json_string_value(json_object_get(app, "aid")), aid, sizeof(aid)) < 5 ||
        !json_is_array(recs)) {
        snprintf(why, whylen, "no application with an aid and records");
        return KV_ERR_FORMAT;
    }
    memcpy(rid, aid, 5);
    if ((cr = calloc(1, sizeof(*cr))) == NULL)
        goto out;
    /* the perso layout: SFI 2 records 1..3 ("hex") */
    json_array_foreach(recs, i, rj)
    {
        json_t *hx = json_object_get(rj, "hex");
        json_int_t sfi = json_integer_value(json_object_get(rj, "sfi")),
                   num = json_integer_value(json_object_get(rj, "record"));
        int n;
        if (sfi != 2 || num < 1 || num > 3 || !json_is_string(hx))
            continue;
        if ((n = kv_hex_decode(json_string_value(hx), cr->recs[num - 1], KV_PERSO_REC_MAX + 3)) <
            0) {
            snprintf(why, whylen, "record %d of SFI 2 is not hex", (int)num);
            rc = KV_ERR_FORMAT;
            goto out;
        }
        cr->rec_len[num - 1] = (size_t)n;
        if ((size_t)num > nrec)
            nrec = (size_t)num;
    }
    memset(&sd, 0, sizeof(sd));
    cr->oda[0].sfi = 2;
    cr->oda[0].data = cr->recs[0];
    cr->oda[0].len = cr->rec_len[0];
    sd.records = cr->oda;
    sd.nrecords = 1;
    sd.tag_list = (const uint8_t *)"\x82";
    sd.tag_list_len = 1;
    if (!json_is_string(json_object_get(app, "aip")) ||
        kv_hex_decode(json_string_value(json_object_get(app, "aip")), sd.aip, 2) != 2) {
        snprintf(why, whylen, "application.aip is not 2 hex bytes");
        rc = KV_ERR_FORMAT;
        goto out;
    }
    p8f = find_in(cr, nrec, 0x8F, &l8f);
    p5a = find_in(cr, nrec, 0x5A, &l5a);
    memset(&in, 0, sizeof(in));
    in.cert = find_in(cr, nrec, 0x90, &l90);
    in.cert_len = l90;
    in.remainder = find_in(cr, nrec, 0x92, &l92);
    in.remainder_len = l92;
    in.exponent = find_in(cr, nrec, 0x9F32, &l9f32);
    in.exponent_len = l9f32;
    if (p8f == NULL || l8f != 1 || p5a == NULL) {
        res->issuer = kv_strerror(KV_ERR_ODA_DATA_MISSING);
        res->ok = 0;
        goto done;
    }
    if ((ca = kv_capk_find(store, rid, p8f[0])) == NULL) {
        res->issuer = kv_strerror(KV_ERR_ODA_CA_UNKNOWN);
        res->ok = 0;
        goto done;
    }
    if ((r = kv_oda_issuer_key_recover(ca, &in, p5a, l5a, date, &iss)) != 0) {
        res->issuer = kv_strerror(r);
        res->ok = 0;
        goto done;
    }
    res->issuer = "ok";
    if ((p46 = find_in(cr, nrec, 0x9F46, &l46)) != NULL) {
        kv_oda_cert_in ii = {p46, l46, NULL, 0, NULL, 0};
        ii.remainder = find_in(cr, nrec, 0x9F48, &l48);
        ii.remainder_len = l48;
        ii.exponent = find_in(cr, nrec, 0x9F47, &l47);
        ii.exponent_len = l47;
        if ((r = kv_oda_icc_key_recover(&iss, &ii, p5a, l5a, date, &sd, &icc)) != 0) {
            res->icc = kv_strerror(r);
            res->ok = 0;
        } else {
            /* the recovered key must be the profile's ICC key */
            json_t *pem = json_object_get(json_object_get(profile, "keys"), "icc_rsa");
            BIO *b = json_is_string(pem) ? BIO_new_mem_buf(json_string_value(pem), -1) : NULL;
            EVP_PKEY *k = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
            kv_oda_pubkey mine;
            res->icc = "ok";
            res->icc_key = "mismatch";
            if (k != NULL && kv_oda_pubkey_from_pkey(k, &mine) == 0 &&
                mine.modulus_len == icc.modulus_len &&
                memcmp(mine.modulus, icc.modulus, icc.modulus_len) == 0)
                res->icc_key = "ok";
            else
                res->ok = 0;
            EVP_PKEY_free(k);
            BIO_free(b);
        }
    }
    if ((p93 = find_in(cr, nrec, 0x93, &l93)) != NULL) {
        if ((r = kv_oda_sda_verify(&iss, p93, l93, &sd, NULL)) != 0) {
            res->ssad = kv_strerror(r);
            res->ok = 0;
        } else {
            res->ssad = "ok";
        }
    }
done:
    rc = 0;
out:
    free(cr);
    return rc;
}
