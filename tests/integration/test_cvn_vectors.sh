#!/usr/bin/env bash
# Integration test: every cryptogram version (CVN) through the CLI against a
# real SoftHSM2 token (an isolated one, from hsm_env.sh) with the issuer
# master keys loaded by the key ceremony, as the lab loads them
# (scripts/lab.sh: imk-ac des2, imk-ac-aes aes128, both usage imk):
#   - `arqc verify` of each vector -> match, one flipped digit -> mismatch;
#   - `arqc generate` gives the vector; `arpc generate` gives its ARPC
#     (method 1 with --rc, method 2 with --csu) under the CVN's key;
#   - the key must fit the CVN (an AES IMK for 6, a 3DES one for the rest);
#   - an AES key is an IMK only for the AC role.
# Vectors: tests/tools/emv_vectors.py (independent, python3-cryptography);
# the Visa/Mastercard rows are the published pyemv tests/test_cvn_hsm.py ones.
set -uo pipefail

: "${KORTVAGT:?set KORTVAGT to the kortvagt binary}"
KV_SOURCE_DIR=${KV_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck source=tests/integration/hsm_env.sh
. "$KV_SOURCE_DIR/tests/integration/hsm_env.sh"
# shellcheck source=tests/integration/cli_checks.sh
. "$KV_SOURCE_DIR/tests/integration/cli_checks.sh"

expect() { # NAME WANT_RC WANT_STDOUT
  if [ "$rc" = "$2" ] && [ "$out" = "$3" ]; then
    pass "$1"
  else
    fail "$1 (rc $rc want $2; stdout '$out' want '$3'; stderr '$err')"
  fi
}
expect_err() { # NAME WANT_RC TEXT
  if [ "$rc" = "$2" ] && [[ "$err" == *"$3"* ]]; then
    pass "$1"
  else
    fail "$1 (rc $rc want $2; stderr '$err' should contain '$3')"
  fi
}

for k in "imk des2 imk 0123456789ABCDEFFEDCBA9876543210" \
  "imk-aes aes128 imk 2B7E151628AED2A6ABF7158809CF4F3C"; do
  read -r label type usage hex <<<"$k"
  if o=$(kv_hsm_import "$label" "$type" "$usage" "" "$hex" 2>&1); then
    pass "key import $label ($type, usage $usage)"
  else
    fail "key import $label: $o"
  fi
done
if o=$(kv_hsm_import smi-aes aes128 imk-smi "" 2B7E151628AED2A6ABF7158809CF4F3C 2>&1); then
  fail "an aes128 imk-smi key was stored"
else
  pass "aes128 is an IMK for the AC role only ($o)"
fi

SDV=0000000040000000000000000124800004800001241911050152BF4585 # 9F37 52BF4585
SDM=00000000999900000000000001248000000000012420990600ABCDEF12 # 9F37 ABCDEF12
CCD5=0FA501A00000000000000000000000000F000000000000000000000000000000
CCD6=0FA601A00000000000000000000000000F000000000000000000000000000000
# CVN KEY UN AC-DATA(after SD) AC ARPC-OPTION ARPC
rows=(
  "10 imk 52BF4585 ${SDV}1800001C03A06010 29CCA15AE665FA2E --rc=3030 28993816AFAE4AEB"
  "18 imk 52BF4585 ${SDV}1800001C06011203A0B800 7A788EA6B8A3E733 --csu=00000000 9AF514C1"
  "22 imk 52BF4585 ${SDV}1800001C1F220100A0000000000000000000000000000000000000000000000000000000 BDA9EA6688A8B7CB --csu=00000000 8AFE424B"
  "16 imk ABCDEF12 ${SDM}1800001CA00003220000 24CCF3DEE3158C70 --rc=0010 73F6BBF389A6586C"
  "17 imk ABCDEF12 ${SDM}1800001CA0000322000000000000000322FF EAE8A620A75648D8 --rc=0010 29CF11FBDB9CA650"
  "20 imk ABCDEF12 ${SDM}1800001CA00003220000 CD29615D6452E70E --rc=0010 DFD0956606B68D64"
  "21 imk ABCDEF12 ${SDM}1800001CA0000322000000000000000322FF C30E54BE496CF5E5 --rc=0010 4F51F9CC63CE8B3C"
  "5 imk 52BF4585 ${SDV}1800001C${CCD5} 4CCC98107D2C85CB --csu=00800000 41ABECC5"
  "6 imk-aes 52BF4585 ${SDV}1800001C${CCD6} 853C1FCD782FDCDD --csu=00800000 EBEED730"
)
for row in "${rows[@]}"; do
  read -r cvn key un data ac aarg arpc <<<"$row"
  aopt=${aarg%%=*} aval=${aarg#*=}
  C=(--key "$key" --pan 1234567890123456 --psn 00 --cvn "$cvn" --atc 001C --un "$un")
  kv "v$cvn" "" arqc verify "${C[@]}" --data "$data" --arqc "$ac"
  expect "CVN $cvn ARQC $ac" 0 match
  bad=${ac:0:15}$(printf '%X' $(((16#${ac:15:1} + 1) % 16)))
  kv "b$cvn" "" arqc verify "${C[@]}" --data "$data" --arqc "$bad"
  expect "CVN $cvn ARQC one digit off -> mismatch" 1 mismatch
  kv "g$cvn" "" arqc generate "${C[@]}" --data "$data"
  expect "CVN $cvn ARQC generate" 0 "$ac"
  kv "a$cvn" "" arpc generate "${C[@]}" --arqc "$ac" "$aopt" "$aval"
  expect "CVN $cvn ARPC ${aopt#--} $aval" 0 "$arpc"
done

# the key has to fit the CVN
kv k6 "" arqc verify --key imk --pan 1234567890123456 --psn 00 --cvn 6 --atc 001C --data "${SDV}1800001C${CCD6}" --arqc 853C1FCD782FDCDD
expect_err "CVN 6 with a 3DES IMK is refused" 5 "need an AES key"
kv k5 "" arqc verify --key imk-aes --pan 1234567890123456 --psn 00 --cvn 5 --atc 001C --data "${SDV}1800001C${CCD5}" --arqc 4CCC98107D2C85CB
expect_err "CVN 5 with an AES IMK is refused" 5 "need a DES key"

echo "$((checks - fails))/$checks checks passed"
[ "$fails" = 0 ]
