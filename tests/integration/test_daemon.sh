#!/usr/bin/env bash
# kortvagtd over real HTTP on loopback (SQLite store, SoftHSM2 token): every
# endpoint answers its success case, and bad JSON, an unknown field, a missing
# field, an oversized body, a wrong token and no token each with its own
# status and error code; TLS; the metrics count what happened.
set -euo pipefail
. "$KV_SOURCE_DIR/tests/integration/hsm_env.sh"
. "$KV_SOURCE_DIR/tests/integration/authorize_common.sh"
. "$KV_SOURCE_DIR/tests/integration/daemon_common.sh"

cleanup() {
  daemon_stop d1 >/dev/null 2>&1 || true
  daemon_stop tls >/dev/null 2>&1 || true
  kv_hsm_cleanup
}
trap cleanup EXIT

PORT=$(free_port)
U="http://127.0.0.1:$PORT"
daemon_start d1 "$PORT" --workers 2 --max-body 8192 --access-log

# --- inputs from the CLI and tests/data/VECTORS.md --------------------------------------
PAN_P=1122334455667788
PB=$(printf '4524\n' | "$K" pinblock encode --format 4 --pan $PAN_P --key tpk --json |
  grep -o '"block":"[0-9A-Fa-f]*"' | sed 's/.*:"//; s/"//')
PB_BAD=$(printf '1234\n' | "$K" pinblock encode --format 4 --pan $PAN_P --key tpk --json |
  grep -o '"block":"[0-9A-Fa-f]*"' | sed 's/.*:"//; s/"//')
[ ${#PB} -eq 32 ] || fail "pinblock encode: '$PB'"
PAN_C=9901234567890123
DATA=000000010000000000000000020800000000000208260301003912345678
ARQC=$("$K" arqc generate --key imk-ac --pan $PAN_C --psn 45 --cvn 18 --atc 001C --data $DATA --json |
  grep -o '"arqc":"[0-9A-F]*"' | sed 's/.*:"//; s/"//')
[ ${#ARQC} -eq 16 ] || fail "arqc generate: '$ARQC'"

# the daemon takes "at" only near its own clock ([daemon] max_clock_skew)
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
AUTH_OK=$(req contactless 1000 "Shop A" 5411 "" "$PAN_A" "$NOW")
PIN_OK="{\"pan\":\"$PAN_P\",\"pin_block\":\"$PB\",\"format\":4,\"pin_key\":\"tpk\",\"pvk\":\"pvk\",\"pvki\":1,\"pvv\":\"8523\"}"
CVC_OK='{"pan":"4123456789012345","expiry":"8701","service_code":"101","cvk":"cvk","value":"561"}'
ARQC_OK="{\"pan\":\"$PAN_C\",\"psn\":\"45\",\"imk\":\"imk-ac\",\"cvn\":18,\"arqc\":\"$ARQC\",\"data\":\"$DATA\",\"atc\":\"001C\"}"
CASE='{"currency":"DKK","discovered_at":"2026-03-01T10:00:00Z","notified_at":"2026-03-01T11:00:00Z","objection_at":"2026-03-02T09:00:00Z","cards":[{"id":"A","credential":"pin-1","blocked_at":"2026-03-01T11:00:00Z"}],"transactions":[{"id":"t1","card":"A","at":"2026-02-28T20:00:00Z","debited_at":"2026-02-28T20:00:00Z","amount":300000,"channel":"contact","verification":{"method":"offline_pin","proven":true}}]}'

# --- success cases -------------------------------------------------------------
o=$(http POST "$U/v1/authorize" "$AUTH_OK")
expect_status "$o" 200 "" "authorize"
expect "${o#* }" decision approve "authorize"
ID=$(field "${o#* }" evidence)
[ -n "$ID" ] || fail "authorize: no evidence id: $o"

o=$(http POST "$U/v1/verify/pin" "$PIN_OK")
expect_status "$o" 200 "" "verify pin"
expect "${o#* }" result match "verify pin (tests/data/VECTORS.md PVV 8523)"
o=$(http POST "$U/v1/verify/pin" "${PIN_OK/$PB/$PB_BAD}")
expect "${o#* }" result mismatch "verify pin, wrong PIN"

o=$(http POST "$U/v1/verify/cvc" "$CVC_OK")
expect "${o#* }" result match "verify cvc (tests/data/VECTORS.md CVV 561)"
o=$(http POST "$U/v1/verify/cvc" "${CVC_OK/561/562}")
expect "${o#* }" result mismatch "verify cvc wrong"

o=$(http POST "$U/v1/verify/arqc" "$ARQC_OK")
expect "${o#* }" result match "verify arqc"
ARPC=$(field "${o#* }" arpc)
[[ "$ARPC" =~ ^[0-9A-F]{8}([0-9A-F]{8})?$ ]] || fail "verify arqc: no ARPC: $o"
o=$(http POST "$U/v1/verify/arqc" "${ARQC_OK/$ARQC/0000000000000000}")
expect "${o#* }" result mismatch "verify arqc wrong"
grep -q arpc <<<"$o" && fail "an ARPC for a failed ARQC: $o"

o=$(http POST "$U/v1/liability/assess" "$CASE")
expect_status "$o" 200 "" "liability"
expect "${o#* }" cardholder 37500 "liability § 100 stk. 3"

o=$(http GET "$U/v1/evidence/$ID")
expect_status "$o" 200 "" "evidence"
expect "${o#* }" intact true "evidence"
grep -q "$PAN_A" <<<"$o" && fail "evidence shows the PAN: $o"

o=$(http POST "$U/v1/authorize/$ID/reverse" "")
expect_status "$o" 200 "" "reverse"
o=$(http POST "$U/v1/authorize/$ID/reverse" "{}")
expect_status "$o" 409 conflict "reverse twice"
o=$(http POST "$U/v1/authorize/999999/reverse" "")
expect_status "$o" 404 not_found "reverse unknown"

o=$(http GET "$U/healthz" "" -)
expect_status "$o" 200 "" "healthz without a token"
o=$(http GET "$U/metrics")
expect_status "$o" 200 "" "metrics"
grep -q 'kortvagtd_decisions_total{decision="approve"} 1' <<<"$o" || fail "metrics: $o"
grep -q 'kortvagtd_request_duration_seconds_bucket{endpoint="authorize",le="+Inf"}' <<<"$o" ||
  fail "metrics: no histogram: $o"

# --- block list: list, check (blocked or not, nothing else), hot card, delete ---
BL_PAN=4761739001010200
o=$(http GET "$U/v1/blocklist/$BL_PAN")
expect_status "$o" 200 "" "blocklist check"
[ "${o#* }" = '{"blocked":false}' ] || fail "blocklist check of a clean card: $o"
BL_ADD="{\"pan\":\"$BL_PAN\",\"reason\":\"lost\",\"expiry\":\"2812\"}"
o=$(http POST "$U/v1/blocklist" "$BL_ADD")
expect_status "$o" 200 "" "blocklist add (cardholder reports lost)"
o=$(http GET "$U/v1/blocklist/$BL_PAN")
[ "${o#* }" = '{"blocked":true}' ] || fail "blocklist check answers more than blocked: $o"
o=$(http POST "$U/v1/authorize" "$(req contactless 1000 "Shop A" 5411 "" $BL_PAN "$NOW")")
expect "${o#* }" reason card_blocked "authorize a listed card"
o=$(http POST "$U/v1/blocklist" "{\"pan\":\"4761739001010218\",\"reason\":\"suspected_misuse\",\"expiry\":\"2812\"}")
expect_status "$o" 403 permission "issuer-initiated listing without the permission"
o=$(http POST "$U/v1/blocklist" "$BL_ADD")
expect_status "$o" 409 conflict "listing twice"
o=$(http DELETE "$U/v1/blocklist/$BL_PAN")
expect_status "$o" 200 "" "blocklist delete"
o=$(http GET "$U/v1/blocklist/$BL_PAN")
[ "${o#* }" = '{"blocked":false}' ] || fail "blocklist check after delete: $o"
o=$(http DELETE "$U/v1/blocklist/$BL_PAN")
expect_status "$o" 404 not_found "delete an unlisted card"
o=$(http GET "$U/v1/blocklist/12ab")
expect_status "$o" 400 invalid_field "blocklist check of a non-PAN"
for m in GET DELETE; do
  o=$(http $m "$U/v1/blocklist/$BL_PAN" "" "Bearer nope")
  expect_status "$o" 401 wrong_token "blocklist $m wrong token"
  o=$(http $m "$U/v1/blocklist/$BL_PAN" "" -)
  expect_status "$o" 401 no_token "blocklist $m no token"
done

# --- the error matrix: every POST endpoint ---------------------------------------
BIG=$(python3 -c 'print("{\"x\":\"" + "a"*9000 + "\"}")')
for ep in "v1/authorize:$AUTH_OK:amount" "v1/verify/pin:$PIN_OK:pvk" "v1/verify/cvc:$CVC_OK:cvk" \
          "v1/verify/arqc:$ARQC_OK:imk" "v1/liability/assess:$CASE:currency" \
          "v1/blocklist:$BL_ADD:reason"; do
  path=${ep%%:*}; rest=${ep#*:}; good=${rest%:*}; req_field=${rest##*:}
  o=$(http POST "$U/$path" '{"card": ')
  expect_status "$o" 400 bad_json "$path bad JSON"
  o=$(http POST "$U/$path" "${good%\}},\"bogus_field\":1}")
  expect_status "$o" 400 unknown_field "$path unknown field"
  grep -q bogus_field <<<"$o" || fail "$path: the message does not name the field: $o"
  missing=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); del d[sys.argv[2]]; print(json.dumps(d))' "$good" "$req_field")
  o=$(http POST "$U/$path" "$missing")
  expect_status "$o" 400 missing_field "$path missing field"
  grep -q "$req_field" <<<"$o" || fail "$path: the message does not name $req_field: $o"
  o=$(http POST "$U/$path" "$BIG")
  expect_status "$o" 413 too_large "$path oversized body"
  o=$(http POST "$U/$path" "$good" "Bearer wrong-token")
  expect_status "$o" 401 wrong_token "$path wrong token"
  o=$(http POST "$U/$path" "$good" -)
  expect_status "$o" 401 no_token "$path no token"
done
# the GET endpoints and the reverse
for path in "v1/evidence/$ID" metrics "v1/authorize/$ID/reverse"; do
  m=GET; [[ $path == *reverse ]] && m=POST
  o=$(http $m "$U/$path" "" "Bearer nope")
  expect_status "$o" 401 wrong_token "$path wrong token"
  o=$(http $m "$U/$path" "" -)
  expect_status "$o" 401 no_token "$path no token"
done
o=$(http POST "$U/v1/authorize/$ID/reverse" '{"why":1}')
expect_status "$o" 400 unknown_field "reverse unknown field"
o=$(http POST "$U/v1/authorize/$ID/reverse" '{')
expect_status "$o" 400 bad_json "reverse bad JSON"
o=$(http POST "$U/v1/authorize/$ID/reverse" "$BIG")
expect_status "$o" 413 too_large "reverse oversized"
o=$(http GET "$U/v1/evidence/abc")
expect_status "$o" 404 not_found "evidence bad id"
o=$(http GET "$U/v1/evidence/99999")
expect_status "$o" 404 not_found "evidence unknown id"
o=$(http GET "$U/v1/authorize")
expect_status "$o" 405 method_not_allowed "GET authorize"
o=$(http DELETE "$U/v1/evidence/$ID")
expect_status "$o" 405 method_not_allowed "DELETE evidence"
o=$(http GET "$U/nope")
expect_status "$o" 404 not_found "unknown path"
o=$(http POST "$U/v1/verify/cvc" "${CVC_OK/\"cvk\":\"cvk\"/\"cvk\":\"no-such-key\"}")
expect_status "$o" 400 unknown_key "unknown key"
o=$(http POST "$U/v1/authorize" '[1,2]')
expect_status "$o" 400 bad_json "array body"
o=$(http POST "$U/v1/authorize" "${AUTH_OK/\"amount\":1000/\"amount\":\"x\"}")
expect_status "$o" 400 invalid_field "amount not a number"
# the second token works too
o=$(http GET "$U/metrics" "" "Bearer second-token-2")
expect_status "$o" 200 "" "second token"
o=$(http GET "$U/metrics")
grep -q 'kortvagtd_requests_total{endpoint="authorize",code="413"}' <<<"$o" || fail "metrics 413: $o"

# no secret in any log line: no token, PIN block, PAN
for s in "$TOKEN" "$PB" "$PAN_A" "$BL_PAN" 8523 "$ARQC"; do
  grep -q -- "$s" "$W/d1.log" && fail "the daemon log holds a secret ($s): $(cat "$W/d1.log")"
done
daemon_stop d1

# --- TLS ----------------------------------------------------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/tls.key" -out "$W/tls.crt" -days 1 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1 || fail "openssl req"
cat >"$KORTVAGT_CONFIG" <<CONF
[daemon]
tls_key = $W/tls.key
tls_cert = $W/tls.crt
workers = 1
CONF
PORT=$(free_port)
"$KORTVAGTD" --tokens "$TOKENS" --port "$PORT" >>"$W/tls.log" 2>&1 &
echo $! >"$W/tls.pid"
tls_healthy() {
  [ "$(curl -s --cacert "$W/tls.crt" -o /dev/null -w '%{http_code}' "https://127.0.0.1:$PORT/healthz")" = 200 ]
}
wait_for 120 tls_healthy || fail "kortvagtd over TLS did not become healthy: $(cat "$W/tls.log")"
o=$(curl -s --cacert "$W/tls.crt" -H "Authorization: Bearer $TOKEN" -d "$AUTH_OK" "https://127.0.0.1:$PORT/v1/authorize")
expect "$o" decision approve "authorize over TLS"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/healthz")" != 200 ] ||
  fail "plain HTTP answered on the TLS port"
daemon_stop tls
: >"$KORTVAGT_CONFIG"
echo "PASS test_daemon"
