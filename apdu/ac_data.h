/*
 * The data an application cryptogram is computed over and the Issuer
 * Application Data (9F10) that carries the cryptogram version (CVN) and the
 * card verification results: the terminal/issuer side of EMV Book 2 Annex
 * A1.2 and the public IAD layouts of Visa, Mastercard M/Chip and EMV CCD.
 * Pure functions; IAD bytes are untrusted card data.
 */
#ifndef KV_APDU_AC_DATA_H
#define KV_APDU_AC_DATA_H

#include <stddef.h>
#include <stdint.h>

/* Reference control parameter (P1) bits 8-7: the cryptogram type asked for / returned (9F27). */
#define KV_AC_AAC 0x00
#define KV_AC_TC 0x40
#define KV_AC_ARQC 0x80
#define KV_AC_TYPE_MASK 0xC0
/* P1 bit 5: CDA signature requested. */
#define KV_AC_CDA 0x10

#define KV_IAD_MAX 32 /* 9F10 is at most 32 bytes */

/* ---- Issuer application data (9F10) --------------------------------------- */

/*
 * What the IAD says: its layout, the cryptogram version and the CVR. The
 * CVR flags come from the one CVR decoder, apdu/cvr.h kv_cvr_from_iad
 * (layouts and bit tables are listed there).
 */
typedef struct {
    int layout;      /* enum kv_iad_layout */
    int cvn;         /* cryptogram version (hsm/emv_crypto.h numbering: 10, 18, 22, 16, 17, 20,
                        21, 5, 6, or another byte's decimal value), -1 unknown */
    int dki;         /* derivation key index, -1 unknown */
    int visa_format; /* Visa IAD format 0, 1, 2 or 3; -1 not a Visa IAD */
    uint8_t cvr[8];  /* the CVR bytes as the card sent them (without a length byte) */
    size_t cvr_len;  /* 0 when the layout is unknown */
    int ac1_type;    /* KV_AC_* of the 1st GENERATE AC as the CVR reports it, -1 unknown */
    int ac2_type;    /* KV_AC_* of the 2nd, or -1 (not requested / unknown) */
    int offline_pin_performed;
    int offline_pin_verified; /* performed, not failed, PIN try limit not exceeded */
    int offline_pin_failed;
    int pin_try_limit_exceeded;
    int issuer_auth_failed; /* issuer authentication performed and failed */
    int cda_performed;      /* CCD, M/Chip (CDA in the 1st GENERATE AC) */
    int dda_performed;
} kv_iad_info;

enum kv_iad_layout {
    KV_IAD_UNKNOWN = 0,
    KV_IAD_VISA = 1,   /* 06 DKI CVN 03 CVR(3) [IDD]: Visa formats 0, 1, 3 */
    KV_IAD_CCD = 2,    /* 0F CCI(A5|A6) DKI CVR(5) counters(8) 0F IDD(15): EMV Book 3 Annex C */
    KV_IAD_VISA_2 = 3, /* 1F CVN('22') DKI CVR(5) IDD-option IDD, 32 bytes: Visa format 2 */
    KV_IAD_MCHIP = 4,  /* DKI CVN(10|11|14|15) CVR(6) DAC/IDN(2) counters [last online ATC]:
                          Mastercard M/Chip 4 (18 bytes) / M/Chip Advance (18, 20, 26, 28) */
};

/*
 * Decode the IAD (len bytes, untrusted). A layout that is not recognised is
 * not an error: info->layout is KV_IAD_UNKNOWN, cvn/dki/ac types -1 and the
 * CVR flags 0. Returns 0, or KV_ERR_CARD_DATA when the IAD says it is a Visa
 * format 0/1/3 IAD (06|07 .. .. 03) but is cut short before the CVR ends.
 */
int kv_iad_decode(const uint8_t *iad, size_t len, kv_iad_info *info);

/* Length of the recommended minimum AC data set taken from the CDOL data (Book 2 A1.2.1). */
#define KV_AC_SD_LEN 29
/* Offset of the unpredictable number 9F37 (4 bytes) in the standard data. */
#define KV_AC_SD_UN_OFF 25

/*
 * The "standard data" of an application cryptogram (EMV Book 2 A1.2.1,
 * apdu/vcard/CRYPTO.md §3): the values of 9F02 (6) || 9F03 (6) || 9F1A (2)
 * || 95 (5) || 5F2A (2) || 9A (3) || 9C (1) || 9F37 (4), taken by tag from
 * data (data_len bytes) built for the DOL cdol (cdol_len bytes); a tag the
 * DOL lacks gives zeros, a shorter or longer DOL entry is fitted
 * (kv_dol_fit). fallback (may be NULL) is a second (DOL, data) pair for tags
 * the first lacks (2nd GENERATE AC: CDOL2, then CDOL1). Returns 0,
 * KV_ERR_DOL (malformed DOL) or KV_ERR_CARD_DATA (data shorter than the DOL).
 */
int kv_ac_standard_data(const uint8_t *cdol, size_t cdol_len, const uint8_t *data, size_t data_len,
                        const uint8_t *fb_cdol, size_t fb_cdol_len, const uint8_t *fb_data,
                        size_t fb_data_len, uint8_t sd[KV_AC_SD_LEN]);

/* The unpredictable number of the standard data (for the Mastercard SKD, CVN 16 and 17). */
void kv_ac_data_un(const uint8_t sd[KV_AC_SD_LEN], uint8_t un[4]);

/*
 * The data an application cryptogram is computed over, for the issuer's
 * check (the tail after SD || AIP || ATC; README "Cryptogram versions and
 * their sources"):
 *   CVN 10:         03 || CVR(3): IAD bytes 4-7 of a Visa format 0/1/3 IAD;
 *   CVN 18, 22:     the whole IAD (Visa format 0/1/3, or for 22 format 2, 32 bytes);
 *   CVN 16, 20:     the M/Chip CVR (IAD bytes 3-8);
 *   CVN 17:         CVR || the 8 counter bytes (IAD bytes 11-18);
 *   CVN 21:         CVR || IAD bytes 11..end (counters, 8 or 16 bytes, and the
 *                   last online ATC when present: IAD of 18, 20, 26 or 28 bytes);
 *   CVN 5, 6 (CCD): the whole 32-byte CCD IAD.
 * The IAD must have the layout of the CVN (an M/Chip IAD is 18..32 bytes, a
 * CCD IAD 32 bytes starting 0F). out (capacity cap) gets SD || AIP || ATC
 * || tail and *olen its length. Returns 0, KV_ERR_UNSUPPORTED (other CVN),
 * KV_ERR_CARD_DATA (IAD too short or not of the CVN's layout) or
 * KV_ERR_BUFFER.
 */
int kv_ac_data_build(int cvn, const uint8_t sd[KV_AC_SD_LEN], const uint8_t aip[2],
                     const uint8_t atc[2], const uint8_t *iad, size_t iad_len, uint8_t *out,
                     size_t cap, size_t *olen);

#endif
