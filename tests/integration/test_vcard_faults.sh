#!/usr/bin/env bash
# The virtual card's test-lab faults and transaction log through pcscd + vpcd
# (tests/data/README.md "Faults", "Transaction log"):
#   - a READ RECORD answered 6A83 by a fault: card read fails with the
#     documented error (exit 4, "record not found");
#   - a tear (the card leaves mid-command): card read says "card removed"
#     (exit 3), and once the card is back the next read works;
#   - an ATC skew on the 2nd GET DATA 9F36 of a session: +0100 in the answer;
#   - the transaction log: an offline decline (AAC) sent with card apdu writes
#     a record that card read --json shows under "log", also after the card
#     process restarted (the lab's state file keeps it).
. "$(dirname "$0")/lab_common.sh"
F=$SRC/tests/data/faults

# 1. a READ RECORD fault
lab_insert "$DEFAULT_PROFILE" --fault "$F/read_record_6A83.json"
expect_rc 4 "READ RECORD fault 6A83: card read fails" "$K" card read --reader "$READER"
expect_text "$LAB/last.err" "record not found" "READ RECORD fault 6A83: the error names it"

# 2. a tear at the first READ RECORD (once)
lab_insert "$DEFAULT_PROFILE" --fault "$F/tear_read_record.json"
expect_rc 3 "tear: card read fails" "$K" card read --reader "$READER"
expect_text "$LAB/last.err" "card removed" "tear: \"card removed\""
read_ok() { "$K" card read --reader "$READER" >"$LAB/after_tear.out" 2>&1; }
if wait_for 10 read_ok; then pass "tear: the card is back and the next read works"; else
  fail "tear: no good read within 10 s: $(head -c 300 "$LAB/after_tear.out")"; fi

# 3. the ATC as the card reports it, skewed on the 2nd GET DATA 9F36 only
lab_insert "$DEFAULT_PROFILE" --fault "$F/atc_skew_2nd.json"
"$K" card apdu --reader "$READER" --json 80CA9F3600 80CA9F3600 >"$LAB/skew.json" 2>"$LAB/skew.err"
if python3 - "$LAB/skew.json" <<'PY'; then pass "ATC skew: the 2nd answer is +0100"; else fail "ATC skew: $(head -c 300 "$LAB/skew.json")"; fi
import json, sys
ex = json.load(open(sys.argv[1]))["exchanges"]
a, b = (int(e["data"][6:10], 16) for e in ex)
sys.exit(0 if b == (a + 0x100) & 0xFFFF and ex[1]["sw"] == "9000" else 1)
PY

# 4. the transaction log
PROF=$F/card_log.json
SELECT=00A4040007A000000003101000
GPO=80A8000002830000
# CDOL1 data: amount 42.00, other 0, country 0208, TVR 0, currency 0208, 2025-11-22, type 00, UN
GENAC_AAC=80AE00001D000000004200000000000000020800000000000208251122001122334400
lab_insert "$PROF"
expect_rc 0 "log: an offline decline through card apdu" "$K" card apdu --reader "$READER" \
  "$SELECT" "$GPO" "$GENAC_AAC"
expect_text "$LAB/last.out" "9000" "log: GENERATE AC answered"
check_log() { # NAME
  "$K" card read --reader "$READER" --json >"$LAB/log.json" 2>"$LAB/log.err" || true
  if python3 - "$LAB/log.json" <<'PY'; then pass "$1"; else fail "$1: $(head -c 400 "$LAB/log.json") $(head -c 200 "$LAB/log.err")"; fi
import json, sys
d = json.load(open(sys.argv[1]))
log = d.get("log")
ok = isinstance(log, list) and len(log) >= 1
if ok:
    r = log[0]
    ok = (r["record"] == 1 and r["amount"] == 4200 and r["currency"] == 208 and
          r["country"] == 208 and r["date"] == "2025-11-22" and r["type"] == "00" and
          r["ac_type"] == "aac" and r["values"]["9F02"] == "000000004200")
sys.exit(0 if ok else 1)
PY
}
check_log "log: card read --json shows the record"
"$K" card read --reader "$READER" >"$LAB/log.txt" 2>&1 || true
expect_text "$LAB/log.txt" "Transaction log: +SFI 11, [0-9]+ of 5 records" "log: the human summary"
expect_text "$LAB/log.txt" "2025-11-22 +amount 4200" "log: the human summary shows the record"
lab_insert "$PROF"
check_log "log: kept in the state file across a restart of the card"
finish
