#!/usr/bin/env bash
# The main job on a fresh machine, on the embedded defaults (virtual reader,
# SoftHSM2): install, build, start the lab, read the virtual card and print
# the result.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
bash scripts/deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)"
export KORTVAGT_LAB="$REPO/build/lab"
export KORTVAGT_BIN="$REPO/build/bin/kortvagt"
bash scripts/lab.sh stop >/dev/null 2>&1 || true
bash scripts/lab.sh run -- bash "$REPO/scripts/demo-steps.sh"
