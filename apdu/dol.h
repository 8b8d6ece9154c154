/*
 * Data object lists (EMV Book 3 §5.4): PDOL, CDOL1, CDOL2, DDOL, TDOL.
 *
 * A DOL is a list of (tag, length) without values: 1-3 byte BER tags, each
 * followed by a one-byte length. Building a DOL concatenates, for each entry,
 * the value of that tag cut or padded to the requested length (§5.4):
 *   numeric (n)             right-aligned: leading bytes cut, or 00 bytes
 *                           added on the left;
 *   compressed numeric (cn) left-aligned: trailing bytes cut, or FF added;
 *   all other formats       left-aligned: trailing bytes cut, or 00 added;
 * and a tag nobody can provide (or a constructed one) as zeros of the
 * requested length. The format comes from the tag dictionary (tags.h).
 *
 * Values come first from an optional lookup callback (session data: 8A
 * from the issuer, 9F4C from the card...) and then from the terminal
 * profile, a caller-allocated kv_terminal.
 */
#ifndef KV_APDU_DOL_H
#define KV_APDU_DOL_H

#include <stddef.h>
#include <stdint.h>

/* More entries than any real DOL has (a 252-byte DOL of 2-byte tags has 84). */
#define KV_DOL_MAX_ENTRIES 128

typedef struct {
    uint32_t tag; /* as kv_tlv.tag: 0x9F02 */
    size_t len;   /* requested length */
} kv_dol_entry;

/*
 * Parse len bytes of a DOL into out (capacity cap entries); *n the count.
 * Returns 0, KV_ERR_DOL (a tag cut off or longer than 3 bytes, a tag without
 * its length byte) or KV_ERR_BUFFER (more than cap entries).
 */
int kv_dol_parse(const uint8_t *dol, size_t len, kv_dol_entry *out, size_t cap, size_t *n);

/*
 * Total data length the DOL asks for (sum of lengths). Returns 0 and *total,
 * or the error of kv_dol_parse.
 */
int kv_dol_data_len(const uint8_t *dol, size_t len, size_t *total);

/*
 * The value of tag in data (data_len bytes) built for the DOL dol (dol_len
 * bytes): the DOL's entries (kv_dol_parse) walked over data. Returns 1 with
 * *v pointing into data and *vlen the entry's length; 0 when the DOL does
 * not ask for tag (also for a NULL or empty DOL); KV_ERR_DOL for a malformed
 * DOL; KV_ERR_CARD_DATA when data ends before the entries up to tag's.
 */
int kv_dol_value(const uint8_t *dol, size_t dol_len, const uint8_t *data, size_t data_len,
                 uint32_t tag, const uint8_t **v, size_t *vlen);

/* 1 when the DOL (len bytes; may be NULL) asks for tag, else 0 (also when malformed). */
int kv_dol_has_tag(const uint8_t *dol, size_t len, uint32_t tag);

/*
 * The terminal profile: the terminal's own data elements. Binary fields hold
 * their encoded value; numeric ones are plain integers encoded as BCD when
 * a DOL asks for them. Fixed-size context: kv_terminal_init, no free.
 */
typedef struct {
    uint16_t country;            /* 9F1A terminal country code, n3 (208 Denmark) */
    uint16_t currency;           /* 5F2A transaction currency code, n3 (208 DKK) */
    uint8_t currency_exp;        /* 5F36 transaction currency exponent, n1 */
    uint64_t amount;             /* 9F02 n12 and 81 b4, minor units */
    uint64_t amount_other;       /* 9F03 n12 and 9F04 b4 (cashback) */
    uint8_t un[4];               /* 9F37 unpredictable number (and 9F6A) */
    uint8_t tvr[5];              /* 95 terminal verification results */
    uint8_t tsi[2];              /* 9B transaction status information */
    uint8_t cvm_results[3];      /* 9F34 */
    uint32_t date;               /* 9A transaction date YYMMDD (e.g. 250131) */
    uint32_t time;               /* 9F21 transaction time HHMMSS */
    uint8_t txn_type;            /* 9C transaction type, n2 (0 = purchase) */
    uint8_t services;            /* 1: a purchase of services, 0: of goods (AUC, Book 3 §10.4.2) */
    uint8_t terminal_type;       /* 9F35 terminal type, n2 (22 = attended, offline capable) */
    uint8_t capabilities[3];     /* 9F33 terminal capabilities */
    uint8_t add_capabilities[5]; /* 9F40 additional terminal capabilities */
    uint8_t ttq[4];              /* 9F66 terminal transaction qualifiers (contactless) */
    uint16_t mcc;                /* 9F15 merchant category code, n4 */
    uint8_t pos_entry_mode;      /* 9F39, n2 (5 = ICC contact, 7 = contactless) */
    uint8_t app_version[2];      /* 9F09 terminal application version number */
    uint32_t txn_seq;            /* 9F41 transaction sequence counter, n8 */
    uint8_t risk_data[8];        /* 9F1D terminal risk management data */
    char category;               /* 9F53 transaction category code, an1 ('R' retail) */
    char terminal_id[9];         /* 9F1C an8 */
    char merchant_id[16];        /* 9F16 ans15 */
    char merchant_name[41];      /* 9F4E merchant name and location, ans */
    char ifd_serial[9];          /* 9F1E IFD serial number, an8 */
    uint8_t acquirer_id[6];      /* 9F01 acquirer identifier, n6-11 as stored BCD */
} kv_terminal;

/*
 * Danish attended POS defaults: country and currency 0208, exponent 2,
 * terminal type 22, 9F33 E0F8C8, 9F40 6000F0A001, TTQ 36004000, MCC 5999,
 * amounts 0, purchase, date and time of now (local), and a fresh
 * unpredictable number. Returns 0 or KV_ERR_INTERNAL when no random bytes
 * can be had.
 */
int kv_terminal_init(kv_terminal *t);

/* New 9F37 from the system CSPRNG (OpenSSL RAND_bytes). 0 or KV_ERR_INTERNAL. */
int kv_terminal_new_un(kv_terminal *t);

/*
 * The terminal's application version number (9F09) is configured per
 * application (apdu/termcfg.h): set it for aid from the built-in
 * configuration (kv_term_config_defaults; README "Terminal configuration"):
 * the matching entry's 9F09, else for another AID of a built-in RID that
 * RID's entry's (Visa A000000003: 008C, VIS 1.4; Mastercard A000000004:
 * 0002), else t keeps its value. So a card of the same version does not get
 * TVR "different application versions" (EMV Book 3 §10.4.1). A session with
 * a configuration uses kv_term_config_apply_app instead (apdu/emv.c).
 */
void kv_terminal_select_app(kv_terminal *t, const uint8_t *aid, size_t aid_len);

/* Set 9A / 9F21 from a time_t (local time). */
void kv_terminal_set_time(kv_terminal *t, long long when);

/*
 * The profile's value of tag in its natural length (9F02: 6 bytes BCD) into
 * out (capacity cap >= 64); *len its length. Returns 0 or KV_ERR_NOT_FOUND.
 */
int kv_terminal_value(const kv_terminal *t, uint32_t tag, uint8_t *out, size_t cap, size_t *len);

/* Session data for a DOL: return 1 and point *value and *len at tag's value, or 0. */
typedef int (*kv_dol_lookup_fn)(void *arg, uint32_t tag, const uint8_t **value, size_t *len);

/*
 * Cut or pad a value of vlen bytes to want bytes into out, by the format of
 * tag (rules above).
 */
void kv_dol_fit(uint32_t tag, const uint8_t *v, size_t vlen, uint8_t *out, size_t want);

/*
 * Build the data for a DOL: for each entry, lookup(arg, ...) if lookup is
 * non-NULL, else the terminal profile t (may be NULL), else zeros; fitted by
 * kv_dol_fit. out (capacity cap) gets the concatenation; *outlen its length.
 * Returns 0, the error of kv_dol_parse, or KV_ERR_BUFFER.
 */
int kv_dol_build(const uint8_t *dol, size_t dol_len, const kv_terminal *t, kv_dol_lookup_fn lookup,
                 void *arg, uint8_t *out, size_t cap, size_t *outlen);

#endif
