/*
 * see perso_profile.h: checking a personalized profile -- its certificates
 * as a terminal would, and the consistency of the data elements the bench
 * derives from one source value (PAN, expiry, service code, ...).
 */
#include "src/perso/perso_profile.h"

#include "apdu/oda.h"
#include "apdu/tlv.h"
#include "src/base/cursor.h"
#include "src/base/err.h"
#include "src/base/hex.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CK_REC_MAX 48   /* records per application looked at */
#define CK_ELEM_MAX 400 /* data objects per application looked at */
#define CK_REC_CAP (KV_PERSO_REC_MAX + 3)

/* One data object of a record (the top level inside its 70 template). */
typedef struct {
    uint32_t tag;
    const uint8_t *v;
    size_t len;
    int sfi, rec;
} elem;

/* The records of one application, decoded, and their data objects. */
typedef struct {
    uint8_t buf[CK_REC_MAX][CK_REC_CAP];
    size_t len[CK_REC_MAX];
    int sfi[CK_REC_MAX], rec[CK_REC_MAX];
    size_t n;
    elem e[CK_ELEM_MAX];
    size_t ne;
} app_recs;

static uint32_t today(void)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    return (uint32_t)((tm.tm_year % 100) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday);
}

static void finding(kv_perso_check_result *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void finding(kv_perso_check_result *res, const char *fmt, ...)
{
    va_list ap;
    res->ok = 0;
    res->consistency = "mismatch";
    if (res->nfindings >= KV_PERSO_FINDINGS_MAX)
        return;
    va_start(ap, fmt);
    vsnprintf(res->findings[res->nfindings++], KV_PERSO_FINDING_LEN, fmt, ap);
    va_end(ap);
}

/*
 * The bytes of one profile record: "hex", or "tags" (an array of ["TAG",
 * "HEX"] pairs, wrapped in 70). Returns 1 with *len set, 0 when the record
 * has neither, or KV_ERR_FORMAT (why says what).
 */
static int record_bytes(const json_t *rj, int sfi, int num, uint8_t *out, size_t *len, char *why,
                        size_t whylen)
{
    const json_t *hx = json_object_get(rj, "hex"), *tags = json_object_get(rj, "tags"), *pair;
    size_t i;
    if (json_is_string(hx)) {
        int n = kv_hex_decode(json_string_value(hx), out, CK_REC_CAP);
        if (n < 0) {
            snprintf(why, whylen, "record %d of SFI %d is not hex", num, sfi);
            return KV_ERR_FORMAT;
        }
        *len = (size_t)n;
        return 1;
    }
    if (json_is_array(tags)) {
        kv_tlv_writer w;
        kv_tlv_writer_init(&w, out, CK_REC_CAP);
        kv_tlv_begin(&w, 0x70);
        json_array_foreach(tags, i, pair)
        {
            const json_t *t = json_array_get(pair, 0), *x = json_array_get(pair, 1);
            uint8_t tagb[3], val[256];
            int tn, vn;
            uint32_t tag = 0;
            if (!json_is_string(t) || !json_is_string(x) ||
                (tn = kv_hex_decode(json_string_value(t), tagb, sizeof(tagb))) < 1 ||
                (vn = kv_hex_decode(json_string_value(x), val, sizeof(val))) < 0) {
                snprintf(why, whylen,
                         "record %d of SFI %d: tags[%zu] is not a [\"TAG\", \"HEX\"] pair", num,
                         sfi, i);
                return KV_ERR_FORMAT;
            }
            for (int j = 0; j < tn; j++)
                tag = tag << 8 | tagb[j];
            kv_tlv_put(&w, tag, val, (size_t)vn);
        }
        kv_tlv_end(&w);
        if (kv_tlv_finish(&w) != 0) {
            snprintf(why, whylen, "record %d of SFI %d is longer than %d bytes", num, sfi,
                     KV_PERSO_REC_MAX);
            return KV_ERR_FORMAT;
        }
        *len = w.len;
        return 1;
    }
    return 0;
}

/* Read the records of application app into ar (and its data objects). */
static int read_app(const json_t *app, app_recs *ar, char *why, size_t whylen)
{
    const json_t *recs = json_object_get(app, "records"), *rj;
    size_t i;
    ar->n = ar->ne = 0;
    json_array_foreach(recs, i, rj)
    {
        int sfi = (int)json_integer_value(json_object_get(rj, "sfi")),
            num = (int)json_integer_value(json_object_get(rj, "record")), r;
        kv_cursor c;
        kv_tlv t, in;
        if (ar->n >= CK_REC_MAX)
            break;
        if ((r = record_bytes(rj, sfi, num, ar->buf[ar->n], &ar->len[ar->n], why, whylen)) < 0)
            return r;
        if (r == 0)
            continue;
        ar->sfi[ar->n] = sfi;
        ar->rec[ar->n] = num;
        kv_cursor_init(&c, ar->buf[ar->n], ar->len[ar->n]);
        if (kv_tlv_next(&c, &t) == 1 && t.tag == 0x70) {
            kv_cursor_init(&c, t.value, t.len);
            while (kv_tlv_next(&c, &in) == 1 && ar->ne < CK_ELEM_MAX) {
                elem *e = &ar->e[ar->ne++];
                e->tag = in.tag;
                e->v = in.value;
                e->len = in.len;
                e->sfi = sfi;
                e->rec = num;
            }
        }
        ar->n++;
    }
    return 0;
}

static const elem *find_elem(const app_recs *ar, uint32_t tag)
{
    for (size_t i = 0; i < ar->ne; i++)
        if (ar->e[i].tag == tag)
            return &ar->e[i];
    return NULL;
}

/* The digits of BCD bytes, up to the first F (or other non-digit) nibble. */
static void bcd_digits(const uint8_t *p, size_t n, char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n * 2 && k + 1 < cap; i++) {
        unsigned d = (i % 2) ? (p[i / 2] & 0x0F) : (p[i / 2] >> 4);
        if (d > 9)
            break;
        out[k++] = (char)('0' + d);
    }
    out[k] = '\0';
}

/* Track 2 equivalent data (57): PAN, YYMM, service code (each "" when absent). */
typedef struct {
    char pan[20], expiry[5], sc[4];
    int ok;
} track2;

static track2 parse_57(const elem *e)
{
    track2 t;
    char nib[80];
    size_t k = 0, i, sep;
    memset(&t, 0, sizeof(t));
    for (i = 0; i < e->len * 2 && k + 1 < sizeof(nib); i++) {
        unsigned d = (i % 2) ? (e->v[i / 2] & 0x0F) : (e->v[i / 2] >> 4);
        nib[k++] = d <= 9 ? (char)('0' + d) : d == 0x0D ? 'D' : 'F';
    }
    nib[k] = '\0';
    for (sep = 0; nib[sep] != '\0' && nib[sep] != 'D'; sep++)
        ;
    if (nib[sep] != 'D' || sep < 1 || sep > 19 || strlen(nib + sep + 1) < 7)
        return t;
    memcpy(t.pan, nib, sep);
    t.pan[sep] = '\0';
    memcpy(t.expiry, nib + sep + 1, 4);
    memcpy(t.sc, nib + sep + 5, 3);
    t.ok = kv_is_digits(t.expiry, 4, 4) && kv_is_digits(t.sc, 3, 3);
    return t;
}

static const char *tag_name(uint32_t tag, char buf[8])
{
    snprintf(buf, 8, "%X", (unsigned)tag);
    return buf;
}

/* The scheme a RID stands for, as the personality its CVN must have (NONE: any). */
static int rid_personality(const uint8_t *aid, size_t len)
{
    if (len >= 5 && memcmp(aid, "\xA0\x00\x00\x00\x03", 5) == 0)
        return KV_PERSO_PERS_VISA;
    if (len >= 5 && memcmp(aid, "\xA0\x00\x00\x00\x04", 5) == 0)
        return KV_PERSO_PERS_MCHIP;
    return KV_PERSO_PERS_NONE;
}

/* The consistency checks of one application (prefix names it on a multi-application card). */
static void check_consistency(const json_t *profile, const json_t *app, const app_recs *ar,
                              const char *prefix, kv_perso_check_result *res)
{
    const elem *e57 = find_elem(ar, 0x57), *e5a = find_elem(ar, 0x5A),
               *e5f24 = find_elem(ar, 0x5F24), *e5f25 = find_elem(ar, 0x5F25),
               *e5f30 = find_elem(ar, 0x5F30), *e5f34 = find_elem(ar, 0x5F34),
               *e9f14 = find_elem(ar, 0x9F14), *e9f23 = find_elem(ar, 0x9F23);
    const json_t *keys = json_object_get(app, "keys"), *risk = json_object_get(app, "risk"),
                 *expect = json_object_get(profile, "expect"), *v;
    char pan5a[24] = "", exp24[8] = "", eff25[8] = "", sc30[8] = "", psn[4] = "", tn[8];
    track2 t2;
    uint8_t aid[16];
    int aid_len;

    memset(&t2, 0, sizeof(t2));
    if (keys == NULL)
        keys = json_object_get(profile, "keys");
    if (risk == NULL)
        risk = json_object_get(profile, "risk");
    /* a data object in two records (or twice in one) */
    for (size_t i = 0; i < ar->ne; i++)
        for (size_t j = i + 1; j < ar->ne; j++)
            if (ar->e[i].tag == ar->e[j].tag) {
                finding(res, "%stag %s appears twice: SFI %d record %d and SFI %d record %d",
                        prefix, tag_name(ar->e[i].tag, tn), ar->e[i].sfi, ar->e[i].rec,
                        ar->e[j].sfi, ar->e[j].rec);
                break;
            }
    if (e57 != NULL) {
        t2 = parse_57(e57);
        if (!t2.ok)
            finding(res, "%s57 (track 2 equivalent data) has no PAN D YYMM service-code layout",
                    prefix);
    }
    if (e5a != NULL)
        bcd_digits(e5a->v, e5a->len, pan5a, sizeof(pan5a));
    if (e5f24 != NULL)
        bcd_digits(e5f24->v, e5f24->len, exp24, sizeof(exp24));
    if (e5f25 != NULL)
        bcd_digits(e5f25->v, e5f25->len, eff25, sizeof(eff25));
    if (e5f30 != NULL)
        bcd_digits(e5f30->v, e5f30->len, sc30, sizeof(sc30));
    if (e5f34 != NULL)
        bcd_digits(e5f34->v, e5f34->len, psn, sizeof(psn));
    if (e5f24 != NULL && strlen(exp24) != 6)
        finding(res, "%s5F24 (expiry) is not YYMMDD", prefix);
    if (e5f30 != NULL && strlen(sc30) != 4)
        finding(res, "%s5F30 (service code) is not 2 bytes n3", prefix);
    if (t2.ok) {
        /* EMV Book 3 Annex A: 5A, 5F24 and 5F30 are the values of tracks 1 and 2 */
        if (e5a != NULL && strcmp(pan5a, t2.pan) != 0)
            finding(res, "%s5A (PAN) differs from the PAN in track 2 (57)", prefix);
        if (strlen(exp24) == 6 && strncmp(exp24, t2.expiry, 4) != 0)
            finding(res, "%s5F24 expiry %.4s (YYMM) differs from track 2 (57) expiry %s", prefix,
                    exp24, t2.expiry);
        if (strlen(sc30) == 4 && strcmp(sc30 + 1, t2.sc) != 0)
            finding(res, "%s5F30 service code %s differs from track 2 (57) service code %s", prefix,
                    sc30 + 1, t2.sc);
    }
    if (strlen(eff25) == 6 && strlen(exp24) == 6 && strcmp(eff25, exp24) > 0)
        finding(res, "%s5F25 effective date %s is after 5F24 expiry %s", prefix, eff25, exp24);
    /* the offline counter limits and the card's risk management */
    if (json_is_object(risk)) {
        const struct {
            const elem *e;
            const char *field;
        } lim[] = {{e9f14, "lcol"}, {e9f23, "ucol"}};
        for (size_t i = 0; i < 2; i++) {
            v = json_object_get(risk, lim[i].field);
            if (lim[i].e == NULL || !json_is_integer(v))
                continue;
            if (lim[i].e->len != 1 || lim[i].e->v[0] != json_integer_value(v))
                finding(res, "%s%s (%s) differs from risk.%s %lld", prefix,
                        tag_name(lim[i].e->tag, tn), lim[i].field, lim[i].field,
                        (long long)json_integer_value(v));
        }
    }
    /* what the profile says it is */
    if (json_is_object(expect) && strcmp(prefix, "") == 0) {
        const char *x;
        if (json_is_string(v = json_object_get(expect, "pan")) && e5a != NULL &&
            strcmp(json_string_value(v), pan5a) != 0)
            finding(res, "expect.pan differs from 5A (PAN)");
        if (json_is_string(v = json_object_get(expect, "expiry")) && strlen(exp24) == 6 &&
            strncmp(json_string_value(v), exp24, 4) != 0)
            finding(res, "expect.expiry %s differs from 5F24 expiry %.4s", json_string_value(v),
                    exp24);
        if (json_is_string(v = json_object_get(expect, "psn")) && e5f34 != NULL &&
            strcmp(json_string_value(v), psn) != 0)
            finding(res, "expect.psn %s differs from 5F34 %s", json_string_value(v), psn);
        if (json_is_string(v = json_object_get(expect, "service_code")) &&
            (x = json_string_value(v)) != NULL) {
            if (t2.ok && strcmp(x, t2.sc) != 0)
                finding(res, "expect.service_code %s differs from track 2 (57) service code %s", x,
                        t2.sc);
            else if (strlen(sc30) == 4 && strcmp(x, sc30 + 1) != 0)
                finding(res, "expect.service_code %s differs from 5F30 service code %s", x,
                        sc30 + 1);
        }
    }
    /* the personality (the CVN) against the AID's scheme */
    aid_len = json_is_string(v = json_object_get(app, "aid"))
                  ? kv_hex_decode(json_string_value(v), aid, sizeof(aid))
                  : -1;
    if (json_is_object(keys) && json_is_integer(v = json_object_get(keys, "cvn"))) {
        int cvn = (int)json_integer_value(v), pc = kv_perso_personality(cvn),
            pr = aid_len >= 5 ? rid_personality(aid, (size_t)aid_len) : KV_PERSO_PERS_NONE;
        if (pc == KV_PERSO_PERS_NONE)
            finding(res, "%skeys.cvn %d is not a known CVN", prefix, cvn);
        else if (pr != KV_PERSO_PERS_NONE && pc != pr)
            finding(res, "%skeys.cvn %d (%s) on a %s AID %s", prefix, cvn,
                    kv_perso_personality_name(pc), pr == KV_PERSO_PERS_VISA ? "Visa" : "Mastercard",
                    json_string_value(json_object_get(app, "aid")));
        if (json_object_get(keys, "iad_format") != NULL && pc != KV_PERSO_PERS_VISA)
            finding(res, "%skeys.iad_format with CVN %d (the IAD formats are Visa's)", prefix, cvn);
    }
}

/* see perso_profile.h */
int kv_perso_profile_check(const json_t *profile, const kv_capk_store *store, uint32_t date,
                           kv_perso_check_result *res, char *why, size_t whylen)
{
    const json_t *apps = json_object_get(profile, "applications"), *app;
    const kv_capk *ca;
    app_recs *ar = NULL;
    const uint8_t *sfi2[3] = {NULL, NULL, NULL};
    size_t sfi2_len[3] = {0, 0, 0};
    const elem *x8f, *x5a, *x90, *x92, *x9f32, *x46, *x47, *x48, *x93, *x5f24;
    uint8_t aid[16], rid[5];
    kv_oda_record odarec[1];
    kv_oda_cert_in in;
    kv_oda_pubkey iss, icc;
    kv_oda_static sd;
    size_t ai;
    int rc = KV_ERR_NOMEM, r;

    memset(res, 0, sizeof(*res));
    res->ok = 1;
    res->issuer = "not checked";
    res->icc = res->icc_key = res->ssad = "absent";
    res->consistency = "ok";
    if (date == 0)
        date = today();
    app = json_array_get(apps, 0);
    if (!json_is_string(json_object_get(app, "aid")) ||
        kv_hex_decode(json_string_value(json_object_get(app, "aid")), aid, sizeof(aid)) < 5 ||
        !json_is_array(json_object_get(app, "records"))) {
        snprintf(why, whylen, "no application with an aid and records");
        return KV_ERR_FORMAT;
    }
    memcpy(rid, aid, 5);
    if ((ar = calloc(1, sizeof(*ar))) == NULL)
        goto out;

    /* consistency: every application (the first one last: its records stay in ar) */
    for (ai = json_array_size(apps); ai-- > 0;) {
        const json_t *a = json_array_get(apps, ai);
        char prefix[48] = "";
        if ((r = read_app(a, ar, why, whylen)) != 0) {
            rc = r;
            goto out;
        }
        if (json_array_size(apps) > 1)
            snprintf(prefix, sizeof(prefix), "application %s: ",
                     json_is_string(json_object_get(a, "aid"))
                         ? json_string_value(json_object_get(a, "aid"))
                         : "?");
        if (ai == 0 || json_is_array(json_object_get(a, "records")))
            check_consistency(profile, a, ar, ai == 0 ? "" : prefix, res);
    }

    /* the certificates: the perso layout, SFI 2 records 1..3 of the first application */
    for (size_t i = 0; i < ar->n; i++)
        if (ar->sfi[i] == 2 && ar->rec[i] >= 1 && ar->rec[i] <= 3) {
            sfi2[ar->rec[i] - 1] = ar->buf[i];
            sfi2_len[ar->rec[i] - 1] = ar->len[i];
        }
    memset(&sd, 0, sizeof(sd));
    odarec[0].sfi = 2;
    odarec[0].data = sfi2[0] != NULL ? sfi2[0] : (const uint8_t *)"";
    odarec[0].len = sfi2_len[0];
    sd.records = odarec;
    sd.nrecords = 1;
    sd.tag_list = (const uint8_t *)"\x82";
    sd.tag_list_len = 1;
    if (!json_is_string(json_object_get(app, "aip")) ||
        kv_hex_decode(json_string_value(json_object_get(app, "aip")), sd.aip, 2) != 2) {
        snprintf(why, whylen, "application.aip is not 2 hex bytes");
        rc = KV_ERR_FORMAT;
        goto out;
    }
    x8f = find_elem(ar, 0x8F);
    x5a = find_elem(ar, 0x5A);
    x90 = find_elem(ar, 0x90);
    x92 = find_elem(ar, 0x92);
    x9f32 = find_elem(ar, 0x9F32);
    x5f24 = find_elem(ar, 0x5F24);
    memset(&in, 0, sizeof(in));
    in.cert = x90 != NULL ? x90->v : NULL;
    in.cert_len = x90 != NULL ? x90->len : 0;
    in.remainder = x92 != NULL ? x92->v : NULL;
    in.remainder_len = x92 != NULL ? x92->len : 0;
    in.exponent = x9f32 != NULL ? x9f32->v : NULL;
    in.exponent_len = x9f32 != NULL ? x9f32->len : 0;
    if (x8f == NULL && x90 == NULL && (sd.aip[0] & (0x40 | 0x20 | 0x01)) == 0) {
        res->issuer = "absent"; /* no ODA asked for, none personalized */
        goto done;
    }
    if (x8f == NULL || x8f->len != 1 || x5a == NULL) {
        res->issuer = kv_strerror(KV_ERR_ODA_DATA_MISSING);
        res->ok = 0;
        goto done;
    }
    if (store == NULL)
        goto done; /* "not checked" */
    if ((ca = kv_capk_find(store, rid, x8f->v[0])) == NULL) {
        res->issuer = kv_strerror(KV_ERR_ODA_CA_UNKNOWN);
        res->ok = 0;
        goto done;
    }
    if ((r = kv_oda_issuer_key_recover(ca, &in, x5a->v, x5a->len, date, &iss)) != 0) {
        res->issuer = kv_strerror(r);
        res->ok = 0;
        goto done;
    }
    res->issuer = "ok";
    if ((x46 = find_elem(ar, 0x9F46)) != NULL) {
        kv_oda_cert_in ii = {x46->v, x46->len, NULL, 0, NULL, 0};
        x48 = find_elem(ar, 0x9F48);
        x47 = find_elem(ar, 0x9F47);
        ii.remainder = x48 != NULL ? x48->v : NULL;
        ii.remainder_len = x48 != NULL ? x48->len : 0;
        ii.exponent = x47 != NULL ? x47->v : NULL;
        ii.exponent_len = x47 != NULL ? x47->len : 0;
        if ((r = kv_oda_icc_key_recover(&iss, &ii, x5a->v, x5a->len, date, &sd, &icc)) != 0) {
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
            /* the ICC certificate should not expire before the application (5F24) */
            if (x5f24 != NULL && x5f24->len == 3) {
                unsigned cert_yymm = (unsigned)(icc.expiry[1] << 8 | icc.expiry[0]);
                unsigned app_yymm = (unsigned)(x5f24->v[0] << 8 | x5f24->v[1]);
                if (cert_yymm < app_yymm)
                    finding(res,
                            "the ICC certificate (9F46) expires %02X/%02X, before 5F24 "
                            "%02X/%02X",
                            icc.expiry[0], icc.expiry[1], x5f24->v[1], x5f24->v[0]);
            }
        }
    }
    if ((x93 = find_elem(ar, 0x93)) != NULL) {
        if ((r = kv_oda_sda_verify(&iss, x93->v, x93->len, &sd, NULL)) != 0) {
            res->ssad = kv_strerror(r);
            res->ok = 0;
        } else {
            res->ssad = "ok";
        }
    }
done:
    rc = 0;
out:
    free(ar);
    return rc;
}
