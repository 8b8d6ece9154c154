#!/usr/bin/env bash
# kortvagt card read over the real lab (pcscd + vpcd + our virtual card): each
# sample profile and each recorded real/test card, in normal and quirk modes
# (61xx GET RESPONSE, 6Cxx wrong Le); PAN, expiry, AIDs, PSN and label must be
# those the card's file states.
. "$(dirname "$0")/lab_common.sh"

compare_read() { # NAME JSONFILE EXPECTFILE (expect: profile "expect" or trace-card facts)
  python3 - "$2" "$3" <<'PY'
import json, sys
got = json.load(open(sys.argv[1]))
src = json.load(open(sys.argv[2]))
want = src.get("expect", src)
bad = []
for k in ("pan", "expiry", "aids", "selected_aid", "psn", "label"):
    if k in want and got.get(k) != want[k]:
        bad.append(f"{k}: got {got.get(k)!r}, want {want[k]!r}")
if not isinstance(got.get("apdu_count"), int) or got["apdu_count"] < 3:
    bad.append(f"apdu_count: {got.get('apdu_count')!r}")
if bad:
    print("; ".join(bad)); sys.exit(1)
PY
}

cards=("$SRC"/tests/data/*.json "$SRC"/tests/data/traces/cards/*.json)
for prof in "${cards[@]}"; do
  grep -q '"expect"\|"exchanges"' "$prof" || continue
  name=$(basename "$prof" .json)
  for mode in normal --quirk-get-response --quirk-wrong-le; do
    if [ "$mode" = normal ]; then lab_insert "$prof"; else lab_insert "$prof" "$mode"; fi
    rc=0
    "$K" card read --reader "$READER" --json --reveal >"$LAB/read.json" 2>"$LAB/read.err" || rc=$?
    if [ $rc -ne 0 ]; then fail "$name ($mode): exit $rc: $(head -c 300 "$LAB/read.err")"; continue; fi
    if msg=$(compare_read "$name" "$LAB/read.json" "$prof"); then pass "$name ($mode)"; else fail "$name ($mode): $msg"; fi
  done
done

# The PAN is masked without --reveal, in JSON and in human output.
lab_insert "$DEFAULT_PROFILE"
pan=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["expect"]["pan"])' "$DEFAULT_PROFILE")
"$K" card read --reader "$READER" --json >"$LAB/masked.json" 2>&1 || true
"$K" card read --reader "$READER" >"$LAB/masked.txt" 2>&1 || true
if grep -q "$pan" "$LAB/masked.json" "$LAB/masked.txt"; then fail "clear PAN printed without --reveal"; else pass "PAN masked without --reveal"; fi
expect_text "$LAB/masked.json" "\"${pan:0:6}\*+${pan: -4}\"" "masked PAN keeps first 6 and last 4"

# --trace writes JSON lines that mask the PAN.
"$K" card read --reader "$READER" --trace "$LAB/read.trace" >/dev/null 2>&1 || true
if python3 -c 'import json,sys
n=0
for l in open(sys.argv[1]):
    o=json.loads(l); assert "c" in o and "r" in o; n+=1
assert n>=3' "$LAB/read.trace" 2>/dev/null; then pass "trace is JSON lines of c/r"; else fail "trace format"; fi
if grep -q "$pan" "$LAB/read.trace"; then fail "clear PAN in the trace"; else pass "PAN masked in the trace"; fi

# card apdu: raw exchange with the status meaning
expect_rc 0 "card apdu SELECT PSE" "$K" card apdu --reader "$READER" 00A404000E315041592E5359532E444446303100
expect_text "$LAB/last.out" "9000" "card apdu prints the status word"
expect_rc 0 "card apdu unknown file" "$K" card apdu --reader "$READER" 00A4040007A000000999999900
expect_text "$LAB/last.out" "6A82" "card apdu shows 6A82"

finish
