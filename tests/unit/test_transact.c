/*
 * The card side of a transaction (apdu/emv_txn.h): GENERATE AC answers
 * (formats 1 and 2), the IAD/CVR layouts of apdu/vcard/CRYPTO.md and EMV
 * Book 3 Annex C7, the AC data of EMV Book 2 A1.2.1, processing restrictions
 * (Book 3 §10.4), the PIN encipherment block (Book 2 §7.2, checked by
 * deciphering with OpenSSL), COMPUTE CRYPTOGRAPHIC CHECKSUM answers, and the
 * command bytes over a scripted card (replay transport).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "apdu/emv.h"
#include "apdu/emv_txn.h"
#include "apdu/oda.h"
#include "apdu/reader.h"
#include "apdu/tvr.h"
#include "src/base/err.h"
#include "tests/unit/apdu_test_util.h"

/* ---- GENERATE AC answers ---- */

struct genac_row {
    const char *name;
    const char *resp;
    int rc;
    int format;
    uint8_t cid;
    const char *atc, *ac, *iad; /* hex; ac "" when absent */
    int has_sdad;
};

static const struct genac_row genac_rows[] = {
    {"format 1 with Visa IAD", "801280 0001 1122334455667788 06010A03A00000", 0, 1, 0x80, "0001",
     "1122334455667788", "06010A03A00000", 0},
    {"format 1 without IAD", "800B40 00FF 0102030405060708", 0, 1, 0x40, "00FF", "0102030405060708",
     "", 0},
    {"format 1 cut AC", "800A80 0001 11223344556677", KV_ERR_CARD_DATA, 0, 0, "", "", "", 0},
    {"format 1 IAD of 33 bytes",
     "802C80 0001 1122334455667788"
     "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F20",
     KV_ERR_CARD_DATA, 0, 0, "", "", "", 0},
    {"format 2 (CRYPTO.md layout)",
     "771E 9F270180 9F36020007 9F26081122334455667788 9F100706011203A00000", 0, 2, 0x80, "0007",
     "1122334455667788", "06011203A00000", 0},
    {"format 2 CDA, no 9F26", "7718 9F270180 9F36020007 9F4B08AABBCCDDEEFF0011 9F100100", 0, 2,
     0x80, "0007", "", "00", 1},
    {"format 2 without CID", "7710 9F36020007 9F26081122334455667788", KV_ERR_CARD_DATA, 0, 0, "",
     "", "", 0},
    {"format 2 without ATC", "770F 9F270180 9F26081122334455667788", KV_ERR_CARD_DATA, 0, 0, "", "",
     "", 0},
    {"format 2 without AC or signature", "7709 9F270180 9F36020007", KV_ERR_CARD_DATA, 0, 0, "", "",
     "", 0},
    {"format 2 duplicated CID", "7718 9F270180 9F270140 9F36020007 9F26081122334455667788",
     KV_ERR_CARD_DATA, 0, 0, "", "", "", 0},
    {"format 2 CID of 2 bytes", "7715 9F27028000 9F36020007 9F26081122334455667788",
     KV_ERR_CARD_DATA, 0, 0, "", "", "", 0},
    {"format 2 length past the end", "77FF 9F270180", KV_ERR_CARD_DATA, 0, 0, "", "", "", 0},
    {"other template", "6F03 840100", KV_ERR_CARD_DATA, 0, 0, "", "", "", 0},
    {"trailing bytes", "800B40 00FF 0102030405060708 00", KV_ERR_CARD_DATA, 0, 0, "", "", "", 0},
    {"empty", "", KV_ERR_CARD_DATA, 0, 0, "", "", "", 0},
};

static void test_genac_parse(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(genac_rows) / sizeof(genac_rows[0]); i++) {
        const struct genac_row *t = &genac_rows[i];
        uint8_t in[300], w[64];
        size_t n = unhex(t->resp, in, sizeof(in)), wn;
        kv_genac_resp g;
        int rc = kv_genac_parse(n ? in : NULL, n, &g);
        if (rc != t->rc) {
            print_error("%s: rc %d, want %d (input %s)\n", t->name, rc, t->rc, hx(in, n));
            fail();
        }
        if (rc != 0)
            continue;
        assert_int_equal(g.format, t->format);
        assert_int_equal(g.cid, t->cid);
        wn = unhex(t->atc, w, sizeof(w));
        assert_bytes(t->name, g.atc, 2, w, wn);
        wn = unhex(t->ac, w, sizeof(w));
        assert_int_equal(g.has_ac, wn == 8);
        if (wn)
            assert_bytes(t->name, g.ac, 8, w, wn);
        wn = unhex(t->iad, w, sizeof(w));
        assert_bytes(t->name, g.iad, g.iad_len, w, wn);
        assert_int_equal(g.sdad != NULL, t->has_sdad);
    }
}

static void test_ac_type_names(void **state)
{
    (void)state;
    assert_string_equal(kv_ac_type_name(0x80), "arqc");
    assert_string_equal(kv_ac_type_name(0x40), "tc");
    assert_string_equal(kv_ac_type_name(0x00), "aac");
    assert_string_equal(kv_ac_type_name(0xC0), "rfu");
    assert_string_equal(kv_ac_type_name(0x91), "arqc"); /* low bits are not the type */
}

/* ---- IAD / CVR ---- */

struct iad_row {
    const char *name;
    const char *iad;
    int rc, layout, cvn, dki;
    int performed, verified, failed, limit, ac1;
};

static const struct iad_row iad_rows[] = {
    /* CRYPTO.md §4: 06 DKI CVN 03 CVR1 CVR2 CVR3 */
    {"ARQC, no PIN", "06010A03A00000", 0, KV_IAD_VISA, 10, 1, 0, 0, 0, 0, KV_AC_ARQC},
    {"ARQC, PIN verified", "06010A03A40000", 0, KV_IAD_VISA, 10, 1, 1, 1, 0, 0, KV_AC_ARQC},
    {"PIN failed", "06011203A60000", 0, KV_IAD_VISA, 18, 1, 1, 0, 1, 0, KV_AC_ARQC},
    {"PIN try limit exceeded", "06020A03A64000", 0, KV_IAD_VISA, 10, 2, 1, 0, 1, 1, KV_AC_ARQC},
    {"AAC in 1st", "06010A03800000", 0, KV_IAD_VISA, 10, 1, 0, 0, 0, 0, KV_AC_AAC},
    {"TC in 1st", "06010A03900000", 0, KV_IAD_VISA, 10, 1, 0, 0, 0, 0, KV_AC_TC},
    {"Visa layout cut", "06010A03A0", KV_ERR_CARD_DATA, 0, 0, 0, 0, 0, 0, 0, 0},
    /* Book 3 Annex C7: 0F CCI(A5) DKI CVR(5) counters(8) 0F IDD(15), 32 bytes; byte 2: 08
       performed, 04 failed, 02 limit */
    {"CCD PIN verified",
     "0FA501A008000000"
     "0000000000000000"
     "0F"
     "000000000000000000000000000000",
     0, KV_IAD_CCD, 5, 1, 1, 1, 0, 0, KV_AC_ARQC},
    {"CCD PIN try limit",
     "0FA501A00E000000"
     "0000000000000000"
     "0F"
     "000000000000000000000000000000",
     0, KV_IAD_CCD, 5, 1, 1, 0, 1, 1, KV_AC_ARQC},
    {"unknown layout", "1F4A0102030405", 0, KV_IAD_UNKNOWN, -1, -1, 0, 0, 0, 0, -1},
    {"empty", "", 0, KV_IAD_UNKNOWN, -1, -1, 0, 0, 0, 0, -1},
};

static void test_iad_decode(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(iad_rows) / sizeof(iad_rows[0]); i++) {
        const struct iad_row *t = &iad_rows[i];
        uint8_t in[64];
        size_t n = unhex(t->iad, in, sizeof(in));
        kv_iad_info info;
        int rc = kv_iad_decode(in, n, &info);
        if (rc != t->rc ||
            (rc == 0 &&
             (info.layout != t->layout || info.cvn != t->cvn || info.dki != t->dki ||
              info.offline_pin_performed != t->performed ||
              info.offline_pin_verified != t->verified || info.offline_pin_failed != t->failed ||
              info.pin_try_limit_exceeded != t->limit || info.ac1_type != t->ac1))) {
            print_error("%s (%s): rc %d layout %d cvn %d dki %d perf %d ver %d fail %d lim %d "
                        "ac1 %d\n",
                        t->name, t->iad, rc, info.layout, info.cvn, info.dki,
                        info.offline_pin_performed, info.offline_pin_verified,
                        info.offline_pin_failed, info.pin_try_limit_exceeded, info.ac1_type);
            fail();
        }
    }
}

/* ---- AC data ---- */

static void test_ac_data(void **state)
{
    /* the Visa CDOL1 of CRYPTO.md §6 and a Mastercard-like CDOL1 with extra tags in between */
    static const char *cdol_visa = "9F02069F03069F1A0295055F2A029A039C019F3704";
    static const char *data_visa = "000000012345 000000000000 0208 8000000000 0208 250131 00 "
                                   "A1B2C3D4";
    static const char *cdol_mc = "9F02069F03069F1A0295055F2A029A039C019F37049F35019F45029F4C08";
    static const char *data_mc = "000000012345 000000000000 0208 8000000000 0208 250131 00 "
                                 "A1B2C3D4 22 0000 0102030405060708";
    static const char *sd_want = "000000012345000000000000020880000000000208250131 00 A1B2C3D4";
    static const char *iad = "06010A03A40000";
    uint8_t cdol[64], data[128], sd[KV_AC_SD_LEN], want[128], iadb[16], out[128];
    uint8_t aip[2] = {0x39, 0x00}, atc[2] = {0x00, 0x07};
    size_t cl, dl, wl, il, ol;

    (void)state;
    cl = unhex(cdol_visa, cdol, sizeof(cdol));
    dl = unhex(data_visa, data, sizeof(data));
    wl = unhex(sd_want, want, sizeof(want));
    assert_int_equal(kv_ac_standard_data(cdol, cl, data, dl, NULL, 0, NULL, 0, sd), 0);
    assert_bytes("Visa SD", sd, sizeof(sd), want, wl);
    cl = unhex(cdol_mc, cdol, sizeof(cdol));
    dl = unhex(data_mc, data, sizeof(data));
    assert_int_equal(kv_ac_standard_data(cdol, cl, data, dl, NULL, 0, NULL, 0, sd), 0);
    assert_bytes("SD by tag", sd, sizeof(sd), want, wl);
    /* data shorter than the DOL */
    assert_int_equal(kv_ac_standard_data(cdol, cl, data, 20, NULL, 0, NULL, 0, sd),
                     KV_ERR_CARD_DATA);
    /* 2nd GENERATE AC: CDOL2 without 9F02 takes it from CDOL1 */
    {
        uint8_t c2[32], d2[64], c1[64], d1[128];
        size_t c2l = unhex("8A029F3704", c2, sizeof(c2)), d2l = unhex("3030 01020304", d2, 64);
        size_t c1l = unhex(cdol_visa, c1, sizeof(c1)), d1l = unhex(data_visa, d1, sizeof(d1));
        uint8_t w2[64];
        size_t w2l =
            unhex("000000012345000000000000020880000000000208250131 00 01020304", w2, sizeof(w2));
        assert_int_equal(kv_ac_standard_data(c2, c2l, d2, d2l, c1, c1l, d1, d1l, sd), 0);
        assert_bytes("CDOL2 then CDOL1", sd, sizeof(sd), w2, w2l);
    }
    il = unhex(iad, iadb, sizeof(iadb));
    /* CVN 10: SD || AIP || ATC || 03 CVR (37 bytes) */
    assert_int_equal(kv_ac_data_build(10, want, aip, atc, iadb, il, out, sizeof(out), &ol), 0);
    wl = unhex("000000012345000000000000020880000000000208250131 00 A1B2C3D4 3900 0007 03A40000",
               want, sizeof(want));
    assert_bytes("CVN 10 data", out, ol, want, wl);
    /* CVN 18: SD || AIP || ATC || IAD */
    assert_int_equal(kv_ac_data_build(18, want, aip, atc, iadb, il, out, sizeof(out), &ol), 0);
    assert_int_equal(ol, 29 + 4 + 7);
    assert_bytes("CVN 18 tail", out + 33, 7, iadb, il);
    assert_int_equal(kv_ac_data_build(10, want, aip, atc, iadb, 5, out, sizeof(out), &ol),
                     KV_ERR_CARD_DATA);
    assert_int_equal(kv_ac_data_build(99, want, aip, atc, iadb, il, out, sizeof(out), &ol),
                     KV_ERR_UNSUPPORTED);
    assert_int_equal(kv_ac_data_build(10, want, aip, atc, iadb, il, out, 36, &ol), KV_ERR_BUFFER);
}

/* ---- processing restrictions ---- */

struct restrict_row {
    const char *name;
    const char *ver, *auc, *country, *eff, *exp; /* hex or NULL */
    uint8_t term_type, txn_type;
    uint64_t amount_other;
    const char *tvr2; /* TVR byte 2 expected, hex */
};

static const struct restrict_row restrict_rows[] = {
    {"nothing to check", NULL, NULL, NULL, NULL, NULL, 22, 0, 0, "00"},
    {"same version", "0096", NULL, NULL, NULL, NULL, 22, 0, 0, "00"},
    {"other version", "0002", NULL, NULL, NULL, NULL, 22, 0, 0, "80"},
    {"AUC all, domestic purchase", NULL, "FF00", "0208", NULL, NULL, 22, 0, 0, "00"},
    {"AUC no non-ATM at POS", NULL, "FE00", "0208", NULL, NULL, 22, 0, 0, "10"},
    {"AUC ATM only at ATM", NULL, "C200", "0208", NULL, NULL, 14, 1, 0, "00"},
    {"AUC no ATM at ATM", NULL, "FD00", "0208", NULL, NULL, 14, 1, 0, "10"},
    {"domestic cash not allowed", NULL, "7F00", "0208", NULL, NULL, 14, 1, 0, "10"},
    {"international cash allowed", NULL, "4300", "0752", NULL, NULL, 14, 1, 0, "00"},
    {"international goods not allowed", NULL, "E300", "0752", NULL, NULL, 22, 0, 0, "10"},
    /* a purchase of goods (kv_terminal.services 0) needs the goods bit (Book 3 §10.4.2,
       issue 12); tests/unit/test_restrict.c has the services purchase */
    {"domestic services only, goods purchase", NULL, "0900", "0208", NULL, NULL, 22, 0, 0, "10"},
    {"cashback not allowed", NULL, "FF00", "0208", NULL, NULL, 22, 9, 100, "10"},
    {"cashback allowed", NULL, "FF80", "0208", NULL, NULL, 22, 9, 100, "00"},
    {"AUC without country: only ATM bits", NULL, "0100", NULL, NULL, NULL, 22, 1, 0, "00"},
    {"effective yesterday", NULL, NULL, NULL, "250130", NULL, 22, 0, 0, "00"},
    {"effective today", NULL, NULL, NULL, "250131", NULL, 22, 0, 0, "00"},
    {"effective tomorrow", NULL, NULL, NULL, "250201", NULL, 22, 0, 0, "20"},
    {"effective not a date", NULL, NULL, NULL, "251331", NULL, 22, 0, 0, "20"},
    {"expires today", NULL, NULL, NULL, NULL, "250131", 22, 0, 0, "00"},
    {"expired yesterday", NULL, NULL, NULL, NULL, "250130", 22, 0, 0, "40"},
    {"expired last century window", NULL, NULL, NULL, NULL, "991231", 22, 0, 0, "40"},
    {"expiry 2049", NULL, NULL, NULL, NULL, "491231", 22, 0, 0, "00"},
    {"expiry not BCD", NULL, NULL, NULL, NULL, "25AB31", 22, 0, 0, "40"},
    {"all at once", "0001", "0000", "0208", "260101", "240101", 22, 0, 0, "F0"},
};

static void test_restrictions(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(restrict_rows) / sizeof(restrict_rows[0]); i++) {
        const struct restrict_row *t = &restrict_rows[i];
        uint8_t b[5][8], tvr[5] = {0}, want[1];
        kv_restrict_card rc;
        kv_terminal term;
        memset(&rc, 0, sizeof(rc));
        assert_int_equal(kv_terminal_init(&term), 0);
        term.app_version[0] = 0x00;
        term.app_version[1] = 0x96;
        term.date = 250131;
        term.country = 208;
        term.terminal_type = t->term_type;
        if (t->term_type >= 14 && t->term_type <= 16) /* an ATM has "cash" (Book 4 Annex A1) */
            term.add_capabilities[0] |= 0x80;
        term.txn_type = t->txn_type;
        term.amount_other = t->amount_other;
#define SETF(f, s, k)                                                                              \
    if (s != NULL) {                                                                               \
        rc.f##_len = unhex(s, b[k], 8);                                                            \
        rc.f = b[k];                                                                               \
    }
        SETF(app_version, t->ver, 0)
        SETF(auc, t->auc, 1)
        SETF(issuer_country, t->country, 2)
        SETF(effective, t->eff, 3)
        SETF(expiry, t->exp, 4)
#undef SETF
        kv_emv_restrictions(&rc, &term, tvr);
        unhex(t->tvr2, want, 1);
        if (tvr[1] != want[0] || tvr[0] || tvr[2] || tvr[3] || tvr[4]) {
            print_error("%s: TVR %s, want byte 2 %s\n", t->name, hx(tvr, 5), t->tvr2);
            fail();
        }
    }
}

/* ---- PIN encipherment (Book 2 §7.2) ---- */

static EVP_PKEY *rsa_key(int bits)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_RSA, NULL);
    EVP_PKEY *k = NULL;
    BIGNUM *e = BN_new();
    assert_non_null(c);
    assert_non_null(e);
    assert_int_equal(BN_set_word(e, 3), 1);
    assert_int_equal(EVP_PKEY_keygen_init(c), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_keygen_bits(c, bits), 1);
    assert_int_equal(EVP_PKEY_CTX_set1_rsa_keygen_pubexp(c, e), 1);
    assert_int_equal(EVP_PKEY_keygen(c, &k), 1);
    BN_free(e);
    EVP_PKEY_CTX_free(c);
    return k;
}

/* The one VERIFY status-word reading and the one PIN block builder of the plain and enciphered PIN.
 */
static void test_pin_status_words(void **state)
{
    static const struct {
        uint16_t sw;
        int rc, status, tries;
    } rows[] = {
        {0x9000, 0, KV_PIN_VERIFIED, -1}, {0x63C2, 0, KV_PIN_WRONG, 2},
        {0x63C0, 0, KV_PIN_WRONG, 0},     {0x6300, 0, KV_PIN_WRONG, -1},
        {0x6983, 0, KV_PIN_BLOCKED, 0},   {0x6984, 0, KV_PIN_BLOCKED, 0},
    };
    kv_pin_result r;
    uint8_t block[8], want[8];
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        r.status = -9;
        r.tries_left = -9;
        assert_int_equal(kv_pin_result_of_sw(rows[i].sw, &r), rows[i].rc);
        assert_int_equal(r.status, rows[i].status);
        assert_int_equal(r.tries_left, rows[i].tries);
    }
    /* any other status word is the card's error */
    assert_int_equal(kv_pin_result_of_sw(0x6A86, &r), kv_sw_to_err(0x6A86));
    assert_int_equal(kv_pin_result_of_sw(0x6985, &r), kv_sw_to_err(0x6985));
    assert_int_equal(r.tries_left, -1);

    assert_int_equal(kv_pin_block_plain("1234", 4, block), 0);
    unhex("241234FFFFFFFFFF", want, sizeof(want));
    assert_bytes("4 digits", block, 8, want, 8);
    assert_int_equal(kv_pin_block_plain("12345", 5, block), 0);
    unhex("2512345FFFFFFFFF", want, sizeof(want));
    assert_bytes("5 digits", block, 8, want, 8);
    assert_int_equal(kv_pin_block_plain("123", 3, block), KV_ERR_ARG);
    assert_int_equal(kv_pin_block_plain("12a4", 4, block), KV_ERR_ARG);
    assert_int_equal(kv_pin_block_plain("1234567890123", 13, block), KV_ERR_ARG);
}

static void test_pin_encipher(void **state)
{
    EVP_PKEY *k = rsa_key(768);
    kv_oda_pubkey pub;
    uint8_t un[8] = {1, 2, 3, 4, 5, 6, 7, 8}, enc[KV_ODA_MOD_MAX], dec[KV_ODA_MOD_MAX],
            enc2[KV_ODA_MOD_MAX];
    uint8_t want[17];
    size_t dl = sizeof(dec), wl = unhex("7F 241234FFFFFFFFFF 0102030405060708", want, 17);
    EVP_PKEY_CTX *c;

    (void)state;
    assert_int_equal(kv_oda_pubkey_from_pkey(k, &pub), 0);
    assert_int_equal(pub.modulus_len, 96);
    assert_int_equal(kv_pin_encipher("1234", 4, un, &pub, enc), 0);
    c = EVP_PKEY_CTX_new(k, NULL);
    assert_non_null(c);
    assert_int_equal(EVP_PKEY_decrypt_init(c), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(c, RSA_NO_PADDING), 1);
    assert_int_equal(EVP_PKEY_decrypt(c, dec, &dl, enc, 96), 1);
    assert_int_equal(dl, 96);
    assert_bytes("7F || PIN block || ICC UN", dec, 17, want, wl);
    /* random padding: two encipherments differ */
    assert_int_equal(kv_pin_encipher("1234", 4, un, &pub, enc2), 0);
    assert_true(memcmp(enc, enc2, 96) != 0);
    /* 12-digit PIN fills the block */
    assert_int_equal(kv_pin_encipher("123456789012", 12, un, &pub, enc), 0);
    dl = sizeof(dec);
    assert_int_equal(EVP_PKEY_decrypt(c, dec, &dl, enc, 96), 1);
    wl = unhex("7F 2C123456789012FF", want, 17);
    assert_bytes("12 digits", dec, 9, want, wl);
    /* bad PINs */
    assert_int_equal(kv_pin_encipher("123", 3, un, &pub, enc), KV_ERR_ARG);
    assert_int_equal(kv_pin_encipher("12a4", 4, un, &pub, enc), KV_ERR_ARG);
    assert_int_equal(kv_pin_encipher("1234567890123", 13, un, &pub, enc), KV_ERR_ARG);
    EVP_PKEY_CTX_free(c);
    EVP_PKEY_free(k);
}

/* ---- COMPUTE CRYPTOGRAPHIC CHECKSUM answers ---- */

struct cc_row {
    const char *name, *resp;
    int rc;
    const char *cvc3, *atc;
};

static const struct cc_row cc_rows[] = {
    {"track 2 and ATC", "770A 9F61021234 9F36020005", 0, "1234", "0005"},
    {"track 1 and 2", "770F 9F6002AAAA 9F61021234 9F36020005", 0, "1234", "0005"},
    {"no CVC3", "7705 9F36020005", KV_ERR_CARD_DATA, "", ""},
    {"no ATC", "7705 9F61021234", KV_ERR_CARD_DATA, "", ""},
    {"CVC3 of 3 bytes", "770B 9F6103123456 9F36020005", KV_ERR_CARD_DATA, "", ""},
    {"duplicate ATC", "770F 9F61021234 9F36020005 9F36020006", KV_ERR_CARD_DATA, "", ""},
    {"not 77", "800A 9F61021234 9F36020005", KV_ERR_CARD_DATA, "", ""},
    {"cut", "770A 9F61021234 9F3602", KV_ERR_CARD_DATA, "", ""},
};

static void test_cc_parse(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cc_rows) / sizeof(cc_rows[0]); i++) {
        const struct cc_row *t = &cc_rows[i];
        uint8_t in[64], w[4];
        size_t n = unhex(t->resp, in, sizeof(in)), wn;
        kv_cc_resp cc;
        int rc = kv_cc_parse(in, n, &cc);
        if (rc != t->rc) {
            print_error("%s: rc %d, want %d\n", t->name, rc, t->rc);
            fail();
        }
        if (rc != 0)
            continue;
        wn = unhex(t->cvc3, w, sizeof(w));
        assert_bytes(t->name, cc.cvc3_track2, 2, w, wn);
        wn = unhex(t->atc, w, sizeof(w));
        assert_bytes(t->name, cc.atc, 2, w, wn);
    }
}

/* ---- commands over a scripted card ---- */

static kv_emv *scripted(const char *script, kv_reader **r)
{
    kv_emv *s = NULL;
    assert_int_equal(kv_reader_open_replay_text(script, strlen(script), r), 0);
    assert_int_equal(kv_emv_new(*r, NULL, &s), 0);
    return s;
}

static void test_commands(void **state)
{
    kv_reader *r = NULL;
    kv_emv *s;
    uint8_t un[8], resp[512], data[29], sdad[256];
    size_t rl, sl;
    kv_genac_resp g;
    int ok;
    static const char *script =
        "{\"c\":\"0084000000\",\"r\":\"01020304050607089000\"}\n"
        "{\"c\":\"0084000000\",\"r\":\"01029000\"}\n"
        "{\"c\":\"0084000000\",\"r\":\"6D00\"}\n"
        "{\"c\":\"80AE80001D" /* CDOL1 data of 29 bytes */
        "0000000123450000000000000208000000000002082501310001020304"
        "00\",\"r\":\"771E9F2701809F360200079F260811223344556677889F100706010A03A000009000\"}\n"
        "{\"c\":\"80AE40001D0000000123450000000000000208000000000002082501310001020304"
        "00\",\"r\":\"6985\"}\n"
        "{\"c\":\"008200000A11223344556677883030\",\"r\":\"9000\"}\n"
        "{\"c\":\"008200000A11223344556677883030\",\"r\":\"6300\"}\n"
        "{\"c\":\"008200000A11223344556677883030\",\"r\":\"6985\"}\n"
        "{\"c\":\"0088000004A1B2C3D400\",\"r\":\"8003AABBCC9000\"}\n"
        "{\"c\":\"0088000004A1B2C3D400\",\"r\":\"77059F4B02AABB9000\"}\n"
        "{\"c\":\"0088000004A1B2C3D400\",\"r\":\"77039F36009000\"}\n"
        "{\"c\":\"802A8E8004A1B2C3D400\",\"r\":\"770A9F610212349F360200059000\"}\n";
    uint8_t iad[10] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x30, 0x30};
    uint8_t dd[4] = {0xA1, 0xB2, 0xC3, 0xD4};
    kv_cc_resp cc;

    (void)state;
    s = scripted(script, &r);
    assert_int_equal(kv_emv_get_challenge(s, un), 0);
    assert_int_equal(un[7], 0x08);
    assert_int_equal(kv_emv_get_challenge(s, un), KV_ERR_CARD_DATA);
    assert_int_equal(kv_emv_get_challenge(s, un), KV_ERR_CARD_INS);
    unhex("0000000123450000000000000208000000000002082501310001020304", data, sizeof(data));
    assert_int_equal(kv_emv_generate_ac(s, KV_AC_ARQC, data, 29, resp, sizeof(resp), &rl, &g), 0);
    assert_int_equal(g.cid, 0x80);
    assert_int_equal(g.iad_len, 7);
    assert_int_equal(kv_emv_generate_ac(s, KV_AC_TC, data, 29, resp, sizeof(resp), &rl, &g),
                     KV_ERR_CONDITIONS);
    assert_int_equal(kv_emv_external_authenticate(s, iad, 10, &ok), 0);
    assert_int_equal(ok, 1);
    assert_int_equal(kv_emv_external_authenticate(s, iad, 10, &ok), 0);
    assert_int_equal(ok, 0);
    assert_int_equal(kv_emv_external_authenticate(s, iad, 10, &ok), KV_ERR_CONDITIONS);
    assert_int_equal(kv_emv_external_authenticate(s, iad, 7, &ok), KV_ERR_ARG);
    assert_int_equal(kv_emv_internal_authenticate(s, dd, 4, sdad, sizeof(sdad), &sl), 0);
    assert_int_equal(sl, 3);
    assert_int_equal(kv_emv_internal_authenticate(s, dd, 4, sdad, sizeof(sdad), &sl), 0);
    assert_int_equal(sl, 2);
    assert_int_equal(kv_emv_internal_authenticate(s, dd, 4, sdad, sizeof(sdad), &sl),
                     KV_ERR_CARD_DATA);
    assert_int_equal(kv_emv_compute_cc(s, dd, 4, &cc), 0);
    assert_int_equal(cc.cvc3_track2[1], 0x34);
    /* past the script: the transport error passes through */
    assert_int_equal(kv_emv_get_challenge(s, un), KV_ERR_REPLAY_END);
    kv_emv_free(s);
    kv_reader_free(r);
}

/* Enciphered VERIFY: GET CHALLENGE, then 00 20 00 88 with Lc = modulus length. */
static void test_verify_enciphered(void **state)
{
    EVP_PKEY *k = rsa_key(768);
    kv_oda_pubkey pub;
    kv_reader *r = NULL;
    kv_emv *s;
    kv_pin_result pr;
    char script[4096];
    char x[193];

    (void)state;
    memset(x, 'X', 192);
    x[192] = '\0';
    snprintf(script, sizeof(script),
             "{\"c\":\"0084000000\",\"r\":\"01020304050607089000\"}\n"
             "{\"c\":\"0020008860%s\",\"r\":\"9000\"}\n"
             "{\"c\":\"0084000000\",\"r\":\"01020304050607089000\"}\n"
             "{\"c\":\"0020008860%s\",\"r\":\"63C2\"}\n"
             "{\"c\":\"0084000000\",\"r\":\"01020304050607089000\"}\n"
             "{\"c\":\"0020008860%s\",\"r\":\"6983\"}\n"
             "{\"c\":\"0084000000\",\"r\":\"6985\"}\n",
             x, x, x);
    assert_int_equal(kv_oda_pubkey_from_pkey(k, &pub), 0);
    s = scripted(script, &r);
    assert_int_equal(kv_emv_verify_enciphered_pin(s, "1234", 4, &pub, &pr), 0);
    assert_int_equal(pr.status, KV_PIN_VERIFIED);
    assert_int_equal(kv_emv_verify_enciphered_pin(s, "1234", 4, &pub, &pr), 0);
    assert_int_equal(pr.status, KV_PIN_WRONG);
    assert_int_equal(pr.tries_left, 2);
    assert_int_equal(kv_emv_verify_enciphered_pin(s, "1234", 4, &pub, &pr), 0);
    assert_int_equal(pr.status, KV_PIN_BLOCKED);
    assert_int_equal(kv_emv_verify_enciphered_pin(s, "1234", 4, &pub, &pr), KV_ERR_CONDITIONS);
    kv_emv_free(s);
    kv_reader_free(r);
    EVP_PKEY_free(k);
}

static void test_dol_values(void **state)
{
    uint8_t dol[32], out[64], want[64];
    size_t dl = unhex("8A02 9104 9F4C02 9F0206", dol, sizeof(dol)), ol, wl;
    uint8_t arc[2] = {'0', '0'}, ia[4] = {1, 2, 3, 4}, dn[2] = {9, 9};
    kv_emv_dol_values v;
    kv_terminal t;

    (void)state;
    assert_int_equal(kv_terminal_init(&t), 0);
    t.amount = 100;
    memset(&v, 0, sizeof(v));
    v.arc = arc;
    v.arc_len = 2;
    v.issuer_auth = ia;
    v.issuer_auth_len = 4;
    v.icc_dn = dn;
    v.icc_dn_len = 2;
    assert_int_equal(kv_emv_dol_build(dol, dl, &t, &v, out, sizeof(out), &ol), 0);
    wl = unhex("3030 01020304 0909 000000000100", want, sizeof(want));
    assert_bytes("CDOL2 data", out, ol, want, wl);
    assert_int_equal(kv_dol_has_tag(dol, dl, 0x91), 1);
    assert_int_equal(kv_dol_has_tag(dol, dl, 0x9F37), 0);
    assert_int_equal(kv_dol_has_tag(NULL, 0, 0x91), 0);
    /* without values: zeros */
    assert_int_equal(kv_emv_dol_build(dol, dl, &t, NULL, out, sizeof(out), &ol), 0);
    wl = unhex("0000 00000000 0000 000000000100", want, sizeof(want));
    assert_bytes("no values", out, ol, want, wl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_genac_parse),      cmocka_unit_test(test_ac_type_names),
        cmocka_unit_test(test_iad_decode),       cmocka_unit_test(test_ac_data),
        cmocka_unit_test(test_restrictions),     cmocka_unit_test(test_pin_encipher),
        cmocka_unit_test(test_pin_status_words), cmocka_unit_test(test_cc_parse),
        cmocka_unit_test(test_commands),         cmocka_unit_test(test_verify_enciphered),
        cmocka_unit_test(test_dol_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
