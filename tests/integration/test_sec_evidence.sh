#!/usr/bin/env bash
# Issue 11, the evidence findings, against the real CLI, daemon, SoftHSM2 token and store:
#  1  an ARQC whose CVR (inside the HSM-verified cryptogram) says "offline PIN not performed",
#     sent with pin_offline "verified": true, gives evidence with the PIN not proven, and the
#     liability rules treat the payment as unauthenticated; the same with a CVR that says
#     "verified" proves the PIN through the CVR;
#  4  PIN attempts are counted in `authorize`: the 4th try after 3 wrong PINs is declined
#     pin_tries_exceeded without HSM work; a counter reset in the database file is
#     detected (store_tampered);
#  5  the SCA failure block is checked before any HSM work: a blocked card with a request
#     naming a key that does not exist still declines sca_failed_attempts (no HSM error);
#  6  kortvagtd refuses an "at" more than [daemon] max_clock_skew from its clock (400
#     invalid_field naming at); the CLI keeps honouring "at"; the record holds both times;
# 11  a repeated request_id returns the stored answer and is counted once (CLI and daemon).
set -euo pipefail
. "$KV_SOURCE_DIR/tests/integration/hsm_env.sh"
. "$KV_SOURCE_DIR/tests/integration/authorize_common.sh"

cleanup() {
  [ -n "${DAEMON_UP:-}" ] && daemon_stop ev >/dev/null 2>&1
  kv_hsm_cleanup
}
trap cleanup EXIT

# every check reports on its own (so that a run against an old build shows each finding
# failing), and the test fails at the end when any did
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
  return 1
}
set +e

jq_() { # jq_ FILE PYEXPR: print the Python expression over d = the JSON of FILE
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}
show() { "$K" evidence show "$1" --json >"$W/show.json" || fail "evidence show $1"; }

# --- finding 1: the CVR of the verified ARQC decides whether an offline PIN is proven -------
PAN_C=9901234567890123
# standard data: 9F02 9F03 9F1A 95 5F2A 9A 9C 9F37 (29 bytes), then AIP and ATC
SD=000000120000""000000000000""0208""0000000000""0208""260301""00""12345678
AIP_ATC=5800001C
NOPIN=${SD}${AIP_ATC}06011203A00000 # IAD 06 01 12 03 CVR A0 00 00: offline PIN not performed
PINOK=${SD}${AIP_ATC}06011203A40000 # CVR A4 00 00: offline PIN performed, not failed
[ ${#NOPIN} -eq 80 ] || fail "test data: AC data is ${#NOPIN} hex digits"
arqc_for() { # arqc_for DATA ATC
  "$K" arqc generate --key imk-ac --pan $PAN_C --psn 45 --cvn 18 --atc "$2" --data "$1" --json |
    grep -o '"arqc":"[0-9A-F]*"' | sed 's/.*:"//; s/"//'
}
chip() { printf '{"type":"chip_cryptogram","imk":"imk-ac","cvn":18,"arqc":"%s","data":"%s","atc":"%s"}' "$1" "$2" "$3"; }
reqc() { req "$1" "$2" "$3" "$4" "$5" $PAN_C | sed 's/"psn":"00"/"psn":"45"/'; }
PINUP='{"type":"pin_offline","verified":true}'

A1=$(arqc_for $NOPIN 001C)
[ ${#A1} -eq 16 ] || fail "arqc generate: '$A1'"
r=$(auth_json "$(reqc contact 120000 "Shop A" 5411 "$PINUP,$(chip "$A1" $NOPIN 001C)")")
expect "$r" decision approve "chip + asserted PIN (SCA of src/RULES.md §1 counts upstream factors)"
ID_NOPIN=$(field "$r" evidence)
show "$ID_NOPIN"
v=$(jq_ "$W/show.json" "d['record']['verification']['proven']")
[ "$v" = False ] || fail "finding 1: CVR 'offline PIN not performed' still proven: $(cat "$W/show.json")"
v=$(jq_ "$W/show.json" "[(f['type'], f['proven'], f['proof']) for f in d['record']['factors']]")
[ "$v" = "[('pin_offline', False, 'asserted'), ('chip_cryptogram', True, 'hsm')]" ] ||
  fail "finding 1: factor provenance: $v"
v=$(jq_ "$W/show.json" "d['record']['factors'][1]['cvr']['offline_pin']")
[ "$v" = not_performed ] || fail "finding 1: CVR decoded as '$v'"
v=$(jq_ "$W/show.json" "d['record']['verification']['proven_factors']")
[ "$v" = "['chip_cryptogram']" ] || fail "finding 1: proven_factors $v"

A2=$(arqc_for $PINOK 001D)
r=$(auth_json "$(reqc contact 120000 "Shop A" 5411 "$PINUP,$(chip "$A2" $PINOK 001D)")")
expect "$r" decision approve "chip + PIN the CVR shows"
ID_PINOK=$(field "$r" evidence)
show "$ID_PINOK"
v=$(jq_ "$W/show.json" "(d['record']['verification']['method'], d['record']['verification']['proven'], d['record']['factors'][0]['proof'])")
[ "$v" = "('offline_pin', True, 'cvr')" ] || fail "finding 1: CVR-verified PIN: $v"

# the liability rules read the records: not proven -> unauthenticated (row 11), proven -> § 100 stk. 3
cat >"$W/case.json" <<JSON
{"currency": "DKK", "discovered_at": "2026-03-01T10:00:00Z", "objection_at": "2026-03-02T09:00:00Z",
 "cards": [{"id": "A", "credential": "pin-1", "blocked_at": null}],
 "transactions": [
  {"id": "nopin", "card": "A", "at": "2026-02-28T20:00:00Z", "debited_at": "2026-02-28T20:00:00Z",
   "amount": 120000, "channel": "contact", "evidence": "$ID_NOPIN", "verification": {"method": "none"}},
  {"id": "pinok", "card": "A", "at": "2026-02-28T21:00:00Z", "debited_at": "2026-02-28T21:00:00Z",
   "amount": 120000, "channel": "contact", "evidence": "$ID_PINOK", "verification": {"method": "none"}}]}
JSON
"$K" liability assess "$W/case.json" --json >"$W/liab.json" 2>"$W/liab.err" ||
  fail "liability assess: $(cat "$W/liab.err")"
v=$(jq_ "$W/liab.json" "{t['id']: t['class'] for t in d['transactions']}")
[ "$v" = "{'nopin': 'unauthenticated', 'pinok': 'credential_used'}" ] ||
  fail "finding 1: liability classes $v ($(cat "$W/liab.json"))"

# --- finding 5: the SCA block comes before any HSM work ---------------------------------------
PAN_S=4761739001010200
BAD='{"type":"pin_offline","verified":false}'
for i in 1 2 3 4 5; do
  r=$(auth_json "$(req contactless 100 "Shop A" 5411 "$BAD" $PAN_S)")
done
expect "$r" reason sca_failed_attempts "the 5th failure blocks"
out=$(printf '%s\n' "$(req ecommerce 100 "Shop A" 5411 '{"type":"cvc2","cvk":"no-such-key","value":"123"}' $PAN_S)" |
  "$K" authorize - --json 2>"$W/err")
rc=$?
[ $rc -eq 0 ] || fail "finding 5: a blocked card still reached the HSM (exit $rc): $(cat "$W/err")"
expect "$out" reason sca_failed_attempts "finding 5: blocked before the HSM"
ID_BLK=$(field "$out" evidence)
show "$ID_BLK"
v=$(jq_ "$W/show.json" "d['record']['factors'][0]['outcome']")
[ "$v" = not_checked ] || fail "finding 5: the factor was '$v'"

# --- finding 4 (authorize side): PIN attempts, then a counter reset in the file ---------------
PAN_P=1122334455667788
pb() { printf '%s\n' "$1" | "$K" pinblock encode --format 4 --pan $PAN_P --key tpk --json |
  grep -o '"block":"[0-9A-Fa-f]*"' | sed 's/.*:"//; s/"//'; }
pin() { printf '{"type":"pin_online","pin_block":"%s","format":4,"pin_key":"tpk","pvk":"pvk","pvki":1,"pvv":"8523"}' "$1"; }
CHIP_UP='{"type":"chip_cryptogram","verified":true}'
for i in 1 2 3; do
  r=$(auth_json "$(req atm 1000 "ATM 1" 6011 "$(pin "$(pb 1234)"),$CHIP_UP" $PAN_P)")
  expect "$r" reason pin_incorrect "wrong PIN $i"
done
r=$(auth_json "$(req atm 1000 "ATM 1" 6011 "$(pin "$(pb 4524)"),$CHIP_UP" $PAN_P)")
expect "$r" reason pin_tries_exceeded "finding 4: the right PIN after 3 wrong ones"
# resetting the counter in the database file breaks the row's MAC
python3 - "${KORTVAGT_STORE#sqlite:}" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
n = db.execute("UPDATE cards SET pin_failures = 0 WHERE pin_failures > 0").rowcount
db.commit()
assert n >= 1, n
PY
[ $? -eq 0 ] || fail "could not reset pin_failures in the store file"
out=$(printf '%s\n' "$(req atm 1000 "ATM 1" 6011 "$(pin "$(pb 4524)"),$CHIP_UP" $PAN_P)" |
  "$K" authorize - --json 2>"$W/err")
rc=$?
[ $rc -eq 0 ] || fail "tampered row: exit $rc $(cat "$W/err")"
expect "$out" reason store_tampered "finding 11: a counter reset in the file"
grep -q "store_tampered" "$W/err" || fail "store_tampered is not logged: $(cat "$W/err")"

# --- finding 11: request_id, CLI ------------------------------------------------------------
PAN_R=4761739001010218
RQ=$(req contactless 100 "Shop R" 5411 '' $PAN_R 2026-03-01T10:00:00Z ',"request_id":"pos-17/0001"')
r1=$(auth_json "$RQ")
r2=$(auth_json "$RQ")
[ "$r1" = "$r2" ] || fail "request_id repeat: '$r1' then '$r2'"
expect "$r2" contactless_count 1 "a repeat is counted once"
r3=$(auth_json "$(req contactless 100 "Shop R" 5411 '' $PAN_R)")
expect "$r3" contactless_count 2 "the next request counts"
printf '%s\n' "$(req contactless 999 "Shop R" 5411 '' $PAN_R 2026-03-01T10:00:00Z ',"request_id":"pos-17/0001"')" |
  "$K" authorize - --json >/dev/null 2>"$W/err"
rc=$?
[ $rc -ne 0 ] && grep -q "request_id" "$W/err" || fail "request_id reused for another request: exit $rc $(cat "$W/err")"

# --- finding 6 and 11 in kortvagtd ------------------------------------------------------------
. "$KV_SOURCE_DIR/tests/integration/daemon_common.sh"
declare -F req_fixed_at >/dev/null || req_fixed_at() { req "$@"; }
PORT=$(free_port)
U="http://127.0.0.1:$PORT"
daemon_start ev "$PORT" --workers 1
DAEMON_UP=1
OLD='2026-03-01T10:00:00Z'
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
PAN_D=4761739001010226
o=$(http POST "$U/v1/authorize" "$(req_fixed_at contactless 100 "Shop D" 5411 '' $PAN_D $OLD)")
expect_status "$o" 400 invalid_field "finding 6: an 'at' nine months off"
grep -q '"message":"[^"]*at' <<<"$o" || fail "finding 6: the message does not name at: $o"
o=$(http POST "$U/v1/authorize" "$(req_fixed_at contactless 100 "Shop D" 5411 '' $PAN_D $NOW ',"request_id":"d-1"')")
expect_status "$o" 200 "" "an 'at' within the skew"
expect "${o#* }" contactless_count 1 "daemon first"
ID_D=$(field "${o#* }" evidence)
o2=$(http POST "$U/v1/authorize" "$(req_fixed_at contactless 100 "Shop D" 5411 '' $PAN_D $NOW ',"request_id":"d-1"')")
[ "${o2#* }" = "${o#* }" ] || fail "finding 11: daemon repeat: '$o' then '$o2'"
show "$ID_D"
v=$(jq_ "$W/show.json" "(d['record']['clock']['basis'], d['record']['clock']['request_at'] == '$NOW', 'server' in d['record']['clock'])")
[ "$v" = "('server', True, True)" ] || fail "finding 6: the record's times: $v"
daemon_stop ev
DAEMON_UP=
if [ "$failures" -ne 0 ]; then
  echo "test_sec_evidence: $failures checks failed" >&2
  exit 1
fi
echo "test_sec_evidence: all checks passed"
