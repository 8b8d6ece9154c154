#!/usr/bin/env bash
# The terminal configuration ([terminal], [aid HEX]; README "Terminal
# configuration") as the front ends load it: kortvagt and kortvagtd both
# refuse a file with a bad key or value, naming the file, the line, the
# section and the key, before touching a reader, the HSM or the store; the
# commented examples of scripts/kortvagtd.conf.sample load (test_termcfg.c
# checks their values). Needs no lab: only the binaries.
set -u
K=${KORTVAGT:?KORTVAGT must name the kortvagt binary}
KD=${KORTVAGTD:-$(dirname "$K")/kortvagtd}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
failures=0
checks=0
pass() { checks=$((checks + 1)); echo "PASS: $*"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*"; }

# refused NAME WANT_TEXT: kortvagt and kortvagtd refuse $W/t.conf with WANT_TEXT in the message
refused() {
  local name=$1 want=$2 rc=0
  KORTVAGT_CONFIG=$W/t.conf KORTVAGT_STORE="sqlite:$W/none.db" \
    "$K" blocklist check --pan 4761730000000011 >"$W/out" 2>"$W/err" || rc=$?
  if [ "$rc" != 0 ] && grep -qF -- "$W/t.conf:$want" "$W/err"; then
    pass "kortvagt: $name (exit $rc)"
  else
    fail "kortvagt: $name: exit $rc, wanted '$want' in: $(head -c 300 "$W/err")"
  fi
  rc=0
  timeout 20 "$KD" --config "$W/t.conf" --tokens "$W/none" >"$W/out" 2>"$W/err" || rc=$?
  if [ "$rc" = 2 ] && grep -qF -- "$W/t.conf:$want" "$W/err"; then
    pass "kortvagtd: $name (exit $rc)"
  else
    fail "kortvagtd: $name: exit $rc, wanted 2 and '$want' in: $(head -c 300 "$W/err")"
  fi
  [ ! -e "$W/none.db" ] || fail "$name: a store was created"
}

printf '[terminal]\ncountry = 208\n[aid A0000000041010]\ntac_online = DC4004F8\n' >"$W/t.conf"
refused "a short TAC" "4: [aid A0000000041010] tac_online: 'DC4004F8' is not 10 hex digits"
printf '[terminal]\nterminal_type = 27\n' >"$W/t.conf"
refused "a terminal type Book 4 does not define" "2: [terminal] terminal_type: '27'"
printf '\n[aid A0000000031010]\nfloor = 0\n' >"$W/t.conf"
refused "an unknown key" "3: [aid A0000000031010] floor: unknown key"
printf '[aid XYZ]\nasi = exact\n' >"$W/t.conf"
refused "a section without an AID" "2: [aid XYZ] asi: the section needs an AID"
printf '[aid A0000000031010]\ntarget_percent = 50\nmax_target_percent = 10\n' >"$W/t.conf"
refused "max target below target" "3: [aid A0000000031010] max_target_percent: 10 is below"

echo "$((checks - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
