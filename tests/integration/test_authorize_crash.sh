#!/usr/bin/env bash
# Crash: kill -9 a process in the middle of a run of authorizations, three
# times over. Every decision that was answered is in the store, the ids run
# 1..M without gaps (at most one decision committed but not yet printed), the
# counter equals the approvals the store holds, the chain verifies, and the
# store takes new decisions at once.
set -euo pipefail
. "$KV_SOURCE_DIR/tests/integration/hsm_env.sh"
. "$KV_SOURCE_DIR/tests/integration/authorize_common.sh"

cat >"$KORTVAGT_CONFIG" <<CONF
[limits]
contactless_count_max = 1000000
CONF
for i in $(seq 1 5000); do
  if [ $((i % 3)) -eq 0 ]; then
    req contactless 40000 "Shop" 5411 '' # sca_required
  else
    req contactless 100 "Shop" 5411 ''
  fi
done >"$W/batch"

answered=0
for round in 1 2 3; do
  : >"$W/out.$round"
  "$K" authorize --batch "$W/batch" >"$W/out.$round" 2>"$W/err.$round" &
  pid=$!
  want=$((200 * round))
  # the kill comes once the process has answered $want decisions (or died)
  answered_or_gone() { file_lines_ge "$W/out.$round" "$want" || proc_has_exited "$pid"; }
  wait_for 300 answered_or_gone || fail "round $round: $want answers did not come: $(cat "$W/err.$round")"
  kill -9 $pid
  wait $pid 2>/dev/null || true
  n=$(grep -c '"evidence"' "$W/out.$round" || true)
  [ "$n" -ge 1 ] || fail "round $round: nothing answered before the kill: $(cat "$W/err.$round")"
  answered=$((answered + n))
done

"$K" evidence export >"$W/export"
M=$(wc -l <"$W/export")
grep -o '^{"id":[0-9]*' "$W/export" | grep -o '[0-9]*$' >"$W/stored"
seq 1 "$M" | cmp -s - "$W/stored" || fail "stored ids are not 1..$M"
# every answered decision is stored, with the decision that was answered
cat "$W"/out.[123] | grep '"evidence"' >"$W/answers"
sed -n 's/.*"decision":"\([a-z_]*\)".*"evidence":"\([0-9]*\)".*/\2 \1/p' "$W/answers" | sort >"$W/answered.pairs"
sed -n 's/^{"id":\([0-9]*\),.*"response":{"decision":"\([a-z_]*\)".*/\1 \2/p' "$W/export" | sort >"$W/stored.pairs"
[ "$(wc -l <"$W/answered.pairs")" -eq "$answered" ] || fail "could not read the answers"
missing=$(comm -23 "$W/answered.pairs" "$W/stored.pairs")
[ -z "$missing" ] || fail "answered decisions not in the store as answered: $(head -3 <<<"$missing")"
# at most one decision per kill was committed but not printed
[ "$M" -ge "$answered" ] && [ "$M" -le $((answered + 3)) ] ||
  fail "$M stored decisions for $answered answered"

approved=$(grep -c '"response":{"decision":"approve"' "$W/export" || true)
s=$("$K" card settings --pan "$PAN_A" --json)
expect "$s" contactless_count "$approved" "counter after the crashes"
v=$("$K" evidence verify --json) || fail "verify after the crashes: $v"
expect "$v" intact true
expect "$v" records "$M"
r=$(auth_json "$(req contactless 100 "Shop" 5411 '')")
expect "$r" evidence $((M + 1)) "the next decision"
expect "$r" contactless_count $((approved + 1)) "the next decision's counter"
echo "test_authorize_crash: ok ($answered answered, $M stored, $approved approved)"
