#!/usr/bin/env bash
# Issuer scripts through `kortvagt card transact` (EMV Book 3 §10.10, Book 2
# §9), end to end through pcscd + vpcd + the virtual card + SoftHSM2: each
# command of --issuer-script built in the HSM for the card's CVN (MAC under
# the SMI session key of imk-smi, the new PIN of PIN CHANGE under the SMC
# session key of imk-smc), sent as 71 (before the 2nd GENERATE AC) or 72
# (after, --script-after), with a good MAC and with a bad one (a key the card
# does not know: 6988, TVR "script processing failed"), and an issuer host's
# own template (--script-tlv). Cards: emv_cards.sh (CVN 6 has no script
# method in hsm/issuer_script.c yet).
# shellcheck disable=SC1091
. "$(dirname "$0")/lab_common.sh"
. "$(dirname "$0")/emv_cards.sh"
BADSMI=emvscript-bad-smi-$$
trap '"$K" key delete --label "$BADSMI" >/dev/null 2>&1 || true; rm -rf "$W"' EXIT
# a secure-messaging integrity key the card does not know: every MAC under it is bad
echo 0F0E0D0C0B0A09080706050403020100 | "$K" key import --label "$BADSMI" --type des2 \
  --usage imk-smi >/dev/null 2>&1 || fail "import the wrong SMI key"

ALL="v10 v18 v22 m16 m17 c5"
# shellcheck disable=SC2086
emv_perso $ALL
# shellcheck disable=SC2086
emv_multi "$W/multi.json" $ALL
lab_insert "$W/multi.json" || fail "insert the multi-application card"

script_ok() { # NAME TEMPLATE
  fields "$1" "[(s['template'], s['sw'], s['result']) for s in d['scripts']]" "[('$2', '9000', 'successful')]"
  fields "$1" "(int(d['tsi'][0:2], 16) & 0x04, int(d['tvr'][8:10], 16) & 0x30, d['outcome'])" \
    "(4, 0, 'approved_online')"
}
script_bad() { # NAME TEMPLATE
  local bit=32
  [ "$2" = 72 ] && bit=16
  fields "$1" "[(s['template'], s['sw'], s['result']) for s in d['scripts']]" "[('$2', '6988', 'failed')]"
  fields "$1" "int(d['tvr'][8:10], 16) & 0x30" "$bit"
}

# PIN CHANGE (new PIN enciphered under the SMC key): PIN and new PIN on two stdin lines
printf '1234\n4321\n' | txn 0 v10_pin_change v10 --amount 1000 --pin-stdin --issuer-script pin-change
script_ok v10_pin_change 71
echo 4321 | txn 0 v10_new_pin v10 --amount 1000 --pin-stdin
fields v10_new_pin "(d['cvm']['result'], d['cvr']['offline_pin_verified'])" "('successful', True)"
printf '4321\n1234\n' | txn 0 v10_pin_back v10 --amount 1000 --pin-stdin --issuer-script pin-change \
  --script-after
script_ok v10_pin_back 72
printf '1234\n5678\n' | txn 0 m16_pin_change m16 --amount 1000 --pin-stdin --issuer-script pin-change
script_ok m16_pin_change 71
echo 5678 | txn 0 m16_new_pin m16 --amount 1000 --pin-stdin
fields m16_new_pin "d['cvr']['offline_pin']" verified

# PIN UNBLOCK, APPLICATION UNBLOCK: good MACs, before and after the 2nd GENERATE AC
for c in "v18 pin-unblock 71" "v22 app-unblock 71" "c5 pin-unblock 72" "m17 app-unblock 72" \
  "v22 pin-unblock 72" "c5 app-unblock 71"; do
  # shellcheck disable=SC2086
  set -- $c
  after=
  [ "$3" = 72 ] && after=--script-after
  echo 1234 | txn 0 "$1_$2_$3" "$1" --amount 1000 --pin-stdin --issuer-script "$2" $after
  script_ok "$1_$2_$3" "$3"
done

# bad MACs: 6988 and the TVR bit; the card stays as it was
for c in "c5 pin-unblock 71" "v18 app-block 71" "m16 card-block 72" "v10 pin-change 71" \
  "m17 app-unblock 71" "v22 card-block 71"; do
  # shellcheck disable=SC2086
  set -- $c
  after=
  [ "$3" = 72 ] && after=--script-after
  printf '1234\n5678\n' | txn 0 "$1_bad_$2" "$1" --amount 1000 --pin-stdin --issuer-script "$2" \
    --imk-smi "$BADSMI" $after
  script_bad "$1_bad_$2" "$3"
done
echo 1234 | txn 0 v10_after_bad v10 --amount 1000 --pin-stdin
fields v10_after_bad "d['cvm']['result']" successful

# an issuer host's own template (--script-tlv): 9F18 script id, one command with a bad MAC
echo 1234 | txn 0 c5_tlv c5 --amount 1000 --pin-stdin \
  --script-tlv 71169F180400000001860D84180000080102030405060708
fields c5_tlv "[(s['template'], s['id'], s['ins'], s['sw']) for s in d['scripts']]" \
  "[('71', '00000001', '18', '6988')]"

# APPLICATION BLOCK (72, good MAC): that application is gone, the others stay
echo 1234 | txn 0 m17_app_block m17 --amount 1000 --pin-stdin --issuer-script app-block --script-after
script_ok m17_app_block 72
echo 1234 | expect_rc 4 "m17 blocked: not selected" "$K" card transact --no-authorize \
  --capk "$CAPK" --select "$(aid_of m17)" --currency DKK --amount 1000 --pin-stdin
echo 1234 | txn 0 m16_after_block m16 --amount 1000 --pin-stdin
# CARD BLOCK (good MAC) last: no application of the card answers any more
echo 1234 | txn 0 c5_card_block c5 --amount 1000 --pin-stdin --issuer-script card-block --script-after
script_ok c5_card_block 72
echo 1234 | expect_rc 4 "card blocked: no application" "$K" card transact --no-authorize \
  --capk "$CAPK" --currency DKK --amount 1000 --pin-stdin

# usage: no scripts without an issuer; the new PIN only from stdin
expect_rc 2 "scripts need an issuer" "$K" card transact --amount 1 --currency DKK --unable-online \
  --issuer-script app-block
expect_rc 2 "unknown script" "$K" card transact --amount 1 --currency DKK --issuer-script put-data
echo 1234 | expect_rc 2 "pin-change without a new PIN" "$K" card transact --amount 1 --currency DKK \
  --pin-stdin --issuer-script pin-change
expect_rc 2 "bad --script-tlv" "$K" card transact --amount 1 --currency DKK --script-tlv 7101
fields_check
finish
