#!/usr/bin/env bash
# Issue 11, Low: files the CLI writes and PINs on the command line.
#   - `perso card --out` over an existing 0644 file (the profile holds the
#     card's keys and PIN) leaves a 0600 file, written whole (new inode, no
#     temporary file left); a new --out is 0600 under umask 022;
#   - `--trace` files (new and existing 0644) are 0600; `liability --svg` too;
#   - `card apdu` refuses a VERIFY with a plaintext PIN on the command line
#     (nothing reaches the card: the try counter stays) and names
#     --pin-stdin; `card apdu --pin-stdin` verifies the lab card's PIN read
#     from stdin, never printing or tracing it; a wrong PIN counts down.
. "$(dirname "$0")/lab_common.sh"
# an isolated token for perso (after lab_common: its SoftHSM2 settings win)
# shellcheck source=tests/integration/hsm_env.sh
. "$SRC/tests/integration/hsm_env.sh"
umask 022
W=$KV_HSM_DIR/files
mkdir -p "$W"
state=$LAB/sec-files.state
rm -f "$state"
trap 'rm -f "$state"; kv_hsm_cleanup' EXIT

mode() { stat -c %a "$1"; }
expect_mode() { # FILE MODE NAME
  local m
  m=$(mode "$1" 2>/dev/null || echo missing)
  if [ "$m" = "$2" ]; then pass "$3 (mode $m)"; else fail "$3: mode $m, wanted $2"; fi
}

# ---- perso --out ----
TPL=$SRC/tests/data/templates
CAKEY=$SRC/tests/data/capk/kortvagt-test-ca-e1.pem
if kv_hsm_import imk-ac des2 imk 08D7 0123456789ABCDEFFEDCBA9876543210 >/dev/null 2>&1; then
  pass "import imk-ac"
else
  fail "import imk-ac"
fi
P=$W/profile.json
printf 'an older file anyone may read\n' >"$P"
chmod 0644 "$P"
old_inode=$(stat -c %i "$P")
expect_rc 0 "perso card --out over an existing 0644 file" "$K" perso card \
  --template "$TPL/visa_contact_sda.json" --out "$P" --imk imk-ac --pan 4761730000000011 \
  --psn 01 --expiry 3012 --ca-key "$CAKEY"
expect_mode "$P" 600 "the profile (keys, PIN) is 0600 after perso --out over a 0644 file"
if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert "keys" in d' "$P" 2>/dev/null; then
  pass "the profile is complete JSON"
else
  fail "the profile is not the new JSON profile: $(head -c 200 "$P")"
fi
[ "$(stat -c %i "$P")" != "$old_inode" ] && pass "a new inode replaced the old file" ||
  fail "the old inode was written in place"
left=$(find "$W" -name '.*.tmp' | wc -l)
[ "$left" = 0 ] && pass "no temporary file left" || fail "$left temporary files left in $W"
expect_rc 0 "perso card --out to a new file" "$K" perso card \
  --template "$TPL/visa_contact_sda.json" --out "$W/new.json" --imk imk-ac \
  --pan 4761730000000011 --psn 01 --expiry 3012 --ca-key "$CAKEY"
expect_mode "$W/new.json" 600 "a new profile is 0600"

# ---- traces ----
lab_insert "$DEFAULT_PROFILE" --state "$state"
T=$W/read.trace
expect_rc 0 "card read --trace (new file)" "$K" card read --reader "$READER" --trace "$T"
expect_mode "$T" 600 "a new trace is 0600"
[ -s "$T" ] && pass "the trace has exchanges" || fail "the trace is empty"
T2=$W/old.trace
printf 'old\n' >"$T2"
chmod 0644 "$T2"
expect_rc 0 "card read --trace over an existing 0644 file" "$K" card read --reader "$READER" --trace "$T2"
expect_mode "$T2" 600 "a trace over an existing 0644 file is 0600"
grep -q '^old$' "$T2" && fail "the old trace content is still there" || pass "the old trace content is gone"

# a device is written, never replaced by a file
expect_rc 0 "card read --trace /dev/null" "$K" card read --reader "$READER" --trace /dev/null
[ -c /dev/null ] && pass "/dev/null is still a character device" || fail "/dev/null was replaced"

# ---- liability --svg ----
S=$W/case.svg
printf 'old\n' >"$S"
chmod 0644 "$S"
expect_rc 0 "liability assess --svg over a 0644 file" "$K" liability assess \
  "$SRC/tests/data/liability/rules_example.json" --svg "$S"
expect_mode "$S" 600 "the SVG is 0600"

# ---- card apdu and plaintext PINs ----
SELECT=00A4040007A000000003101000
ptc() { "$K" card read --reader "$READER" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pin_try_counter"])'; }
[ "$(ptc)" = 3 ] && pass "try counter starts at 3" || fail "try counter at start: $(ptc)"
expect_rc 2 "card apdu refuses a plaintext VERIFY with the PIN on the command line" \
  "$K" card apdu --reader "$READER" "$SELECT" 0020008008249999FFFFFFFFFF
expect_text "$LAB/last.err" "--pin-stdin" "the refusal points at --pin-stdin"
if grep -q 9999 "$LAB/last.out" "$LAB/last.err"; then fail "the refusal echoes the PIN"; else pass "the refusal does not echo the PIN"; fi
expect_rc 2 "card apdu refuses a plaintext VERIFY with P2 88" \
  "$K" card apdu --reader "$READER" "$SELECT" 0020008808249999FFFFFFFFFF
# a wrong PIN on the command line would have counted down: nothing was sent
[ "$(ptc)" = 3 ] && pass "nothing reached the card (try counter still 3)" || fail "try counter now $(ptc)"
expect_rc 0 "card apdu 00200080 without data (tries left) is still allowed" \
  "$K" card apdu --reader "$READER" "$SELECT" 00200080
tail -n 1 "$LAB/last.out" >"$LAB/last.sw"
expect_text "$LAB/last.sw" "^< 63C3" "VERIFY without data answers 63C3"

T3=$W/verify.trace
expect_rc 0 "card apdu --pin-stdin with the right PIN" bash -c \
  "printf '1234\n' | \"\$0\" card apdu --reader \"\$1\" --pin-stdin --trace \"\$2\" $SELECT 00200080" \
  "$K" "$READER" "$T3"
tail -n 1 "$LAB/last.out" >"$LAB/last.sw"
expect_text "$LAB/last.sw" "^< 9000" "VERIFY from --pin-stdin answers 9000"
if grep -Eq '241234|1234' "$LAB/last.out" "$LAB/last.err" "$T3"; then
  fail "the PIN or its block appears in the output or the trace"
else
  pass "the PIN is neither printed nor traced"
fi
expect_mode "$T3" 600 "the trace of card apdu is 0600"
expect_rc 0 "card apdu --pin-stdin with a wrong PIN" bash -c \
  "printf '9999\n' | \"\$0\" card apdu --reader \"\$1\" --pin-stdin $SELECT 00200080" "$K" "$READER"
tail -n 1 "$LAB/last.out" >"$LAB/last.sw"
expect_text "$LAB/last.sw" "^< 63C2" "a wrong PIN from --pin-stdin counts down (63C2)"
expect_rc 2 "--pin-stdin without a VERIFY to fill" bash -c \
  "printf '1234\n' | \"\$0\" card apdu --reader \"\$1\" --pin-stdin $SELECT" "$K" "$READER"
expect_rc 2 "--pin-stdin with a PIN that is not 4-12 digits" bash -c \
  "printf '12a4\n' | \"\$0\" card apdu --reader \"\$1\" --pin-stdin $SELECT 00200080" "$K" "$READER"
expect_rc 0 "card apdu --pin-stdin: the right PIN resets the counter" bash -c \
  "printf '1234\n' | \"\$0\" card apdu --reader \"\$1\" --pin-stdin $SELECT 00200080" "$K" "$READER"
[ "$(ptc)" = 3 ] && pass "try counter back to 3" || fail "try counter after the right PIN: $(ptc)"
finish
