# shellcheck shell=bash
# authorize_common.sh -- shared by the test_authorize*.sh integration tests.
# Source after hsm_env.sh. Gives a work dir with its own store and config, the
# test keys of tests/data/VECTORS.md imported into the SoftHSM2 token, and helpers.
#
# Exports: W (work dir), KORTVAGT_STORE (sqlite:$W/store.db), KORTVAGT_CONFIG.
# Functions:
#   fail MSG            print and exit 1
#   req CHANNEL AMOUNT MERCHANT MCC FACTORS [PAN] [AT] [EXTRA]
#                       print one request line (FACTORS: inside of the JSON array)
#   auth_json REQUEST   run `kortvagt authorize - --json`, print the response line
#   field JSON KEY      the first "KEY":"value" / "KEY":number of JSON (no jq needed)

W="$KV_HSM_DIR/work"
mkdir -p "$W"
export KORTVAGT_STORE="sqlite:$W/store.db"
export KORTVAGT_CONFIG="$W/kortvagt.conf"
: >"$KORTVAGT_CONFIG"
K=$KORTVAGT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# `hsm init` must have created the policy keys (token, evidence, pan-enc)
keys=$("$K" key list 2>&1) || fail "key list: $keys"
for label in token evidence pan-enc; do
  grep -qw -- "$label" <<<"$keys" || fail "hsm init did not create the '$label' key: $keys"
done

import() {
  local out
  out=$(kv_hsm_import "$@" 2>&1) || fail "import $1: $out"
}
# tests/data/VECTORS.md test keys
import cvk des2 cvk "" 0123456789ABCDEFFEDCBA9876543210
import pvk des2 pvk "" 0123456789ABCDEFFEDCBA9876543210
import tpk aes128 pin "" 00112233445566778899AABBCCDDEEFF
import imk-ac des2 imk "" 0123456789ABCDEFFEDCBA9876543210
import imk-cvc3 des2 imk-cvc3 "" 01234567899876543210012345678998

PAN_A=4761739001010119
req() {
  local ch=$1 amount=$2 merchant=$3 mcc=$4 factors=$5 pan=${6:-$PAN_A}
  local at=${7:-2026-03-01T10:00:00Z} extra=${8:-}
  printf '{"card":{"pan":"%s","expiry":"2812","psn":"00"},"at":"%s","channel":"%s","amount":%s,"currency":"DKK","merchant":{"name":"%s","mcc":"%s","country":"DK"},"factors":[%s]%s}\n' \
    "$pan" "$at" "$ch" "$amount" "$merchant" "$mcc" "$factors" "$extra"
}

auth_json() {
  local out
  out=$(printf '%s\n' "$1" | "$K" authorize - --json 2>"$W/last.err") ||
    fail "authorize exited $?: $(cat "$W/last.err") for $1"
  cat "$W/last.err" >>"$W/log"
  printf '%s\n' "$out" | tee -a "$W/log"
}

field() {
  grep -o "\"$2\":\\(\"[^\"]*\"\\|[0-9-]*\\|true\\|false\\|null\\)" <<<"$1" | head -1 |
    sed -e "s/^\"$2\"://" -e 's/^"//' -e 's/"$//'
}

expect() { # expect JSON KEY WANT [what]
  local got
  got=$(field "$1" "$2")
  [ "$got" = "$3" ] || fail "${4:-}: $2 is '$got', want '$3' in $1"
}
