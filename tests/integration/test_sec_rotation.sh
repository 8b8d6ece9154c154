#!/usr/bin/env bash
# Issue 11, finding 7: deleting or rotating a key reaches a running kortvagtd.
# A real SoftHSM2 token (hsm_env.sh) and the real daemon (one worker, so that
# every request meets the same cached key):
#   1. the daemon verifies a CVC2 under key X (/v1/verify/cvc and a cvc2 factor
#      of /v1/authorize, which goes through the factor verifier);
#   2. `kortvagt key delete --label X` in another process: within the
#      documented staleness (KV_HSM_KEY_STALE_SECONDS, 5 s) the daemon answers
#      400 unknown_key, and never the old key's result after that;
#   3. X created again with another value: the daemon uses the new value (the
#      new CVC2 matches, the old one does not), on both paths;
#   4. X rotated once more and SIGHUP sent: the new value is used at once.
# On the code before issue 11 the daemon kept its session copy of X (and the
# authorize factor cache its handle) and went on matching the old CVC2.
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
# shellcheck source=tests/integration/daemon_common.sh
. "$KV_SOURCE_DIR/tests/integration/daemon_common.sh"
trap 'daemon_stop rot >/dev/null 2>&1; kv_hsm_cleanup' EXIT

STALE=5 # KV_HSM_KEY_STALE_SECONDS (hsm/p11.h)
X=cvk-rot
V1KEY=0123456789ABCDEFFEDCBA9876543210
V2KEY=89ABCDEF01234567FEDCBA9876543210
V3KEY=FEDCBA98765432100123456789ABCDEF
EXP=2812

import_x() { # KEYHEX
  local o
  if o=$(kv_hsm_import $X des2 cvk "" "$1" 2>&1); then pass "import $X"; else fail "import $X: $o"; fi
}
cvc2() { # PAN -> the CVC2 under the current X (CLI, its own process)
  "$KORTVAGT" cvv generate --key $X --pan "$1" --expiry $EXP --service-code 000 2>/dev/null
}
verify() { # PAN VALUE -> "STATUS BODY"
  http POST "$U/v1/verify/cvc" "{\"pan\":\"$1\",\"expiry\":\"$EXP\",\"cvk\":\"$X\",\"value\":\"$2\"}"
}
authz() { # PAN VALUE -> "STATUS BODY"
  http POST "$U/v1/authorize" "{\"card\":{\"pan\":\"$1\",\"expiry\":\"$EXP\"},\"channel\":\"ecommerce\",\"amount\":1000,\"currency\":\"DKK\",\"merchant\":{\"name\":\"Shop A\",\"mcc\":\"5411\",\"country\":\"DK\"},\"factors\":[{\"type\":\"cvc2\",\"cvk\":\"$X\",\"value\":\"$2\"},{\"type\":\"card_number\",\"verified\":true}]}"
}
check() { # NAME OUT WANT-SUBSTRING...
  local name=$1 o=$2 ok=1 t
  shift 2
  for t in "$@"; do [[ "$o" == *"$t"* ]] || ok=0; done
  if [ $ok = 1 ]; then pass "$name"; else fail "$name: got '$o', want $*"; fi
}

# Separate cards per phase: the wrong CVC2s sent below stay under any attempt limit.
PAN1=4761739001010119 # /v1/verify/cvc
PAN2=4761739001010127 # /v1/authorize
PAN3=4761739001010135 # after SIGHUP

import_x $V1KEY
A1=$(cvc2 $PAN1)
B1=$(cvc2 $PAN2)
C1=$(cvc2 $PAN3)
[[ "$A1" =~ ^[0-9]{3}$ && "$B1" =~ ^[0-9]{3}$ ]] || fail "cvv generate under $X: '$A1' '$B1'"

PORT=$(free_port)
U="http://127.0.0.1:$PORT"
daemon_start rot "$PORT" --workers 1

# ---- 1. the daemon knows X -------------------------------------------------------------------
o=$(verify $PAN1 "$A1")
check "verify/cvc under X (first value) matches" "$o" "200 " '"match"'
o=$(authz $PAN2 "$B1")
check "authorize: cvc2 factor under X (first value) approves" "$o" "200 " '"decision":"approve"'

# ---- 2. X deleted: unknown_key within the staleness, never the old result after it ----------
o=$("$KORTVAGT" key delete --label $X 2>&1) && pass "key delete $X" || fail "key delete $X: $o"
deleted_at=${EPOCHREALTIME/[.,]/}
late_match=""
gone() { # the daemon says unknown_key; a match after the staleness bound is a failure
  local o now
  o=$(verify $PAN1 "$A1")
  now=${EPOCHREALTIME/[.,]/}
  if [[ "$o" == *'"match"'* ]] && [ $((now - deleted_at)) -gt $((STALE * 1000000)) ]; then
    late_match="$o"
  fi
  [[ "$o" == "400 "*'"unknown_key"'* ]]
}
if wait_for $((STALE + 3)) gone; then
  pass "verify/cvc after the delete: 400 unknown_key within $STALE s (+ slack)"
else
  fail "verify/cvc after the delete: still '$(verify $PAN1 "$A1")' after $((STALE + 3)) s"
fi
[ -z "$late_match" ] && pass "no old-key match after the staleness bound" ||
  fail "the deleted key still matched after $STALE s: $late_match"
o=$(verify $PAN1 "$A1")
check "verify/cvc keeps answering unknown_key" "$o" "400 " '"unknown_key"'
o=$(authz $PAN2 "$B1")
if [[ "$o" == *'"decision":"approve"'* ]]; then
  fail "authorize: the cvc2 factor under the deleted key still approves: $o"
else
  pass "authorize: the deleted key no longer verifies the cvc2 factor ($o)"
fi

# ---- 3. X created again with another value ------------------------------------------------------
import_x $V2KEY
A2=$(cvc2 $PAN1)
B2=$(cvc2 $PAN2)
[ "$A2" != "$A1" ] && [ "$B2" != "$B1" ] || fail "the test keys give equal CVC2s ($A1 $A2 $B1 $B2)"
new_value() { [[ "$(verify $PAN1 "$A2")" == *'"match"'* ]]; }
if wait_for $((STALE + 3)) new_value; then
  pass "verify/cvc uses the re-created X (new CVC2 $A2 matches)"
else
  fail "verify/cvc with the re-created X: '$(verify $PAN1 "$A2")'"
fi
o=$(verify $PAN1 "$A1")
check "verify/cvc: the old CVC2 $A1 no longer matches" "$o" "200 " '"mismatch"'
o=$(authz $PAN2 "$B2")
check "authorize: cvc2 factor with the new value approves" "$o" "200 " '"decision":"approve"'
o=$(authz $PAN2 "$B1")
if [[ "$o" == *'"decision":"approve"'* ]]; then
  fail "authorize: the old key's CVC2 $B1 still approves: $o"
else
  pass "authorize: the old key's CVC2 no longer approves"
fi

# ---- 4. rotated again, then SIGHUP: the new value at once ---------------------------------------
o=$(verify $PAN3 "$(cvc2 $PAN3)")
check "verify/cvc (third card) under the second value matches" "$o" "200 " '"match"'
"$KORTVAGT" key delete --label $X >/dev/null 2>&1 || fail "key delete $X (second)"
import_x $V3KEY
C3=$(cvc2 $PAN3)
kill -HUP "$(cat "$W/rot.pid")" || fail "SIGHUP to kortvagtd"
# the master says so once it has passed the signal on to its workers; each worker
# flushes before its next request, so the first answer must be the new key's
hup_logged() { grep -q "SIGHUP" "$W/rot.log"; }
wait_for 10 hup_logged || fail "kortvagtd did not log the SIGHUP: $(tail -5 "$W/rot.log")"
o=$(verify $PAN3 "$C3")
check "after SIGHUP the next request uses the rotated key (CVC2 $C3 matches)" "$o" "200 " '"match"'
proc_has_exited "$(cat "$W/rot.pid")" && fail "kortvagtd died on SIGHUP: $(tail -5 "$W/rot.log")"
daemon_stop rot

echo "$((checks - fails))/$checks checks passed"
[ "$fails" = 0 ]
