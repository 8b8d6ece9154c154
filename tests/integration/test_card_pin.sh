#!/usr/bin/env bash
# Plaintext offline PIN through the lab: right, wrong (tries decrease), blocked,
# and the try counter kept across a restart of the card.
. "$(dirname "$0")/lab_common.sh"
state=$LAB/pin-test.state
rm -f "$state"
lab_insert "$DEFAULT_PROFILE" --state "$state"

ptc() { "$K" card read --reader "$READER" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pin_try_counter"])'; }

[ "$(ptc)" = 3 ] && pass "try counter starts at 3" || fail "try counter at start: $(ptc)"
expect_rc 0 "right PIN" "$K" card verify-pin --reader "$READER" <<<"1234"
expect_text "$LAB/last.out" "verified" "right PIN reported verified"
expect_rc 1 "wrong PIN" "$K" card verify-pin --reader "$READER" <<<"9999"
expect_text "$LAB/last.out" "2" "two tries left after one wrong PIN"
[ "$(ptc)" = 2 ] && pass "try counter decreased to 2" || fail "try counter after wrong PIN: $(ptc)"
expect_rc 0 "right PIN resets the counter" "$K" card verify-pin --reader "$READER" <<<"1234"
[ "$(ptc)" = 3 ] && pass "try counter back to 3" || fail "try counter after right PIN: $(ptc)"
for i in 1 2 3; do echo 0000 | "$K" card verify-pin --reader "$READER" >/dev/null 2>&1; done
expect_rc 1 "blocked PIN refuses the right PIN" "$K" card verify-pin --reader "$READER" --json <<<"1234"
expect_text "$LAB/last.out" "blocked" "blocked PIN reported"
# restart the card with the same state file: still blocked
lab_insert "$DEFAULT_PROFILE" --state "$state"
[ "$(ptc)" = 0 ] && pass "blocked counter kept across a card restart" || fail "counter after restart: $(ptc)"
# bad PIN input never reaches the card
expect_rc 2 "3-digit PIN rejected" "$K" card verify-pin --reader "$READER" <<<"123"
expect_rc 2 "non-digit PIN rejected" "$K" card verify-pin --reader "$READER" <<<"12a4"
# the PIN is never printed
lab_insert "$DEFAULT_PROFILE" --state "$state.2"
echo 1234 | "$K" card verify-pin --reader "$READER" >"$LAB/pin.out" 2>&1 || true
if grep -q 1234 "$LAB/pin.out" "$LAB/vcard.log"; then fail "PIN appears in output or the card log"; else pass "PIN not in output or logs"; fi
rm -f "$state" "$state.2"
finish
