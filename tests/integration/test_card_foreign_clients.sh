#!/usr/bin/env bash
# Our virtual card read by clients we did not write: opensc-tool and scriptor
# get the FCI of SELECT PPSE.
. "$(dirname "$0")/lab_common.sh"
lab_insert "$SRC/tests/data/mc_contactless_ppse.json"
ppse=00A404000E325041592E5359532E444446303100

out=$(opensc-tool --reader "$READER" --send-apdu "$ppse" 2>&1) || true
echo "$out" | sed 's/^/    /'
if echo "$out" | grep -qi "SW1=0x90, SW2=0x00" && echo "$out" | tr -d ' \n' | grep -qi "6F.*84"; then
  pass "opensc-tool gets the PPSE FCI"
else
  fail "opensc-tool did not get the PPSE FCI"
fi

out=$(printf 'reset\n%s\n' "$(echo "$ppse" | sed 's/../& /g')" | scriptor -r "$READER" 2>&1) || true
echo "$out" | sed 's/^/    /'
if echo "$out" | grep -q "< 6F" && echo "$out" | grep -q ": Normal processing"; then
  pass "scriptor gets the PPSE FCI"
else
  fail "scriptor did not get the PPSE FCI"
fi
finish
