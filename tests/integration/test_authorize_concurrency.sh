#!/usr/bin/env bash
# Concurrency: 4 processes x 250 authorizations at once. Card A takes
# contactless payments (its count counter must equal the approvals exactly);
# card B takes ATM withdrawals of 1000 against atm_daily_max 100000 (exactly
# 100 may be approved, whoever wins). The evidence chain must hold exactly
# one record per decision, with ids 1..1000, and verify.
set -euo pipefail
. "$KV_SOURCE_DIR/tests/integration/hsm_env.sh"
. "$KV_SOURCE_DIR/tests/integration/authorize_common.sh"

cat >"$KORTVAGT_CONFIG" <<CONF
[limits]
contactless_count_max = 1000000
atm_daily_max = 100000
CONF
PAN_B=5413330000000001
CHIP_PIN='{"type":"pin_offline","verified":true},{"type":"chip_cryptogram","verified":true}'
for p in 1 2 3 4; do
  for i in $(seq 1 250); do
    if [ $((i % 5)) -eq 0 ]; then
      req atm 1000 "ATM $p" 6011 "$CHIP_PIN" $PAN_B
    elif [ $((i % 7)) -eq 0 ]; then
      req contactless 35001 "Shop $p" 5411 '' # past the single max: sca_required
    else
      req contactless $((100 + p)) "Shop $p" 5411 ''
    fi
  done >"$W/batch.$p"
done

# each process opens its session, then its FIFO, and waits for its first line
# until all four are ready; then all four are fed at once. The test holds each
# FIFO open read-write meanwhile (fds 3-6), so no open() blocks and "ready" is
# visible: the process has the FIFO among its open files.
pids=()
for p in 1 2 3 4; do
  mkfifo "$W/fifo.$p"
done
exec 3<>"$W/fifo.1" 4<>"$W/fifo.2" 5<>"$W/fifo.3" 6<>"$W/fifo.4"
for p in 1 2 3 4; do
  "$K" authorize --batch "$W/fifo.$p" >"$W/out.$p" 2>"$W/err.$p" 3>&- 4>&- 5>&- 6>&- &
  pids+=($!)
done
has_open() { # PID FILE
  local fd f
  f=$(readlink -f "$2")
  for fd in /proc/"$1"/fd/*; do
    [ "$(readlink "$fd" 2>/dev/null)" = "$f" ] && return 0
  done
  return 1
}
all_at_fifo() {
  local i
  for i in 0 1 2 3; do
    # a process that died is reported below, by wait
    proc_has_exited "${pids[$i]}" || has_open "${pids[$i]}" "$W/fifo.$((i + 1))" || return 1
  done
}
wait_for 300 all_at_fifo || fail "the processes did not open their FIFOs: $(cat "$W"/err.*)"
# each writer is a child holding only its own FIFO; the test then lets go of all
# four, so a FIFO ends when its writer is done. timeout: a reader that died must
# not leave a writer blocked (and the test hanging) forever
writers=()
for p in 1 2 3 4; do
  fd=$((p + 2))
  (
    for o in 3 4 5 6; do [ "$o" = "$fd" ] || eval "exec $o>&-"; done
    exec timeout 120 cat "$W/batch.$p" >&"$fd"
  ) &
  writers+=($!)
done
exec 3>&- 4>&- 5>&- 6>&-
for i in 0 1 2 3; do
  rc=0
  wait "${pids[$i]}" || rc=$?
  if [ "$rc" -ne 0 ]; then
    kill "${writers[@]}" 2>/dev/null || true
    fail "process $((i + 1)) exited $rc: $(cat "$W/err.$((i + 1))")"
  fi
done
wait "${writers[@]}"

cat "$W"/out.[1-4] >"$W/all"
[ "$(wc -l <"$W/all")" -eq 1000 ] || fail "$(wc -l <"$W/all") responses, want 1000"
grep -q '"error"' "$W/all" && fail "errors: $(grep '"error"' "$W/all" | head -3)"

# every decision has its own evidence record, ids 1..1000
grep -o '"evidence":"[0-9]*"' "$W/all" | grep -o '[0-9]*' | sort -n >"$W/ids"
seq 1 1000 | cmp -s - "$W/ids" || fail "evidence ids are not exactly 1..1000"

cl_approved=$(grep -c '"reason":"contactless_low_value"' "$W/all" || true)
cl_sca=$(grep -c '"reason":"contactless_single_max"' "$W/all" || true)
atm_ok=$(grep '"counters":{"contactless_count":0}' "$W/all" | grep -c '"decision":"approve"' || true)
atm_declined=$(grep -c '"reason":"limit_atm_daily"' "$W/all" || true)
[ $((cl_approved + cl_sca)) -eq 800 ] || fail "contactless: $cl_approved approved + $cl_sca sca_required != 800"
[ "$atm_ok" -eq 100 ] && [ "$atm_declined" -eq 100 ] ||
  fail "ATM: $atm_ok approved, $atm_declined declined; want 100 and 100"

# the counter accounts for exactly the approved contactless payments
s=$("$K" card settings --pan "$PAN_A" --json)
expect "$s" contactless_count "$cl_approved" "card A counter"
want_amount=0
for p in 1 2 3 4; do
  n=$(grep -c '"reason":"contactless_low_value"' "$W/out.$p" || true)
  want_amount=$((want_amount + n * (100 + p)))
done
expect "$s" contactless_amount "$want_amount" "card A counted amount"
# the counter after each approval is unique: no two processes saw the same value
grep '"reason":"contactless_low_value"' "$W/all" | grep -o '"contactless_count":[0-9]*' | sort | uniq -d >"$W/dups"
[ ! -s "$W/dups" ] || fail "two approvals saw the same counter value: $(head -3 "$W/dups")"

# how much the four interleaved (runs of consecutive ids per process; 4 = none)
runs=0
for p in 1 2 3 4; do
  r=$(grep -o '"evidence":"[0-9]*"' "$W/out.$p" | grep -o '[0-9]*' |
    awk 'NR == 1 || $1 != prev + 1 { n++ } { prev = $1 } END { print n }')
  runs=$((runs + r))
done
echo "interleaving: $runs runs of consecutive evidence ids over 4 processes"

v=$("$K" evidence verify --json) || fail "verify: $v"
expect "$v" intact true
expect "$v" records 1000
echo "test_authorize_concurrency: ok ($cl_approved contactless approvals, $atm_ok ATM)"
