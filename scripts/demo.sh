#!/usr/bin/env bash
# The main job on a fresh machine, on the embedded defaults (virtual reader,
# SoftHSM2): install, build, start the lab, and show what kortvagt does
# (scripts/demo-steps.sh: read the virtual card, personalize cards, run a
# verified chip+PIN and a contactless transaction, verify the evidence chain,
# settle a dispute, and a summary of what was shown).
#
# The install and build output goes to build/demo-build.log; the terminal gets
# one line for it (and the end of the log if something fails). Every run starts
# from a fresh lab in build/lab (new store, token and virtual card state), so
# the demo shows the same thing however often it runs.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
BUILD=$REPO/build
LOG=$BUILD/demo-build.log
mkdir -p "$BUILD"
: >"$LOG"

# quietly NAME CMD...: run CMD with its output in the log; on failure show the
# log's last lines and stop
quietly() {
  local name=$1
  shift
  printf '\n== %s: %s\n' "$name" "$*" >>"$LOG"
  if ! "$@" >>"$LOG" 2>&1; then
    echo " failed"
    echo "demo: $name failed; the last lines of $LOG:" >&2
    tail -n 40 "$LOG" | sed 's/^/  /' >&2
    echo "demo: the whole log: $LOG" >&2
    exit 1
  fi
}

started=$SECONDS
printf 'demo: packages, configure, build (output in %s) ...' "${LOG#"$REPO"/}"
quietly "packages (scripts/deps.sh)" bash scripts/deps.sh
quietly "configure" cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
quietly "build" cmake --build build -j "$(nproc)"
echo " done ($((SECONDS - started)) s)"

export KORTVAGT_LAB="$BUILD/lab"
export KORTVAGT_BIN="$BUILD/bin/kortvagt"
# a fresh lab: stop one left running, then start from an empty directory
bash scripts/lab.sh stop >/dev/null 2>&1 || true
if sp=$(cat "$KORTVAGT_LAB/supervisor.pid" 2>/dev/null) && kill -0 "$sp" 2>/dev/null; then
  echo "demo: the lab in $KORTVAGT_LAB is still running; stop it (scripts/lab.sh stop) and run again" >&2
  exit 1
fi
rm -rf "$KORTVAGT_LAB"
bash scripts/lab.sh run -- bash "$REPO/scripts/demo-steps.sh"
