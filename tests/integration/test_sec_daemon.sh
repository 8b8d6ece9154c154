#!/usr/bin/env bash
# Issue 11, the daemon's findings against a real kortvagtd, SoftHSM2 token and
# SQLite store:
#   8  token scopes: a token listed without scopes cannot write the block list
#      (403 permission); a token with blocklist:write can
#   9  a client trickling a request is cut at request_read_timeout; one address
#      flooding connections cannot keep /healthz from a second address waiting
#   10 a wrong token PIN: kortvagtd exits non-zero at once with one message
#   7  SIGHUP: the workers look their keys up again (a deleted key is noticed)
#   Low: the access log holds no raw path and no CR/LF of the input; request
#      bodies are wiped from the worker's memory after the answer;
#      Content-Length with Transfer-Encoding is 400; /healthz without a token
#      shows the status only; TLS priorities and client certificates.
set -euo pipefail
. "$KV_SOURCE_DIR/tests/integration/hsm_env.sh"
. "$KV_SOURCE_DIR/tests/integration/authorize_common.sh"
. "$KV_SOURCE_DIR/tests/integration/daemon_common.sh"

TRICKLE="$KV_SOURCE_DIR/tests/integration/trickle.py"
BG_PIDS=()
cleanup() {
  for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for n in d1 tls pin prio; do daemon_stop "$n" >/dev/null 2>&1 || true; done
  kv_hsm_cleanup
}
trap cleanup EXIT

# this test's own tokens: READER is listed without scopes, WRITER with two
READER=rd-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
WRITER=wr-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
(umask 077 && printf '%s\n%s blocklist:write,blocklist:check\n' "$READER" "$WRITER" >"$W/scoped")
TOKENS="$W/scoped"
TOKEN=$READER

cat >"$KORTVAGT_CONFIG" <<CONF
[daemon]
workers = 1
request_read_timeout = 2
max_connections_per_ip = 8
CONF
PORT=$(free_port)
U="http://127.0.0.1:$PORT"
daemon_start d1 "$PORT" --access-log

# --- finding 8: scopes ---------------------------------------------------------
BL='{"pan":"4761739001010200","reason":"lost","expiry":"2812"}'
o=$(http POST "$U/v1/blocklist" "$BL" "Bearer $READER")
expect_status "$o" 403 permission "finding 8: a token without scopes writes the block list"
o=$(http POST "$U/v1/blocklist" "$BL" "Bearer $WRITER")
expect_status "$o" 200 "" "finding 8: a token with blocklist:write"
o=$(http GET "$U/v1/blocklist/4761739001010200" "" "Bearer $READER")
[ "${o#* }" = '{"blocked":true}' ] || fail "finding 8: blocklist:check of the default token: $o"
o=$(http POST "$U/v1/authorize" "$(req contactless 1000 "Shop A" 5411 "")" "Bearer $WRITER")
expect_status "$o" 403 permission "finding 8: a block list token authorizes"
echo "ok finding 8: scopes"

# --- Low: /healthz without a token ---------------------------------------------
o=$(http GET "$U/healthz" "" -)
[ "$o" = '200 {"status":"ok"}' ] || fail "healthz without a token shows more than the status: $o"
o=$(http GET "$U/healthz" "" "Bearer nope")
[ "$o" = '200 {"status":"ok"}' ] || fail "healthz with a wrong token shows more than the status: $o"
o=$(http GET "$U/healthz")
grep -q evidence_head <<<"$o" || fail "healthz with a valid token: $o"
echo "ok healthz"

# --- Low: Content-Length and Transfer-Encoding together --------------------------
clte=$(python3 - "$PORT" "$READER" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(("GET /metrics HTTP/1.1\r\nHost: k\r\nAuthorization: Bearer %s\r\n"
           "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" % sys.argv[2]).encode())
data = b""
while b"\r\n" not in data:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
print(data.split(b"\r\n")[0].decode(errors="replace"))
PY
)
[[ "$clte" == "HTTP/1.1 400"* ]] || fail "Content-Length with Transfer-Encoding: $clte"
echo "ok CL+TE: $clte"

# --- Low: the access log --------------------------------------------------------
LOGPAN=4761739001019999
o=$(http GET "$U/x$LOGPAN%0d%0aFORGED%20line" "" -)
expect_status "$o" 401 no_token "unknown path without a token"
o=$(http GET "$U/x$LOGPAN%0d%0aFORGED%20line")
expect_status "$o" 404 not_found "unknown path"
o=$(http GET "$U/v1/blocklist/$LOGPAN" "" "Bearer $WRITER")
expect_status "$o" 200 "" "blocklist check"
grep -q "$LOGPAN" "$W/d1.log" && fail "the access log holds a raw path: $(grep "$LOGPAN" "$W/d1.log")"
grep -q "^FORGED" "$W/d1.log" && fail "the access log holds a line from the input: $(cat "$W/d1.log")"
grep -q ' - 40[14] ' "$W/d1.log" || fail "no access log line for the unknown path: $(cat "$W/d1.log")"
echo "ok access log"

# --- Low: request bodies are wiped ----------------------------------------------
# the worker (not the checkpointer, also a child of the master)
WORKER=$(grep -o 'kortvagtd\[[0-9]*\]: worker ready' "$W/d1.log" | head -1 | tr -dc 0-9)
[ -n "$WORKER" ] || fail "no worker in the log: $(cat "$W/d1.log")"
MARK=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F)
# the padding keeps the mark clear of the allocator's own words at the start of a freed block
PAD=$(printf '%064d' 0)
o=$(curl -s -H "Authorization: Bearer $READER" -H 'Connection: close' \
  --data-binary "{\"zzz\":\"$PAD$MARK\"}" "$U/v1/verify/pin")
grep -q unknown_field <<<"$o" || fail "verify pin with an unknown field: $o"
mem_has_mark() { # PID MARK: 0 when MARK is in the process's writable memory
  python3 - "$1" "$2" <<'PY'
import sys
pid, mark = sys.argv[1], sys.argv[2].encode()
found, read = False, 0
try:
    maps, mem = open("/proc/%s/maps" % pid), open("/proc/%s/mem" % pid, "rb", 0)
except OSError:
    sys.exit(2)
with maps, mem:
    for line in maps:
        f = line.split()
        if len(f) < 2 or not f[1].startswith("rw"):
            continue
        if len(f) >= 6 and not f[5].startswith("["):
            continue  # file-backed: not where request data lives
        lo, hi = (int(x, 16) for x in f[0].split("-"))
        try:
            mem.seek(lo)
            data = mem.read(hi - lo)
        except (OSError, ValueError, OverflowError):
            continue
        read += 1
        if mark in data:
            found = True
            break
sys.exit(0 if found else 1 if read else 2)
PY
}
mem_lacks_mark() { # 0 when gone; exits the wait (status 0 too) when memory is unreadable
  local rc=0
  mem_has_mark "$@" || rc=$?
  [ "$rc" -ne 0 ] && { [ "$rc" -eq 1 ] || : >"$W/mem.unreadable"; }
}
wait_for 5 mem_lacks_mark "$WORKER" "$MARK" ||
  fail "a request body is still in the worker's memory after the answer"
if [ -f "$W/mem.unreadable" ]; then
  echo "note: /proc/$WORKER/mem is not readable here; the wipe check is skipped"
else
  echo "ok request bodies wiped"
fi

# --- finding 9: the read deadline and the per-address limit ----------------------
python3 "$TRICKLE" --port "$PORT" --conns 1 --interval 0.3 --max-seconds 10 --out "$W/one.json"
one=$(cat "$W/one.json")
grep -q '"open": 0' <<<"$one" || fail "finding 9: a trickling request was not cut: $one"
echo "ok finding 9: a trickling request is cut: $one"

python3 "$TRICKLE" --port "$PORT" --src 127.0.0.1 --conns 1100 --interval 0.5 --max-seconds 15 \
  --ready "$W/flood.ready" --out "$W/flood.json" &
BG_PIDS+=($!)
FLOOD=$!
wait_for 60 test -f "$W/flood.ready" || fail "finding 9: the flood did not open its connections"
hz=$(curl -s --interface 127.0.0.2 --max-time 3 -o - -w ' %{http_code}' "$U/healthz" || true)
[[ "$hz" == *" 200" ]] ||
  fail "finding 9: /healthz from 127.0.0.2 did not answer while 127.0.0.1 floods: '$hz' ($(cat "$W/flood.ready"))"
wait "$FLOOD" || true
flood=$(cat "$W/flood.json")
grep -q '"open": 0' <<<"$flood" || fail "finding 9: flooding connections stayed open: $flood"
echo "ok finding 9: /healthz from a second address while one floods; $flood"

# --- finding 7 (daemon side): SIGHUP --------------------------------------------
kv_hsm_import cvk-rot des2 cvk "" 0123456789ABCDEFFEDCBA9876543210 >/dev/null 2>&1 ||
  fail "import cvk-rot"
CVC='{"pan":"4123456789012345","expiry":"8701","service_code":"101","cvk":"cvk-rot","value":"561"}'
o=$(http POST "$U/v1/verify/cvc" "$CVC")
expect_status "$o" 200 "" "verify cvc with cvk-rot"
"$K" key delete --label cvk-rot >/dev/null 2>&1 || fail "key delete cvk-rot"
kill -HUP "$(cat "$W/d1.pid")"
unknown_key() { [ "$(http POST "$U/v1/verify/cvc" "$CVC" | cut -c1-3)" = 400 ]; }
wait_for 3 unknown_key || fail "finding 7: after SIGHUP the deleted key still works: $(http POST "$U/v1/verify/cvc" "$CVC") $(tail -3 "$W/d1.log")"
proc_has_exited "$(cat "$W/d1.pid")" && fail "finding 7: kortvagtd died of SIGHUP"
o=$(http GET "$U/healthz")
expect_status "$o" 200 "" "healthz after SIGHUP"
echo "ok SIGHUP: a deleted key is noticed"
daemon_stop d1

# --- finding 10: a wrong token PIN ----------------------------------------------
PORT=$(free_port)
KORTVAGT_PIN=wrong-pin-0000 "$KORTVAGTD" --tokens "$TOKENS" --port "$PORT" >"$W/pin.log" 2>&1 &
echo $! >"$W/pin.pid"
PINPID=$(cat "$W/pin.pid")
if ! wait_for 20 proc_has_exited "$PINPID"; then
  n=$(grep -c -i "login failed" "$W/pin.log" || true)
  kill -TERM "$PINPID" 2>/dev/null || true
  fail "finding 10: kortvagtd with a wrong PIN still runs after 20 s ($n failed logins logged)"
fi
rc=0
wait "$PINPID" || rc=$?
rm -f "$W/pin.pid"
[ "$rc" -ne 0 ] || fail "finding 10: kortvagtd with a wrong PIN exited 0"
n=$(grep -c -i "login failed" "$W/pin.log" || true)
[ "$n" -eq 1 ] || fail "finding 10: $n login failures logged, want one: $(cat "$W/pin.log")"
grep -q -E "CKR_PIN_INCORRECT|wrong user PIN" "$W/pin.log" ||
  fail "finding 10: the message does not say the PIN is wrong: $(cat "$W/pin.log")"
grep -q "worker ready" "$W/pin.log" && fail "finding 10: workers started: $(cat "$W/pin.log")"
echo "ok finding 10: exit $rc: $(cat "$W/pin.log")"

# --- Low: TLS priorities and client certificates ----------------------------------
cd "$W"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout tls.key -out tls.crt -days 1 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1 || fail "openssl server"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.crt -days 1 -subj /CN=kv-test-ca \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign >/dev/null 2>&1 ||
  fail "openssl ca"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout atm.key -out atm.csr -subj /CN=atm-1 >/dev/null 2>&1 &&
  openssl x509 -req -in atm.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out atm.crt -days 1 \
    >/dev/null 2>&1 || fail "openssl client"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout rogue.key -out rogue.crt -days 1 -subj /CN=atm-1 \
  >/dev/null 2>&1 || fail "openssl rogue"
cd - >/dev/null

# a priority string that is not one: the daemon refuses to start
cat >"$KORTVAGT_CONFIG" <<CONF
[daemon]
workers = 1
tls_key = $W/tls.key
tls_cert = $W/tls.crt
tls_priorities = NO-SUCH-PRIORITY
CONF
PORT=$(free_port)
"$KORTVAGTD" --tokens "$TOKENS" --port "$PORT" >"$W/prio.log" 2>&1 &
echo $! >"$W/prio.pid"
wait_for 20 proc_has_exited "$(cat "$W/prio.pid")" ||
  fail "tls_priorities: an invalid priority string was accepted: $(cat "$W/prio.log")"
rm -f "$W/prio.pid"

# TLS 1.2 only, and client certificates of our CA
cat >"$KORTVAGT_CONFIG" <<CONF
[daemon]
workers = 1
tls_key = $W/tls.key
tls_cert = $W/tls.crt
tls_priorities = NORMAL:-VERS-ALL:+VERS-TLS1.2
tls_client_ca = $W/ca.crt
CONF
PORT=$(free_port)
TU="https://127.0.0.1:$PORT"
"$KORTVAGTD" --tokens "$TOKENS" --port "$PORT" >>"$W/tls.log" 2>&1 &
echo $! >"$W/tls.pid"
tls_up() {
  [ "$(curl -s --cacert "$W/tls.crt" --cert "$W/atm.crt" --key "$W/atm.key" -o /dev/null \
    -w '%{http_code}' "$TU/healthz")" = 200 ] || proc_has_exited "$(cat "$W/tls.pid")"
}
wait_for 60 tls_up || fail "kortvagtd over TLS did not come up: $(cat "$W/tls.log")"
proc_has_exited "$(cat "$W/tls.pid")" && fail "kortvagtd over TLS exited: $(cat "$W/tls.log")"
tcurl() { curl -s --cacert "$W/tls.crt" -H "Authorization: Bearer $READER" -o /dev/null -w '%{http_code}' "$@" || true; }
c=$(tcurl --cert "$W/atm.crt" --key "$W/atm.key" "$TU/metrics")
[ "$c" = 200 ] || fail "mTLS: a client with a certificate of the CA: $c"
c=$(tcurl "$TU/metrics")
[ "$c" != 200 ] || fail "mTLS: a client without a certificate was answered"
c=$(tcurl --cert "$W/rogue.crt" --key "$W/rogue.key" "$TU/metrics")
[ "$c" != 200 ] || fail "mTLS: a client with a certificate of another CA was answered"
c=$(tcurl --tlsv1.3 --cert "$W/atm.crt" --key "$W/atm.key" "$TU/metrics")
[ "$c" != 200 ] || fail "tls_priorities: TLS 1.3 was accepted with TLS 1.2 only configured"
echo "ok TLS priorities and client certificates"
daemon_stop tls
: >"$KORTVAGT_CONFIG"
echo "PASS test_sec_daemon"
