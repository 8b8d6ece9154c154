#!/usr/bin/env bash
# The virtual card's test-lab faults (tests/data/README.md "faults") of the
# records and of GET PROCESSING OPTIONS against `kortvagt card transact`,
# through pcscd + vpcd + the card + SoftHSM2, with the terminal's expected
# outcome (EMV Book 3 §10.1-10.2); the cryptogram faults are in
# test_emv_faults.sh. Two personalities on one card (emv_cards.sh): v10
# (Visa CVN 10, CDA) and c5 (CCD CVN 5, DDA).
# shellcheck disable=SC1091
. "$(dirname "$0")/lab_common.sh"
. "$(dirname "$0")/emv_cards.sh"
trap 'rm -rf "$W"' EXIT

emv_perso v10 c5
emv_multi "$W/base.json" v10 c5
FD='[{"ins": "B2", "dup_tag": "5A"}]'
FE='[{"ins": "A8", "nth": 1, "sw": "6985"}, {"ins": "AE", "delay_ms": 50}]'
FG='[{"ins": "AE", "nth": 2, "tear": "before"}]'
FF='[{"ins": "B2", "drop_tag": "8D"}]'
python3 - "$W" fd "$FD" fe "$FE" fg "$FG" ff "$FF" <<'PY'
import json, sys
w, a = sys.argv[1], sys.argv[2:]
for name, faults in zip(a[0::2], a[1::2]):
    d = json.load(open(f"{w}/base.json"))
    d["faults"] = json.loads(faults)
    json.dump(d, open(f"{w}/{name}.json", "w"))
PY
card_with() { lab_insert "$W/$1.json" || fail "insert $1"; }

# D: a duplicated data object in the records is an error (Book 3 §10.2), not first-match
card_with fd
echo 1234 | expect_rc 4 "fd: duplicated 5A" "$K" card transact --no-authorize --capk "$CAPK" \
  --currency DKK --amount 1000 --pin-stdin

# E: GPO 6985 on the first application: the next is selected and its terminal data used
# (Book 3 §10.1); a slow card (50 ms per GENERATE AC) still completes
card_with fe
echo 1234 | expect_rc 0 fe "$K" card transact --no-authorize --capk "$CAPK" --currency DKK \
  --amount 1000 --pin-stdin --json
cp "$LAB/last.out" "$W/fe_result.json"
fields fe_result "(d['aid'], d['cvn'], d['outcome'])" "('$(aid_of c5)', 5, 'approved_online')"
# F: CDOL2 (8D) dropped from the records: mandatory data missing (Book 3 §7.2) -> the
# transaction terminates before any GENERATE AC, TVR "ICC data missing"
card_with ff
echo 1234 | txn 1 ff_c5 c5 --amount 1000 --pin-stdin
fields ff_c5 "(d['outcome'], d['first_ac'], int(d['tvr'][0:2], 16) & 0x20)" "('terminated', None, 32)"
# G: the card goes away before the 2nd GENERATE AC: no decision, exit 3
card_with fg
echo 1234 | expect_rc 3 "fg: torn before the 2nd GENERATE AC" "$K" card transact --no-authorize \
  --capk "$CAPK" --select "$(aid_of c5)" --currency DKK --amount 1000 --pin-stdin --json
if grep -q approved "$LAB/last.out"; then fail "fg: a torn card approved"; else pass "fg: nothing approved"; fi
fields_check
finish
