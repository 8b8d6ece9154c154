# shellcheck shell=bash
# daemon_common.sh -- shared by the test_daemon*.sh integration tests.
# Source after hsm_env.sh and authorize_common.sh (token, keys, W, fail, req).
#
# Exports: KORTVAGTD (the daemon binary, next to $KORTVAGT), TOKEN (a valid
#          bearer token with every scope), TOKENS ($W/tokens, mode 600),
#          ALL_SCOPES (the scope list of TOKEN).
# Functions:
#   free_port                      print a free TCP port on 127.0.0.1
#   daemon_start NAME PORT [ARGS]  start kortvagtd (log $W/NAME.log, pid in
#                                  $W/NAME.pid), wait until /healthz answers 200
#   daemon_stop NAME               SIGTERM and wait (fails the test if it hangs or
#                                  its log holds a sanitizer report)
#   daemon_workers NAME            the worker pids of that daemon
#   http METHOD URL [BODY] [AUTH]  print "STATUS BODY" (AUTH: header value,
#                                  default "Bearer $TOKEN"; "-" for none)
#   expect_status OUT STATUS CODE WHAT   check the status and the error code
#   pg_createdb NAME               a fresh database on the lab's PostgreSQL:
#                                  sets PG_URL, PG_HOST, PG_PORT; skips the test
#                                  (exit 0 with a message) when there is no lab
#                                  PostgreSQL. Call it directly, not in $(...).

KORTVAGTD=${KORTVAGTD:-$(dirname "$KORTVAGT")/kortvagtd}
[ -x "$KORTVAGTD" ] || fail "kortvagtd not built at $KORTVAGTD"
TOKEN=tok-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
ALL_SCOPES=authorize,verify,evidence:read,blocklist:check,blocklist:write,reverse,liability
TOKENS="$W/tokens"
# TOKEN may do everything; second-token-2 has the default scopes of a token
# listed without any (authorize, verify, evidence:read, blocklist:check)
(umask 077 && printf '# test tokens\n%s %s\nsecond-token-2\n' "$TOKEN" "$ALL_SCOPES" >"$TOKENS")
export KORTVAGTD TOKEN TOKENS ALL_SCOPES

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

daemon_start() {
  local name=$1 port=$2
  shift 2
  "$KORTVAGTD" --tokens "$TOKENS" --port "$port" "$@" >>"$W/$name.log" 2>&1 &
  echo $! >"$W/$name.pid"
  local pid
  pid=$(cat "$W/$name.pid")
  healthy_or_gone() {
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/healthz")" = 200 ] || proc_has_exited "$2"
  }
  wait_for 120 healthy_or_gone "$port" "$pid" || fail "kortvagtd $name did not become healthy: $(cat "$W/$name.log")"
  proc_has_exited "$pid" && fail "kortvagtd $name exited: $(cat "$W/$name.log")"
  return 0
}

daemon_stop() {
  local name=$1 pid
  pid=$(cat "$W/$name.pid" 2>/dev/null) || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  if ! wait_for 60 proc_has_exited "$pid"; then
    kill -KILL "$pid" 2>/dev/null
    fail "kortvagtd $name did not stop on SIGTERM"
  fi
  wait "$pid" 2>/dev/null || true
  rm -f "$W/$name.pid"
  # a sanitizer report in any worker fails the test (the master would just restart it)
  if grep -qE "Sanitizer|runtime error:" "$W/$name.log" 2>/dev/null; then
    fail "kortvagtd $name: sanitizer report: $(grep -m5 -E "Sanitizer|runtime error:" "$W/$name.log")"
  fi
  return 0
}

daemon_workers() {
  pgrep -P "$(cat "$W/$1.pid")" | sort
}

http() {
  local method=$1 url=$2 body=${3:-} auth=${4:-"Bearer $TOKEN"}
  local args=(-s -o "$W/http.body" -w '%{http_code}' -X "$method")
  [ "$auth" != "-" ] && args+=(-H "Authorization: $auth")
  if [ -n "$body" ]; then
    printf '%s' "$body" >"$W/http.req"
    args+=(-H 'Content-Type: application/json' --data-binary "@$W/http.req")
  fi
  local code
  code=$(curl "${args[@]}" "$url") || true
  printf '%s %s\n' "$code" "$(cat "$W/http.body" 2>/dev/null)"
}

expect_status() { # expect_status OUT STATUS CODE WHAT
  local out=$1 status=$2 code=$3 what=$4
  [ "${out%% *}" = "$status" ] || fail "$what: status ${out%% *}, want $status: $out"
  if [ -n "$code" ]; then
    grep -q "\"code\":\"$code\"" <<<"$out" || fail "$what: error code is not $code: $out"
  fi
}

pg_createdb() {
  local name=$1 url=${KORTVAGT_PG_URL:-}
  if [ -z "$url" ] && [ -n "${KORTVAGT_LAB:-}" ] && [ -f "$KORTVAGT_LAB/env" ]; then
    url=$(. "$KORTVAGT_LAB/env" && echo "${KORTVAGT_PG_URL:-}")
  fi
  if [ -z "$url" ]; then
    # scripts/test.sh sets KV_REQUIRE_PG: there a missing PostgreSQL is a failure
    [ -n "${KV_REQUIRE_PG:-}" ] && fail "no lab PostgreSQL (KORTVAGT_PG_URL), and KV_REQUIRE_PG is set"
    echo "SKIP: no lab PostgreSQL (KORTVAGT_PG_URL; scripts/lab.sh start)" >&2
    exit 77
  fi
  # postgresql://kortvagt@127.0.0.1:PORT/kortvagt -> host and port for psql
  local hp=${url#*@}
  hp=${hp%%/*}
  local host=${hp%%:*} port=${hp##*:}
  psql -q -h "$host" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -c "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name OWNER kortvagt" >/dev/null 2>&1 ||
    fail "createdb $name on $host:$port"
  PG_HOST=$host
  PG_PORT=$port
  PG_URL="postgresql://kortvagt@$host:$port/$name"
}

# kortvagtd decides with its own clock and refuses a request whose "at" lies more than
# [daemon] max_clock_skew (default 300 s) from it (issue 11): the requests these tests
# build with req (authorize_common.sh) carry the current time instead of a fixed one.
if declare -F req >/dev/null && ! declare -F req_fixed_at >/dev/null; then
  eval "req_fixed_at() $(declare -f req | sed 1d)"
  req() {
    local a=("$@")
    while [ ${#a[@]} -lt 8 ]; do a+=(""); done
    a[6]=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    req_fixed_at "${a[@]}"
  }
fi
