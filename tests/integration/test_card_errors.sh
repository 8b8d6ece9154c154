#!/usr/bin/env bash
# Clean errors: pcscd absent, reader absent, no card, card pulled mid-read.
. "$(dirname "$0")/lab_common.sh"

# pcscd absent: point the PC/SC client at a socket that does not exist (the
# machine's one pcscd keeps serving the other tests).
PCSCLITE_CSOCK_NAME=$LAB/no-such-pcscd.comm expect_rc 3 "readers without pcscd" "$K" readers
expect_text "$LAB/last.err" "pcscd|PC/SC service" "pcscd absent: clear message"
PCSCLITE_CSOCK_NAME=$LAB/no-such-pcscd.comm expect_rc 3 "card read without pcscd" "$K" card read

expect_rc 3 "unknown reader" "$K" card read --reader "No Such Reader 00 00"
expect_text "$LAB/last.err" "reader" "unknown reader: message names the reader"

lab_eject
expect_rc 3 "no card" "$K" card read --reader "$READER"
expect_text "$LAB/last.err" "no card" "no card: clear message"

# Card killed mid-read: a slow card (every answer delayed), killed with -9
# while the read is under way: once the trace shows the first exchange (the
# read has about ten, so more than a second is left).
lab_insert "$DEFAULT_PROFILE" --delay-ms 150
rm -f "$LAB/mid.trace"
( "$K" card read --reader "$READER" --json --trace "$LAB/mid.trace" >"$LAB/mid.out" 2>"$LAB/mid.err"
  echo $? >"$LAB/mid.rc" ) &
reader_pid=$!
read_started() { file_lines_ge "$LAB/mid.trace" 1 || [ -f "$LAB/mid.rc" ]; }
wait_for 120 read_started || fail "card pulled mid-read: the read did not start"
lab_eject --hard
wait $reader_pid
rc=$(cat "$LAB/mid.rc")
if [ "$rc" = 3 ]; then pass "card pulled mid-read: exit 3"; else fail "card pulled mid-read: exit $rc"; fi
expect_text "$LAB/mid.err" "removed|no card|does not respond" "card pulled mid-read: clear message"
if [ -s "$LAB/mid.out" ]; then fail "partial JSON printed after the card was pulled"; else pass "nothing half-printed"; fi
finish
