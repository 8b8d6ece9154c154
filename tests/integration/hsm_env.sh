# shellcheck shell=bash
# hsm_env.sh -- an isolated SoftHSM2 token for one integration test.
#
# Source it (do not run it):   . "$KV_SOURCE_DIR/tests/integration/hsm_env.sh"
#
# Needs:   $KORTVAGT       the kortvagt binary (ctest sets it)
#          $KV_SOURCE_DIR  the repository (ctest sets it; else found from this file)
# Does:    creates a temp dir with its own SoftHSM2 config and token directory,
#          exports the variables below, runs `$KORTVAGT hsm init` (token
#          "kortvagt"), and registers an EXIT trap that removes the temp dir.
# Exports: KV_HSM_DIR          the temp dir (tokens in $KV_HSM_DIR/tokens)
#          SOFTHSM2_CONF       $KV_HSM_DIR/softhsm2.conf (file backend, log level ERROR)
#          KORTVAGT_TOKEN      kortvagt
#          KORTVAGT_PIN        test user PIN      KORTVAGT_SO_PIN  test SO PIN
#          KORTVAGT_PKCS11_MODULE  (kept if set, else /usr/lib/softhsm/libsofthsm2.so)
#          OPENSSL_CONF        $KV_SOURCE_DIR/scripts/openssl-legacy.cnf (single DES)
#          and unsets KORTVAGT_PIN_FILE.
# Functions: wait_for & co. (wait.sh), and
#   kv_hsm_import LABEL TYPE USAGE KCV COMPONENT...
#       `kortvagt key import` with the components fed on stdin by printf (a
#       shell builtin, so they never appear in any process's arguments).
#       USAGE or KCV may be "" (none). Prints kortvagt's output; returns its status.
#   kv_hsm_cleanup
#       removes the temp dir; the EXIT trap calls it. A test that sets its own
#       EXIT trap after sourcing this file must call kv_hsm_cleanup from it.
# Failure to create the token prints the reason and exits the test with 1.

if [ -z "${KORTVAGT:-}" ]; then
  echo "hsm_env.sh: KORTVAGT (the kortvagt binary) is not set" >&2
  exit 1
fi
if [ -z "${KV_SOURCE_DIR:-}" ]; then
  KV_SOURCE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  export KV_SOURCE_DIR
fi
# shellcheck source=wait.sh
. "$KV_SOURCE_DIR/tests/integration/wait.sh"

KV_HSM_DIR=$(mktemp -d "${TMPDIR:-/tmp}/kortvagt-hsm.XXXXXX")
export KV_HSM_DIR
mkdir -p "$KV_HSM_DIR/tokens"
cat >"$KV_HSM_DIR/softhsm2.conf" <<CONF
directories.tokendir = $KV_HSM_DIR/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF

kv_hsm_cleanup() {
  if [ -n "${KV_HSM_DIR:-}" ] && [ -d "$KV_HSM_DIR" ]; then
    rm -rf -- "$KV_HSM_DIR"
  fi
}
trap kv_hsm_cleanup EXIT

export SOFTHSM2_CONF="$KV_HSM_DIR/softhsm2.conf"
export KORTVAGT_TOKEN=kortvagt
export KORTVAGT_PIN=test-user-4711
export KORTVAGT_SO_PIN=test-so-0815
export KORTVAGT_PKCS11_MODULE="${KORTVAGT_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}"
export OPENSSL_CONF="$KV_SOURCE_DIR/scripts/openssl-legacy.cnf"
unset KORTVAGT_PIN_FILE

kv_hsm_import() {
  local label=$1 type=$2 usage=$3 kcv=$4
  shift 4
  local args=(key import --label "$label" --type "$type")
  [ -n "$usage" ] && args+=(--usage "$usage")
  [ -n "$kcv" ] && args+=(--kcv "$kcv")
  printf '%s\n' "$@" | "$KORTVAGT" "${args[@]}"
}

if ! kv_hsm_init_out=$("$KORTVAGT" hsm init </dev/null 2>&1); then
  echo "hsm_env.sh: kortvagt hsm init failed: $kv_hsm_init_out" >&2
  exit 1
fi
unset kv_hsm_init_out
