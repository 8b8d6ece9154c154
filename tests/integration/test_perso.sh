#!/usr/bin/env bash
# Integration test of the personalization bench (`kortvagt perso`) against an
# isolated SoftHSM2 token (hsm_env.sh) with IMKs loaded by the key ceremony:
#   - every template personalizes; the virtual card loads the profile
#     (`kortvagt vcard --check`);
#   - the certificates recover under the CA key file (capk.json, test CA E1)
#     and the ICC certificate carries the profile's ICC key (`perso check`);
#   - the ICC master keys in the profile equal an independent openssl
#     computation from the IMK (EMV option A: 3DES-ECB of Y and Y xor FF);
#   - the issuer private key is in the token, sensitive and not extractable;
#   - a tampered issuer certificate fails the check; bad arguments exit 2.
set -uo pipefail

: "${KORTVAGT:?set KORTVAGT to the kortvagt binary}"
KV_SOURCE_DIR=${KV_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck source=tests/integration/hsm_env.sh
. "$KV_SOURCE_DIR/tests/integration/hsm_env.sh"

# shellcheck source=tests/integration/cli_checks.sh
. "$KV_SOURCE_DIR/tests/integration/cli_checks.sh"
TPL=$KV_SOURCE_DIR/tests/data/templates
CAPK=$KV_SOURCE_DIR/tests/data/capk/capk.json
CAKEY=$KV_SOURCE_DIR/tests/data/capk/kortvagt-test-ca-e1.pem

# expect WHAT RC [TEXT]: the last kv's exit code is RC and its output contains TEXT
expect() {
  local what=$1 want_rc=$2 text=${3:-}
  if [ "$rc" -ne "$want_rc" ]; then
    fail "$what: exit $rc, want $want_rc; out: $out; err: $err"
  elif [ -n "$text" ] && ! printf '%s\n%s' "$out" "$err" | grep -qF -- "$text"; then
    fail "$what: output lacks '$text'; out: $out; err: $err"
  else
    pass "$what"
  fi
}
# json FILE EXPR: evaluate a python expression on the JSON document d
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

K2=0123456789ABCDEFFEDCBA9876543210 # tests/data/VECTORS.md test IMK (KCV 08D7)
K_CVC3=01234567899876543210012345678998

# reference: option A ICC MK = 3DES-ECB(IMK, Y) || 3DES-ECB(IMK, Y xor FF..FF)
tdes() { printf '%s' "$2" | xxd -r -p | openssl enc -des-ede-ecb -K "$1" -nopad | xxd -p | tr a-f A-F; }
ref_mk() { # IMK PAN PSN
  local d="$2$3" y
  y=${d: -16}
  printf '%s%s' "$(tdes "$1" "$y")" "$(tdes "$1" "$(printf '%016X' $((16#$y ^ 16#FFFFFFFFFFFFFFFF)))")"
}
# DES parity bits (the low bit of each byte) do not count
noparity() { python3 -c "import sys; b=bytes.fromhex(sys.argv[1]); print(bytes(x & 0xFE for x in b).hex().upper())" "$1"; }

if kv_hsm_import imk-ac des2 imk 08D7 "$K2" >/dev/null 2>&1; then pass "import imk-ac"; else fail "import imk-ac"; fi
if kv_hsm_import imk-cvc3 des2 imk-cvc3 "" "$K_CVC3" >/dev/null 2>&1; then pass "import imk-cvc3"; else fail "import imk-cvc3"; fi

VISA_PAN=4761730000000011
MC_PAN=5413330000000019

# ---- every template ----
for oda in sda dda cda; do
  P=$OUT/visa_$oda.json
  kv "perso_$oda" "" perso card --template "$TPL/visa_contact_$oda.json" --out "$P" --imk imk-ac \
    --pan $VISA_PAN --psn 01 --expiry 3012 --ca-key "$CAKEY"
  expect "perso card visa $oda" 0 "ODA $oda"
  kv "vcheck_$oda" "" vcard --profile "$P" --check
  expect "vcard --check visa $oda" 0
  kv "pcheck_$oda" "" perso check --profile "$P" --capk "$CAPK" --json
  if [ "$oda" = sda ]; then
    expect "perso check visa $oda (issuer cert, SSAD)" 0 '"ssad":"ok"'
  else
    expect "perso check visa $oda (issuer cert, ICC cert = profile key)" 0 '"icc_key_matches_profile":"ok"'
  fi
  mk=$(json "$P" "d['keys']['icc_mk_ac']")
  want=$(ref_mk $K2 $VISA_PAN 01)
  if [ "$(noparity "$mk")" = "$(noparity "$want")" ]; then
    pass "visa $oda: ICC AC MK equals the openssl option A derivation"
  else
    fail "visa $oda: ICC AC MK $mk, want $want"
  fi
  aip=$(json "$P" "d['applications'][0]['aip']")
  case $oda in sda) w=5C00 ;; dda) w=3C00 ;; cda) w=3D00 ;; esac
  if [ "$aip" = "$w" ]; then pass "visa $oda: AIP $aip"; else fail "visa $oda: AIP $aip, want $w"; fi
done
mode=$(stat -c %a "$OUT/visa_dda.json")
if [ "$mode" = 600 ]; then pass "profile mode 600"; else fail "profile mode $mode, want 600"; fi
if grep -q '"value": "1234"' "$OUT/visa_dda.json"; then pass "lab PIN 1234 by default"; else fail "lab PIN missing"; fi

# the issuer key was created once and reused
kv perso_again "" perso card --template "$TPL/visa_contact_dda.json" --out "$OUT/again.json" \
  --imk imk-ac --pan $VISA_PAN --psn 01 --expiry 3012 --ca-key "$CAKEY" --json
expect "perso reuses the issuer key" 0 '"issuer_key_created":false'

# ---- contactless CVC3 card and CVN 18 ----
P=$OUT/mc.json
kv perso_mc "" perso card --template "$TPL/mc_contactless_cvc3.json" --out "$P" --imk imk-ac \
  --cvc3-imk imk-cvc3 --pan $MC_PAN --psn 00 --expiry 3012 --ca-key "$CAKEY"
expect "perso card mastercard contactless (CDA, CVC3)" 0 "CVC3"
kv vcheck_mc "" vcard --profile "$P" --check
expect "vcard --check mastercard" 0
kv pcheck_mc "" perso check --profile "$P" --capk "$CAPK"
expect "perso check mastercard" 0 "ICC certificate: ok"
mk=$(json "$P" "d['keys']['icc_mk_cvc3']")
want=$(ref_mk $K_CVC3 $MC_PAN 00)
if [ "$(noparity "$mk")" = "$(noparity "$want")" ]; then pass "CVC3 ICC key equals the openssl derivation"; else fail "CVC3 key $mk, want $want"; fi
if [ "$(json "$P" "d['keys']['cvn']")" = 16 ]; then pass "mastercard template: CVN 16 (M/Chip), no Visa IAD"; else fail "mastercard CVN $(json "$P" "d['keys']['cvn']")"; fi
kv perso_mc_cvn10 "" perso card --template "$TPL/mc_contactless_cvc3.json" --out "$OUT/x.json" --imk imk-ac \
  --cvc3-imk imk-cvc3 --pan $MC_PAN --psn 00 --expiry 3012 --cvn 10 --ca-key "$CAKEY"
expect "--cvn 10 (Visa) on the Mastercard template is a usage error" 2 "does not fit the template's personality"
kv perso_mc_nocvc3 "" perso card --template "$TPL/mc_contactless_cvc3.json" --out "$OUT/x.json" \
  --imk imk-ac --pan $MC_PAN --psn 00 --expiry 3012 --ca-key "$CAKEY"
expect "a CVC3 template without --cvc3-imk is a usage error" 2 "--cvc3-imk"

kv perso_18 "" perso card --template "$TPL/visa_contact_dda.json" --out "$OUT/cvn18.json" \
  --imk imk-ac --pan $VISA_PAN --psn 01 --expiry 3012 --cvn 18 --ca-key "$CAKEY"
expect "perso card CVN 18" 0 "CVN 18"
if [ "$(json "$OUT/cvn18.json" "d['keys']['cvn']")" = 18 ]; then pass "CVN 18 in the profile"; else fail "CVN 18 not in the profile"; fi

# ---- one service code for 57 and 5F30 (perso card --service-code) ----
kv perso_221 "" perso card --template "$TPL/visa_contact_sda.json" --out "$OUT/sc221.json" --imk imk-ac \
  --pan $VISA_PAN --psn 01 --expiry 3012 --service-code 221 --ca-key "$CAKEY"
expect "perso card --service-code 221" 0
rec=$(json "$OUT/sc221.json" "' '.join(r['hex'] for r in d['applications'][0]['records'])")
case $rec in *D3012221*5F30020221*) pass "service code 221 in 57 and 5F30" ;; *) fail "service code 221: $rec" ;; esac
kv pcheck_221 "" perso check --profile "$OUT/sc221.json" --capk "$CAPK"
expect "perso check: consistent" 0 "consistency: ok"

# ---- CCD CVN 6: an AES-128 ICC master key from an AES IMK (clear in a perso card profile) ----
K_AES=2B7E151628AED2A6ABF7158809CF4F3C # the lab's imk-ac-aes (FIPS-197 example key)
if kv_hsm_import imk-ac-aes aes128 imk "" "$K_AES" >/dev/null 2>&1; then pass "import imk-ac-aes"; else fail "import imk-ac-aes"; fi
kv perso_ccd6 "" perso card --template "$TPL/ccd_contact.json" --out "$OUT/ccd6.json" --imk imk-ac \
  --imk-aes imk-ac-aes --cvn 6 --pan 5019990000000018 --psn 02 --expiry 3012 --ca-key "$CAKEY"
expect "perso card CCD CVN 6" 0 "CVN 6 (EMV CCD)"
# reference: EMV Book 2 A1.4.3 option C, AES-128-ECB(IMK)[PAN || PSN left-padded with '0' to 32 digits]
want=$(echo 00000000000000501999000000001802 | xxd -r -p |
  openssl enc -aes-128-ecb -K "$K_AES" -nopad | xxd -p | tr a-f A-F)
mk=$(json "$OUT/ccd6.json" "d['keys']['icc_mk_ac']")
if [ -n "$want" ] && [ "$mk" = "$want" ]; then pass "CVN 6 ICC AC MK equals the openssl AES derivation"; else fail "CVN 6 MK $mk, want $want"; fi

# ---- PIN from stdin ----
kv perso_pin "4321
" perso card --template "$TPL/visa_contact_sda.json" --out "$OUT/pin.json" --imk imk-ac \
  --pan $VISA_PAN --psn 01 --expiry 3012 --ca-key "$CAKEY" --pin-stdin
expect "perso card --pin-stdin" 0
if [ "$(json "$OUT/pin.json" "d['pin']['value']")" = 4321 ]; then pass "PIN from stdin in the profile"; else fail "PIN from stdin not used"; fi
if printf '%s%s' "$out" "$err" | grep -q 4321; then fail "PIN printed"; else pass "PIN not printed"; fi

# ---- negative: tampered issuer certificate ----
kv perso_tamper "" perso card --template "$TPL/visa_contact_dda.json" --out "$OUT/tampered.json" \
  --imk imk-ac --pan $VISA_PAN --psn 01 --expiry 3012 --ca-key "$CAKEY" --tamper issuer-cert
expect "perso card --tamper issuer-cert" 0
kv pcheck_tamper "" perso check --profile "$OUT/tampered.json" --capk "$CAPK" --json
expect "tampered issuer certificate fails the check" 1 '"ok":false'

# ---- the issuer key in the HSM ----
kv ikey "" perso issuer-key --json
expect "issuer private key: private parts not readable" 0 '"private_parts_readable":false'
if printf '%s' "$out" | grep -q '"CKA_PRIVATE_EXPONENT":"CKR_ATTRIBUTE_SENSITIVE"'; then
  pass "CKA_PRIVATE_EXPONENT read refused (CKR_ATTRIBUTE_SENSITIVE)"
else
  fail "CKA_PRIVATE_EXPONENT probe: $out"
fi
kv ikey_none "" perso issuer-key --label no-such-key
expect "unknown issuer key" 2 "no-such-key"

# ---- usage errors ----
kv help "" perso --help
expect "perso --help" 0 "Usage"
kv help2 "" perso card --help
expect "perso card --help" 0 "Usage"
kv u1 "" perso card --template "$TPL/visa_contact_dda.json" --out "$OUT/u.json" --pan $VISA_PAN --psn 01 --expiry 3012
expect "missing --imk" 2 "--imk"
kv u2 "" perso card --template "$TPL/visa_contact_dda.json" --out "$OUT/u.json" --imk imk-ac --pan $VISA_PAN --psn 1 --expiry 3012
expect "bad --psn" 2 "psn"
kv u3 "" perso card --template "$TPL/visa_contact_dda.json" --out "$OUT/u.json" --imk imk-ac --pan $VISA_PAN --psn 01 --expiry 3013
expect "bad --expiry month" 2 "expiry"
kv u4 "" perso card --template "$TPL/visa_contact_dda.json" --out "$OUT/u.json" --imk imk-ac --pan $VISA_PAN --psn 01 --expiry 3012 --oda xda
expect "bad --oda" 2 "--oda"
kv u5 "" perso card --template "$OUT/nope.json" --out "$OUT/u.json" --imk imk-ac --pan $VISA_PAN --psn 01 --expiry 3012
expect "missing template" 2 "--template"
kv u6 "" perso card --template "$TPL/visa_contact_dda.json" --out "$OUT/u.json" --imk no-such-imk --pan $VISA_PAN --psn 01 --expiry 3012 --ca-key "$CAKEY"
if [ "$rc" -ne 0 ] && printf '%s' "$err" | grep -q no-such-imk; then pass "unknown IMK named"; else fail "unknown IMK: rc $rc err $err"; fi
kv u7 "" perso frobnicate
expect "unknown perso command" 2 "frobnicate"

printf '%d checks, %d failed\n' "$checks" "$fails"
[ "$fails" -eq 0 ]
