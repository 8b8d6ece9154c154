#!/usr/bin/env bash
# Issue 11, finding 4 (CVC3 length): a CVC3 has 3 to 5 digits, as many as the
# card's track carries (the bits set in its PCVC3 bitmap, tag 9F65/9F62);
# fewer are refused, so that a client cannot try 1- or 2-digit codes. A real
# SoftHSM2 token (hsm_env.sh), the CLI (`cvc3 verify`, `authorize`) and the
# real kortvagtd (/v1/authorize), with the CVC3 vector of tests/data/VECTORS.md
# (29488; a track with 3 digits carries 488).
# On the code before issue 11 a 2-digit CVC3 ("88") matched the last two
# digits and the authorization was approved.
set -uo pipefail

: "${KORTVAGT:?set KORTVAGT to the kortvagt binary}"
KV_SOURCE_DIR=${KV_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck source=tests/integration/hsm_env.sh
. "$KV_SOURCE_DIR/tests/integration/hsm_env.sh"
# shellcheck source=tests/integration/cli_checks.sh
. "$KV_SOURCE_DIR/tests/integration/cli_checks.sh"

W="$KV_HSM_DIR/work"
mkdir -p "$W"
export KORTVAGT_STORE="sqlite:$W/store.db"
export KORTVAGT_CONFIG="$W/kortvagt.conf"
: >"$KORTVAGT_CONFIG"

expect() { # NAME WANT_RC WANT_STDOUT
  if [ "$rc" = "$2" ] && [ "$out" = "$3" ]; then pass "$1"; else
    fail "$1 (rc $rc want $2; stdout '$out' want '$3'; stderr '$err')"
  fi
}
expect_err() { # NAME WANT_RC TEXT
  if [ "$rc" = "$2" ] && [[ "$err" == *"$3"* ]]; then pass "$1 ($err)"; else
    fail "$1 (rc $rc want $2; stdout '$out'; stderr '$err' should contain '$3')"
  fi
}

# the CVC3 issuer master key has its own role; a build without roles knows only "imk"
if o=$(kv_hsm_import imk-cvc3 des2 imk-cvc3 "" 01234567899876543210012345678998 2>&1) ||
  o=$(kv_hsm_import imk-cvc3 des2 imk "" 01234567899876543210012345678998 2>&1); then
  pass "import imk-cvc3"
else
  fail "import imk-cvc3: $o"
fi

PAN=5123456789012345
C3=(--key imk-cvc3 --pan $PAN --psn 00 --atc 005E --un 00000899 --track 5123456789012345D35121010000000000000F)

# ---- CLI: cvc3 verify ---------------------------------------------------------------------------
kv v1 "" cvc3 verify "${C3[@]}" --cvc3 488
expect "3 digits, nothing says more: match" 0 match
kv v2 "" cvc3 verify "${C3[@]}" --cvc3 88
expect_err "2 digits are refused" 2 "at least 3 digits"
kv v3 "" cvc3 verify "${C3[@]}" --cvc3 8
expect_err "1 digit is refused" 2 "at least 3 digits"
kv v4 "" cvc3 verify "${C3[@]}" --pcvc3 001F --cvc3 488
expect_err "PCVC3 of 5 bits: 3 digits are refused" 2 "at least 5 digits"
kv v5 "" cvc3 verify "${C3[@]}" --pcvc3 001F --cvc3 29488
expect "PCVC3 of 5 bits: 5 digits match" 0 match
kv v6 "" cvc3 verify "${C3[@]}" --pcvc3 0F00 --cvc3 9488
expect "PCVC3 of 4 bits: 4 digits match" 0 match

# ---- authorize (CLI and kortvagtd): the cvc3 factor ----------------------------------------------
req() { # VALUE [EXTRA-FACTOR-FIELDS]
  printf '{"card":{"pan":"%s","expiry":"2812","psn":"00"},"channel":"contactless","amount":9900,"currency":"DKK","merchant":{"name":"Kiosk","mcc":"5411","country":"DK"},"factors":[{"type":"cvc3","imk":"imk-cvc3","atc":"005E","un":"00000899","track":"5123456789012345D35121010000000000000F","value":"%s"%s}]}' \
    $PAN "$1" "${2:-}"
}
kv a1 "$(req 88)" authorize - --json
if [ "$rc" != 0 ] && [[ "$err" == *"2 digits"* ]] && [[ "$out" != *approve* ]]; then
  pass "authorize: a 2-digit CVC3 is refused ($err)"
else
  fail "authorize: a 2-digit CVC3 (rc $rc; out '$out'; err '$err')"
fi
kv a2 "$(req 488 ',"pcvc3":"001F"')" authorize - --json
if [ "$rc" != 0 ] && [[ "$err" == *"carries 5"* ]] && [[ "$out" != *approve* ]]; then
  pass "authorize: 3 digits for a PCVC3 of 5 bits are refused ($err)"
else
  fail "authorize: 3 digits for a PCVC3 of 5 bits (rc $rc; out '$out'; err '$err')"
fi
kv a3 "$(req 29488 ',"pcvc3":"001F"')" authorize - --json
if [ "$rc" = 0 ] && [[ "$out" == *'"decision":"approve"'* ]]; then pass "authorize: 5 digits for a PCVC3 of 5 bits approve"; else
  fail "authorize: 5 digits (rc $rc; out '$out'; err '$err')"
fi

# shellcheck source=tests/integration/daemon_common.sh
. "$KV_SOURCE_DIR/tests/integration/daemon_common.sh"
trap 'daemon_stop c3 >/dev/null 2>&1; kv_hsm_cleanup' EXIT
PORT=$(free_port)
daemon_start c3 "$PORT" --workers 1
o=$(http POST "http://127.0.0.1:$PORT/v1/authorize" "$(req 88)")
if [ "${o%% *}" = 400 ] && [[ "$o" == *'"invalid_field"'* ]] && [[ "$o" == *"2 digits"* ]]; then
  pass "kortvagtd /v1/authorize: a 2-digit CVC3 -> 400 invalid_field ($o)"
else
  fail "kortvagtd /v1/authorize with a 2-digit CVC3: $o"
fi
daemon_stop c3

echo "$((checks - fails))/$checks checks passed"
[ "$fails" = 0 ]
