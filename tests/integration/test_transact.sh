#!/usr/bin/env bash
# End to end `kortvagt card transact` through pcscd + vpcd + the virtual card
# + SoftHSM2 (run under scripts/lab.sh run -- ctest). Keys are imported into
# the lab's token under labels unique to this test and deleted at the end.
#
# Part A builds keyed card profiles here (ICC MKs derived with openssl from
# the test IMKs of apdu/vcard/CRYPTO.md §6: the same value the token derives):
# plaintext PIN, wrong PIN, blocked PIN, wrong ARQC (card of another IMK),
# unknown CA index, ATM online PIN (PVV), contactless below/above the CVM
# limit with CVC3, card removed. Part B needs `kortvagt perso card` (SDA,
# DDA, CDA, enciphered PIN, tampered issuer certificate): it runs when perso
# exists and reports SKIP lines otherwise.
# shellcheck disable=SC1091
. "$(dirname "$0")/lab_common.sh"

W=$(mktemp -d /tmp/kv_transact.XXXXXX)
SUF=$$
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
echo "$IMKC_HEX" | "$K" key import --label "$IMKC" --type des2 --usage imk >/dev/null 2>&1 || fail "import CVC3 IMK"
echo 0123456789ABCDEF0123456789ABCDEF | "$K" key import --label "$PVK" --type des2 --usage pvk >/dev/null 2>&1 || fail "import PVK"

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
profile "$VISA" "$W/visa_ca.json" "a=d['applications'][0]; a['aip']='5C00'; a['records'][1]['tags'] += [['8F','FE'],['90','00'*176],['9F32','03'],['93','00'*144]]; d['keys']={'cvn':10,'icc_mk_ac':'$MK'}"
profile "$MC" "$W/mc.json" "d['keys']={'cvn':10,'icc_mk_ac':'$(icc_mk "$IMK_HEX" 5413330000000019 00)','icc_mk_cvc3':'$MKC'}"

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

# --- A2 wrong PIN: counter decreases, CVR says failed; the CVM list (8E 4103 4203
# 5E03 1F03) then falls back to signature, as EMV Book 3 §10.5 asks ---
echo 9999 | txn 0 wrong_pin --amount 100 --currency DKK --pin-stdin
field wrong_pin "d['cvr']['offline_pin_performed']" True
field wrong_pin "d['cvr']['offline_pin_failed']" True
field wrong_pin "d['cvr']['offline_pin_verified']" False
field wrong_pin "d['cvm']['method']" signature
ptc=$("$K" card read --json 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin)['pin_try_counter'])")
[ "$ptc" = 2 ] && pass "PIN try counter 3 -> 2" || fail "PIN try counter is $ptc, wanted 2"

# --- A3 blocked PIN: two more wrong, then the counter is 0 and the PIN is skipped ---
echo 9999 | txn 0 wrong_pin2 --amount 100 --currency DKK --pin-stdin
echo 9999 | txn 1 wrong_pin3 --amount 100 --currency DKK --pin-stdin
field wrong_pin3 "d['cvr']['pin_try_limit_exceeded']" True
echo 1234 | txn 1 blocked --amount 100 --currency DKK --pin-stdin
field blocked "d['cvr']['pin_try_limit_exceeded']" True
field blocked "d['tvr'][4:6]" "20"
field blocked "d['decision']" declined

# --- A4 wrong ARQC: the card's keys come from another IMK ---
lab_insert "$W/visa.json"
echo 1234 | expect_rc 1 wrong_arqc "$K" card transact --imk "$IMK2" --capk "$SRC/tests/data/capk/capk.json" \
  --amount 500 --currency DKK --pin-stdin --json
cp "$LAB/last.out" "$W/wrong_arqc.json"
field wrong_arqc "d['arqc']['verified']" False
field wrong_arqc "d['decision']" declined

# --- A5 unknown CA index: ODA fails with the TVR bit, no crash ---
lab_insert "$W/visa_ca.json"
echo 1234 | txn 1 unknown_ca --amount 500 --currency DKK --pin-stdin
field unknown_ca "d['oda']['method']" sda
field unknown_ca "d['oda']['result']" failed
field unknown_ca "int(d['tvr'][0:2],16) & 0x40 != 0" True

# --- A6 ATM: online PIN against the PVV ---
lab_insert "$W/visa.json"
PVV=$(echo 1234 | "$K" pvv generate --key "$PVK" --pan 4761730000000011 --pvki 1 2>/dev/null | grep -Eo '[0-9]{4}' | tail -1)
echo 1234 | txn 0 atm --amount 50000 --currency DKK --type cash --profile atm --pin-stdin \
  --pvk "$PVK" --pvv "$PVV" --pvki 1
field atm "d['cvm']['method']" online_pin
field atm "d['cvm']['result']" successful
field atm "d['decision']" approved
echo 4321 | txn 1 atm_wrong --amount 50000 --currency DKK --type cash --profile atm --pin-stdin \
  --pvk "$PVK" --pvv "$PVV" --pvki 1
field atm_wrong "d['cvm']['result']" failed

# --- A7 contactless below and above the CVM limit, CVC3 ---
lab_insert "$W/mc.json"
txn 0 cl_below --amount 20000 --currency DKK --contactless
field cl_below "d['cvm']['method']" no_cvm
field cl_below "d['cvc3']['verified']" True
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

# --- Part B: personalized cards (needs kortvagt perso card) ---
if "$K" perso card --help >/dev/null 2>&1 && [ -d "$SRC/tests/data/templates" ]; then
  for t in visa_contact_sda visa_contact_dda visa_contact_cda; do
    if "$K" perso card --template "$SRC/tests/data/templates/$t.json" --imk "$IMK" \
      --out "$W/$t.json" >/dev/null 2>"$W/$t.err"; then
      lab_insert "$W/$t.json"
      echo 1234 | txn 0 "$t" --amount 12345 --currency DKK --pin-stdin
      field "$t" "d['oda']['result']" passed
    else
      fail "perso $t: $(head -c 200 "$W/$t.err")"
    fi
  done
else
  echo "SKIP: kortvagt perso card not available: SDA/DDA/CDA, enciphered PIN and tampered certificate cases not run"
fi

finish
