#!/usr/bin/env bash
# The virtual lab: a pcscd with the vpcd virtual reader, our virtual card on
# "Virtual PCD 00 00", and a SoftHSM2 token — everything a test or the demo
# needs, in one lab directory.
#
#   scripts/lab.sh start              start the lab in the background
#   scripts/lab.sh stop               stop what the lab started (and nothing else)
#   scripts/lab.sh status             show what runs
#   scripts/lab.sh run -- CMD...      start, run CMD with the lab's environment, stop;
#                                     exits with CMD's status (used by test.sh, demo.sh)
#   scripts/lab.sh insert PROFILE [vcard options]   swap the card in the reader
#   scripts/lab.sh eject [--hard]     take the card out (--hard: kill -9 the card process)
#   scripts/lab.sh env                print the lab's environment (source it)
#   scripts/lab.sh pg-restart [SECS]  stop the lab's PostgreSQL, wait SECS (1), start it again
#   scripts/lab.sh pg-stop            stop the lab's PostgreSQL (returns once it has exited)
#   scripts/lab.sh pg-start           start it again (returns once it accepts connections)
#
# Environment: KORTVAGT_LAB (lab directory, default ./lab), KORTVAGT_BIN (the
# kortvagt binary, default build/bin/kortvagt), KORTVAGT_LAB_PROFILE (the card
# inserted at start).
#
# One supervisor process owns every process the lab starts and waits for them,
# so none is left as a zombie; a pcscd that was already running is used as it
# is and never stopped. Every step waits for a condition (a socket that
# listens, a file, a card state), never for a fixed time; the timeouts are
# generous upper bounds for a loaded machine (KORTVAGT_LAB_TIMEOUT, 120 s).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB=${KORTVAGT_LAB:-$REPO/lab}
KORTVAGT_BIN=${KORTVAGT_BIN:-$REPO/build/bin/kortvagt}
PROFILE=${KORTVAGT_LAB_PROFILE:-$REPO/tests/data/visa_contact_pse.json}
# KORTVAGT_VPCD_PORT 35964 selects vpcd's second slot, "Virtual PCD 00 01"
VPCD_PORT=${KORTVAGT_VPCD_PORT:-35963}
READER="Virtual PCD 00 0$((VPCD_PORT - 35963))"
LAB_PIN=${KORTVAGT_LAB_PIN:-246810}
LAB_SO_PIN=${KORTVAGT_LAB_SO_PIN:-13579135}

log() { printf 'lab: %s\n' "$*" >&2; }
# the header comment of this file, without the '#'
usage() { sed -n '2,/^[^#]/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() { log "$*"; exit 1; }

port_listening() { ss -ltnH "sport = :$1" 2>/dev/null | grep -q .; }

LAB_TIMEOUT=${KORTVAGT_LAB_TIMEOUT:-120}
# wait_until SECONDS CMD...: poll CMD until it succeeds (0) or SECONDS pass (1)
wait_until() {
  local limit=$(($1 * 1000000)) start=${EPOCHREALTIME/[.,]/}
  shift
  while :; do
    "$@" && return 0
    [ $((${EPOCHREALTIME/[.,]/} - start)) -ge "$limit" ] && return 1
    sleep 0.05
  done
}

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

supervisor_pid() {
  local p
  p=$(cat "$LAB/supervisor.pid" 2>/dev/null || true)
  # a stale pid file may name another process now: only a lab.sh counts
  pid_alive "$p" && grep -qa 'lab\.sh' "/proc/$p/cmdline" 2>/dev/null && echo "$p"
}

write_env() {
  cat >"$LAB/env" <<ENV
export KORTVAGT_LAB='$LAB'
export SOFTHSM2_CONF='$LAB/softhsm2.conf'
export OPENSSL_CONF='$REPO/scripts/openssl-legacy.cnf'
export KORTVAGT_TOKEN=kortvagt
export KORTVAGT_PIN='$LAB_PIN'
export KORTVAGT_SO_PIN='$LAB_SO_PIN'
export KORTVAGT_READER='$READER'
export KORTVAGT_STORE='sqlite:$LAB/kortvagt.db'
export KORTVAGT_TRANSPORT_KEY='$LAB/transport.key'
ENV
  chmod 600 "$LAB/env"
}

setup_token() {
  mkdir -p "$LAB/tokens"
  cat >"$LAB/softhsm2.conf" <<CONF
directories.tokendir = $LAB/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
  # shellcheck disable=SC1091
  (. "$LAB/env" && "$KORTVAGT_BIN" hsm init </dev/null >"$LAB/hsm-init.log" 2>&1) ||
    die "token setup failed; see $LAB/hsm-init.log"
  setup_perso_keys
}

# The issuer keys of the personalization bench (`kortvagt perso`), so that it
# works out of the box in the lab. TEST ONLY: fixed public values (tests/data/VECTORS.md,
# apdu/vcard/CRYPTO.md §6; the transport key is the RFC 3394 §4.1 KEK), never
# for real cards. The transport key is also written to $LAB/transport.key for
# the virtual card ($KORTVAGT_TRANSPORT_KEY). Keys already present are kept.
setup_perso_keys() {
  local l
  printf '000102030405060708090A0B0C0D0E0F\n' >"$LAB/transport.key"
  chmod 600 "$LAB/transport.key"
  # shellcheck disable=SC1091
  (
    . "$LAB/env"
    have=$("$KORTVAGT_BIN" key list 2>/dev/null || true)
    imp() { # LABEL TYPE USAGE HEX
      grep -qw -- "$1" <<<"$have" && return 0
      echo "$4" | "$KORTVAGT_BIN" key import --label "$1" --type "$2" --usage "$3" || echo "lab: key $1 not imported"
    }
    imp transport aes128 kek 000102030405060708090A0B0C0D0E0F
    imp imk-ac des2 imk 0123456789ABCDEFFEDCBA9876543210
    imp imk-cvc3 des2 imk-cvc3 01234567899876543210012345678998
    imp imk-smi des2 imk-smi 4B3A2918F7E6D5C4C4D5E6F718293A4B
    imp imk-smc des2 imk-smc 9A8B7C6D5E4F30211203F4E5D6C7B8A9
    imp imk-ac-aes aes128 imk 2B7E151628AED2A6ABF7158809CF4F3C
    imp cvk des2 cvk 0123456789ABCDEFFEDCBA9876543210
    imp pvk des2 pvk 0123456789ABCDEFFEDCBA9876543210
    "$KORTVAGT_BIN" perso ca-import --label ca-e1 --pem "$REPO/tests/data/capk/kortvagt-test-ca-e1.pem" ||
      echo "lab: CA key ca-e1 not imported"
    "$KORTVAGT_BIN" perso issuer-key --label perso-issuer --create >/dev/null || echo "lab: no issuer key"
  ) </dev/null >>"$LAB/hsm-init.log" 2>&1
}

# --- PostgreSQL (optional): a throwaway cluster in $LAB/pg -----------------
# initdb as user postgres, trust auth, 127.0.0.1 only, a free port (not 5432).
# The lab comes up without it when it fails (the PostgreSQL tests then skip).
PG_BIN=${KORTVAGT_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}

pg_pick_port() {
  local p
  for p in 55432 55433 55434 55435 55436 55437 55438 55439; do
    port_listening "$p" || { echo "$p"; return 0; }
  done
  return 1
}

pg_setup() {
  [ -x "$PG_BIN/initdb" ] || { log "PostgreSQL: no initdb under /usr/lib/postgresql (skipped)"; return 1; }
  id postgres >/dev/null 2>&1 || { log "PostgreSQL: no user postgres (skipped)"; return 1; }
  PG_PORT=$(pg_pick_port) || { log "PostgreSQL: no free port (skipped)"; return 1; }
  chmod 755 "$LAB"
  rm -rf "$LAB/pg"
  mkdir -p "$LAB/pg" && chown postgres: "$LAB/pg" && chmod 700 "$LAB/pg"
  if ! runuser -u postgres -- "$PG_BIN/initdb" -D "$LAB/pg/data" -U postgres -A trust \
      -E UTF8 --no-locale >"$LAB/pg-initdb.log" 2>&1; then
    log "PostgreSQL: initdb failed, see $LAB/pg-initdb.log (skipped)"
    return 1
  fi
  cat >>"$LAB/pg/data/postgresql.conf" <<PGCONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$LAB/pg'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
PGCONF
  echo "$PG_PORT" >"$LAB/pg.port"
}

# Start the cluster in the foreground of a supervisor child; wait until ready.
sup_start_pg() {
  [ -f "$LAB/pg.port" ] || return 0
  local port
  port=$(cat "$LAB/pg.port")
  runuser -u postgres -- "$PG_BIN/postgres" -D "$LAB/pg/data" >>"$LAB/pg.log" 2>&1 &
  sup_pg_pid=$!
  echo "$sup_pg_pid" >"$LAB/pg.pid"
  # ready, or the postmaster gave up
  wait_until "$LAB_TIMEOUT" eval 'pg_isready -q -U postgres -h 127.0.0.1 -p "$port" || ! pid_alive "$sup_pg_pid"' || true
  if [ -f "$LAB/pg.url" ]; then
    # a restart (lab.sh pg-restart): the role and the database exist
    pg_isready -q -U postgres -h 127.0.0.1 -p "$port" || echo "PostgreSQL did not come back; see $LAB/pg.log" >"$LAB/pg.failed"
  elif pg_isready -q -U postgres -h 127.0.0.1 -p "$port" &&
     psql -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
       -c "CREATE ROLE kortvagt LOGIN CREATEDB" -c "CREATE DATABASE kortvagt OWNER kortvagt" \
       >>"$LAB/pg.log" 2>&1; then
    echo "postgresql://kortvagt@127.0.0.1:$port/kortvagt" >"$LAB/pg.url"
  else
    echo "PostgreSQL did not come up; see $LAB/pg.log" >"$LAB/pg.failed"
  fi
}

sup_stop_pg() {
  if pid_alive "$sup_pg_pid"; then
    # fast shutdown, sent to the postmaster itself: runuser ignores SIGINT
    local pm
    pm=$(head -1 "$LAB/pg/data/postmaster.pid" 2>/dev/null || true)
    if pid_alive "$pm"; then kill -INT "$pm" 2>/dev/null || true; else kill -TERM "$sup_pg_pid" 2>/dev/null || true; fi
    wait "$sup_pg_pid" 2>/dev/null || true
  fi
  sup_pg_pid=""
  rm -f "$LAB/pg.pid"
}

# --- the supervisor: runs in the background, owns pcscd and the card ---------

sup_card_pid=""
sup_pcscd_pid=""
sup_pg_pid=""

sup_start_card() {
  local args=("$@")
  KORTVAGT_TRANSPORT_KEY="$LAB/transport.key" \
    "$KORTVAGT_BIN" vcard --port "$VPCD_PORT" --state "$LAB/vcard.state" "${args[@]}" \
    >>"$LAB/vcard.log" 2>&1 &
  sup_card_pid=$!
  echo "$sup_card_pid" >"$LAB/vcard.pid"
}

sup_stop_card() {
  local sig=${1:-TERM}
  if pid_alive "$sup_card_pid"; then
    kill "-$sig" "$sup_card_pid" 2>/dev/null || true
    wait "$sup_card_pid" 2>/dev/null || true
  fi
  sup_card_pid=""
  rm -f "$LAB/vcard.pid"
}

sup_shutdown() {
  sup_stop_card TERM
  sup_stop_pg
  if pid_alive "$sup_pcscd_pid"; then
    kill -TERM "$sup_pcscd_pid" 2>/dev/null || true
    wait "$sup_pcscd_pid" 2>/dev/null || true
  fi
  rm -f "$LAB/supervisor.pid" "$LAB/pcscd.pid" "$LAB/ready" "$LAB/control"
  exit 0
}

supervise() {
  trap sup_shutdown TERM INT
  if pgrep -x pcscd >/dev/null; then
    echo "system" >"$LAB/pcscd.owner"
  else
    pcscd --foreground >"$LAB/pcscd.log" 2>&1 &
    sup_pcscd_pid=$!
    echo "$sup_pcscd_pid" >"$LAB/pcscd.pid"
    echo "lab" >"$LAB/pcscd.owner"
  fi
  # Readiness of the vpcd driver: its listening socket. Never connect to probe
  # it: vpcd takes any connection as a card insertion.
  wait_until "$LAB_TIMEOUT" eval 'port_listening "$VPCD_PORT" || { [ -n "$sup_pcscd_pid" ] && ! pid_alive "$sup_pcscd_pid"; }' || true
  if ! port_listening "$VPCD_PORT" && [ -n "$sup_pcscd_pid" ] && ! pid_alive "$sup_pcscd_pid"; then
    echo "pcscd exited; see $LAB/pcscd.log" >"$LAB/failed"
    exit 1
  fi
  if ! port_listening "$VPCD_PORT"; then
    echo "the vpcd reader is not listening on port $VPCD_PORT (is vsmartcard-vpcd installed?)" >"$LAB/failed"
    sup_shutdown
  fi
  sup_start_card --profile "$PROFILE"
  sup_start_pg
  touch "$LAB/ready"
  # Commands arrive as lines in the control file (see lab.sh insert/eject).
  while :; do
    if [ -s "$LAB/control" ]; then
      local line
      line=$(cat "$LAB/control")
      : >"$LAB/control"
      read -r -a cmd <<<"$line"
      case "${cmd[0]}" in
        insert) sup_stop_card TERM; sup_start_card "${cmd[@]:1}" ;;
        eject) sup_stop_card TERM ;;
        eject-hard) sup_stop_card KILL ;;
        # the pause is the length of the outage, not a wait for anything
        pg-restart) sup_stop_pg; sleep "${cmd[1]:-1}"; sup_start_pg ;;
        pg-stop) sup_stop_pg ;;
        pg-start) pid_alive "$sup_pg_pid" || sup_start_pg ;;
      esac
      echo "${cmd[0]}" >"$LAB/control.done"
    fi
    if [ -n "$sup_card_pid" ] && ! pid_alive "$sup_card_pid"; then
      wait "$sup_card_pid" 2>/dev/null || true
      sup_card_pid=""
    fi
    sleep 0.05 &
    wait $! || true
  done
}

# --- commands ---------------------------------------------------------------

card_state() {
  # prints "present" or "absent" for the lab reader, using our own binary
  "$KORTVAGT_BIN" readers --json 2>/dev/null |
    python3 -c 'import json,sys
r=[x for x in json.load(sys.stdin)["readers"] if x.get("name")==sys.argv[1]]
print("present" if r and r[0].get("card_present") else "absent")' "$READER" 2>/dev/null || echo absent
}

card_is() { [ "$(card_state)" = "$1" ]; }

wait_card() {
  wait_until "$LAB_TIMEOUT" card_is "$1"
}

send_control() {
  supervisor_pid >/dev/null || die "the lab is not running (scripts/lab.sh start)"
  rm -f "$LAB/control.done"
  echo "$*" >"$LAB/control"
  wait_until "$LAB_TIMEOUT" test -f "$LAB/control.done" || die "the lab supervisor did not answer"
}

cmd_start() {
  [ -x "$KORTVAGT_BIN" ] || die "kortvagt not built at $KORTVAGT_BIN (cmake -S . -B build && cmake --build build)"
  command -v pcscd >/dev/null || die "pcscd not installed (scripts/deps.sh)"
  if supervisor_pid >/dev/null; then
    log "already running in $LAB"
    return 0
  fi
  mkdir -p "$LAB"
  rm -f "$LAB/ready" "$LAB/failed" "$LAB/control" "$LAB/control.done"
  write_env
  setup_token
  rm -f "$LAB/pg.port" "$LAB/pg.url" "$LAB/pg.failed"
  pg_setup || true
  supervise </dev/null >>"$LAB/supervisor.log" 2>&1 &
  echo $! >"$LAB/supervisor.pid"
  wait_until "$LAB_TIMEOUT" eval '[ -f "$LAB/ready" ] || [ -f "$LAB/failed" ]' || true
  # a lab that did not come up is stopped, not left running half-way
  [ -f "$LAB/failed" ] && { cmd_stop; die "$(cat "$LAB/failed")"; }
  [ -f "$LAB/ready" ] || { cmd_stop; die "the lab did not come up; see $LAB/*.log"; }
  wait_card present || { cmd_stop; die "the virtual card did not appear in '$READER'; see $LAB/vcard.log"; }
  if [ -f "$LAB/pg.url" ]; then
    # Only KORTVAGT_PG_URL: the unit tests keep their SQLite stores inside the
    # lab; test_store_pg.sh runs them against a database of its own.
    printf "export KORTVAGT_PG_URL='%s'\n" "$(cat "$LAB/pg.url")" >>"$LAB/env"
    log "PostgreSQL: $(cat "$LAB/pg.url")"
  else
    log "PostgreSQL: not available ($(cat "$LAB/pg.failed" 2>/dev/null || echo 'see above')); the PostgreSQL tests will skip"
  fi
  log "up: pcscd ($(cat "$LAB/pcscd.owner")), reader '$READER' with card, token 'kortvagt'; environment in $LAB/env"
}

cmd_stop() {
  local p
  if ! p=$(supervisor_pid); then
    log "not running"
    rm -f "$LAB/supervisor.pid"
    return 0
  fi
  kill -TERM "$p"
  # our own child when started by 'run': wait reaps it
  wait_until "$LAB_TIMEOUT" eval '! pid_alive "$p"' || log "the supervisor (pid $p) did not stop"
  wait "$p" 2>/dev/null || true
  log "stopped"
}

cmd_status() {
  local p rc=0
  if p=$(supervisor_pid); then
    echo "supervisor: running (pid $p), lab $LAB"
    echo "pcscd: $(cat "$LAB/pcscd.owner" 2>/dev/null || echo unknown)$(pgrep -x pcscd >/dev/null && echo ', running' || echo ', NOT running')"
    if port_listening "$VPCD_PORT"; then echo "vpcd: listening on $VPCD_PORT"; else echo "vpcd: not listening"; rc=1; fi
    echo "card: $(card_state)$(pid_alive "$(cat "$LAB/vcard.pid" 2>/dev/null)" && echo " (vcard pid $(cat "$LAB/vcard.pid"))")"
    echo "token: $( [ -d "$LAB/tokens" ] && echo "SoftHSM2 in $LAB/tokens" || echo none)"
  else
    echo "lab: not running"
    rc=3
  fi
  return $rc
}

cmd_run() {
  [ "${1:-}" = "--" ] && shift
  [ $# -gt 0 ] || die "usage: lab.sh run -- CMD..."
  cmd_start
  local rc=0
  # shellcheck disable=SC1091
  (. "$LAB/env" && "$@") || rc=$?
  cmd_stop
  return $rc
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  run) shift; cmd_run "$@" ;;
  insert)
    shift
    [ $# -ge 1 ] || die "usage: lab.sh insert PROFILE [vcard options]"
    prof=$1; shift
    [ -f "$prof" ] || die "no such profile: $prof"
    # pcscd must see the old card leave before the new one arrives
    send_control eject
    wait_card absent || die "the old card is still present"
    send_control insert --profile "$(cd "$(dirname "$prof")" && pwd)/$(basename "$prof")" "$@"
    wait_card present || die "the card did not appear; see $LAB/vcard.log"
    ;;
  eject)
    if [ "${2:-}" = "--hard" ]; then send_control eject-hard; else send_control eject; fi
    wait_card absent || die "the card is still present"
    ;;
  env) cat "$LAB/env" ;;
  pg-restart)
    [ -f "$LAB/pg.port" ] || die "the lab runs no PostgreSQL"
    send_control pg-restart "${2:-1}"
    pg_isready -q -U postgres -h 127.0.0.1 -p "$(cat "$LAB/pg.port")" || die "PostgreSQL did not come back; see $LAB/pg.log"
    ;;
  pg-stop)
    [ -f "$LAB/pg.port" ] || die "the lab runs no PostgreSQL"
    send_control pg-stop
    ! pg_isready -q -U postgres -h 127.0.0.1 -p "$(cat "$LAB/pg.port")" || die "PostgreSQL still answers"
    ;;
  pg-start)
    [ -f "$LAB/pg.port" ] || die "the lab runs no PostgreSQL"
    send_control pg-start
    pg_isready -q -U postgres -h 127.0.0.1 -p "$(cat "$LAB/pg.port")" || die "PostgreSQL did not come back; see $LAB/pg.log"
    ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
