# Sourced by the integration tests that need the running lab (scripts/lab.sh
# run -- ctest ...). Provides: $K (kortvagt), $LAB, lab_insert PROFILE [vcard
# options], lab_eject [--hard], check NAME CMD... (PASS/FAIL lines), finish,
# and wait_for & co. (wait.sh).
set -u
K=${KORTVAGT:?KORTVAGT must name the kortvagt binary}
SRC=${KV_SOURCE_DIR:?}
# shellcheck source=wait.sh
. "$SRC/tests/integration/wait.sh"
if [ -z "${KORTVAGT_LAB:-}" ] || [ ! -f "$KORTVAGT_LAB/env" ]; then
  echo "FAIL: the lab is not running (run the suite through scripts/lab.sh run -- ctest ...)"
  exit 1
fi
# shellcheck disable=SC1091
. "$KORTVAGT_LAB/env"
LAB=$KORTVAGT_LAB
export KORTVAGT_BIN=$K
READER=${KORTVAGT_READER:-"Virtual PCD 00 00"}
DEFAULT_PROFILE=$SRC/tests/data/visa_contact_pse.json
failures=0
checks=0

lab_insert() { bash "$SRC/scripts/lab.sh" insert "$@" >/dev/null; }
lab_eject() { bash "$SRC/scripts/lab.sh" eject "$@" >/dev/null; }

pass() { checks=$((checks + 1)); echo "PASS: $*"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*"; }

# expect_rc WANT NAME CMD... : run CMD, compare its exit code
expect_rc() {
  local want=$1 name=$2 rc=0
  shift 2
  "$@" >"$LAB/last.out" 2>"$LAB/last.err" || rc=$?
  if [ "$rc" = "$want" ]; then pass "$name (exit $rc)"; else
    fail "$name: exit $rc, wanted $want"; sed 's/^/    /' "$LAB/last.err" | head -5; fi
}

# expect_text FILE REGEX NAME
expect_text() {
  if grep -Eqi -- "$2" "$1"; then pass "$3"; else fail "$3: no /$2/ in: $(head -c 300 "$1")"; fi
}

finish() {
  # leave the lab as the next test expects it: the default card inserted
  lab_insert "$DEFAULT_PROFILE" || true
  echo "$((checks - failures)) passed, $failures failed"
  [ "$failures" -eq 0 ]
}
