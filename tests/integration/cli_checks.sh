# shellcheck shell=bash
# Check counters and the CLI runner shared by the HSM integration tests.
# Source it after hsm_env.sh (it writes under $KV_HSM_DIR/out):
#   pass TEXT / fail TEXT     count a check
#   kv NAME STDIN-TEXT ARGS   run kortvagt with STDIN-TEXT (printf, a builtin)
#                             on stdin; sets rc, out (stdout) and err (stderr);
#                             every output also goes to $ALL_OUTPUT, which the
#                             tests search for leaked secrets.
fails=0
checks=0
pass() { printf 'PASS: %s\n' "$*"; checks=$((checks + 1)); }
fail() { printf 'FAIL: %s\n' "$*"; fails=$((fails + 1)); checks=$((checks + 1)); }

OUT=$KV_HSM_DIR/out
mkdir -p "$OUT"
ALL_OUTPUT=$OUT/all.log
: >"$ALL_OUTPUT"

kv() {
  local name=$1 input=$2
  shift 2
  printf '%s' "$input" | "$KORTVAGT" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"
  rc=$?
  out=$(cat "$OUT/$name.out")
  err=$(cat "$OUT/$name.err")
  cat "$OUT/$name.out" "$OUT/$name.err" >>"$ALL_OUTPUT"
}
