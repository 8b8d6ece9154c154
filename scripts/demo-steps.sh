#!/usr/bin/env bash
# What the demo does inside the lab (scripts/demo.sh runs it with the lab's
# environment).
set -euo pipefail
K=${KORTVAGT_BIN:?}
echo "== readers"
"$K" readers
echo
echo "== the card in '$KORTVAGT_READER'"
"$K" card read --reader "$KORTVAGT_READER"
echo
echo "== the same read as JSON"
"$K" card read --reader "$KORTVAGT_READER" --json
echo
echo "== the HSM token"
"$K" hsm info
