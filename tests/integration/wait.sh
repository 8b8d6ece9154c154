# shellcheck shell=bash
# wait.sh -- waiting for a condition instead of sleeping a fixed time.
# Sourced by lab_common.sh and hsm_env.sh, so every integration test has it.
#
# An integration step never uses a fixed delay to decide an order ("start the
# load, sleep 0.3 s, send SIGTERM"): on a loaded machine the delay is too short
# and the test fails for nothing. It waits for the condition that the next step
# needs (a first answer, a line in a file, a process that has exited, a port
# that listens), polling it; the timeout is only an upper bound for a condition
# that never comes, so it is generous.
#
# Functions:
#   wait_for TIMEOUT CMD...     run CMD until it succeeds (0) or TIMEOUT seconds
#                               have passed (1); polls every KV_WAIT_POLL s (0.05)
#   file_lines_ge FILE N        FILE exists and has at least N lines
#   proc_has_exited PID         PID is gone (or a zombie)
#   progress_ge FILE KEY N      a daemon_load.py --progress FILE has KEY >= N
#                               (KEY: answered, status_200, status_503 ...)

wait_for() {
  local timeout=$1
  shift
  local start=${EPOCHREALTIME/[.,]/}
  local limit=$((timeout * 1000000))
  while :; do
    "$@" && return 0
    [ $((${EPOCHREALTIME/[.,]/} - start)) -ge "$limit" ] && return 1
    sleep "${KV_WAIT_POLL:-0.05}"
  done
}

file_lines_ge() {
  [ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ]
}

proc_has_exited() {
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 0
  [ -z "$st" ] || [ "$st" = Z ]
}

progress_ge() {
  local v
  v=$(awk -v k="$2" '$1 == k {print $2}' "$1" 2>/dev/null)
  [ "${v:-0}" -ge "$3" ]
}
