#!/usr/bin/env bash
# kortvagt authorize / card settings / evidence against a real SoftHSM2 token:
# the HSM-verified factors (cvc2, pin_online with PVV, chip_cryptogram, cvc3)
# with the public vectors of tests/data/VECTORS.md, the JSON contract of src/RULES.md §1, card
# settings, reversal, evidence show/verify/export, a one-byte tamper of the
# store file, and no PAN, PIN or PIN block in the store file or the output.
set -euo pipefail
. "$KV_SOURCE_DIR/tests/integration/hsm_env.sh"
. "$KV_SOURCE_DIR/tests/integration/authorize_common.sh"

# --- help and usage ---------------------------------------------------------
"$K" authorize --help | grep -q "Exit codes" || fail "authorize --help"
"$K" evidence --help | grep -q "verify" || fail "evidence --help"
"$K" card settings --help | grep -q -- "--unblock-sca" || fail "card settings --help"
set +e
"$K" authorize 2>"$W/err"; rc=$?
set -e
[ $rc -eq 2 ] || fail "authorize without a file: exit $rc"

# --- contactless exemption and the JSON shape ------------------------------
r=$(auth_json "$(req contactless 35000 "Shop A" 5411 '')")
[ "$r" = '{"decision":"approve","reason":"contactless_low_value","rule":"RTS Art. 11","sca":{"satisfied":false,"categories":[],"dynamic_linking":null},"exemption":"contactless_low_value","counters":{"contactless_count":1},"evidence":"1"}' ] ||
  fail "contactless response: $r"
r=$(auth_json "$(req contactless 35001 "Shop A" 5411 '')")
expect "$r" decision sca_required "past the single max"
# human output masks nothing it should not show: no PAN at all
printf '%s\n' "$(req contactless 100 "Shop A" 5411 '')" | "$K" authorize - >"$W/human.out"
grep -q "^decision   approve" "$W/human.out" || fail "human output: $(cat "$W/human.out")"

# --- cvc2 through the HSM: card data, not SCA --------------------------------
CVC2=$("$K" cvv generate --key cvk --pan "$PAN_A" --expiry 2812 --service-code 000 --json |
  grep -o '"cvv":"[0-9]*"' | grep -o '[0-9][0-9][0-9]')
[ -n "$CVC2" ] || fail "no CVC2 from kortvagt cvv generate"
BAD=$(printf '%03d' $(((10#$CVC2 + 1) % 1000)))
r=$(auth_json "$(req ecommerce 10000 "Shop A" 5411 "{\"type\":\"cvc2\",\"cvk\":\"cvk\",\"value\":\"$CVC2\"},{\"type\":\"card_number\",\"verified\":true}")")
expect "$r" decision approve "cvc2 ok"
expect "$r" reason low_value_remote
expect "$r" satisfied false "cvc2 + card number is not SCA"
r=$(auth_json "$(req ecommerce 30000 "Shop A" 5411 "{\"type\":\"cvc2\",\"cvk\":\"cvk\",\"value\":\"$CVC2\"}")")
expect "$r" decision sca_required "cvc2 above the remote single max"
r=$(auth_json "$(req ecommerce 10000 "Shop A" 5411 "{\"type\":\"cvc2\",\"cvk\":\"cvk\",\"value\":\"$BAD\"}")")
expect "$r" decision decline "cvc2 wrong"
expect "$r" reason cvc_invalid

# --- online PIN: PIN block (format 4, AES TPK) -> Visa PVV (tests/data/VECTORS.md) ------
PAN_P=1122334455667788
PB=$(printf '4524\n' | "$K" pinblock encode --format 4 --pan $PAN_P --key tpk --json |
  grep -o '"block":"[0-9A-Fa-f]*"' | sed 's/.*:"//; s/"//')
PB_BAD=$(printf '1234\n' | "$K" pinblock encode --format 4 --pan $PAN_P --key tpk --json |
  grep -o '"block":"[0-9A-Fa-f]*"' | sed 's/.*:"//; s/"//')
[ ${#PB} -eq 32 ] && [ ${#PB_BAD} -eq 32 ] || fail "pinblock encode: '$PB' '$PB_BAD'"
pin() { printf '{"type":"pin_online","pin_block":"%s","format":4,"pin_key":"tpk","pvk":"pvk","pvki":1,"pvv":"8523"}' "$1"; }
CHIP='{"type":"chip_cryptogram","verified":true}'
r=$(auth_json "$(req atm 50000 "ATM 1" 6011 "$(pin "$PB"),$CHIP" $PAN_P)")
expect "$r" decision approve "online PIN ok"
expect "$r" reason sca_satisfied
ID_PIN=$(field "$r" evidence)
r=$(auth_json "$(req atm 50000 "ATM 1" 6011 "$(pin "$PB_BAD"),$CHIP" $PAN_P)")
expect "$r" reason pin_incorrect "wrong PIN"
# the same PIN block again is a replay
r=$(auth_json "$(req atm 50000 "ATM 1" 6011 "$(pin "$PB"),$CHIP" $PAN_P)")
expect "$r" reason pin_incorrect "replayed PIN block"
# the evidence of the approved one says online_pin, proven
"$K" evidence show "$ID_PIN" --json >"$W/show.json" || fail "evidence show $ID_PIN"
grep -q '"verification":{"method":"online_pin","factors":\["pin_online","chip_cryptogram"\],"proven":true' "$W/show.json" ||
  fail "online PIN evidence: $(cat "$W/show.json")"

# --- ARQC through the HSM (CVN 18) ------------------------------------------
PAN_C=9901234567890123
# AC data of CVN 18: 29 bytes of standard data, AIP 5800, ATC 001C, the IAD 06 01 12 03 CVR
# A4 00 00 (offline PIN performed, not failed): since issue 11 an offline PIN is proven only by
# the CVR inside the verified cryptogram (src/RULES.md §2), no longer by the request's word
DATA=000000010000000000000000020800000000000208260301003912345678
DATA=${DATA:0:58}5800001C06011203A40000
ARQC=$("$K" arqc generate --key imk-ac --pan $PAN_C --psn 45 --cvn 18 --atc 001C --data $DATA --json |
  grep -o '"arqc":"[0-9A-F]*"' | sed 's/.*:"//; s/"//')
[ ${#ARQC} -eq 16 ] || fail "arqc generate: '$ARQC'"
arqc() {
  printf '{"type":"chip_cryptogram","imk":"imk-ac","cvn":18,"arqc":"%s","data":"%s","atc":"%s"}' "$1" "$DATA" "${2:-001C}"
}
reqc() { req "$1" "$2" "$3" "$4" "$5" $PAN_C | sed 's/"psn":"00"/"psn":"45"/'; }
r=$(auth_json "$(reqc contact 120000 "Shop A" 5411 "{\"type\":\"pin_offline\",\"verified\":true},$(arqc "$ARQC")")")
expect "$r" reason sca_satisfied "chip + PIN"
ID_CHIP=$(field "$r" evidence)
"$K" evidence show "$ID_CHIP" --json | grep -q '"method":"offline_pin","factors":\["pin_offline","chip_cryptogram"\],"proven":true' ||
  fail "offline PIN evidence"
r=$(auth_json "$(reqc contact 120000 "Shop A" 5411 "{\"type\":\"pin_offline\",\"verified\":true},$(arqc "$ARQC")")")
expect "$r" reason cryptogram_invalid "replayed ARQC"
r=$(auth_json "$(reqc contact 120000 "Shop A" 5411 "{\"type\":\"pin_offline\",\"verified\":true},$(arqc "$ARQC" 001D)")")
expect "$r" reason cryptogram_invalid "ARQC with another ATC"

# --- CVC3 (tests/data/VECTORS.md: 29488) ------------------------------------------------
cvc3() {
  printf '{"type":"cvc3","imk":"imk-cvc3","atc":"005E","un":"00000899","track":"5123456789012345D35121010000000000000F","value":"%s"}' "$1"
}
r=$(auth_json "$(req contactless 9900 "Kiosk" 5411 "$(cvc3 29489)" 5123456789012345)")
expect "$r" reason cvc_invalid "wrong CVC3"
r=$(auth_json "$(req contactless 9900 "Kiosk" 5411 "$(cvc3 29488)" 5123456789012345)")
expect "$r" decision approve "CVC3 29488"
grep -q '"categories":\["possession"\]' <<<"$r" || fail "cvc3 is possession: $r"

# --- the contract: unknown and missing fields, unknown keys ------------------
set +e
printf '%s\n' "$(req contactless 100 "Shop A" 5411 '' "$PAN_A" 2026-03-01T10:00:00Z ',"tip":5')" |
  "$K" authorize - --json >/dev/null 2>"$W/err"
rc=$?
set -e
[ $rc -eq 2 ] && grep -q "tip: unknown field" "$W/err" || fail "unknown field: exit $rc $(cat "$W/err")"
set +e
printf '{"card":{"pan":"%s"},"channel":"contact","amount":1,"currency":"DKK","merchant":{"name":"A","mcc":"5411"}}\n' $PAN_A |
  "$K" authorize - >/dev/null 2>"$W/err"
rc=$?
set -e
[ $rc -eq 2 ] && grep -q "card.expiry: missing" "$W/err" || fail "missing field: exit $rc $(cat "$W/err")"
set +e
auth_nokey=$(printf '%s\n' "$(req ecommerce 100 "Shop A" 5411 '{"type":"cvc2","cvk":"no-such-key","value":"123"}')" |
  "$K" authorize - --json 2>"$W/err")
rc=$?
set -e
[ $rc -eq 5 ] && grep -q "no-such-key" "$W/err" || fail "unknown key: exit $rc $(cat "$W/err") $auth_nokey"

# --- card settings: e-commerce off, child limits, the 5-failure block --------
PAN_K=4571000000000003
"$K" card settings --pan $PAN_K --ecommerce off --json | grep -q '"ecommerce_enabled":false' || fail "ecommerce off"
r=$(auth_json "$(req ecommerce 100 "Shop A" 5411 '' $PAN_K)")
expect "$r" reason ecommerce_disabled
"$K" card settings --pan $PAN_K --ecommerce on --spend-single-max 20000 --spend-daily-max 25000 >/dev/null
r=$(auth_json "$(req contactless 20001 "Shop A" 5411 '' $PAN_K)")
expect "$r" reason limit_card "child single"
r=$(auth_json "$(req contactless 20000 "Shop A" 5411 '' $PAN_K)")
expect "$r" decision approve "child single at max"
r=$(auth_json "$(req contactless 5001 "Shop A" 5411 '' $PAN_K)")
expect "$r" reason limit_card "child daily"
set +e
"$K" card settings --pan $PAN_K --spend-daily-max lots 2>"$W/err"
rc=$?
set -e
[ $rc -eq 2 ] && grep -q -- "--spend-daily-max" "$W/err" || fail "bad limit: exit $rc"
for i in 1 2 3 4; do
  r=$(auth_json "$(req ecommerce 100 "Shop A" 5411 "{\"type\":\"cvc2\",\"cvk\":\"cvk\",\"value\":\"000\"}" $PAN_K)")
done
r=$(auth_json "$(req ecommerce 100 "Shop A" 5411 '{"type":"sms_otp","verified":false}' $PAN_K)")
expect "$r" reason sca_failed_attempts "5th failure"
r=$(auth_json "$(req contactless 100 "Shop A" 5411 '' $PAN_K)")
expect "$r" reason sca_failed_attempts "blocked after 5"
"$K" card settings --pan $PAN_K --json | grep -q '"sca_blocked":true' || fail "settings show blocked"
"$K" card settings --pan $PAN_K --unblock-sca >/dev/null
r=$(auth_json "$(req contactless 100 "Shop A" 5411 '' $PAN_K)")
expect "$r" decision approve "after --unblock-sca"

# --- reversal ----------------------------------------------------------------
r=$(auth_json "$(req contactless 100 "Tamper Shop" 5411 '')")
ID_T=$(field "$r" evidence)
before=$(field "$r" contactless_count)
rv=$("$K" authorize --reverse "$ID_T" --json) || fail "reverse $ID_T"
expect "$rv" contactless_count $((before - 1)) "reversal"
set +e
"$K" authorize --reverse "$ID_T" >/dev/null 2>&1; rc1=$?
"$K" authorize --reverse 99999 >/dev/null 2>&1; rc2=$?
set -e
[ $rc1 -eq 7 ] && [ $rc2 -eq 2 ] || fail "reverse twice: $rc1, unknown id: $rc2"

# --- evidence: verify, export ----------------------------------------------
v=$("$K" evidence verify --json) || fail "verify: $v"
expect "$v" intact true
N=$(field "$v" records)
[ "$N" -ge 30 ] || fail "only $N records"
"$K" evidence export >"$W/export.jsonl"
[ "$(wc -l <"$W/export.jsonl")" -eq "$N" ] || fail "export: $(wc -l <"$W/export.jsonl") lines, $N records"
"$K" evidence export --from 2026-03-01T00:00:00Z --to 2026-03-01T10:00:00Z >"$W/none.jsonl"
[ ! -s "$W/none.jsonl" ] || fail "export range [00:00, 10:00) should be empty"
set +e
"$K" evidence export --from yesterday >/dev/null 2>&1; rc=$?
set -e
[ $rc -eq 2 ] || fail "export --from yesterday: exit $rc"

# --- no PAN, PIN, PIN block or CVC in the store file or the output -----------
DB="$W/store.db"
[ ! -s "$DB-wal" ] || fail "WAL not checkpointed after the last close"
for s in "$PAN_A" "$PAN_P" "$PAN_C" "$PAN_K" 5123456789012345 "$PB" "$PB_BAD" \
  "$(tr 'A-F' 'a-f' <<<"$PB")" '"4524"' '"8523"' "\"$CVC2\"" '"29488"'; do
  if grep -a -q -F -- "$s" "$DB"; then fail "store file holds '$s'"; fi
  if grep -a -q -F -- "$s" "$W/log"; then fail "output holds '$s'"; fi
done
# the PIN block as raw bytes
pb_bytes=$(sed 's/../\\x&/g' <<<"$PB")
if LC_ALL=C grep -a -q -P -- "$pb_bytes" "$DB"; then fail "store file holds the PIN block bytes"; fi

# --- tamper: one byte of one record in the file ------------------------------
# "Tamper Shop" is in one evidence record as JSON (the reversed authorization)
off=$(LC_ALL=C grep -a -b -o '"name":"Tamper Shop"' "$DB" | head -1 | cut -d: -f1)
[ -n "$off" ] || fail "record with Tamper Shop not found in the file"
printf 'X' | dd of="$DB" bs=1 seek=$((off + 9)) count=1 conv=notrunc status=none
set +e
out=$("$K" evidence verify 2>&1)
rc=$?
set -e
[ $rc -eq 1 ] || fail "verify after tamper: exit $rc: $out"
grep -q "broken at record $ID_T:" <<<"$out" || fail "verify names record $ID_T: $out"
set +e
"$K" evidence show "$ID_T" >/dev/null 2>&1; rc=$?
set -e
[ $rc -eq 1 ] || fail "show of the tampered record: exit $rc"
echo "test_authorize: ok ($N records)"
