#!/usr/bin/env bash
# kortvagtd throughput with wrk on loopback: authorizations per second and
# p50/p99 latency for 1, 2 and 4 workers, on SQLite and on PostgreSQL (the
# lab's, when KORTVAGT_PG_URL or $KORTVAGT_LAB/env names one), without and
# with an HSM-verified factor (CVC2 checked in SoftHSM2 on every request).
#
#   KORTVAGT=build/bin/kortvagt KV_SOURCE_DIR=. bash tests/bench/bench_daemon.sh
#
# Environment: BENCH_SECONDS (5), BENCH_CONNECTIONS (16), BENCH_WORKERS ("1 2 4"),
# BENCH_SQLITE_DIR (where the SQLite file goes; default the temp dir), BENCH_PG (0: skip PostgreSQL).
# Every request is one full decision: engine, store write transaction, evidence.
set -euo pipefail
KV_SOURCE_DIR=${KV_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
export KV_SOURCE_DIR
command -v wrk >/dev/null || { echo "bench_daemon: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
. "$KV_SOURCE_DIR/tests/integration/hsm_env.sh"
. "$KV_SOURCE_DIR/tests/integration/authorize_common.sh"
. "$KV_SOURCE_DIR/tests/integration/daemon_common.sh"
SECS=${BENCH_SECONDS:-5}
CONNS=${BENCH_CONNECTIONS:-16}
WORKERS=${BENCH_WORKERS:-"1 2 4"}
trap 'daemon_stop bench >/dev/null 2>&1 || true; kv_hsm_cleanup' EXIT

PAN=4761739001010119
CVC2=$("$K" cvv generate --key cvk --pan $PAN --expiry 2812 --service-code 000 --json |
  grep -o '"cvv":"[0-9]*"' | sed 's/.*:"//; s/"//')
[ ${#CVC2} -eq 3 ] || fail "cvv generate: '$CVC2'"
UP='{"type":"pin_offline","verified":true},{"type":"chip_cryptogram","verified":true}'
body_plain=$(req contact 100 "Shop A" 5411 "$UP" $PAN 2026-03-01T10:00:00Z)
body_hsm=$(req contact 100 "Shop A" 5411 "$UP,{\"type\":\"cvc2\",\"cvk\":\"cvk\",\"value\":\"$CVC2\"}" $PAN 2026-03-01T10:00:00Z)

lua() { # lua BODY -> a wrk script posting it
  local f="$W/post-$RANDOM.lua" esc
  esc=$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')
  cat >"$f" <<LUA
wrk.method = "POST"
wrk.body = "$esc"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
local bad = 0
response = function(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.0f %.3f %.3f %d\\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
  echo "$f"
}
LUA_PLAIN=$(lua "$body_plain")
LUA_HSM=$(lua "$body_hsm")

SQLITE_DIR=${BENCH_SQLITE_DIR:-$W}
# the default (synchronous=FULL since issue 11) and NORMAL, the earlier default
stores=("sqlite:$SQLITE_DIR/bench.db" "sqlite:$SQLITE_DIR/bench.db?synchronous=normal")
pg_url=${KORTVAGT_PG_URL:-}
if [ -z "$pg_url" ] && [ -n "${KORTVAGT_LAB:-}" ] && [ -f "$KORTVAGT_LAB/env" ]; then
  pg_url=$(. "$KORTVAGT_LAB/env" && echo "${KORTVAGT_PG_URL:-}")
fi
[ -n "$pg_url" ] && [ "${BENCH_PG:-1}" != 0 ] && stores+=("postgresql")

printf '%-11s %-7s %-5s %10s %9s %9s %7s\n' store workers hsm "auth/s" "p50 ms" "p99 ms" errors
for store in "${stores[@]}"; do
  for n in $WORKERS; do
    for mode in none cvc2; do
      if [ "$store" = postgresql ]; then
        KORTVAGT_PG_URL=$pg_url pg_createdb kv_bench_daemon
        export KORTVAGT_STORE=$PG_URL
      else
        rm -f "$SQLITE_DIR"/bench.db*
        export KORTVAGT_STORE=$store
      fi
      port=$(free_port)
      daemon_start bench "$port" --workers "$n"
      script=$LUA_PLAIN; [ $mode = cvc2 ] && script=$LUA_HSM
      # warm-up (PAN token cache, connections), then the measured run
      wrk -t2 -c"$CONNS" -d1s -s "$script" "http://127.0.0.1:$port/v1/authorize" >/dev/null 2>&1 || true
      res=$(wrk -t2 -c"$CONNS" -d"${SECS}s" -s "$script" "http://127.0.0.1:$port/v1/authorize" |
        grep '^RESULT' || echo "RESULT 0 0 0 -1")
      read -r _ rps p50 p99 errs <<<"$res"
      label=${store%%:*}
      [[ "$store" == *synchronous=normal* ]] && label=sqlite-nrm
      printf '%-11s %-7s %-5s %10s %9s %9s %7s\n' "$label" "$n" "$mode" "$rps" "$p50" "$p99" "$errs"
      daemon_stop bench
    done
  done
done
