#!/usr/bin/env bash
# Processes that open the token at the same moment (daemon workers, parallel
# CLI runs) must all get it: SoftHSM2 can show a token as absent, or its user
# PIN as not initialised, while another process's login rewrites the token
# files (SoftHSMv2 issue #757); hsm/p11.c retries those answers. 15 rounds of
# 8 simultaneous `kortvagt cvv generate`: every one must succeed with the
# tests/data/VECTORS.md answer 561.
set -u
: "${KORTVAGT:?}" "${KV_SOURCE_DIR:?}"
. "$KV_SOURCE_DIR/tests/integration/hsm_env.sh"
printf '0123456789ABCDEFFEDCBA9876543210\n' |
  "$KORTVAGT" key import --label cvk --type des2 --usage cvk --kcv 08D7B4 >/dev/null ||
  { echo "FAIL: key import"; exit 1; }
out=$KV_HSM_DIR/out
fails=0
runs=0
for round in $(seq 1 15); do
  pids=()
  for p in 1 2 3 4 5 6 7 8; do
    "$KORTVAGT" cvv generate --key cvk --pan 4123456789012345 --expiry 8701 \
      --service-code 101 >"$out.$p" 2>&1 &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do
    runs=$((runs + 1))
    if ! wait "${pids[$i]}" || [ "$(cat "$out.$((i + 1))")" != 561 ]; then
      fails=$((fails + 1))
      echo "FAIL: round $round process $((i + 1)): $(head -1 "$out.$((i + 1))")"
    fi
  done
done
echo "$((runs - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
