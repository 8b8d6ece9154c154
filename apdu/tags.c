/* see tags.h */
#include "apdu/tags.h"
#include "apdu/tlv.h"
#include "src/base/err.h"

#include <stdlib.h>
#include <string.h>

#define B KV_TAG_FMT_B
#define N KV_TAG_FMT_N
#define CN KV_TAG_FMT_CN
#define AN KV_TAG_FMT_AN
#define ANS KV_TAG_FMT_ANS
#define VAR KV_TAG_FMT_VAR
#define ICC KV_TAG_SRC_ICC
#define TERMINAL KV_TAG_SRC_TERMINAL
#define ISSUER KV_TAG_SRC_ISSUER

/*
 * Sorted by tag (test_tags checks it). Sources: EMV 4.4 Book 3 Annex A and
 * Book 1 Annex B (1-2 byte tags up to 9F4F), EMV Contactless Book B (9F0A,
 * 9F29, 9F2A), Book C-2 (Mastercard: 9F50-9F7F, DF4B, DF60-DF63, DF81xx,
 * DF83xx), Book C-3 (Visa: 9F5A, 9F5D, 9F66, 9F68, 9F69, 9F6C, 9F6E, 9F7C).
 * The kernel-internal FF81xx templates are left out: a leading FF byte is
 * padding to the decoder (tlv.h), so they can never be met in decoded data.
 */
static const kv_tag_info kv_tags[] = {
    {0x42, "Issuer Identification Number (IIN)", N, ICC, 0},
    {0x4F, "Application Identifier (AID) - card", B, ICC, 0},
    {0x50, "Application Label", ANS, ICC, 0},
    {0x52, "Command To Perform", B, ISSUER, 0},
    {0x56, "Track 1 Data", ANS, ICC, KV_TAG_F_TRACK1},
    {0x57, "Track 2 Equivalent Data", B, ICC, KV_TAG_F_TRACK2},
    {0x5A, "Application Primary Account Number (PAN)", CN, ICC, KV_TAG_F_PAN},
    {0x61, "Application Template", VAR, ICC, 0},
    {0x6F, "File Control Information (FCI) Template", VAR, ICC, 0},
    {0x70, "READ RECORD Response Message Template", VAR, ICC, 0},
    {0x71, "Issuer Script Template 1", VAR, ISSUER, 0},
    {0x72, "Issuer Script Template 2", VAR, ISSUER, 0},
    {0x73, "Directory Discretionary Template", VAR, ICC, 0},
    {0x77, "Response Message Template Format 2", VAR, ICC, 0},
    {0x80, "Response Message Template Format 1", VAR, ICC, 0},
    {0x81, "Amount, Authorised (Binary)", B, TERMINAL, 0},
    {0x82, "Application Interchange Profile", B, ICC, 0},
    {0x83, "Command Template", B, TERMINAL, 0},
    {0x84, "Dedicated File (DF) Name", B, ICC, 0},
    {0x86, "Issuer Script Command", B, ISSUER, 0},
    {0x87, "Application Priority Indicator", B, ICC, 0},
    {0x88, "Short File Identifier (SFI)", B, ICC, 0},
    {0x89, "Authorisation Code", ANS, ISSUER, 0},
    {0x8A, "Authorisation Response Code", AN, ISSUER, 0},
    {0x8C, "Card Risk Management Data Object List 1 (CDOL1)", B, ICC, 0},
    {0x8D, "Card Risk Management Data Object List 2 (CDOL2)", B, ICC, 0},
    {0x8E, "Cardholder Verification Method (CVM) List", B, ICC, 0},
    {0x8F, "Certification Authority Public Key Index", B, ICC, 0},
    {0x90, "Issuer Public Key Certificate", B, ICC, 0},
    {0x91, "Issuer Authentication Data", B, ISSUER, 0},
    {0x92, "Issuer Public Key Remainder", B, ICC, 0},
    {0x93, "Signed Static Application Data", B, ICC, 0},
    {0x94, "Application File Locator (AFL)", VAR, ICC, 0},
    {0x95, "Terminal Verification Results", B, TERMINAL, 0},
    {0x97, "Transaction Certificate Data Object List (TDOL)", B, ICC, 0},
    {0x98, "Transaction Certificate (TC) Hash Value", B, TERMINAL, 0},
    {0x99, "Transaction Personal Identification Number (PIN) Data", B, TERMINAL, 0},
    {0x9A, "Transaction Date", N, TERMINAL, KV_TAG_F_DATE},
    {0x9B, "Transaction Status Information", B, TERMINAL, 0},
    {0x9C, "Transaction Type", N, TERMINAL, 0},
    {0x9D, "Directory Definition File (DDF) Name", B, ICC, 0},
    {0xA5, "File Control Information (FCI) Proprietary Template", VAR, ICC, 0},
    {0x5F20, "Cardholder Name", ANS, ICC, 0},
    {0x5F24, "Application Expiration Date", N, ICC, KV_TAG_F_DATE},
    {0x5F25, "Application Effective Date", N, ICC, KV_TAG_F_DATE},
    {0x5F28, "Issuer Country Code", N, ICC, 0},
    {0x5F2A, "Transaction Currency Code", N, TERMINAL, 0},
    {0x5F2D, "Language Preference", AN, ICC, 0},
    {0x5F30, "Service Code", N, ICC, 0},
    {0x5F34, "Application Primary Account Number (PAN) Sequence Number", N, ICC, 0},
    {0x5F36, "Transaction Currency Exponent", N, TERMINAL, 0},
    {0x5F50, "Issuer URL", ANS, ICC, 0},
    {0x5F53, "International Bank Account Number (IBAN)", VAR, ICC, 0},
    {0x5F54, "Bank Identifier Code (BIC)", VAR, ICC, 0},
    {0x5F55, "Issuer Country Code (alpha2 format)", AN, ICC, 0},
    {0x5F56, "Issuer Country Code (alpha3 format)", AN, ICC, 0},
    {0x5F57, "Account Type", N, TERMINAL, 0},
    {0x9F01, "Acquirer Identifier", N, TERMINAL, 0},
    {0x9F02, "Amount, Authorised (Numeric)", N, TERMINAL, 0},
    {0x9F03, "Amount, Other (Numeric)", N, TERMINAL, 0},
    {0x9F04, "Amount, Other (Binary)", B, TERMINAL, 0},
    {0x9F05, "Application Discretionary Data", B, ICC, 0},
    {0x9F06, "Application Identifier (AID) - terminal", B, TERMINAL, 0},
    {0x9F07, "Application Usage Control", B, ICC, 0},
    {0x9F08, "Application Version Number (card)", B, ICC, 0},
    {0x9F09, "Application Version Number (terminal)", B, TERMINAL, 0},
    {0x9F0A, "Application Selection Registered Proprietary Data (ASRPD)", B, ICC, 0},
    {0x9F0B, "Cardholder Name Extended", ANS, ICC, 0},
    {0x9F0C, "Issuer Identification Number Extended (IINE)", N, ICC, 0},
    {0x9F0D, "Issuer Action Code - Default", B, ICC, 0},
    {0x9F0E, "Issuer Action Code - Denial", B, ICC, 0},
    {0x9F0F, "Issuer Action Code - Online", B, ICC, 0},
    {0x9F10, "Issuer Application Data", B, ICC, 0},
    {0x9F11, "Issuer Code Table Index", N, ICC, 0},
    {0x9F12, "Application Preferred Name", ANS, ICC, 0},
    {0x9F13, "Last Online Application Transaction Counter (ATC) Register", B, ICC, 0},
    {0x9F14, "Lower Consecutive Offline Limit", B, ICC, 0},
    {0x9F15, "Merchant Category Code", N, TERMINAL, 0},
    {0x9F16, "Merchant Identifier", ANS, TERMINAL, 0},
    {0x9F17, "Personal Identification Number (PIN) Try Counter", B, ICC, 0},
    {0x9F18, "Issuer Script Identifier", B, ISSUER, 0},
    {0x9F19, "Token Requestor ID", N, ICC, 0},
    {0x9F1A, "Terminal Country Code", N, TERMINAL, 0},
    {0x9F1B, "Terminal Floor Limit", B, TERMINAL, 0},
    {0x9F1C, "Terminal Identification", AN, TERMINAL, 0},
    {0x9F1D, "Terminal Risk Management Data", B, TERMINAL, 0},
    {0x9F1E, "Interface Device (IFD) Serial Number", AN, TERMINAL, 0},
    {0x9F1F, "Track 1 Discretionary Data", ANS, ICC, 0},
    {0x9F20, "Track 2 Discretionary Data", CN, ICC, 0},
    {0x9F21, "Transaction Time", N, TERMINAL, 0},
    {0x9F22, "Certification Authority Public Key Index (terminal)", B, TERMINAL, 0},
    {0x9F23, "Upper Consecutive Offline Limit", B, ICC, 0},
    {0x9F24, "Payment Account Reference (PAR)", AN, ICC, 0},
    {0x9F25, "Last 4 Digits of PAN", N, ICC, 0},
    {0x9F26, "Application Cryptogram", B, ICC, 0},
    {0x9F27, "Cryptogram Information Data", B, ICC, 0},
    {0x9F29, "Extended Selection", B, ICC, 0},
    {0x9F2A, "Kernel Identifier", B, ICC, 0},
    {0x9F2D, "ICC PIN Encipherment Public Key Certificate", B, ICC, 0},
    {0x9F2E, "ICC PIN Encipherment Public Key Exponent", B, ICC, 0},
    {0x9F2F, "ICC PIN Encipherment Public Key Remainder", B, ICC, 0},
    {0x9F32, "Issuer Public Key Exponent", B, ICC, 0},
    {0x9F33, "Terminal Capabilities", B, TERMINAL, 0},
    {0x9F34, "Cardholder Verification Method (CVM) Results", B, TERMINAL, 0},
    {0x9F35, "Terminal Type", N, TERMINAL, 0},
    {0x9F36, "Application Transaction Counter (ATC)", B, ICC, 0},
    {0x9F37, "Unpredictable Number", B, TERMINAL, 0},
    {0x9F38, "Processing Options Data Object List (PDOL)", B, ICC, 0},
    {0x9F39, "Point-of-Service (POS) Entry Mode", N, TERMINAL, 0},
    {0x9F3A, "Amount, Reference Currency", B, TERMINAL, 0},
    {0x9F3B, "Application Reference Currency", N, ICC, 0},
    {0x9F3C, "Transaction Reference Currency Code", N, TERMINAL, 0},
    {0x9F3D, "Transaction Reference Currency Exponent", N, TERMINAL, 0},
    {0x9F40, "Additional Terminal Capabilities", B, TERMINAL, 0},
    {0x9F41, "Transaction Sequence Counter", N, TERMINAL, 0},
    {0x9F42, "Application Currency Code", N, ICC, 0},
    {0x9F43, "Application Reference Currency Exponent", N, ICC, 0},
    {0x9F44, "Application Currency Exponent", N, ICC, 0},
    {0x9F45, "Data Authentication Code", B, ICC, 0},
    {0x9F46, "ICC Public Key Certificate", B, ICC, 0},
    {0x9F47, "ICC Public Key Exponent", B, ICC, 0},
    {0x9F48, "ICC Public Key Remainder", B, ICC, 0},
    {0x9F49, "Dynamic Data Authentication Data Object List (DDOL)", B, ICC, 0},
    {0x9F4A, "Static Data Authentication Tag List", B, ICC, 0},
    {0x9F4B, "Signed Dynamic Application Data", B, ICC, 0},
    {0x9F4C, "ICC Dynamic Number", B, ICC, 0},
    {0x9F4D, "Log Entry", B, ICC, 0},
    {0x9F4E, "Merchant Name and Location", ANS, TERMINAL, 0},
    {0x9F4F, "Log Format", B, ICC, 0},
    {0x9F50, "Offline Accumulator Balance", N, ICC, 0},
    {0x9F51, "DRDOL", B, ICC, 0},
    {0x9F53, "Transaction Category Code", AN, TERMINAL, 0},
    {0x9F54, "DS ODS Card", B, ICC, 0},
    {0x9F5A, "Application Program Identifier (Program ID)", B, ICC, 0},
    {0x9F5B, "Issuer Script Results", B, TERMINAL, 0},
    {0x9F5C, "DS Requested Operator ID", B, TERMINAL, 0},
    {0x9F5D,
     "Available Offline Spending Amount (Visa) / Application Capabilities Information (Mastercard)",
     B, ICC, 0},
    {0x9F5E, "DS ID", B, ICC, 0},
    {0x9F5F, "DS Slot Availability", B, ICC, 0},
    {0x9F60, "CVC3 (Track1)", B, ICC, 0},
    {0x9F61, "CVC3 (Track2)", B, ICC, 0},
    {0x9F62, "PCVC3 (Track1)", B, ICC, 0},
    {0x9F63, "PUNATC (Track1)", B, ICC, 0},
    {0x9F64, "NATC (Track1)", B, ICC, 0},
    {0x9F65, "PCVC3 (Track2)", B, ICC, 0},
    {0x9F66, "Terminal Transaction Qualifiers (TTQ) (Visa) / PUNATC (Track2) (Mastercard)", B,
     TERMINAL, 0},
    {0x9F67, "NATC (Track2)", B, ICC, 0},
    {0x9F68, "Card Additional Processes (Visa) / Mag-stripe CVM List (Mastercard)", B, ICC, 0},
    {0x9F69, "Card Authentication Related Data (Visa) / UDOL (Mastercard)", B, ICC, 0},
    {0x9F6A, "Unpredictable Number (Numeric)", N, TERMINAL, 0},
    {0x9F6B, "Card CVM Limit (Visa) / Track 2 Data (Mastercard)", B, ICC, KV_TAG_F_TRACK2},
    {0x9F6C,
     "Card Transaction Qualifiers (CTQ) (Visa) / Mag-stripe Application Version Number, Card "
     "(Mastercard)",
     B, ICC, 0},
    {0x9F6D, "Mag-stripe Application Version Number (Reader)", B, TERMINAL, 0},
    {0x9F6E, "Form Factor Indicator (Visa) / Third Party Data (Mastercard)", B, ICC, 0},
    {0x9F6F, "DS Slot Management Control", B, ICC, 0},
    {0x9F70, "Protected Data Envelope 1", B, ICC, 0},
    {0x9F71, "Protected Data Envelope 2", B, ICC, 0},
    {0x9F72, "Protected Data Envelope 3", B, ICC, 0},
    {0x9F73, "Protected Data Envelope 4", B, ICC, 0},
    {0x9F74, "Protected Data Envelope 5 (Mastercard) / VLP Issuer Authorisation Code (Visa)", B,
     ICC, 0},
    {0x9F75, "Unprotected Data Envelope 1", B, ICC, 0},
    {0x9F76, "Unprotected Data Envelope 2", B, ICC, 0},
    {0x9F77, "Unprotected Data Envelope 3", B, ICC, 0},
    {0x9F78, "Unprotected Data Envelope 4", B, ICC, 0},
    {0x9F79, "Unprotected Data Envelope 5", B, ICC, 0},
    {0x9F7C, "Customer Exclusive Data (Visa) / Merchant Custom Data (Mastercard)", B, ICC, 0},
    {0x9F7D, "DS Summary 1", B, ICC, 0},
    {0x9F7E, "Mobile Support Indicator", B, TERMINAL, 0},
    {0x9F7F, "DS Unpredictable Number", B, TERMINAL, 0},
    {0xBF0C, "File Control Information (FCI) Issuer Discretionary Data", VAR, ICC, 0},
    {0xDF4B, "POS Cardholder Interaction Information", B, ICC, 0},
    {0xDF60, "DS Input (Card)", B, TERMINAL, 0},
    {0xDF61, "DS Digest H", B, TERMINAL, 0},
    {0xDF62, "DS ODS Info", B, TERMINAL, 0},
    {0xDF63, "DS ODS Term", B, TERMINAL, 0},
    {0xDF8101, "DS Summary 2", B, ICC, 0},
    {0xDF8102, "DS Summary 3", B, ICC, 0},
    {0xDF8104, "Balance Read Before Gen AC", N, TERMINAL, 0},
    {0xDF8105, "Balance Read After Gen AC", N, TERMINAL, 0},
    {0xDF8106, "Data Needed", B, TERMINAL, 0},
    {0xDF8107, "CDOL1 Related Data", B, TERMINAL, 0},
    {0xDF8108, "DS AC Type", B, TERMINAL, 0},
    {0xDF8109, "DS Input (Term)", B, TERMINAL, 0},
    {0xDF810A, "DS ODS Info For Reader", B, TERMINAL, 0},
    {0xDF810B, "DS Summary Status", B, TERMINAL, 0},
    {0xDF810C, "Kernel ID", B, TERMINAL, 0},
    {0xDF810D, "DSVN Term", B, TERMINAL, 0},
    {0xDF810E, "Post-Gen AC Put Data Status", B, TERMINAL, 0},
    {0xDF810F, "Pre-Gen AC Put Data Status", B, TERMINAL, 0},
    {0xDF8110, "Proceed To First Write Flag", B, TERMINAL, 0},
    {0xDF8111, "PDOL Related Data", B, TERMINAL, 0},
    {0xDF8112, "Tags To Read", B, TERMINAL, 0},
    {0xDF8113, "DRDOL Related Data", B, TERMINAL, 0},
    {0xDF8114, "Reference Control Parameter", B, TERMINAL, 0},
    {0xDF8115, "Error Indication", B, TERMINAL, 0},
    {0xDF8116, "User Interface Request Data", B, TERMINAL, 0},
    {0xDF8117, "Card Data Input Capability", B, TERMINAL, 0},
    {0xDF8118, "CVM Capability - CVM Required", B, TERMINAL, 0},
    {0xDF8119, "CVM Capability - No CVM Required", B, TERMINAL, 0},
    {0xDF811A, "Default UDOL", B, TERMINAL, 0},
    {0xDF811B, "Kernel Configuration", B, TERMINAL, 0},
    {0xDF811C, "Max Lifetime of Torn Transaction Log Record", B, TERMINAL, 0},
    {0xDF811D, "Max Number of Torn Transaction Log Records", B, TERMINAL, 0},
    {0xDF811E, "Mag-stripe CVM Capability - CVM Required", B, TERMINAL, 0},
    {0xDF811F, "Security Capability", B, TERMINAL, 0},
    {0xDF8120, "Terminal Action Code - Default", B, TERMINAL, 0},
    {0xDF8121, "Terminal Action Code - Denial", B, TERMINAL, 0},
    {0xDF8122, "Terminal Action Code - Online", B, TERMINAL, 0},
    {0xDF8123, "Reader Contactless Floor Limit", N, TERMINAL, 0},
    {0xDF8124, "Reader Contactless Transaction Limit (No On-device CVM)", N, TERMINAL, 0},
    {0xDF8125, "Reader Contactless Transaction Limit (On-device CVM)", N, TERMINAL, 0},
    {0xDF8126, "Reader CVM Required Limit", N, TERMINAL, 0},
    {0xDF8127, "Time Out Value", B, TERMINAL, 0},
    {0xDF8128, "IDS Status", B, TERMINAL, 0},
    {0xDF8129, "Outcome Parameter Set", B, TERMINAL, 0},
    {0xDF812A, "DD Card (Track1)", ANS, TERMINAL, 0},
    {0xDF812B, "DD Card (Track2)", B, TERMINAL, 0},
    {0xDF812C, "Mag-stripe CVM Capability - No CVM Required", B, TERMINAL, 0},
    {0xDF812D, "Message Hold Time", N, TERMINAL, 0},
    {0xDF8130, "Hold Time Value", B, TERMINAL, 0},
    {0xDF8131, "Phone Message Table", B, TERMINAL, 0},
    {0xDF8132, "Minimum Relay Resistance Grace Period", B, TERMINAL, 0},
    {0xDF8133, "Maximum Relay Resistance Grace Period", B, TERMINAL, 0},
    {0xDF8134, "Terminal Expected Transmission Time For Relay Resistance C-APDU", B, TERMINAL, 0},
    {0xDF8135, "Terminal Expected Transmission Time For Relay Resistance R-APDU", B, TERMINAL, 0},
    {0xDF8136, "Relay Resistance Accuracy Threshold", B, TERMINAL, 0},
    {0xDF8137, "Relay Resistance Transmission Time Mismatch Threshold", B, TERMINAL, 0},
    {0xDF8301, "Terminal Relay Resistance Entropy", B, TERMINAL, 0},
    {0xDF8302, "Device Relay Resistance Entropy", B, ICC, 0},
    {0xDF8303, "Min Time For Processing Relay Resistance APDU", B, ICC, 0},
    {0xDF8304, "Max Time For Processing Relay Resistance APDU", B, ICC, 0},
    {0xDF8305, "Device Estimated Transmission Time For Relay Resistance R-APDU", B, ICC, 0},
    {0xDF8306, "Measured Relay Resistance Processing Time", B, TERMINAL, 0},
    {0xDF8307, "RRP Counter", B, TERMINAL, 0},
};

#undef B
#undef N
#undef CN
#undef AN
#undef ANS
#undef VAR
#undef ICC
#undef TERMINAL
#undef ISSUER

#define KV_TAG_COUNT (sizeof(kv_tags) / sizeof(kv_tags[0]))

const kv_tag_info *kv_tag_lookup(uint32_t tag)
{
    size_t lo = 0, hi = KV_TAG_COUNT;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (kv_tags[mid].tag == tag)
            return &kv_tags[mid];
        if (kv_tags[mid].tag < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const char *kv_tag_name(uint32_t tag)
{
    const kv_tag_info *info = kv_tag_lookup(tag);
    return info != NULL ? info->name : "Unknown";
}

size_t kv_tag_count(void)
{
    return KV_TAG_COUNT;
}

const kv_tag_info *kv_tag_at(size_t i)
{
    return i < KV_TAG_COUNT ? &kv_tags[i] : NULL;
}

const char *kv_tag_format_name(unsigned format)
{
    static const char *const names[] = {"b", "n", "cn", "an", "ans", "var"};
    return format < sizeof(names) / sizeof(names[0]) ? names[format] : "?";
}

const char *kv_tag_source_name(unsigned source)
{
    static const char *const names[] = {"ICC", "terminal", "issuer"};
    return source < sizeof(names) / sizeof(names[0]) ? names[source] : "?";
}

/* --- renderings --- */

/* What to show of one primitive value: masked nibble range, text, date. */
typedef struct {
    size_t mask_from; /* nibbles [mask_from, mask_to) of the value print as '*' */
    size_t mask_to;
    int text;      /* value is an/ans text */
    char date[11]; /* "YYYY-MM-DD" or "" */
} tag_view;

/* The digits of a PAN of n digits that kv_pan_mask hides: [*from, *to). */
static void tag_pan_hidden(size_t n, size_t *from, size_t *to)
{
    *from = n >= 11 ? 6 : 0;
    *to = n >= 4 ? n - 4 : 0;
    if (*to < *from)
        *to = *from;
}

static unsigned tag_nibble(const kv_tlv *t, size_t i)
{
    uint8_t b = t->value[i / 2];
    return (i & 1) ? (b & 0x0F) : (b >> 4);
}

static void tag_view_init(tag_view *v, const kv_tlv *t, const kv_tag_info *info, unsigned opts)
{
    size_t n = 0, from, to;

    memset(v, 0, sizeof(*v));
    if (info == NULL || t->len == 0)
        return;
    v->text = info->format == KV_TAG_FMT_AN || info->format == KV_TAG_FMT_ANS;
    if ((info->flags & KV_TAG_F_DATE) != 0 && t->len == 3) {
        int ok = 1;
        for (size_t i = 0; i < 6; i++)
            ok &= tag_nibble(t, i) <= 9;
        if (ok) {
            unsigned yy = tag_nibble(t, 0) * 10 + tag_nibble(t, 1);
            /* EMV Book 4 §6.7.3: YY 00-49 is 20YY, 50-99 is 19YY. */
            const char *century = yy < 50 ? "20" : "19";
            char *d = v->date;
            *d++ = century[0];
            *d++ = century[1];
            for (size_t i = 0; i < 6; i++) {
                if (i == 2 || i == 4)
                    *d++ = '-';
                *d++ = (char)('0' + tag_nibble(t, i));
            }
            *d = '\0';
        }
    }
    if ((opts & KV_TAG_REVEAL) != 0)
        return;
    if ((info->flags & (KV_TAG_F_PAN | KV_TAG_F_TRACK2)) != 0) {
        /* cn PAN ends at the F padding, track 2 PAN at the 'D' separator. */
        while (n < 2 * t->len && tag_nibble(t, n) <= 9)
            n++;
        tag_pan_hidden(n, &from, &to);
        v->mask_from = from;
        v->mask_to = to;
    } else if ((info->flags & KV_TAG_F_TRACK1) != 0) {
        /* ISO/IEC 7813 track 1: format code 'B', PAN, '^' separator. */
        size_t s = t->value[0] == 'B' ? 1 : 0;
        while (s + n < t->len && t->value[s + n] >= '0' && t->value[s + n] <= '9')
            n++;
        tag_pan_hidden(n, &from, &to);
        v->mask_from = 2 * (s + from);
        v->mask_to = 2 * (s + to);
    }
}

static char tag_hex_char(const kv_tlv *t, const tag_view *v, size_t i)
{
    static const char digits[] = "0123456789ABCDEF";
    if (i >= v->mask_from && i < v->mask_to)
        return '*';
    return digits[tag_nibble(t, i)];
}

static char tag_text_char(const kv_tlv *t, const tag_view *v, size_t i)
{
    uint8_t b = t->value[i];
    if (2 * i >= v->mask_from && 2 * i < v->mask_to)
        return '*';
    return b >= 0x20 && b < 0x7F ? (char)b : '.';
}

/* The tag as 2, 4 or 6 upper-case hex digits; out has room for 7 chars. */
static void tag_hex_string(const kv_tlv *t, char *out)
{
    static const char digits[] = "0123456789ABCDEF";
    size_t n = t->tag_len <= 3 ? t->tag_len : 3;
    for (size_t i = 0; i < 2 * n; i++)
        out[i] = digits[(t->tag >> (4 * (2 * n - 1 - i))) & 0x0F];
    out[2 * n] = '\0';
}

struct tag_print_ctx {
    FILE *f;
    unsigned opts;
};

static int tag_print_visit(const kv_tlv *t, unsigned depth, void *arg)
{
    struct tag_print_ctx *ctx = arg;
    const kv_tag_info *info = kv_tag_lookup(t->tag);
    char tag_hex[7];
    tag_view v;

    tag_hex_string(t, tag_hex);
    fprintf(ctx->f, "%*s%s %s [%zu]", (int)(2 * depth), "", tag_hex,
            info != NULL ? info->name : "Unknown", t->len);
    if (!t->constructed && t->len > 0) {
        tag_view_init(&v, t, info, ctx->opts);
        fputs(": ", ctx->f);
        for (size_t i = 0; i < 2 * t->len; i++)
            fputc(tag_hex_char(t, &v, i), ctx->f);
        if (v.text) {
            fputs(" \"", ctx->f);
            for (size_t i = 0; i < t->len; i++)
                fputc(tag_text_char(t, &v, i), ctx->f);
            fputc('"', ctx->f);
        }
        if (v.date[0] != '\0')
            fprintf(ctx->f, " (%s)", v.date);
    }
    fputc('\n', ctx->f);
    return ferror(ctx->f) ? KV_ERR_IO : 0;
}

int kv_tag_print_tree(FILE *f, const uint8_t *p, size_t len, unsigned opts)
{
    struct tag_print_ctx ctx = {f, opts};
    int r = kv_tlv_walk(p, len, tag_print_visit, &ctx);
    if (r == 0 && fflush(f) != 0)
        r = KV_ERR_IO;
    return r;
}

struct tag_json_ctx {
    json_t *level[KV_TLV_MAX_DEPTH + 1]; /* borrowed: the array each depth appends to */
    unsigned opts;
};

/* Set key to a new string of n chars from put(t, v, i); 0 or KV_ERR_NOMEM. */
static int tag_json_set_chars(json_t *node, const char *key, const kv_tlv *t, const tag_view *v,
                              size_t n, char (*put)(const kv_tlv *, const tag_view *, size_t))
{
    char *s = malloc(n + 1);
    int r = KV_ERR_NOMEM;

    if (s == NULL)
        goto out;
    for (size_t i = 0; i < n; i++)
        s[i] = put(t, v, i);
    s[n] = '\0';
    /* Only printable ASCII or hex digits: always valid UTF-8. */
    if (json_object_set_new(node, key, json_stringn(s, n)) != 0)
        goto out;
    r = 0;
out:
    free(s);
    return r;
}

static int tag_json_visit(const kv_tlv *t, unsigned depth, void *arg)
{
    struct tag_json_ctx *ctx = arg;
    const kv_tag_info *info = kv_tag_lookup(t->tag);
    json_t *node = json_object();
    char tag_hex[7];
    tag_view v;
    int r = KV_ERR_NOMEM;

    if (node == NULL)
        goto out;
    tag_hex_string(t, tag_hex);
    if (json_object_set_new(node, "tag", json_string(tag_hex)) != 0)
        goto out;
    if (info != NULL && json_object_set_new(node, "name", json_string(info->name)) != 0)
        goto out;
    if (json_object_set_new(node, "len", json_integer((json_int_t)t->len)) != 0)
        goto out;
    if (t->constructed) {
        json_t *children = json_array();
        if (json_object_set_new(node, "children", children) != 0)
            goto out;
        ctx->level[depth + 1] = children; /* kv_tlv_walk caps depth + 1 at KV_TLV_MAX_DEPTH */
    } else {
        tag_view_init(&v, t, info, ctx->opts);
        if ((r = tag_json_set_chars(node, "value", t, &v, 2 * t->len, tag_hex_char)) != 0)
            goto out;
        r = KV_ERR_NOMEM;
        if (v.text && tag_json_set_chars(node, "text", t, &v, t->len, tag_text_char) != 0)
            goto out;
        if (v.date[0] != '\0' && json_object_set_new(node, "date", json_string(v.date)) != 0)
            goto out;
    }
    if (json_array_append_new(ctx->level[depth], node) != 0) {
        node = NULL; /* json_array_append_new released it */
        goto out;
    }
    node = NULL; /* transferred */
    r = 0;
out:
    json_decref(node);
    return r;
}

int kv_tag_json_tree(const uint8_t *p, size_t len, unsigned opts, json_t **out)
{
    struct tag_json_ctx ctx;
    json_t *top = json_array();
    int r = KV_ERR_NOMEM;

    *out = NULL;
    if (top == NULL)
        goto out;
    memset(&ctx, 0, sizeof(ctx));
    ctx.level[0] = top;
    ctx.opts = opts;
    if ((r = kv_tlv_walk(p, len, tag_json_visit, &ctx)) != 0)
        goto out;
    *out = top;
    top = NULL; /* transferred */
out:
    json_decref(top);
    return r;
}
