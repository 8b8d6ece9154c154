#!/usr/bin/env bash
# End to end `kortvagt card transact` through pcscd + vpcd + the virtual card
# + SoftHSM2 (run under scripts/lab.sh run -- ctest). Keys are imported into
# the lab's token under labels unique to this test and deleted at the end.
#
# Part A builds keyed card profiles here (ICC MKs derived with openssl from
# the test IMKs of apdu/vcard/CRYPTO.md §6: the same value the token derives):
# plaintext PIN, wrong PIN, blocked PIN, wrong ARQC (card of another IMK),
# unknown CA index, ATM online PIN (PVV), contactless below/above the CVM
# limit with CVC3, card removed. Part B personalizes cards with the bench
# (`kortvagt perso --issuer --card`, keys wrapped under the lab's transport
# key, CA key in the token): SDA, DDA, CDA with enciphered PIN, tampered
# issuer certificate, unknown CA index, wrong ARQC, ATM with the perso PVV,
# contactless below/above the CVM limit, removal mid-transaction, a batch.
# shellcheck disable=SC1091
. "$(dirname "$0")/lab_common.sh"

W=$(mktemp -d /tmp/kv_transact.XXXXXX)
SUF=$$
# the authorization engine's store: this test's own (counters, ATM day sums and
# failed-attempt counts start from zero on every run)
export KORTVAGT_STORE="sqlite:$W/txn.db"
IMK=txn-imk-ac-$SUF
IMK2=txn-imk-other-$SUF
IMKC=txn-imk-cvc3-$SUF
PVK=txn-pvk-$SUF
cleanup() {
  for l in "$IMK" "$IMK2" "$IMKC" "$PVK"; do "$K" key delete --label "$l" >/dev/null 2>&1 || true; done
  rm -rf "$W"
}
trap cleanup EXIT

IMK_HEX=0123456789ABCDEFFEDCBA9876543210
IMKC_HEX=01234567899876543210012345678998
echo "$IMK_HEX" | "$K" key import --label "$IMK" --type des2 --usage imk >/dev/null 2>&1 || fail "import IMK"
echo 0F0E0D0C0B0A09080706050403020100 | "$K" key import --label "$IMK2" --type des2 --usage imk >/dev/null 2>&1 || fail "import IMK2"
echo "$IMKC_HEX" | "$K" key import --label "$IMKC" --type des2 --usage imk-cvc3 >/dev/null 2>&1 || fail "import CVC3 IMK"
echo 0123456789ABCDEFFEDCBA9876543210 | "$K" key import --label "$PVK" --type des2 --usage pvk >/dev/null 2>&1 || fail "import PVK"

# ICC MK option A (EMV Book 2 A1.4.1): 3DES(IMK)(Y) || 3DES(IMK)(Y xor FF..)
icc_mk() { # IMK PAN PSN
  local y yx l r
  y=$(printf '%s%s' "$2" "$3" | tail -c 16)
  yx=$(python3 -c "print('%016X' % (int('$y', 16) ^ 0xFFFFFFFFFFFFFFFF))")
  l=$(echo "$y" | xxd -r -p | openssl enc -des-ede -K "$1" -nopad 2>/dev/null | xxd -p)
  r=$(echo "$yx" | xxd -r -p | openssl enc -des-ede -K "$1" -nopad 2>/dev/null | xxd -p)
  echo "$l$r"
}
MK=$(icc_mk "$IMK_HEX" 4761730000000011 01)
MKC=$(icc_mk "$IMKC_HEX" 5413330000000019 00)

# profile SRC OUT PYTHON-EDIT: a copy of a sample profile with keys added
profile() {
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d.pop("expect", None)
exec(sys.argv[3])
json.dump(d, open(sys.argv[2], "w"), indent=1)
PY
}
VISA=$SRC/tests/data/visa_contact_pse.json
MC=$SRC/tests/data/mc_contactless_ppse.json
profile "$VISA" "$W/visa.json" "d['applications'][0]['aip']='1C00'; d['keys']={'cvn':10,'icc_mk_ac':'$MK'}"
# unknown CA index: SDA announced (AIP 40), 8F FE (no such CA key), dummy 90/93
profile "$VISA" "$W/visa_ca.json" "a=d['applications'][0]; a['aip']='5C00'; a['records'][1]['tags'] += [['8F','FE'],['90','00'*48],['9F32','03'],['93','00'*16]]; d['keys']={'cvn':10,'icc_mk_ac':'$MK'}"
profile "$MC" "$W/mc.json" "a=d['applications'][0]; b=bytes.fromhex(a['aip']); a['aip']=bytes([b[0] & 0x9E, b[1]]).hex().upper(); d['keys']={'cvn':16,'icc_mk_ac':'$(icc_mk "$IMK_HEX" 5413330000000019 00)','icc_mk_cvc3':'$MKC'}"

txn() { # EXPECTED-RC NAME ARGS... (stdin: PIN)
  local want=$1 name=$2
  shift 2
  expect_rc "$want" "$name" "$K" card transact --imk "$IMK" --imk-cvc3 "$IMKC" \
    --capk "$SRC/tests/data/capk/capk.json" --json "$@"
  cp "$LAB/last.out" "$W/$name.json" 2>/dev/null || true
}
jq_() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }
field() { # NAME EXPR WANT
  local got
  got=$(jq_ "$W/$1.json" "$2" 2>/dev/null || echo "?")
  if [ "$got" = "$3" ]; then pass "$1: $2 = $3"; else fail "$1: $2 = $got, wanted $3"; fi
}

# --- A1 contact, plaintext offline PIN ---
lab_insert "$W/visa.json"
echo 1234 | txn 0 plain --amount 12345 --currency DKK --pin-stdin
field plain "d['cvm']['method']" offline_pin_plain
field plain "d['cvm']['result']" successful
field plain "d['arqc']['verified']" True
field plain "d['arpc']['sent']" True
field plain "d['card_decision']" tc
field plain "d['cvr']['offline_pin_verified']" True
field plain "d['decision']" approved
field plain "d['pan']" "476173******0011"
field plain "d['arpc']['via']" external_authenticate
# the authorization (src/RULES.md §1 response) with its evidence record
field plain "d['authorization']['decision']" approve
field plain "d['authorization']['sca']['satisfied']" True
field plain "d['authorization']['evidence'] != ''" True
EV=$(jq_ "$W/plain.json" "d['authorization']['evidence']" 2>/dev/null)
expect_rc 0 "evidence show $EV" "$K" evidence show "$EV" --json
cp "$LAB/last.out" "$W/ev_plain.json"
field ev_plain "d['intact']" True
field ev_plain "[(f['type'], f['source'], f['outcome']) for f in d['record']['factors']]" "[('pin_offline', 'upstream', 'verified'), ('chip_cryptogram', 'hsm', 'verified')]"
field ev_plain "d['record']['verification']['method']" offline_pin
field ev_plain "d['record']['verification']['proven']" True
field ev_plain "d['record']['request']['channel']" contact
field ev_plain "d['record']['request']['merchant']['mcc']" 5411

# --- A2 wrong PIN: counter decreases, CVR says failed; the CVM list (8E 4103 4203
# 5E03 1F03) then falls back to signature, as EMV Book 3 §10.5 asks ---
echo 9999 | txn 1 wrong_pin --amount 100 --currency DKK --pin-stdin
field wrong_pin "d['cvr']['offline_pin_performed']" True
# signature is no SCA element: a contact payment without SCA is declined by the engine
field wrong_pin "d['authorization']['decision'] != 'approve'" True
field wrong_pin "d['decision']" declined
field wrong_pin "d['card_decision']" aac
field wrong_pin "d['cvr']['offline_pin_failed']" True
field wrong_pin "d['cvr']['offline_pin_verified']" False
field wrong_pin "d['cvm']['method']" signature
ptc=$("$K" card read --json 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin)['pin_try_counter'])")
[ "$ptc" = 2 ] && pass "PIN try counter 3 -> 2" || fail "PIN try counter is $ptc, wanted 2"

# --- A3 blocked PIN: two more wrong, then the counter is 0 and the PIN is skipped ---
echo 9999 | txn 1 wrong_pin2 --amount 100 --currency DKK --pin-stdin
echo 9999 | txn 1 wrong_pin3 --amount 100 --currency DKK --pin-stdin
field wrong_pin3 "d['cvr']['pin_try_limit_exceeded']" True
echo 1234 | txn 1 blocked --amount 100 --currency DKK --pin-stdin
field blocked "d['cvr']['pin_try_limit_exceeded']" True
field blocked "d['tvr'][4:6]" "20"
field blocked "d['decision']" declined
# the issuer sees the blocked PIN in the CVR of the verified ARQC (src/RULES.md §1 pin_blocked)
field blocked "d['authorization']['decision']" decline
field blocked "d['authorization']['reason']" pin_blocked

# --- A4 wrong ARQC: the card's keys come from another IMK ---
lab_insert "$W/visa.json"
echo 1234 | expect_rc 1 wrong_arqc "$K" card transact --imk "$IMK2" --capk "$SRC/tests/data/capk/capk.json" \
  --amount 500 --currency DKK --pin-stdin --json
cp "$LAB/last.out" "$W/wrong_arqc.json"
field wrong_arqc "d['arqc']['verified']" False
field wrong_arqc "d['decision']" declined
field wrong_arqc "d['authorization']['decision']" decline
field wrong_arqc "d['authorization']['reason']" cryptogram_invalid

# --- A5 unknown CA index: ODA fails with the TVR bit, no crash ---
lab_insert "$W/visa_ca.json"
echo 1234 | txn 1 unknown_ca --amount 500 --currency DKK --pin-stdin
field unknown_ca "d['oda']['method']" sda
field unknown_ca "d['oda']['result']" failed
field unknown_ca "int(d['tvr'][0:2],16) & 0x40 != 0" True

# --- A6 ATM: online PIN against the PVV (a fresh card: the A3 card's PIN is blocked) ---
cp "$W/visa.json" "$W/visa_atm.json"
lab_insert "$W/visa_atm.json"
PVV=$(echo 1234 | "$K" pvv generate --key "$PVK" --pan 4761730000000011 --pvki 1 2>/dev/null | grep -Eo '[0-9]{4}' | tail -1)
echo 1234 | txn 0 atm --amount 50000 --currency DKK --type cash --profile atm --pin-stdin \
  --pvk "$PVK" --pvv "$PVV" --pvki 1
field atm "d['cvm']['method']" online_pin
field atm "d['cvm']['result']" successful
field atm "d['decision']" approved
field atm "d['authorization']['decision']" approve
field atm "d['authorization']['evidence'] != ''" True
EVA=$(jq_ "$W/atm.json" "d['authorization']['evidence']" 2>/dev/null)
expect_rc 0 "evidence show $EVA (ATM)" "$K" evidence show "$EVA" --json
cp "$LAB/last.out" "$W/ev_atm.json"
field ev_atm "d['record']['request']['channel']" atm
field ev_atm "d['record']['request']['merchant']['mcc']" 6011
field ev_atm "'pin_online' in d['record']['verification']['factors']" True
echo 4321 | txn 1 atm_wrong --amount 50000 --currency DKK --type cash --profile atm --pin-stdin \
  --pvk "$PVK" --pvv "$PVV" --pvki 1
field atm_wrong "d['cvm']['result']" failed

# --- A7 contactless below and above the CVM limit, CVC3 ---
lab_insert "$W/mc.json"
txn 0 cl_below --amount 20000 --currency DKK --contactless
field cl_below "d['cvm']['method']" no_cvm
field cl_below "d['cvc3']['verified']" True
# a Mastercard card speaks M/Chip: CVN 16 with the Mastercard IAD, verified as such
field cl_below "(d['cvn'], d['arqc']['verified'], d['cvr']['layout'])" "(16, True, 'mchip')"
field cl_below "d['authorization']['exemption']" contactless_low_value
# --no-authorize: the card and the HSM alone, no authorization object
txn 0 cl_noauth --amount 20000 --currency DKK --contactless --no-authorize
field cl_noauth "'authorization' in d" False
field cl_noauth "d['decision']" approved
echo 1234 | txn 1 cl_above_nopvk --amount 50000 --currency DKK --contactless --pin-stdin
field cl_above_nopvk "d['cvm']['method']" online_pin
PVVM=$(echo 1234 | "$K" pvv generate --key "$PVK" --pan 5413330000000019 --pvki 1 2>/dev/null | grep -Eo '[0-9]{4}' | tail -1)
echo 1234 | txn 0 cl_above --amount 50000 --currency DKK --contactless --pin-stdin \
  --pvk "$PVK" --pvv "$PVVM" --pvki 1
field cl_above "d['cvm']['result']" successful
field cl_above "d['decision']" approved

# --- A8 card removed: clean error, exit 3, nothing approved on stdout ---
lab_eject --hard
echo 1234 | expect_rc 3 removed "$K" card transact --imk "$IMK" --amount 100 --currency DKK --pin-stdin --json
if grep -q approved "$LAB/last.out"; then fail "removed: output says approved"; else pass "removed: no approval"; fi

# --- usage errors ---
expect_rc 2 "no amount" "$K" card transact --currency DKK
expect_rc 2 "bad currency" "$K" card transact --amount 1 --currency XX
expect_rc 0 "help" "$K" card transact --help
expect_rc 2 "bad mcc" "$K" card transact --amount 1 --currency DKK --mcc 12
expect_rc 2 "--merchant with --no-authorize" "$K" card transact --amount 1 --currency DKK --merchant x --no-authorize

# --- Part B: cards from the personalization bench (`kortvagt perso --issuer --card`):
# ICC MKs derived in the token from this test's IMKs and shipped wrapped under the
# lab's transport key, issuer certificate signed by the lab's CA key in the token,
# PVV/iCVV in track 2 from the HSM. ---
TPL=$SRC/tests/data/templates
issuer_file() { # OUT CA-INDEX
  cat >"$1" <<EOF
{"issuer": "Test bank (TEST ONLY)", "imk_ac": "$IMK", "imk_cvc3": "$IMKC", "cvk": "cvk",
 "pvk": "$PVK", "pvki": 1, "issuer_key": "perso-issuer", "ca_key": "ca-e1", "ca_index": "$2",
 "transport_key": "transport", "cvn": 10}
EOF
}
card_file() { # OUT TEMPLATE PAN PSN ODA
  cat >"$1" <<EOF
{"template": "$TPL/$2.json", "pan": "$3", "psn": "$4", "expiry": "3012", "service_code": "201",
 "pin": "lab", "oda": "$5"}
EOF
}
perso() { # NAME ISSUER CARD [options]
  local name=$1 iss=$2 card=$3
  shift 3
  if "$K" perso --issuer "$iss" --card "$card" --out "$W/p_$name.json" "$@" >"$W/p_$name.out" 2>"$W/p_$name.err"; then
    pass "perso $name"
  else
    fail "perso $name: $(head -c 300 "$W/p_$name.err")"
  fi
}
issuer_file "$W/issuer.json" E1
issuer_file "$W/issuer_fe.json" FE
card_file "$W/c_sda.json" visa_contact_sda 4761730000000011 01 sda
card_file "$W/c_dda.json" visa_contact_dda 4761730000000011 01 dda
card_file "$W/c_cda.json" visa_contact_cda 4761730000000011 01 cda
card_file "$W/c_mc.json" mc_contactless_cvc3 5413330000000019 00 cda
for c in sda dda cda mc; do perso "$c" "$W/issuer.json" "$W/c_$c.json"; done
perso tampered "$W/issuer.json" "$W/c_dda.json" --tamper issuer-cert
perso ca_fe "$W/issuer_fe.json" "$W/c_dda.json"
pf() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@" 2>/dev/null || echo "?"; }

# keys leave the HSM only wrapped: no clear MK in the profile; openssl unwraps it
# with the transport key and gets the option A derivation of the IMK
if [ "$(pf "$W/p_dda.json" "'icc_mk_ac' in d['keys']")" = False ]; then pass "profile: no clear ICC MK"; else fail "profile holds a clear ICC MK"; fi
wr=$(pf "$W/p_dda.json" "d['keys']['icc_mk_ac_wrapped']")
unw=$(echo "$wr" | xxd -r -p | openssl enc -d -id-aes128-wrap -K "$(cat "$LAB/transport.key")" -iv A6A6A6A6A6A6A6A6 2>/dev/null | xxd -p | tr a-f A-F)
np() { python3 -c "import sys; print(bytes(x & 0xFE for x in bytes.fromhex(sys.argv[1])).hex())" "$1" 2>/dev/null; }
if [ -n "$unw" ] && [ "$(np "$unw")" = "$(np "$MK")" ]; then pass "wrapped ICC MK unwraps (RFC 3394) to the option A derivation"; else fail "unwrapped MK '$unw', wanted $MK"; fi
# track 2 discretionary data: PVKI PVV iCVV from the HSM
PVVP=$(pf "$W/p_dda.json" "d['expect']['pvv']")
PVV_REF=$(echo 1234 | "$K" pvv generate --key "$PVK" --pan 4761730000000011 --pvki 1 2>/dev/null | grep -Eo '[0-9]{4}' | tail -1)
if [ "$PVVP" = "$PVV_REF" ]; then pass "PVV $PVVP from perso = pvv generate"; else fail "PVV $PVVP, pvv generate $PVV_REF"; fi
t57=$(pf "$W/p_dda.json" "[r['hex'] for r in d['applications'][0]['records'] if r['sfi']==1][0]")
ICVV=$(pf "$W/p_dda.json" "d['expect']['icvv']")
case "$t57" in *D3012201"1$PVVP$ICVV"*) pass "track 2 (57) carries PVKI 1, PVV, iCVV $ICVV" ;; *) fail "track 2 $t57 lacks 1$PVVP$ICVV" ;; esac

# B1-B3 contact: SDA and DDA with plaintext PIN, CDA with enciphered PIN
for c in sda dda; do
  lab_insert "$W/p_$c.json"
  echo 1234 | txn 0 "b_$c" --amount 12345 --currency DKK --pin-stdin
  field "b_$c" "d['oda']['method']" "$c"
  field "b_$c" "d['oda']['result']" passed
  field "b_$c" "d['cvm']['method']" offline_pin_plain
  field "b_$c" "d['arqc']['verified']" True
  field "b_$c" "d['decision']" approved
  field "b_$c" "d['arpc']['sent']" True
  field "b_$c" "d['authorization']['decision']" approve
done
lab_insert "$W/p_cda.json"
echo 1234 | txn 0 b_cda --amount 12345 --currency DKK --pin-stdin
field b_cda "d['oda']['method']" cda
field b_cda "d['oda']['result']" passed
# the terminal's 9F09 for Visa equals the card's 9F08 (008C): no "different application versions"
field b_cda "int(d['tvr'][2:4],16) & 0x80" 0
field b_cda "d['cvm']['method']" offline_pin_enciphered
field b_cda "d['cvm']['result']" successful
field b_cda "d['cvr']['offline_pin_verified']" True
field b_cda "d['decision']" approved
field b_cda "d['arpc']['sent']" True
field b_cda "d['arpc']['via']" external_authenticate
field b_cda "d['authorization']['decision']" approve
field b_cda "d['authorization']['sca']['satisfied']" True
EVC=$(jq_ "$W/b_cda.json" "d['authorization']['evidence']" 2>/dev/null)
expect_rc 0 "evidence show $EVC (CDA, enciphered PIN)" "$K" evidence show "$EVC" --json
cp "$LAB/last.out" "$W/ev_cda.json"
field ev_cda "'pin_offline' in d['record']['verification']['factors']" True
field ev_cda "d['record']['verification']['method']" offline_pin
# wrong enciphered PIN: the counter goes down, the CVR says failed
echo 9999 | txn 1 b_cda_wrong --amount 100 --currency DKK --pin-stdin
field b_cda_wrong "d['cvr']['offline_pin_failed']" True
field b_cda_wrong "d['cvm']['method']" signature
ptc=$("$K" card read --json 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin)['pin_try_counter'])" 2>/dev/null)
if [ "$ptc" = 2 ]; then pass "perso card: PIN try counter 3 -> 2"; else fail "perso card: PIN try counter $ptc, wanted 2"; fi

# B4 tampered issuer certificate and unknown CA index: ODA fails, TVR bit set
lab_insert "$W/p_tampered.json"
echo 1234 | txn 1 b_tampered --amount 100 --currency DKK --pin-stdin
field b_tampered "d['oda']['result']" failed
field b_tampered "int(d['tvr'][0:2],16) & 0x08 != 0" True
lab_insert "$W/p_ca_fe.json"
echo 1234 | txn 1 b_ca_fe --amount 100 --currency DKK --pin-stdin
field b_ca_fe "d['oda']['result']" failed
field b_ca_fe "int(d['tvr'][0:2],16) & 0x08 != 0" True

# B5 wrong ARQC: verified under another IMK
lab_insert "$W/p_dda.json"
echo 1234 | expect_rc 1 b_wrong_arqc "$K" card transact --imk "$IMK2" --capk "$SRC/tests/data/capk/capk.json" \
  --amount 500 --currency DKK --pin-stdin --json
cp "$LAB/last.out" "$W/b_wrong_arqc.json"
field b_wrong_arqc "d['arqc']['verified']" False
field b_wrong_arqc "d['decision']" declined
field b_wrong_arqc "d['authorization']['decision']" decline

# B6 ATM: online PIN against the PVV that perso computed
echo 1234 | txn 0 b_atm --amount 50000 --currency DKK --type cash --profile atm --pin-stdin \
  --pvk "$PVK" --pvv "$PVVP" --pvki 1
field b_atm "d['cvm']['method']" online_pin
field b_atm "d['cvm']['result']" successful
field b_atm "d['decision']" approved
echo 4321 | txn 1 b_atm_wrong --amount 50000 --currency DKK --type cash --profile atm --pin-stdin \
  --pvk "$PVK" --pvv "$PVVP" --pvki 1
field b_atm_wrong "d['cvm']['result']" failed

# B7 contactless below and above the CVM limit (CVC3 from the wrapped CVC3 key)
lab_insert "$W/p_mc.json"
txn 0 b_cl_below --amount 20000 --currency DKK --contactless
field b_cl_below "d['cvm']['method']" no_cvm
field b_cl_below "d['cvc3']['verified']" True
field b_cl_below "d['decision']" approved
PVVM=$(pf "$W/p_mc.json" "d['expect']['pvv']")
echo 1234 | txn 0 b_cl_above --amount 50000 --currency DKK --contactless --pin-stdin \
  --pvk "$PVK" --pvv "$PVVM" --pvki 1
field b_cl_above "d['cvm']['method']" online_pin
field b_cl_above "d['cvm']['result']" successful
field b_cl_above "d['decision']" approved

# B8 card removed in the middle of the transaction (a slow card, pulled out hard)
lab_insert "$W/p_cda.json" --delay-ms 150
rm -f "$W/b_removed.trace" "$W/b_removed.rc"
(
  echo 1234 | "$K" card transact --imk "$IMK" --capk "$SRC/tests/data/capk/capk.json" --amount 100 \
    --currency DKK --pin-stdin --json --trace "$W/b_removed.trace" >"$W/b_removed.out" 2>"$W/b_removed.err"
  echo $? >"$W/b_removed.rc"
) &
tx=$!
# pulled once the card has answered a few commands (the trace shows them)
tx_under_way() { file_lines_ge "$W/b_removed.trace" 3 || [ -f "$W/b_removed.rc" ]; }
wait_for 120 tx_under_way || fail "removed mid-transaction: the transaction did not start"
lab_eject --hard
wait $tx
rc=$(cat "$W/b_removed.rc")
if [ "$rc" = 3 ]; then pass "removed mid-transaction: exit 3"; else fail "removed mid-transaction: exit $rc ($(head -c 200 "$W/b_removed.err"))"; fi
if grep -q approved "$W/b_removed.out"; then fail "removed mid-transaction: output says approved"; else pass "removed mid-transaction: nothing approved"; fi
# the store: every approval of this test that the card completed, none from the removal
# (an approval the card did not complete is reversed)
lab_insert "$W/p_dda.json"
expect_rc 0 "evidence verify" "$K" evidence verify

# B9 a batch: consecutive Luhn-valid PANs, progress on stderr
if "$K" perso --issuer "$W/issuer.json" --card "$W/c_dda.json" --out "$W/batch.json" --count 3 \
  >"$W/batch.out" 2>"$W/batch.err"; then pass "perso --count 3"; else fail "perso --count 3: $(head -c 200 "$W/batch.err")"; fi
pans=$(for i in 0001 0002 0003; do pf "$W/batch-$i.json" "d['expect']['pan']"; done | tr '\n' ' ')
if [ "$pans" = "4761730000000011 4761730000000029 4761730000000037 " ]; then pass "batch PANs $pans"; else fail "batch PANs $pans"; fi
if [ "$(grep -c '^perso: [123]/3' "$W/batch.err")" = 3 ]; then pass "batch progress lines"; else fail "batch progress: $(cat "$W/batch.err")"; fi
if grep -q 0011 "$W/batch.err" && ! grep -q 4761730000000011 "$W/batch.err"; then pass "progress PANs masked"; else fail "progress PANs not masked"; fi

# usage: bad issuer / card files exit 2 naming the problem
echo '{"imk_ac": "x"}' >"$W/bad_issuer.json"
expect_rc 2 "issuer file without transport_key" "$K" perso --issuer "$W/bad_issuer.json" --card "$W/c_dda.json" --out "$W/x.json"
if grep -q transport_key "$LAB/last.err"; then pass "message names transport_key"; else fail "message: $(cat "$LAB/last.err")"; fi
echo '{"template": "x.json", "pan": "4761730000000012", "expiry": "3012"}' >"$W/bad_card.json"
expect_rc 2 "card file with a bad Luhn digit" "$K" perso --issuer "$W/issuer.json" --card "$W/bad_card.json" --out "$W/x.json"
echo '{"template": "x.json", "pan": "4761730000000011", "expiry": "3012", "pin": "1234"}' >"$W/bad_card2.json"
expect_rc 2 "card file with a PIN value" "$K" perso --issuer "$W/issuer.json" --card "$W/bad_card2.json" --out "$W/x.json"
expect_rc 0 "perso --help" "$K" perso --issuer x --help

finish
