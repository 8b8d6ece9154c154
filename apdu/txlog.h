/*
 * The card's transaction log, read by the terminal (EMV Book 3 Annex D.5,
 * EMV 4.3 Book 3 §7 and Annex A: Log Entry 9F4D, Log Format 9F4F).
 *
 * The log entry (9F4D, 2 bytes: the SFI of the log file, 11..30, and the
 * number of records it holds) is in the FCI's issuer discretionary data
 * (BF0C) or answers GET DATA 9F4D. The log format (9F4F) is a DOL: a list
 * of tags and lengths; each record of the log file (READ RECORD of that
 * SFI, record 1 the newest) is the values of those data objects,
 * concatenated without tags or lengths. The log is read without GET
 * PROCESSING OPTIONS and changes nothing on the card.
 *
 * Record bytes and the format come from the card: untrusted. Decoding
 * checks every length; a record whose length is not the format's total is
 * KV_ERR_CARD_DATA.
 */
#ifndef KV_APDU_TXLOG_H
#define KV_APDU_TXLOG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "apdu/emv.h"

#define KV_TXLOG_RECORDS_MAX 30
#define KV_TXLOG_FIELDS_MAX 32
#define KV_TXLOG_FORMAT_MAX 64
#define KV_TXLOG_RECORD_MAX 256

/* One data object of a record: value points into the record's raw bytes. */
typedef struct {
    uint32_t tag;
    const uint8_t *value;
    size_t len;
} kv_txlog_field;

typedef struct {
    uint8_t raw[KV_TXLOG_RECORD_MAX]; /* as READ RECORD answered */
    size_t raw_len;
    kv_txlog_field fields[KV_TXLOG_FIELDS_MAX]; /* in format order */
    size_t nfields;
} kv_txlog_record;

typedef struct {
    int present;                         /* the card names a log (9F4D) */
    int entry_in_fci;                    /* 9F4D came from the FCI (else from GET DATA) */
    uint8_t sfi;                         /* 11..30 */
    uint8_t max_records;                 /* the log file's size, 9F4D byte 2 */
    uint8_t format[KV_TXLOG_FORMAT_MAX]; /* 9F4F */
    size_t format_len;                   /* 0: the card gave no format (records stay undecoded) */
    kv_txlog_record records[KV_TXLOG_RECORDS_MAX]; /* newest first */
    size_t nrecords;
} kv_txlog;

/*
 * The value of 9F4D (len bytes at v): *sfi and *max_records. Returns 0, or
 * KV_ERR_CARD_DATA (not 2 bytes, SFI outside 11..30, or 0 records).
 */
int kv_txlog_entry_parse(const uint8_t *v, size_t len, uint8_t *sfi, uint8_t *max_records);

/*
 * Decode one log record (rlen bytes at rec, copied into out->raw) by the
 * log format (flen bytes at format). Returns 0, KV_ERR_DOL (the format is
 * not a DOL, or has more than KV_TXLOG_FIELDS_MAX entries) or
 * KV_ERR_CARD_DATA (the record is longer than KV_TXLOG_RECORD_MAX or its
 * length is not the sum of the format's lengths).
 */
int kv_txlog_decode(const uint8_t *format, size_t flen, const uint8_t *rec, size_t rlen,
                    kv_txlog_record *out);

/*
 * Read the log of the application selected in session s (after
 * kv_emv_select; kv_emv_read_card has also read 9F4F): 9F4D from the FCI
 * or GET DATA, 9F4F from the card data or GET DATA, then READ RECORD 1, 2,
 * ... of the log SFI up to the entry's count, stopping at the first 6A83
 * (a log not yet full). out->present is 0 when the card has no log (not an
 * error). Returns 0, KV_ERR_CARD_DATA (malformed 9F4D or record,
 * KV_ERR_DOL (malformed 9F4F), KV_ERR_CARD_SW (READ RECORD answered
 * another error) or a transport error.
 */
int kv_txlog_read(kv_emv *s, kv_txlog *out);

/*
 * The records as JSON: an array, newest first, of
 * {"record": n, "values": {"9F02": "hex", ...}, and when the format has
 * them "amount" (9F02, minor units), "amount_other" (9F03), "currency"
 * (5F2A, numeric code), "country" (9F1A), "date" (9A, "YYYY-MM-DD"),
 * "time" (9F21, "HH:MM:SS"), "type" (9C, hex), "atc" (9F36, hex),
 * "cid" (9F27, hex) and "ac_type" ("aac", "tc", "arqc")}. Values that
 * carry the PAN or the cardholder name (5A, 56, 57, 5F20, 9F6B) are
 * "masked" unless reveal. NULL on no memory.
 */
json_t *kv_txlog_to_json(const kv_txlog *l, int reveal);

/* The human summary: one line for the entry, one per record. */
void kv_txlog_print(FILE *f, const kv_txlog *l);

#endif
