/*
 * libFuzzer target for the transaction log decoder of apdu/txlog.h (9F4D,
 * 9F4F and the log records, all from the card). Input: one byte n, then n
 * bytes of log format (9F4F), then one log record; the first two bytes are
 * also tried as a log entry (9F4D). Decoding never crashes, fails only with
 * KV_ERR_DOL or KV_ERR_CARD_DATA, and a decoded record's fields tile it
 * exactly, in format order; the JSON and text reports of it never fail.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apdu/txlog.h"
#include "src/base/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static kv_txlog log;
    kv_txlog_record *rec = &log.records[0];
    uint8_t sfi = 0, max = 0;
    size_t flen, off = 0;
    json_t *j;
    FILE *null;
    int r;

    if (size < 1)
        return 0;
    r = kv_txlog_entry_parse(data, size < 2 ? size : 2, &sfi, &max);
    if (r == 0 && (size < 2 || sfi < 11 || sfi > 30 || max == 0))
        abort();
    if (r != 0 && r != KV_ERR_CARD_DATA)
        abort();

    flen = data[0] < size - 1 ? data[0] : size - 1;
    memset(&log, 0, sizeof(log));
    r = kv_txlog_decode(data + 1, flen, data + 1 + flen, size - 1 - flen, rec);
    if (r != 0) {
        if ((r != KV_ERR_DOL && r != KV_ERR_CARD_DATA) || rec->nfields != 0)
            abort();
        return 0;
    }
    if (rec->raw_len != size - 1 - flen)
        abort();
    for (size_t i = 0; i < rec->nfields; i++) {
        if (rec->fields[i].value != rec->raw + off)
            abort();
        off += rec->fields[i].len;
    }
    if (off != rec->raw_len)
        abort();

    log.present = 1;
    log.sfi = 11;
    log.max_records = 1;
    log.nrecords = 1;
    memcpy(log.format, data + 1, flen < sizeof(log.format) ? flen : sizeof(log.format));
    log.format_len = flen < sizeof(log.format) ? flen : sizeof(log.format);
    if ((j = kv_txlog_to_json(&log, 0)) == NULL)
        abort();
    json_decref(j);
    if ((null = fopen("/dev/null", "w")) != NULL) {
        kv_txlog_print(null, &log);
        fclose(null);
    }
    return 0;
}
