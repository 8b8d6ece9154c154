#!/usr/bin/env bash
# `kortvagt diagnose` over the lab (src/RULES.md §4, the card-problems guide [0]): no pcscd, no card,
# an expired card, a blocked PIN, a listed card and a remote payment declined
# with ecommerce_disabled each give their own cause and advice; a good card
# gives none. Runs under scripts/lab.sh run.
. "$(dirname "$0")/lab_common.sh"

# a store of our own, so the lab's store keeps no listing of the lab card
export KORTVAGT_STORE="sqlite:$LAB/diagnose-test.db"
rm -f "$LAB/diagnose-test.db" "$LAB/diagnose-test.db-wal" "$LAB/diagnose-test.db-shm"
: >"$LAB/diagnose.conf"
export KORTVAGT_CONFIG="$LAB/diagnose.conf"
LAB_PAN=4761730000000011
state=$LAB/diagnose.state

# diag NAME WANT_RC WANT_CAUSE [diagnose options]: run with --json, check exit and cause
diag() {
  local name=$1 want_rc=$2 want=$3 rc=0 cause
  shift 3
  "$K" diagnose --reader "$READER" --json "$@" >"$LAB/diag.json" 2>"$LAB/diag.err" || rc=$?
  cause=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cause"])' \
    "$LAB/diag.json" 2>/dev/null)
  if [ "$rc" = "$want_rc" ] && [ "$cause" = "$want" ]; then pass "$name: cause $cause (exit $rc)"
  else
    fail "$name: exit $rc cause '$cause', want exit $want_rc cause '$want'"
    sed 's/^/    /' "$LAB/diag.json" "$LAB/diag.err" | head -5
  fi
}
# last_step STEP OK: the walk stopped at STEP with ok OK
last_step() {
  local got
  got=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["steps"][-1]; print(s["step"], str(s["ok"]).lower())' \
    "$LAB/diag.json" 2>/dev/null)
  [ "$got" = "$1 $2" ] && pass "walk ends at $1" || fail "walk ends at '$got', want '$1 $2'"
}
advice_has() { # advice_has REGEX NAME (in $LAB/diag.json)
  expect_text "$LAB/diag.json" "\"advice\": *\"[^\"]*$1" "$2"
}

expect_rc 0 "diagnose --help" "$K" diagnose --help
expect_rc 2 "bad --lang" "$K" diagnose --lang fr
expect_rc 2 "bad --pan" "$K" diagnose --pan 12x

# 1. no PC/SC service
PCSCLITE_CSOCK_NAME=$LAB/no-such-pcscd.sock diag "no pcscd" 1 no_pcsc_service
last_step pcsc_service false
advice_has "pcscd" "no pcscd: advice names pcscd"
PCSCLITE_CSOCK_NAME=$LAB/no-such-pcscd.sock "$K" diagnose --lang en >"$LAB/diag.txt" 2>&1
expect_text "$LAB/diag.txt" "Cause: The card reader service" "no pcscd: English human output"

# 2. a good card: all is well
rm -f "$state"
lab_insert "$DEFAULT_PROFILE" --state "$state"
diag "good card" 0 None
last_step recent_declines true
"$K" diagnose --reader "$READER" >"$LAB/diag.txt" 2>&1
expect_text "$LAB/diag.txt" "Intet problem fundet" "good card: Danish human output"
grep -q "$LAB_PAN" "$LAB/diag.txt" "$LAB/diag.json" && fail "the PAN is printed unmasked" ||
  pass "the PAN is masked"

# 3. no card
lab_eject
diag "no card" 1 no_card
last_step card_present false
advice_has "Sæt kortet" "no card: advice to insert the card"
"$K" diagnose --reader "$READER" --lang en --json >"$LAB/diag.json" 2>&1
expect_text "$LAB/diag.json" '"advice": *"Insert the card' "no card: English advice"

# 4. an expired card
lab_insert "$SRC/tests/data/visa_expired.json"
diag "expired card" 1 card_expired
last_step expiry false
advice_has "nyt kort" "expired: advice to get a new card"

# 5. a blocked PIN (try counter 0)
printf '{"pin_tries_left": 0}\n' >"$state.blocked"
lab_insert "$DEFAULT_PROFILE" --state "$state.blocked"
diag "blocked PIN" 1 pin_blocked
last_step pin_try_counter false
advice_has "Kontakt banken" "blocked PIN: advice to contact the bank"

# 6. the card on the block list
lab_insert "$DEFAULT_PROFILE" --state "$state"
expect_rc 0 "list the lab card" "$K" blocklist add --pan "$LAB_PAN" --reason stolen --expiry 2812
diag "listed card" 1 card_blocked
last_step block_list false
advice_has "spærret" "listed: advice says the card is blocked"
expect_rc 0 "unlist the lab card" "$K" blocklist replaced --pan "$LAB_PAN"
diag "unlisted again" 0 None

# 7. a remote payment declined with ecommerce_disabled
expect_rc 0 "ecommerce off" "$K" card settings --pan "$LAB_PAN" --ecommerce off
printf '{"card":{"pan":"%s","expiry":"2812","psn":"01"},"at":"%s","channel":"ecommerce","amount":2500,"currency":"DKK","merchant":{"name":"Webshop","mcc":"5411","country":"DK"},"factors":[]}\n' \
  "$LAB_PAN" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" | "$K" authorize - --json >"$LAB/auth.json" 2>&1
expect_text "$LAB/auth.json" '"reason": *"ecommerce_disabled"' "remote payment declined"
diag "ecommerce disabled" 1 ecommerce_disabled
last_step recent_declines false
advice_has "onlinehandel" "ecommerce: advice to enable online shopping"

rm -f "$state" "$state.blocked" "$LAB/diagnose-test.db"*
finish
