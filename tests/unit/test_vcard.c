/*
 * The virtual card driven in-process: command scripts per sample profile
 * (SELECT, READ RECORD, GPO, GET DATA), PIN right/wrong/blocked and its state
 * file, the 61xx and 6Cxx quirks, unknown INS/CLA, a recorded trace card, the
 * vpcd frame parser and handler, and profile loader errors.
 *
 * Expected R-APDUs were encoded independently of the card (by hand and a
 * small BER-TLV encoder script) from the profile JSON and EMV Book 1 §11.3 /
 * Book 3 §6.5; they are not output of the code under test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "apdu/dol.h"
#include "apdu/tlv.h"
#include "apdu/emv.h"
#include "apdu/vcard/vcard.h"
#include "apdu/vcard/vpcd.h"
#include "src/base/err.h"
#include "src/base/hex.h"

#include <ctype.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- helpers --------------------------------------------------------------- */

static const char *data_dir(void)
{
    static char dir[4096];
    const char *env = getenv("KV_TEST_DATA");
    if (env != NULL)
        return env;
    /* tests/unit/test_vcard.c -> tests/data */
    snprintf(dir, sizeof(dir), "%s", __FILE__);
    *strrchr(dir, '/') = '\0';
    strncat(dir, "/../data", sizeof(dir) - strlen(dir) - 1);
    return dir;
}

static kv_vcard *load_profile(const char *name)
{
    char path[4096], why[256] = "";
    kv_vcard *vc = NULL;
    int r;
    snprintf(path, sizeof(path), "%s/%s", data_dir(), name);
    r = kv_vcard_load(path, &vc, why, sizeof(why));
    if (r != 0)
        fail_msg("load %s: %s (%s)", path, kv_strerror(r), why);
    return vc;
}

/* Hex without spaces, upper case. */
static void normalise(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    for (; *in != '\0' && n + 1 < cap; in++)
        if (*in != ' ')
            out[n++] = (char)toupper((unsigned char)*in);
    out[n] = '\0';
}

/* Send a C-APDU given in hex; the R-APDU as hex into got. */
static void send_hex(kv_vcard *vc, const char *capdu_hex, char *got, size_t gotcap)
{
    uint8_t c[600], r[KV_VCARD_RAPDU_MAX];
    size_t rlen = 0;
    int n = kv_hex_decode(capdu_hex, c, sizeof(c));
    assert_true(n >= 0);
    assert_int_equal(kv_vcard_process(vc, c, (size_t)n, r, sizeof(r), &rlen), 0);
    assert_true(2 * rlen + 1 <= gotcap);
    kv_hex_encode(r, rlen, got);
}

typedef struct {
    const char *capdu; /* hex */
    const char *rapdu; /* expected R-APDU, hex (spaces allowed) */
} step;

static void run_steps(kv_vcard *vc, const char *script, const step *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char want[1024], got[1024];
        normalise(s[i].rapdu, want, sizeof(want));
        send_hex(vc, s[i].capdu, got, sizeof(got));
        if (strcmp(want, got) != 0)
            fail_msg("%s step %zu: C-APDU %s\n  want %s\n  got  %s", script, i + 1, s[i].capdu,
                     want, got);
    }
}

#define RUN(vc, steps) run_steps((vc), #steps, (steps), sizeof(steps) / sizeof((steps)[0]))

#define SELECT_PSE "00A404000E315041592E5359532E444446303100"
#define SELECT_PPSE "00A404000E325041592E5359532E444446303100"
#define SELECT_VISA "00A4040007A000000003101000"
#define SELECT_MC "00A4040007A000000004101000"
#define SELECT_DANKORT "00A4040007A000000121101000"

#define VISA_PSE_FCI "6F1C840E315041592E5359532E4444463031A50A8801015F2D046461656E"
#define VISA_APP_FCI                                                                               \
    "6F3A8407A0000000031010A52F500A564953412044454249548701015F2D046461656E9F1101019F120A56697361" \
    "204465626974BF0C059F4D020B0A"
#define VISA_REC_1_1                                                                               \
    "702F57114761730000000011D281220100000123455F200E544553542F5649534120434152449F1F083030303030" \
    "303030"
#define VISA_REC_2_2 "70165F300202019F420202089F4401029F1401009F230100"

/* ---- sample profiles --------------------------------------------------------- */

static void test_visa_contact_pse(void **state)
{
    static const step steps[] = {
        {SELECT_PPSE, "6A82"},
        {SELECT_PSE, VISA_PSE_FCI "9000"},
        /* the PSE directory in SFI 1: one entry, then no more records */
        {"00B2010C00", "702761254F07A0000000031010500A564953412044454249549F120A566973612044656269"
                       "74870101 9000"},
        {"00B2020C00", "6A83"},
        {"00B2011400", "6A82"},
        {"80A8000002830000", "6985"}, /* the PSE is not an application */
        {SELECT_VISA, VISA_APP_FCI "9000"},
        {"80A8000002830000", "800A18000801010010010200 9000"},
        {"80A8000002830000", "6985"}, /* once per selection */
        {"00B2010C00", VISA_REC_1_1 "9000"},
        {"00B2011400", "7081835A0847617300000000115F24032812315F25032301015F280202085F3401019F07"
                       "02FF009F0802008C8C159F02069F03069F1A0295055F2A029A039C019F37048D178A029F"
                       "02069F03069F1A0295055F2A029A039C019F37048E100000000000000000410342035E03"
                       "1F039F0D05D84000A8009F0E0500100000009F0F05D84004F800 9000"},
        {"00B2021400", VISA_REC_2_2 "9000"},
        {"00B2031400", "6A83"},
        {"00B2012400", "6A82"},
        {"00B2010B00", "6A86"},            /* P2 low bits not 100 */
        {"80CA9F3600", "9F36020012 9000"}, /* 0011 in the profile, +1 by the GPO */
        {"80CA9F1700", "9F170103 9000"},
        {"80CA9F1300", "9F1302000F 9000"},
        {"80CA9F4F00", "9F4F139A039F21035F2A029F02069F4E149C019F3602 9000"},
        {"80CA9F5000", "6A88"},
        /* SELECT without FCI (P2 0C), then a fresh GPO is allowed again */
        {"00A4040C07A0000000031010", "9000"},
        {"80A80000038301AA00", "6700"}, /* no PDOL: 83 must be empty */
        {"80A800000281 0000", "6A80"},  /* not an 83 template */
        {"80A8000000", "6700"},         /* no data */
        {"80A8010002830000", "6A86"},
        {"00A4040007A000000999999900", "6A82"},
        {"00A4000002 3F0000", "6A86"},           /* select by file id: unsupported P1 */
        {"00A40401 07A000000003101000", "6A86"}, /* "last occurrence" */
    };
    kv_vcard *vc = load_profile("visa_contact_pse.json");
    (void)state;
    RUN(vc, steps);
    kv_vcard_free(vc);
}

static void test_mc_contactless_ppse(void **state)
{
    static const step steps[] = {
        {SELECT_PSE, "6A82"},
        {"80A8000002830000", "6985"}, /* nothing selected */
        {SELECT_PPSE, "6F35840E325041592E5359532E4444463031A523BF0C20611E4F07A000000004101050104465"
                      "626974204D617374657263617264870101 9000"},
        {SELECT_MC, "6F478407A0000000041010A53C50104465626974204D6173746572636172648701019F38109F"
                    "02069F1A025F2A029A039C019F37045F2D046461656EBF0C0A9F6E0702080000303000 9000"},
        {"80A8000002830000", "6700"}, /* the PDOL asks for 18 bytes */
        {"80A8000013 8311 000000000100 0208 0208 281231 00 123456 00", "6700"},
        {"80A8000014 8312 000000000100 0208 0208 281231 00 12345678 00",
         "770E8202198094080801010010010200 9000"},
        {"00B2010C00", "702957115413330000000019D281220100000123455F200E544553542F4D43204341524420"
                       "209F6C020001 9000"},
        {"00B2021400", "700E5F300202019F420202089F440102 9000"},
        {"80CA9F3600", "9F36020043 9000"},
    };
    kv_vcard *vc = load_profile("mc_contactless_ppse.json");
    (void)state;
    RUN(vc, steps);
    kv_vcard_free(vc);
}

static void test_dankort_visa_cobadge(void **state)
{
    static const step steps[] = {
        {SELECT_PSE, VISA_PSE_FCI "9000"},
        {"00B2010C00", "701761154F07A0000001211010500744414E4B4F5254870101 9000"},
        {"00B2020C00", "701A61184F07A0000000031010500A56495341204445424954870102 9000"},
        {"00B2030C00", "6A83"},
        {SELECT_PPSE,
         "6F46840E325041592E5359532E4444463031A534BF0C3161154F07A0000001211010500744"
         "414E4B4F525487010161184F07A0000000031010500A56495341204445424954870102 9000"},
        /* partial name A00000: first occurrence Dankort, next Visa, then none */
        {"00A4040003A0000000", "6F1E8407A0000001211010A513500744414E4B4F52548701015F2D046461656E "
                               "9000"},
        {"00A4040203A0000000", "6F3C8407A0000000031010A531500A564953412044454249548701029F38189F"
                               "66049F02069F03069F1A0295055F2A029A039C019F37045F2D046461656E 9000"},
        {"00A4040203A0000000", "6A82"},
        {"80CA9F1300", "9F13020005 9000"}, /* Visa selected: the card's 9F13 */
        {"80A8000023 8321 36004000 000000000100 000000000000 0208 0000000000 0208 281231 00 "
         "12345678 00",
         "7730820218009408100102001801010057114571000000000126D281220100000123459F100706010A03A0"
         "00009F6C021600 9000"},
        {"00B2011400", "706B5A0845710000000001265F24032812315F25032306015F280202085F3401019F0702FF"
                       "009F0802008C8C159F02069F03069F1A0295055F2A029A039C019F37048D178A029F0206"
                       "9F03069F1A0295055F2A029A039C019F37048E100000000000000000410342035E031F03 "
                       "9000"},
        {"00B2010C00", "6A82"}, /* Visa has no SFI 1 */
        {SELECT_DANKORT, "6F1E8407A0000001211010A513500744414E4B4F52548701015F2D046461656E 9000"},
        {"80CA9F1300", "9F13020003 9000"}, /* Dankort's own 9F13 */
        {"80A8000002830000", "800A18000801010010010200 9000"},
        {"00B2011400", "7081835A0845710000000001265F24032812315F25032306015F280202085F3401009F07"
                       "02FF009F080200018C159F02069F03069F1A0295055F2A029A039C019F37048D178A029F"
                       "02069F03069F1A0295055F2A029A039C019F37048E100000000000000000410342035E03"
                       "1F039F0D05F0400088009F0E0500100000009F0F05F040049800 9000"},
        {"00B2011C00", "6A82"}, /* Dankort has no SFI 3 */
    };
    kv_vcard *vc = load_profile("dankort_visa_cobadge.json");
    (void)state;
    RUN(vc, steps);
    kv_vcard_free(vc);
}

/* ---- PIN -------------------------------------------------------------------- */

#define VERIFY_1234 "0020008008241234FFFFFFFFFF"
#define VERIFY_9999 "0020008008249999FFFFFFFFFF"

static void test_pin(void **state)
{
    static const step steps[] = {
        {"0020008000", "63C3"}, /* no data: tries left */
        {VERIFY_1234, "9000"},
        {VERIFY_9999, "63C2"},
        {"80CA9F1700", "9F170102 9000"},
        {VERIFY_9999, "63C1"},
        {VERIFY_1234, "9000"}, /* right PIN: counter back to the limit */
        {"80CA9F1700", "9F170103 9000"},
        {"0020008007241234FFFFFFFF", "6700"},
        {"002000800924 1234FFFFFFFFFFFF", "6700"},
        {"0020008808241234FFFFFFFFFF", "6A88"}, /* enciphered PIN: this card has no ICC key */
        {"0020018008241234FFFFFFFFFF", "6A86"},
        {"0020008008141234FFFFFFFFFF", "6A80"}, /* control nibble 1 */
        {"00200080082412A4FFFFFFFFFF", "6A80"}, /* not a digit */
        {"0020008008231234FFFFFFFFFF", "6A80"}, /* N below 4 */
        {"0020008008241234FFFFFFFF0F", "6A80"}, /* filler not F */
        {"0020008008241234 5FFFFFFFFF", "6A80"},
        {"0020008008251234 5FFFFFFFFF", "63C2"}, /* well-formed 12345: wrong */
        {VERIFY_9999, "63C1"},
        {VERIFY_9999, "63C0"},
        {VERIFY_1234, "6983"}, /* blocked: even the right PIN */
        {"0020008000", "6983"},
        {"80CA9F1700", "9F170100 9000"},
    };
    kv_vcard *vc = load_profile("visa_contact_pse.json");
    (void)state;
    RUN(vc, steps);
    assert_int_equal(kv_vcard_pin_tries(vc), 0);
    kv_vcard_free(vc);
}

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void test_pin_state_file(void **state)
{
    static const step wrong[] = {{VERIFY_9999, "63C2"}, {"80A8000002830000", "6985"}};
    static const step after_restart[] = {
        {"80CA9F1700", "9F170102 9000"}, {VERIFY_9999, "63C1"}, {VERIFY_9999, "63C0"}};
    static const step blocked[] = {{VERIFY_1234, "6983"}, {"80CA9F1700", "9F170100 9000"}};
    char dir[] = "/tmp/kv_vcard_test_XXXXXX", path[256], text[512];
    kv_vcard *vc;
    FILE *f;
    size_t n;
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/vcard.state", dir);

    vc = load_profile("visa_contact_pse.json");
    assert_int_equal(kv_vcard_state_attach(vc, path), 0); /* missing file: profile values */
    assert_int_equal(kv_vcard_pin_tries(vc), 3);
    RUN(vc, wrong);
    kv_vcard_free(vc);

    /* saved at once, atomically: the state file and no temporary left behind */
    assert_int_equal(count_files(dir), 1);
    f = fopen(path, "r");
    assert_non_null(f);
    n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    assert_non_null(strstr(text, "\"pin_tries_left\": 2"));
    assert_null(strstr(text, "1234"));

    vc = load_profile("visa_contact_pse.json");
    assert_int_equal(kv_vcard_state_attach(vc, path), 0);
    RUN(vc, after_restart);
    kv_vcard_free(vc);

    vc = load_profile("visa_contact_pse.json");
    assert_int_equal(kv_vcard_state_attach(vc, path), 0);
    RUN(vc, blocked);
    /* the ATC is saved on request (at exit) and read back */
    {
        static const step gpo[] = {{SELECT_VISA, VISA_APP_FCI "9000"},
                                   {"80A8000002830000", "800A18000801010010010200 9000"}};
        RUN(vc, gpo);
    }
    assert_int_equal(kv_vcard_atc(vc), 0x12);
    assert_int_equal(kv_vcard_state_save(vc), 0);
    kv_vcard_free(vc);
    vc = load_profile("visa_contact_pse.json");
    assert_int_equal(kv_vcard_state_attach(vc, path), 0);
    assert_int_equal(kv_vcard_atc(vc), 0x12);
    kv_vcard_free(vc);

    /* a malformed state file is refused */
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"pin_tries_left\": 99}", f);
    fclose(f);
    vc = load_profile("visa_contact_pse.json");
    assert_int_equal(kv_vcard_state_attach(vc, path), KV_ERR_FORMAT);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("not json", f);
    fclose(f);
    assert_int_equal(kv_vcard_state_attach(vc, path), KV_ERR_FORMAT);
    kv_vcard_free(vc);

    /* a state file in a directory that does not exist cannot be saved */
    vc = load_profile("visa_contact_pse.json");
    snprintf(path, sizeof(path), "%s/no/such/dir/vcard.state", dir);
    assert_int_equal(kv_vcard_state_attach(vc, path), 0);
    assert_int_equal(kv_vcard_state_save(vc), KV_ERR_IO);
    {
        static const step memory_failure[] = {{VERIFY_9999, "6581"}};
        RUN(vc, memory_failure);
    }
    kv_vcard_free(vc);

    snprintf(path, sizeof(path), "%s/vcard.state", dir);
    unlink(path);
    rmdir(dir);
}

/* ---- quirks ----------------------------------------------------------------- */

static void test_quirk_get_response(void **state)
{
    static const step steps[] = {
        {SELECT_PSE, "611E"}, /* 30 bytes of FCI wait */
        {"00C000001E", VISA_PSE_FCI "9000"},
        {"00C000001E", "6985"}, /* nothing left */
        {SELECT_PSE, "611E"},
        {"00C0000010", "6F1C840E315041592E5359532E444446 610E"}, /* in pieces */
        {"00C0000000", "3031A50A8801015F2D046461656E 9000"},
        {"00C0000000", "6985"},
        {SELECT_PSE, "611E"},
        {"00C0000100", "6A86"},
        {"00B2010C00", "6129"}, /* another command drops the held-back FCI */
        {"00C0000000", "702761254F07A0000000031010500A564953412044454249549F120A56697361204465"
                       "626974870101 9000"},
        {"00A4040007A000000999999900", "6A82"}, /* status without data: unchanged */
        {"80CA9F1700", "6104"},
        {"00C0000004", "9F170103 9000"},
        {"00FF000000", "6D00"},
    };
    kv_vcard *vc = load_profile("visa_contact_pse.json");
    (void)state;
    kv_vcard_set_quirks(vc, KV_VCARD_QUIRK_GET_RESPONSE);
    RUN(vc, steps);
    kv_vcard_free(vc);
}

static void test_quirk_wrong_le(void **state)
{
    static const step steps[] = {
        {"00A404000E315041592E5359532E444446303110", "6C1E"}, /* Le 16, the FCI is 30 */
        {"00A404000E315041592E5359532E44444630311E", VISA_PSE_FCI "9000"},
        {SELECT_PSE, VISA_PSE_FCI "9000"},                               /* Le 00 is always right */
        {"00A404000E315041592E5359532E4444463031", VISA_PSE_FCI "9000"}, /* no Le */
        {"00B2010C10", "6C29"},
        {"00B2010C29", "702761254F07A0000000031010500A564953412044454249549F120A5669736120446562"
                       "6974870101 9000"},
        {"00B2050C10", "6A83"}, /* errors keep their status */
        {"80CA9F1702", "6C04"},
        {"80CA9F1704", "9F170103 9000"},
    };
    kv_vcard *vc = load_profile("visa_contact_pse.json");
    (void)state;
    kv_vcard_set_quirks(vc, KV_VCARD_QUIRK_WRONG_LE);
    RUN(vc, steps);
    kv_vcard_free(vc);
}

static void test_quirks_together_and_from_profile(void **state)
{
    static const step both[] = {
        {"00A404000E315041592E5359532E444446303110", "6C1E"},
        {"00A404000E315041592E5359532E44444630311E", "611E"},
        {"00C000001E", VISA_PSE_FCI "9000"},
    };
    static const char *profile =
        "{\"atr\": \"3B00\", \"pse\": true, \"quirks\": {\"get_response\": true},"
        " \"applications\": [{\"aid\": \"A0000000031010\", \"aip\": \"1800\","
        " \"afl\": \"08010100\"}]}";
    static const step from_profile[] = {
        {SELECT_PSE, "6117"},
        {"00C0000000", "6F15840E315041592E5359532E4444463031A503880101 9000"},
        /* the default PSE directory record: 70 { 61 { 4F } } without label or priority */
        {"00B2010C00", "610D"},
        {"00C000000D", "700B61094F07A0000000031010 9000"},
    };
    kv_vcard *vc = load_profile("visa_contact_pse.json");
    char why[256] = "";
    (void)state;
    kv_vcard_set_quirks(vc, KV_VCARD_QUIRK_GET_RESPONSE | KV_VCARD_QUIRK_WRONG_LE);
    RUN(vc, both);
    kv_vcard_free(vc);

    assert_int_equal(kv_vcard_load_text(profile, strlen(profile), &vc, why, sizeof(why)), 0);
    assert_int_equal(kv_vcard_quirks(vc), KV_VCARD_QUIRK_GET_RESPONSE);
    RUN(vc, from_profile);
    assert_int_equal(kv_vcard_pin_tries(vc), -1); /* no PIN in this profile */
    {
        static const step no_pin[] = {{VERIFY_1234, "6A88"}, {"80CA9F1700", "6A88"}};
        RUN(vc, no_pin);
    }
    kv_vcard_free(vc);
}

/* ---- instruction and class errors, malformed APDUs, sessions ---------------- */

static void test_unknown_ins_cla(void **state)
{
    static const step steps[] = {
        {"00FF000000", "6D00"},
        {"0084000108", "6A86"}, /* GET CHALLENGE: P2 must be 00 */
        {"80AE800000", "6985"}, /* GENERATE AC: no application, no keys */
        {"B0A4040000", "6E00"},
        {"FFCA000000", "6E00"},
        {"00A8000002830000", "6E00"}, /* GPO is a proprietary-class command */
        {"00CA9F1700", "6E00"},
        {"80B2010C00", "6E00"},
        {"00A404", "6700"}, /* shorter than a header */
        {"", "6700"},
        {"00A4040007A00000000310", "6700"}, /* Lc 7, 5 bytes */
        {"00A4040002A000000000", "6700"},   /* Lc 2, then 3 bytes */
        {"00B2010C", "6A82"},               /* case 1 READ RECORD: nothing selected */
    };
    static const step session[] = {
        {SELECT_VISA, VISA_APP_FCI "9000"},
        {"00B2010C00", VISA_REC_1_1 "9000"},
    };
    static const step after_reset[] = {
        {"00B2010C00", "6A82"}, /* reset: nothing selected any more */
        {"80A8000002830000", "6985"},
    };
    kv_vcard *vc = load_profile("visa_contact_pse.json");
    (void)state;
    RUN(vc, steps);
    RUN(vc, session);
    kv_vcard_reset(vc);
    RUN(vc, after_reset);
    RUN(vc, session);
    kv_vcard_power_off(vc);
    kv_vcard_power_on(vc);
    RUN(vc, after_reset);
    {
        uint8_t out[10];
        size_t n = 99;
        assert_int_equal(
            kv_vcard_process(vc, (const uint8_t *)"\x00\xA4\x04\x00", 4, out, sizeof(out), &n),
            KV_ERR_BUFFER);
        assert_int_equal(n, 0);
    }
    kv_vcard_free(vc);
    kv_vcard_free(NULL);
}

/* ---- a recorded trace card --------------------------------------------------- */

static void test_recorded_card(void **state)
{
    static const step steps[] = {
        {SELECT_PSE, "6A82"},
        {SELECT_PPSE, "613C"},
        {"00C000003C", "6F3A840E325041592E5359532E4444463031A528BF0C2561234F07A000000003101050"
                       "0A566973612044656269748701019F0A080001050100000000 9000"},
        {"00B2031400", "6A83"}, /* nothing selected yet: the recording has no answer */
    };
    char path[4096];
    uint8_t atr[KV_VCARD_ATR_MAX];
    char atr_hex[2 * KV_VCARD_ATR_MAX + 1];
    kv_vcard *vc = NULL;
    size_t n;
    (void)state;

    snprintf(path, sizeof(path), "%s/traces/cards/visa_debit_ppse.json", data_dir());
    if (access(path, R_OK) != 0)
        fail_msg("%s: not readable (the trace cards live in tests/data/traces)", path);
    assert_int_equal(kv_vcard_new(path, &vc), 0);
    assert_int_equal(kv_vcard_is_recorded(vc), 1);
    assert_int_equal(kv_vcard_pin_tries(vc), -1);
    n = kv_vcard_atr(vc, atr, sizeof(atr));
    kv_hex_encode(atr, n, atr_hex);
    assert_string_equal(atr_hex, "3B8F8001414353204469616E6132204C633658");
    kv_vcard_set_quirks(vc, KV_VCARD_QUIRK_GET_RESPONSE);
    RUN(vc, steps);
    kv_vcard_free(vc);
}

/* ---- each sample profile yields the facts of its "expect" object -------------- */

/* A minimal reader: directory, highest priority, FCI, GPO, AFL records. */
static void read_like_a_terminal(kv_vcard *vc, json_t *want, const char *name)
{
    uint8_t c[300], r[KV_VCARD_RAPDU_MAX], aids[8][16], sel[16];
    size_t aid_len[8], naids = 0, rlen, sel_len = 0;
    unsigned best = 99;
    char hex[600], pan[40] = "", expiry[8] = "", psn[4] = "", label[20] = "";
    kv_tlv t, t2;
    json_t *a;
    size_t i;
    int n;

#define XCHG(hexstr)                                                                               \
    do {                                                                                           \
        n = kv_hex_decode((hexstr), c, sizeof(c));                                                 \
        assert_int_equal(kv_vcard_process(vc, c, (size_t)n, r, sizeof(r), &rlen), 0);              \
    } while (0)
#define SW() (r[rlen - 2] << 8 | r[rlen - 1])

    /* directory entries: PSE records, else the PPSE FCI */
    XCHG(SELECT_PSE);
    if (SW() == 0x9000) {
        for (int rec = 1; rec < 10; rec++) {
            snprintf(hex, sizeof(hex), "00B2%02X0C00", rec);
            XCHG(hex);
            if (SW() != 0x9000)
                break;
            assert_int_equal(kv_tlv_find(r, rlen - 2, 0x4F, &t), 0);
            memcpy(aids[naids], t.value, t.len);
            aid_len[naids++] = t.len;
            if (kv_tlv_find(r, rlen - 2, 0x87, &t2) == 0 && (t2.value[0] & 0x0F) < best) {
                best = t2.value[0] & 0x0F;
                memcpy(sel, t.value, t.len);
                sel_len = t.len;
            }
        }
    } else {
        kv_cursor cur;
        XCHG(SELECT_PPSE);
        assert_int_equal(SW(), 0x9000);
        assert_int_equal(kv_tlv_find(r, rlen - 2, 0xBF0C, &t), 0);
        kv_cursor_init(&cur, t.value, t.len);
        while (kv_tlv_next(&cur, &t) == 1) {
            assert_int_equal(kv_tlv_find(t.value, t.len, 0x4F, &t2), 0);
            memcpy(aids[naids], t2.value, t2.len);
            aid_len[naids++] = t2.len;
            if (kv_tlv_find(t.value, t.len, 0x87, &t) == 0 && (t.value[0] & 0x0F) < best) {
                best = t.value[0] & 0x0F;
                memcpy(sel, t2.value, t2.len);
                sel_len = t2.len;
            }
        }
    }
    a = json_object_get(want, "aids");
    assert_int_equal(json_array_size(a), naids);
    for (i = 0; i < naids; i++) {
        kv_hex_encode(aids[i], aid_len[i], hex);
        if (strcmp(hex, json_string_value(json_array_get(a, i))) != 0)
            fail_msg("%s: aid %zu: want %s got %s", name, i,
                     json_string_value(json_array_get(a, i)), hex);
    }
    kv_hex_encode(sel, sel_len, hex);
    assert_string_equal(hex, json_string_value(json_object_get(want, "selected_aid")));

    /* SELECT the application, label from 50, PDOL data of zeros, GPO */
    snprintf(hex, sizeof(hex), "00A40400%02X", (unsigned)sel_len);
    kv_hex_encode(sel, sel_len, hex + 10);
    strcat(hex, "00");
    XCHG(hex);
    assert_int_equal(SW(), 0x9000);
    assert_int_equal(kv_tlv_find(r, rlen - 2, 0x50, &t), 0);
    memcpy(label, t.value, t.len);
    assert_string_equal(label, json_string_value(json_object_get(want, "label")));
    {
        size_t pdol_data = 0;
        uint8_t gpo[300] = {0x80, 0xA8, 0x00, 0x00};
        uint8_t afl[64];
        size_t afl_len;
        if (kv_tlv_find(r, rlen - 2, 0x9F38, &t) == 0)
            assert_int_equal(kv_dol_data_len(t.value, t.len, &pdol_data), 0);
        gpo[4] = (uint8_t)(pdol_data + 2);
        gpo[5] = 0x83;
        gpo[6] = (uint8_t)pdol_data;
        memset(gpo + 7, 0, pdol_data);
        gpo[7 + pdol_data] = 0x00;
        assert_int_equal(kv_vcard_process(vc, gpo, 8 + pdol_data, r, sizeof(r), &rlen), 0);
        assert_int_equal(SW(), 0x9000);
        if (r[0] == 0x80) {
            assert_int_equal(kv_tlv_find(r, rlen - 2, 0x80, &t), 0);
            afl_len = t.len - 2;
            memcpy(afl, t.value + 2, afl_len);
        } else {
            assert_int_equal(kv_tlv_find(r, rlen - 2, 0x94, &t), 0);
            afl_len = t.len;
            memcpy(afl, t.value, afl_len);
        }
        for (i = 0; i < afl_len; i += 4)
            for (unsigned rec = afl[i + 1]; rec <= afl[i + 2]; rec++) {
                snprintf(hex, sizeof(hex), "00B2%02X%02X00", rec, afl[i] | 4);
                XCHG(hex);
                assert_int_equal(SW(), 0x9000);
                if (kv_tlv_find(r, rlen - 2, 0x5A, &t) == 0) {
                    kv_hex_encode(t.value, t.len, pan);
                    if (strchr(pan, 'F') != NULL)
                        *strchr(pan, 'F') = '\0';
                }
                if (kv_tlv_find(r, rlen - 2, 0x5F24, &t) == 0) {
                    kv_hex_encode(t.value, 2, expiry);
                }
                if (kv_tlv_find(r, rlen - 2, 0x5F34, &t) == 0)
                    kv_hex_encode(t.value, 1, psn);
            }
    }
    assert_string_equal(pan, json_string_value(json_object_get(want, "pan")));
    assert_string_equal(expiry, json_string_value(json_object_get(want, "expiry")));
    assert_string_equal(psn, json_string_value(json_object_get(want, "psn")));
#undef XCHG
#undef SW
}

static void test_profiles_match_expect(void **state)
{
    static const char *const profiles[] = {"visa_contact_pse.json", "mc_contactless_ppse.json",
                                           "dankort_visa_cobadge.json"};
    (void)state;
    for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++) {
        char path[4096];
        json_error_t e;
        json_t *root;
        kv_vcard *vc = load_profile(profiles[i]);
        snprintf(path, sizeof(path), "%s/%s", data_dir(), profiles[i]);
        root = json_load_file(path, 0, &e);
        assert_non_null(root);
        read_like_a_terminal(vc, json_object_get(root, "expect"), profiles[i]);
        json_decref(root);
        kv_vcard_free(vc);
    }
}

/* The in-process reader over a profile: the host's EMV session reads what "expect" states. */
static void test_open_reader(void **state)
{
    static const char *const profiles[] = {"visa_contact_pse.json", "mc_contactless_ppse.json",
                                           "dankort_visa_cobadge.json"};
    (void)state;
    for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++) {
        char path[4096], why[256] = "";
        json_error_t e;
        json_t *root, *expect;
        kv_reader *rd = NULL;
        kv_emv *s = NULL;
        const kv_emv_card *c;
        snprintf(path, sizeof(path), "%s/%s", data_dir(), profiles[i]);
        assert_int_equal(kv_vcard_open_reader(path, &rd, why, sizeof(why)), 0);
        assert_int_equal(kv_emv_new(rd, NULL, &s), 0);
        assert_int_equal(kv_emv_read_card(s, 0), 0);
        c = kv_emv_card_data(s);
        root = json_load_file(path, 0, &e);
        assert_non_null(root);
        expect = json_object_get(root, "expect");
        if (strcmp(c->pan, json_string_value(json_object_get(expect, "pan"))) != 0)
            fail_msg("%s: PAN %s, want %s", profiles[i], c->pan,
                     json_string_value(json_object_get(expect, "pan")));
        json_decref(root);
        kv_emv_free(s);
        kv_reader_free(rd);
    }
    {
        kv_reader *rd = NULL;
        char why[256] = "";
        assert_int_equal(kv_vcard_open_reader("/nonexistent/card.json", &rd, why, sizeof(why)),
                         KV_ERR_IO);
        assert_null(rd);
    }
}

/* ---- vpcd frames ---------------------------------------------------------------- */

static void test_frame_parse(void **state)
{
    static const struct {
        const char *in;
        int want; /* 1 frame, 0 incomplete, or an error */
        int is_ctrl;
        uint8_t ctrl;
        size_t len;        /* payload length */
        size_t left_after; /* bytes the cursor has left afterwards */
    } rows[] = {
        {"", 0, 0, 0, 0, 0},
        {"00", 0, 0, 0, 0, 1},            /* short header */
        {"0001", 0, 0, 0, 0, 2},          /* length 1, no payload yet */
        {"0005 00A40400", 0, 0, 0, 0, 6}, /* length beyond the payload */
        {"FFFF 00", 0, 0, 0, 0, 3},
        {"0000", KV_ERR_VPCD_FRAME, 0, 0, 0, 2}, /* zero length */
        {"0000 000104", KV_ERR_VPCD_FRAME, 0, 0, 0, 5},
        {"0001 00", 1, 1, 0x00, 1, 0},         /* power off */
        {"0001 01", 1, 1, 0x01, 1, 0},         /* power on */
        {"0001 02", 1, 1, 0x02, 1, 0},         /* reset */
        {"0001 04", 1, 1, 0x04, 1, 0},         /* get ATR */
        {"0001 03", 1, 1, 0x03, 1, 0},         /* unknown control byte: still a frame */
        {"0001 04 0001 01", 1, 1, 0x04, 1, 3}, /* two frames: one at a time */
        {"0002 00A4", 1, 0, 0, 2, 0},          /* 2 bytes: an APDU (the card answers 6700) */
        {"0005 00B2010C00", 1, 0, 0, 5, 0},
        {"0005 00B2010C00 00", 1, 0, 0, 5, 1},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        uint8_t buf[64];
        int n = kv_hex_decode(rows[i].in, buf, sizeof(buf));
        kv_cursor c;
        kv_vpcd_frame f;
        int r;
        assert_true(n >= 0);
        kv_cursor_init(&c, buf, (size_t)n);
        memset(&f, 0xAA, sizeof(f));
        r = kv_vpcd_frame_parse(&c, &f);
        if (r != rows[i].want || kv_cursor_left(&c) != rows[i].left_after)
            fail_msg("row %zu (%s): want %d left %zu, got %d left %zu", i, rows[i].in, rows[i].want,
                     rows[i].left_after, r, kv_cursor_left(&c));
        if (r == 1) {
            assert_int_equal(f.is_ctrl, rows[i].is_ctrl);
            assert_int_equal(f.len, rows[i].len);
            assert_ptr_equal(f.payload, buf + 2);
            if (f.is_ctrl)
                assert_int_equal(f.ctrl, rows[i].ctrl);
        }
    }
}

static void test_frame_handle(void **state)
{
    static const struct {
        const char *frame; /* one whole frame */
        const char *reply; /* hex of the reply frame; "" for none */
    } rows[] = {
        {"000104", "0012 3B6E00000031C065E7D202011071D68C613D"},
        {"000101", ""},
        {"000100", ""},
        {"000102", ""},
        {"000103", ""},
        {"000104", "0012 3B6E00000031C065E7D202011071D68C613D"},
        {"0013 00A404000E315041592E5359532E444446303100", "0020 " VISA_PSE_FCI "9000"},
        {"0005 00B2010C00", "002B 702761254F07A0000000031010500A564953412044454249549F120A566973"
                            "61204465626974870101 9000"},
        {"000102", ""},
        {"0005 00B2010C00", "0002 6A82"}, /* the reset ended the session */
        {"0002 00A4", "0002 6700"},
        {"0005 00FF000000", "0002 6D00"},
    };
    kv_vcard *vc = load_profile("visa_contact_pse.json");
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        uint8_t in[300], out[KV_VPCD_REPLY_MAX];
        char got[2 * KV_VPCD_REPLY_MAX + 1], want[2 * KV_VPCD_REPLY_MAX + 1];
        int n = kv_hex_decode(rows[i].frame, in, sizeof(in));
        kv_cursor c;
        kv_vpcd_frame f;
        size_t outlen = 99;
        kv_cursor_init(&c, in, (size_t)n);
        assert_int_equal(kv_vpcd_frame_parse(&c, &f), 1);
        assert_int_equal(kv_vpcd_frame_handle(vc, &f, out, sizeof(out), &outlen), 0);
        kv_hex_encode(out, outlen, got);
        normalise(rows[i].reply, want, sizeof(want));
        if (strcmp(want, got) != 0)
            fail_msg("row %zu (%s):\n  want %s\n  got  %s", i, rows[i].frame, want, got);
    }
    {
        uint8_t small[8];
        size_t outlen;
        kv_vpcd_frame f = {1, KV_VPCD_GET_ATR, (const uint8_t *)"\x04", 1};
        assert_int_equal(kv_vpcd_frame_handle(vc, &f, small, sizeof(small), &outlen),
                         KV_ERR_BUFFER);
        assert_int_equal(
            kv_vpcd_frame_encode((const uint8_t *)"", 0, small, sizeof(small), &outlen),
            KV_ERR_ARG);
        assert_int_equal(
            kv_vpcd_frame_encode((const uint8_t *)"123456789", 7, small, sizeof(small), &outlen),
            KV_ERR_BUFFER);
        assert_int_equal(
            kv_vpcd_frame_encode((const uint8_t *)"123456", 6, small, sizeof(small), &outlen), 0);
        assert_int_equal(outlen, 8);
    }
    kv_vcard_free(vc);
}

/* ---- profile loader errors ----------------------------------------------------- */

#define APP_OK "{\"aid\": \"A0000000031010\", \"aip\": \"1800\", \"afl\": \"08010100\"}"
#define WITH_APP(extra) "{\"atr\": \"3B00\", \"applications\": [" extra "]}"
#define APP_WITH(fields)                                                                           \
    WITH_APP("{\"aid\": \"A0000000031010\", \"aip\": \"1800\", \"afl\": \"08010100\", " fields "}")

static void test_profile_errors(void **state)
{
    static const struct {
        const char *json;
        int want;
        const char *why; /* a substring of the reason */
    } rows[] = {
        {WITH_APP(APP_OK), 0, ""},
        {"{\"applications\": [" APP_OK "]}", KV_ERR_JSON, "atr: missing"},
        {"{\"atr\": \"3B\", \"applications\": [" APP_OK "]}", KV_ERR_FORMAT, "atr: shorter"},
        {"{\"atr\": \"3BZZ\", \"applications\": [" APP_OK "]}", KV_ERR_FORMAT, "atr: not hex"},
        {"{\"atr\": \"3B00\"}", KV_ERR_JSON, "applications"},
        {"{\"atr\": \"3B00\", \"applications\": []}", KV_ERR_JSON, "applications"},
        {"{\"atr\": \"3B00\", \"atrr\": 1, \"applications\": [" APP_OK "]}", KV_ERR_JSON,
         "unknown field \"atrr\""},
        {"{", KV_ERR_JSON, "line 1"},
        {"[1, 2]", KV_ERR_JSON, "not a JSON object"},
        {WITH_APP("{\"aid\": \"A000\", \"aip\": \"1800\", \"afl\": \"08010100\"}"), KV_ERR_FORMAT,
         "applications[0].aid"},
        {WITH_APP("{\"aip\": \"1800\", \"afl\": \"08010100\"}"), KV_ERR_JSON,
         "applications[0].aid: missing"},
        {WITH_APP("{\"aid\": \"A0000000031010\", \"afl\": \"08010100\"}"), KV_ERR_JSON,
         "applications[0].aip: missing"},
        {WITH_APP("{\"aid\": \"A0000000031010\", \"aip\": \"1800\", \"afl\": \"0801010010\"}"),
         KV_ERR_FORMAT, "multiple of 4"},
        {WITH_APP("{\"aid\": \"A0000000031010\", \"aip\": \"1800\", \"afl\": \"00010100\"}"),
         KV_ERR_FORMAT, "entry 1"},
        {WITH_APP("{\"aid\": \"A0000000031010\", \"aip\": \"1800\", \"afl\": \"08020100\"}"),
         KV_ERR_FORMAT, "entry 1"},
        {APP_WITH("\"lable\": \"X\""), KV_ERR_JSON, "unknown field \"lable\""},
        {APP_WITH("\"label\": \"SEVENTEEN CHARS!!\""), KV_ERR_FORMAT, "label"},
        {APP_WITH("\"priority\": 300"), KV_ERR_FORMAT, "priority"},
        {APP_WITH("\"gpo_format\": 3"), KV_ERR_FORMAT, "gpo_format"},
        {APP_WITH("\"gpo_extra\": {\"9F36\": \"0001\"}"), KV_ERR_FORMAT, "gpo_format 2"},
        {APP_WITH("\"pdol\": \"9F\""), KV_ERR_FORMAT, "pdol: shorter"},
        {APP_WITH("\"pdol\": \"9F1A\""), KV_ERR_FORMAT, "data object list"},
        {APP_WITH("\"fci_extra\": \"9F0105\""), KV_ERR_FORMAT, "fci_extra: not well-formed"},
        {APP_WITH("\"records\": [{\"sfi\": 1, \"record\": 1, \"hex\": \"5A0112\"}]"), KV_ERR_FORMAT,
         "70 template"},
        {APP_WITH("\"records\": [{\"sfi\": 1, \"record\": 1, \"hex\": \"7003 5A0112 00\"}]"),
         KV_ERR_FORMAT, "70 template"},
        {APP_WITH("\"records\": [{\"sfi\": 31, \"record\": 1, \"hex\": \"7000\"}]"), KV_ERR_FORMAT,
         "sfi"},
        {APP_WITH("\"records\": [{\"record\": 1, \"hex\": \"7000\"}]"), KV_ERR_JSON,
         "needs \"sfi\""},
        {APP_WITH("\"records\": [{\"sfi\": 1, \"record\": 1}]"), KV_ERR_JSON, "one of"},
        {APP_WITH("\"records\": [{\"sfi\": 1, \"record\": 1, \"hex\": \"7000\"},"
                  " {\"sfi\": 1, \"record\": 1, \"tags\": {}}]"),
         KV_ERR_FORMAT, "twice"},
        {APP_WITH("\"records\": [{\"sfi\": 1, \"record\": 1, \"tags\": {\"1F\": \"00\"}}]"),
         KV_ERR_FORMAT, "not a BER-TLV tag"},
        {APP_WITH("\"records\": [{\"sfi\": 1, \"record\": 1, \"tags\": [[\"5A\"]]}]"), KV_ERR_JSON,
         "pair"},
        {WITH_APP(APP_OK ", " APP_OK), KV_ERR_FORMAT, "same AID"},
        {"{\"atr\": \"3B00\", \"data\": {\"9F17\": \"03\"}, \"applications\": [" APP_OK "]}",
         KV_ERR_FORMAT, "9F17"},
        {"{\"atr\": \"3B00\", \"data\": {\"9F36\": \"03\"}, \"applications\": [" APP_OK "]}",
         KV_ERR_FORMAT, "ATC"},
        {"{\"atr\": \"3B00\", \"pin\": {\"value\": \"12a4\"}, \"applications\": [" APP_OK "]}",
         KV_ERR_FORMAT, "pin.value"},
        {"{\"atr\": \"3B00\", \"pin\": {\"value\": \"123\"}, \"applications\": [" APP_OK "]}",
         KV_ERR_FORMAT, "pin.value"},
        {"{\"atr\": \"3B00\", \"pin\": {\"value\": \"1234\", \"try_limit\": 3, \"tries_left\": 4},"
         " \"applications\": [" APP_OK "]}",
         KV_ERR_FORMAT, "tries_left"},
        {"{\"atr\": \"3B00\", \"pin\": {\"value\": \"1234\", \"try_limit\": 16},"
         " \"applications\": [" APP_OK "]}",
         KV_ERR_FORMAT, "try_limit"},
        {"{\"atr\": \"3B00\", \"pse\": 1, \"applications\": [" APP_OK "]}", KV_ERR_JSON, "pse"},
        {"{\"atr\": \"3B00\", \"pse\": {\"sfi\": 11}, \"applications\": [" APP_OK "]}",
         KV_ERR_FORMAT, "pse.sfi"},
        {"{\"atr\": \"3B00\", \"quirks\": {\"get_response\": 1}, \"applications\": [" APP_OK "]}",
         KV_ERR_JSON, "quirks.get_response"},
        {"{\"atr\": \"3B00\", \"exchanges\": [], \"applications\": [" APP_OK "]}",
         KV_ERR_UNSUPPORTED, "trace card"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char why[256] = "";
        kv_vcard *vc = NULL;
        int r = kv_vcard_load_text(rows[i].json, strlen(rows[i].json), &vc, why, sizeof(why));
        if (r != rows[i].want || strstr(why, rows[i].why) == NULL)
            fail_msg("row %zu: %s\n  want %d \"%s\"\n  got  %d \"%s\"", i, rows[i].json,
                     rows[i].want, rows[i].why, r, why);
        /* the reason never repeats the PIN */
        assert_null(strstr(why, "12a4"));
        assert_true((r == 0) == (vc != NULL));
        kv_vcard_free(vc);
    }
    {
        kv_vcard *vc = (kv_vcard *)1;
        char why[128] = "";
        assert_int_equal(kv_vcard_load("/nonexistent/profile.json", &vc, why, sizeof(why)),
                         KV_ERR_IO);
        assert_null(vc);
        assert_non_null(strstr(why, "No such file"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_visa_contact_pse),
        cmocka_unit_test(test_mc_contactless_ppse),
        cmocka_unit_test(test_dankort_visa_cobadge),
        cmocka_unit_test(test_pin),
        cmocka_unit_test(test_pin_state_file),
        cmocka_unit_test(test_quirk_get_response),
        cmocka_unit_test(test_quirk_wrong_le),
        cmocka_unit_test(test_quirks_together_and_from_profile),
        cmocka_unit_test(test_unknown_ins_cla),
        cmocka_unit_test(test_recorded_card),
        cmocka_unit_test(test_profiles_match_expect),
        cmocka_unit_test(test_open_reader),
        cmocka_unit_test(test_frame_parse),
        cmocka_unit_test(test_frame_handle),
        cmocka_unit_test(test_profile_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
