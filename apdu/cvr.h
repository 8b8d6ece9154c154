/*
 * Card Verification Results (CVR): what the card itself says about the
 * cardholder verification of one transaction, carried inside the Issuer
 * Application Data (9F10) and therefore inside the data an application
 * cryptogram is computed over. Once the issuer has verified the ARQC, these
 * bits are the card's own statement (src/RULES.md §2: an offline PIN is
 * proven only by the CVR of a verified cryptogram).
 *
 * Layouts (byte numbers as the public specifications count them; "cvr[i]"
 * below is the i-th CVR byte after any length byte):
 *
 *   Visa VIS 1.5 IAD format 0/1/3 (9F10 = 06 DKI CVN 03 CVR(3) [IDD]):
 *     CVR byte 2 (cvr[0]) b3 0x04 offline PIN verification performed,
 *                         b2 0x02 offline PIN verification performed and
 *                                 PIN not successfully verified;
 *     CVR byte 3 (cvr[1]) b7 0x40 PIN try limit exceeded,
 *                         b2 0x02 application blocked by the card because
 *                                 the PIN try limit was exceeded (never
 *                                 verified; pin_try_limit_exceeded is b7 only).
 *     Also: CVR byte 2 b8-7 AC of the 2nd GENERATE AC (00 AAC, 01 TC, 10
 *     not requested), b6-5 AC of the 1st (00 AAC, 01 TC, 10 ARQC), b4 0x08
 *     issuer authentication performed and failed; CVR byte 4 (cvr[2]) b2
 *     0x02 offline DDA performed.
 *   Visa VIS 1.6 IAD format 2 (9F10 = 1F CVN DKI CVR(5) IDD-option IDD):
 *     cvr[0] carries the consumer-device CVM (entity, type); cvr[1] b3 is
 *     "CDCVM performed" there, not "offline PIN performed". This decoder
 *     therefore never reads an offline PIN from a format 2 CVR
 *     (KV_CVR_PIN_UNKNOWN); cvr[2] 0x40 is the PIN try limit exceeded bit
 *     as in format 0/1/3; cvr[1] has the AC types and the issuer
 *     authentication bit of format 0/1/3's byte 2, cvr[3] 0x02 DDA performed.
 *   Mastercard M/Chip 4 / M/Chip Advance (9F10 = DKI CVN CVR(6) ...; the AC
 *   data of CVN 16, 17, 20, 21 carry the CVR right after the ATC):
 *     cvr[0] b3 0x04 offline PIN verification performed,
 *            b2 0x02 offline encrypted PIN verification performed,
 *            b1 0x01 offline PIN verification successful;
 *     cvr[3] b6 0x20 offline PIN verification not performed,
 *            b5 0x10 offline PIN verification failed,
 *            b4 0x08 PIN try limit exceeded,
 *            b1 0x01 terminal erroneously considers offline PIN OK;
 *     cvr[0] b8-7 / b6-5 the AC types as Visa; cvr[1] b8 0x80 DDA returned,
 *     b7 0x40 CDA returned in the 1st GENERATE AC; cvr[4] b3 0x04 issuer
 *     authentication failed. The CVN byte: 0x10 | 0x04 (EMV CSK instead of
 *     the Mastercard SKD) | 0x01 (counters in the AC data).
 *   EMV Common Core Definitions (EMV Book 3 Annex C7; 9F10 = 0F CCI(A5|A6)
 *   DKI CVR(5) counters(8) 0F IDD(15)):
 *     cvr[1] b4 0x08 offline PIN verification performed,
 *            b3 0x04 offline PIN verification performed and PIN not
 *                    successfully verified,
 *            b2 0x02 PIN try limit exceeded;
 *     cvr[0] b8-7 / b6-5 the AC types as Visa, b4 0x08 CDA performed, b3
 *     0x04 offline DDA performed, b1 0x01 issuer authentication failed.
 *     The CCI's low nibble is the cryptogram version: 5 TDES, 6 AES.
 *
 * Public sources of the layouts: EMV 4.4 Book 3 Annex C (CCD, Tables CCD
 * 8-10); openemv/emv-utils src/emv_fields.h (the M/Chip CVR and IAD
 * lengths from M/Chip Requirements Appendix B, the VSDC format 0-4 IAD and
 * CVR); Visa VIS 1.5 Appendix A as quoted there.
 *
 * Offline PIN is KV_CVR_PIN_VERIFIED only when the layout has the bits, the
 * "performed" bit is set, no "failed" bit and no "PIN try limit exceeded" bit
 * is set (M/Chip: "successful" set too, "not performed" and "terminal
 * erroneously considers offline PIN OK" clear). Anything else — an unknown
 * layout, a CVR cut short, a CVN the decoder does not know — is never
 * VERIFIED. Pure functions; the input is untrusted.
 */
#ifndef KV_APDU_CVR_H
#define KV_APDU_CVR_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    KV_CVR_LAYOUT_UNKNOWN = 0,
    KV_CVR_LAYOUT_VISA = 1,   /* VIS IAD format 0/1/3, CVR 3 bytes */
    KV_CVR_LAYOUT_VISA_2 = 2, /* VIS 1.6 IAD format 2, CVR 5 bytes */
    KV_CVR_LAYOUT_MCHIP = 3,  /* M/Chip 4 / Advance, CVR 6 bytes */
    KV_CVR_LAYOUT_CCD = 4,    /* EMV Book 3 Annex C7, CVR 5 bytes */
} kv_cvr_layout;

typedef enum {
    KV_CVR_PIN_UNKNOWN = 0,       /* the CVR does not say (or was not found) */
    KV_CVR_PIN_NOT_PERFORMED = 1, /* no offline PIN verification in this transaction */
    KV_CVR_PIN_FAILED = 2,        /* performed and not successfully verified (or limit exceeded) */
    KV_CVR_PIN_VERIFIED = 3,      /* performed and passed */
} kv_cvr_pin;

#define KV_CVR_MAX 6

/* AC types as the CVR reports them: the GENERATE AC P1 type bits (apdu/ac_data.h KV_AC_*). */
#define KV_CVR_AC_AAC 0x00
#define KV_CVR_AC_TC 0x40
#define KV_CVR_AC_ARQC 0x80

typedef struct {
    kv_cvr_layout layout;
    uint8_t cvr[KV_CVR_MAX]; /* the CVR bytes (without a length byte) */
    size_t cvr_len;          /* 0 when the layout is unknown */
    kv_cvr_pin offline_pin;
    int pin_try_limit_exceeded; /* the card says its PIN try limit is exceeded */
    /* from the IAD's own bytes (kv_cvr_from_iad; kv_cvr_from_ac_data: the CVN asked for) */
    int cvn;         /* cryptogram version: the IAD byte's decimal value (Visa 0A -> 10, 12 -> 18;
                        M/Chip 10 -> 16 ... 15 -> 21), Visa format 2 by its hex digits ('22' -> 22),
                        CCD the CCI's low nibble; -1 unknown */
    int dki;         /* derivation key index, -1 unknown */
    int visa_format; /* Visa IAD format 0..3 (the CVN's high nibble), -1 not Visa */
    int ac1_type;    /* KV_CVR_AC_* of the 1st GENERATE AC, -1 unknown */
    int ac2_type;    /* KV_CVR_AC_AAC / _TC of the 2nd, -1 not requested or unknown */
    int issuer_auth_failed;
    int cda_performed;
    int dda_performed;
} kv_cvr_info;

/*
 * Decode the CVR of an IAD (9F10 value, len bytes) by its own layout
 * markers: 06|07 DKI CVN 03 CVR(3) [IDD-length IDD] Visa format 0/1/3
 * (CVN high nibble 0, 1 or 3); 1F CVN(high nibble 2) DKI CVR(5) ..., 32
 * bytes, Visa format 2; 0F A5|A6 DKI CVR(5) counters(8) 0F IDD(15), 32
 * bytes, CCD; DKI CVN(10|11|14|15) CVR(6) DAC/IDN(2) counters ..., 18..32
 * bytes, M/Chip. A layout it does not recognise leaves out->layout UNKNOWN
 * (and cvn, dki, ac types -1). Always returns 0.
 */
int kv_cvr_from_iad(const uint8_t *iad, size_t len, kv_cvr_info *out);

/*
 * Decode the CVR from the data an application cryptogram of CVN cvn
 * (decimal, as hsm/emv_crypto.h kv_emv_params_for_cvn) is computed over:
 * the 29 bytes of standard data, AIP (2), ATC (2), then
 *   CVN 10:         03 || CVR(3) (IAD bytes 4-7), 37 bytes in all;
 *   CVN 18, 22:     the whole Visa IAD (format 0/1/3, or format 2);
 *   CVN 16, 20:     the M/Chip CVR (6), 39 bytes in all;
 *   CVN 17, 21:     the M/Chip CVR (6) followed by the counters;
 *   CVN 5, 6 (CCD): the whole 32-byte CCD IAD.
 * A length or marker that does not fit the CVN leaves the layout UNKNOWN.
 * Always returns 0.
 */
int kv_cvr_from_ac_data(int cvn, const uint8_t *data, size_t len, kv_cvr_info *out);

/* "visa", "visa_format2", "mchip", "ccd" or "unknown". */
const char *kv_cvr_layout_name(kv_cvr_layout l);
/* "verified", "failed", "not_performed" or "unknown". */
const char *kv_cvr_pin_name(kv_cvr_pin p);

#endif
