#!/usr/bin/env bash
# Issue 11, finding 2: every key is bound to its role. A real SoftHSM2 token
# (hsm_env.sh) with keys from the ceremony (`kortvagt key import --usage ...`)
# and the real kortvagtd:
#   - the attack of the finding: `pvv verify --key <imk>` (and IBM 3624 with
#     chosen validation data) would encipher chosen blocks under an issuer
#     master key; now refused, exit 5, the message naming both roles;
#   - CVV under a PVK or an IMK, PIN blocks under a PVK or CVK, CVC3 under the
#     AC issuer master key: refused the same way;
#   - kortvagtd: /v1/verify/cvc with an IMK as CVK, /v1/verify/pin with an IMK
#     as PVK and /v1/authorize with a cvc2 factor under an IMK answer 403
#     "key_role" naming both roles; the same requests with the right keys
#     still match (controls).
# On the code before issue 11 the IMK computes a PVV / CVV and the daemon
# answers 200, so the checks fail there.
set -uo pipefail

: "${KORTVAGT:?set KORTVAGT to the kortvagt binary}"
KV_SOURCE_DIR=${KV_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck source=tests/integration/hsm_env.sh
. "$KV_SOURCE_DIR/tests/integration/hsm_env.sh"
# shellcheck source=tests/integration/cli_checks.sh
. "$KV_SOURCE_DIR/tests/integration/cli_checks.sh"

# expect_role NAME WANT_ROLE_OF_KEY NEEDED_ROLE -- on the last kv run: exit 5 and a
# stderr message naming the key's role and the role the operation needs
expect_role() {
  local name=$1 has=$2 needs=$3
  if [ "$rc" = 5 ] && [[ "$err" == *"role $has"* ]] && [[ "$err" == *"$needs"* ]]; then
    pass "$name (exit 5: $err)"
  else
    fail "$name (rc $rc want 5; stdout '$out'; stderr '$err' should name roles $has and $needs)"
  fi
}
expect() { # NAME WANT_RC WANT_STDOUT
  if [ "$rc" = "$2" ] && [ "$out" = "$3" ]; then pass "$1"; else
    fail "$1 (rc $rc want $2; stdout '$out' want '$3'; stderr '$err')"
  fi
}

W="$KV_HSM_DIR/work"
mkdir -p "$W"
# the CLI's verify commands count attempts in the store: a store of this test's own
export KORTVAGT_STORE="sqlite:$W/store.db"
export KORTVAGT_CONFIG="$W/kortvagt.conf"
: >"$KORTVAGT_CONFIG"

K2=0123456789ABCDEFFEDCBA9876543210 # tests/data/VECTORS.md test key
for spec in "cvk des2 cvk" "pvk des2 pvk" "zpk des2 pin" "imk des2 imk"; do
  set -- $spec
  if o=$(kv_hsm_import "$1" "$2" "$3" "" "$K2" 2>&1); then pass "import $1 (--usage $3)"; else
    fail "import $1: $o"
  fi
done
if o=$(kv_hsm_import tpk aes128 pin "" 00112233445566778899AABBCCDDEEFF 2>&1); then pass "import tpk"; else
  fail "import tpk: $o"
fi

PAN_P=1122334455667788
# ---- controls: the right keys work ---------------------------------------------------------
kv c1 $'4524\n' pvv verify --key pvk --pan $PAN_P --pvki 1 --pvv 8523
expect "control: PVV under the PVK (tests/data/VECTORS.md 8523)" 0 match
kv c2 "" cvv verify --key cvk --pan 4123456789012345 --expiry 8701 --service-code 101 --cvv 561
expect "control: CVV under the CVK (tests/data/VECTORS.md 561)" 0 match

# ---- the attack of finding 2: an IMK as PVK enciphers chosen data --------------------------
kv a1 $'4524\n' pvv verify --key imk --pan $PAN_P --pvki 1 --pvv 8523
expect_role "pvv verify --key <imk> is refused" imk pvk
kv a2 $'4524\n' pvv generate --key imk --pan $PAN_P --pvki 1
expect_role "pvv generate --key <imk> is refused" imk pvk
kv a3 $'1234\n' ibm3624 offset --key imk --pan $PAN_P
expect_role "ibm3624 offset --key <imk> is refused" imk pvk
kv a4 $'4524\n' pvv generate --key cvk --pan $PAN_P --pvki 1
expect_role "pvv generate --key <cvk> is refused" cvk pvk

# ---- CVV: only a CVK --------------------------------------------------------------------------
kv v1 "" cvv verify --key pvk --pan 4123456789012345 --expiry 8701 --service-code 101 --cvv 561
expect_role "cvv verify --key <pvk> is refused" pvk cvk
kv v2 "" cvv verify --key imk --pan 4123456789012345 --expiry 8701 --service-code 101 --cvv 561
expect_role "cvv verify --key <imk> is refused" imk cvk
kv v3 "" cvv generate --key imk --pan 4123456789012345 --expiry 8701 --service-code 000
expect_role "cvv generate --key <imk> is refused" imk cvk

# ---- PIN blocks: only a PIN key ---------------------------------------------------------------
kv p1 $'1234\n' pinblock encode --format 0 --pan $PAN_P --key pvk
expect_role "pinblock encode --key <pvk> is refused" pvk pin
kv p2 "" pinblock decode --format 0 --pan $PAN_P --key cvk --block 0123456789ABCDEF
expect_role "pinblock decode --key <cvk> is refused" cvk pin
kv p3 $'4524\n' pinblock encode --format 4 --pan $PAN_P --key tpk
PB=$out
kv p4 "" pvv verify --key pvk --pan $PAN_P --pvki 1 --pvv 8523 --pin-block "$PB" --pin-key tpk --format 4
expect "control: PVV from a format 4 PIN block (tpk, pvk)" 0 match
kv p5 "" pvv verify --key pvk --pan $PAN_P --pvki 1 --pvv 8523 --pin-block 0123456789ABCDEF --pin-key pvk --format 0
expect_role "a PIN block deciphered under a PVK is refused" pvk pin

# ---- CVC3: only an imk-cvc3 (the AC issuer master key is another role) ------------------------
kv m1 "" cvc3 generate --key imk --pan 5123456789012345 --psn 00 --atc 005E --un 00000899 --track 5123456789012345D35121010000000000000F
expect_role "cvc3 generate --key <imk (AC)> is refused" imk imk-cvc3

# ---- kortvagtd -----------------------------------------------------------------------------------
# shellcheck source=tests/integration/daemon_common.sh
. "$KV_SOURCE_DIR/tests/integration/daemon_common.sh"
trap 'daemon_stop roles >/dev/null 2>&1; kv_hsm_cleanup' EXIT

# check_http NAME OUT STATUS CODE [TEXT...] -- "STATUS BODY" from http()
check_http() {
  local name=$1 o=$2 status=$3 code=$4
  shift 4
  local ok=1 t
  [ "${o%% *}" = "$status" ] || ok=0
  [ -z "$code" ] || grep -q "\"code\":\"$code\"" <<<"$o" || ok=0
  for t in "$@"; do [[ "$o" == *"$t"* ]] || ok=0; done
  if [ $ok = 1 ]; then pass "$name ($o)"; else fail "$name: got '$o', want $status $code $*"; fi
}

PORT=$(free_port)
U="http://127.0.0.1:$PORT"
daemon_start roles "$PORT" --workers 1
CVC='{"pan":"4123456789012345","expiry":"8701","service_code":"101","cvk":"%s","value":"561"}'
o=$(http POST "$U/v1/verify/cvc" "$(printf "$CVC" cvk)")
check_http "kortvagtd control: /v1/verify/cvc with the CVK matches" "$o" 200 "" '"match"'
o=$(http POST "$U/v1/verify/cvc" "$(printf "$CVC" imk)")
check_http "kortvagtd: /v1/verify/cvc with an IMK as CVK -> 403 key_role" "$o" 403 key_role "imk" "cvk"
o=$(http POST "$U/v1/verify/cvc" "$(printf "$CVC" pvk)")
check_http "kortvagtd: /v1/verify/cvc with a PVK as CVK -> 403 key_role" "$o" 403 key_role "pvk" "cvk"
PIN='{"pan":"'$PAN_P'","pin_block":"'$PB'","format":4,"pin_key":"tpk","pvk":"%s","pvki":1,"pvv":"8523"}'
o=$(http POST "$U/v1/verify/pin" "$(printf "$PIN" pvk)")
check_http "kortvagtd control: /v1/verify/pin with the PVK matches" "$o" 200 "" '"match"'
o=$(http POST "$U/v1/verify/pin" "$(printf "$PIN" imk)")
check_http "kortvagtd: /v1/verify/pin with an IMK as PVK -> 403 key_role" "$o" 403 key_role "imk" "pvk"
AUTH='{"card":{"pan":"4761739001010119","expiry":"2812"},"channel":"ecommerce","amount":1000,"currency":"DKK","merchant":{"name":"Shop A","mcc":"5411","country":"DK"},"factors":[{"type":"cvc2","cvk":"imk","value":"123"}]}'
o=$(http POST "$U/v1/authorize" "$AUTH")
check_http "kortvagtd: /v1/authorize with a cvc2 factor under an IMK -> 403 key_role" "$o" 403 key_role "imk" "cvk"
daemon_stop roles

echo "$((checks - fails))/$checks checks passed"
[ "$fails" = 0 ]
