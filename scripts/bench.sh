#!/usr/bin/env bash
# Every benchmark program of tests/bench/, on the RelWithDebInfo build, inside
# a lab of its own: each prints its figures next to a baseline measured in the
# same run. Run on a quiet machine; the figures are noisy otherwise.
#   scripts/bench.sh            all of them
#   scripts/bench.sh NAME...    only these (tlv transport card_read transact hsm
#                               authorize daemon)
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

if [ "${1:-}" != "--in-lab" ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build -j "$(nproc)" >/dev/null
  export KORTVAGT_LAB="$REPO/build/lab-bench"
  export KORTVAGT_BIN="$REPO/build/bin/kortvagt"
  bash scripts/lab.sh stop >/dev/null 2>&1 || true
  exec bash scripts/lab.sh run -- bash "$REPO/scripts/bench.sh" --in-lab "$@"
fi
shift
B=$REPO/build/bin
K=$B/kortvagt
sel=("$@")
run() { # NAME CMD...
  local name=$1
  shift
  if [ ${#sel[@]} -eq 0 ] || [[ " ${sel[*]} " == *" $name "* ]]; then
    printf '\n==== %s: %s\n' "$name" "$*"
    "$@" || echo "($name exited $?)"
  fi
}
TPL=$REPO/tests/data/templates
export KORTVAGT_CAPK=$REPO/tests/data/capk/capk.json

run tlv "$B/bench_tlv" "$REPO/tests/data"
run transport "$B/bench_transport"
for p in visa_contact_pse mc_contactless_ppse dankort_visa_cobadge; do
  if [ ${#sel[@]} -eq 0 ] || [[ " ${sel[*]} " == *" card_read "* ]]; then
    bash scripts/lab.sh insert "$REPO/tests/data/$p.json"
    run card_read "$B/bench_card_read" 200
  fi
done
if [ ${#sel[@]} -eq 0 ] || [[ " ${sel[*]} " == *" transact "* ]]; then
  "$K" perso --issuer "$TPL/issuer_lab.json" --card "$TPL/card_visa_cda.json" \
    --out "$KORTVAGT_LAB/bench-cda.json" >/dev/null
  bash scripts/lab.sh insert "$KORTVAGT_LAB/bench-cda.json" --state "$KORTVAGT_LAB/bench-cda.state"
  run transact "$B/bench_transact" 200 --vcard "$KORTVAGT_LAB/bench-cda.json"
fi
run hsm "$B/bench_hsm" --seconds 2 --rounds 3
run authorize "$B/bench_authorize" -n 20000
run daemon env KORTVAGT="$K" KV_SOURCE_DIR="$REPO" bash tests/bench/bench_daemon.sh
