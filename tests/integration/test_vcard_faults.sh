#!/usr/bin/env bash
# The virtual card's test-lab faults and transaction log through pcscd + vpcd
# (tests/data/README.md "Faults", "Transaction log"), on one card
# (tests/data/faults/card_log.json) with the fault file lab_sequence.json:
#   1. a READ RECORD answered 6A83 by a fault: card read fails with the
#      documented error (exit 4, "record not found");
#   2. a tear at GET DATA 9F36 (the card leaves mid-command): card read says
#      "card removed" (exit 3), and once the card is back the next read works;
#   3. an offline decline (AAC) sent with card apdu: its answer shows the ATC
#      skewed by +0100 while the transaction log records the real one, and
#      card read --json (and the human summary) shows that log record;
#   4. the log is kept in the lab's state file across a restart of the card.
. "$(dirname "$0")/lab_common.sh"
F=$SRC/tests/data/faults
PROF=$F/card_log.json

lab_insert "$PROF" --fault "$F/lab_sequence.json"

# 1. READ RECORD fault
expect_rc 4 "READ RECORD fault 6A83: card read fails" "$K" card read --reader "$READER"
expect_text "$LAB/last.err" "record not found" "READ RECORD fault 6A83: the error names it"

# 2. tear
expect_rc 3 "tear: card read fails" "$K" card read --reader "$READER"
expect_text "$LAB/last.err" "card removed" "tear: \"card removed\""
read_ok() { "$K" card read --reader "$READER" >"$LAB/after_tear.out" 2>&1; }
if wait_for 10 read_ok; then pass "tear: the card is back and the next read works"; else
  fail "tear: no good read within 10 s: $(head -c 300 "$LAB/after_tear.out")"; fi

# 3. an offline decline: CDOL1 data amount 42.00, other 0, country 0208, TVR 0,
#    currency 0208, 2025-11-22, type 00, UN 11223344
SELECT=00A4040007A000000003101000
GPO=80A8000002830000
GENAC_AAC=80AE00001D000000004200000000000000020800000000000208251122001122334400
expect_rc 0 "log: an offline decline through card apdu" "$K" card apdu --reader "$READER" --json \
  "$SELECT" "$GPO" "$GENAC_AAC"
cp "$LAB/last.out" "$LAB/genac.json"
check_log() { # NAME
  "$K" card read --reader "$READER" --json >"$LAB/log.json" 2>"$LAB/log.err" || true
  if msg=$(python3 - "$LAB/log.json" "$LAB/genac.json" <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1]))
log = d.get("log")
if not isinstance(log, list) or not log:
    sys.exit(f"no log records: {d.get('log')!r} {d.get('log_error')!r}")
r = log[0]
want = {"record": 1, "amount": 4200, "currency": 208, "country": 208, "date": "2025-11-22",
        "type": "00", "ac_type": "aac"}
bad = [f"{k}: {r.get(k)!r}" for k, v in want.items() if r.get(k) != v]
if r.get("values", {}).get("9F02") != "000000004200":
    bad.append(f"values: {r.get('values')!r}")
ex = json.load(open(sys.argv[2]))["exchanges"]
m = re.search(r"9F3602([0-9A-F]{4})", ex[2]["data"]) if ex[2]["sw"] == "9000" else None
if m is None:
    bad.append(f"GENERATE AC: {ex[2]!r}")
elif int(m.group(1), 16) != (int(r["atc"], 16) + 0x100) & 0xFFFF:
    bad.append(f"ATC skew: answer {m.group(1)}, log {r['atc']}")
if bad:
    sys.exit("; ".join(bad))
PY
  ); then pass "$1"; else fail "$1: $msg $(head -c 200 "$LAB/log.err")"; fi
}
check_log "log: card read --json shows the record; the GENERATE AC answer's ATC is +0100"
"$K" card read --reader "$READER" >"$LAB/log.txt" 2>&1 || true
expect_text "$LAB/log.txt" "Transaction log: +SFI 11, [1-5] of 5 records" "log: the human summary"
expect_text "$LAB/log.txt" "2025-11-22 +amount 4200 \(currency 208\) +type 00 +ATC [0-9A-F]{4} +aac" \
  "log: the human summary shows the record"

# 4. the card process restarts (no faults): the state file kept the log
lab_insert "$PROF"
check_log "log: kept in the state file across a restart of the card"
finish
