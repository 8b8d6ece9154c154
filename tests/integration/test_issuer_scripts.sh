#!/usr/bin/env bash
# Integration test of issuer scripts (issue 12; EMV Book 2 §9, Book 3 §10.10)
# against the lab token (scripts/lab.sh creates imk-smi, imk-smc, imk-ac):
#   - `kortvagt script build` prints a well-formed 71/72 template whose MAC
#     (and for pin-change the enciphered PIN) an independent implementation,
#     tests/tools/issuer_script_ref.py, recomputes from the lab's public test
#     key values, for a Visa, a Mastercard and a CCD CVN;
#   - a key that is missing or of the wrong role is refused (exit 5, message);
#   - pin-change takes the PIN from stdin and shows it nowhere;
#   - kortvagtd's POST /v1/verify/arqc with "scripts" returns the templates
#     with the ARPC (scope verify), none for a wrong ARQC, 400 for pin-change.
set -u
: "${KORTVAGT:?}"
: "${KV_SOURCE_DIR:?}"
# shellcheck source=tests/integration/lab_common.sh
. "$KV_SOURCE_DIR/tests/integration/lab_common.sh"

REF="$SRC/tests/tools/issuer_script_ref.py"
W=$(mktemp -d "$LAB/issuer-scripts.XXXXXX")
export KORTVAGT_STORE="sqlite:$W/store.db"
export KORTVAGT_CONFIG="$W/kortvagt.conf"
: >"$KORTVAGT_CONFIG"

ATC=002A
ARQC=1122334455667788
# a PIN key (format 4 blocks) for the daemon's pin-change, removed at the end
TPK=scripts-tpk-$$
echo 000102030405060708090A0B0C0D0E0F | "$K" key import --label "$TPK" --type aes128 \
  --usage pin >/dev/null 2>&1 || fail "import the PIN key $TPK"
trap '"$K" key delete --label "$TPK" >/dev/null 2>&1 || true; rm -rf "$W"' EXIT

# build NAME WANT_RC [stdin] -- ARGS: run `script build`, output in $out/$err, status in $rc
build() {
  local stdin=$1
  shift
  rc=0
  out=$(printf '%s' "$stdin" | "$K" script build "$@" 2>"$W/err") || rc=$?
  err=$(cat "$W/err")
}

# The reference runs once, at the end, over all cases (python3 starts slowly on a
# loaded machine). ref_check NAME CVN PAN PSN SCRIPT [TAG [ID [MAC_LEN [PIN [WANT]]]]]
# queues one case; WANT "bad" expects the reference to refuse it.
: >"$W/cases"
: >"$W/names"
ref_check() {
  local name=$1 cvn=$2 pan=$3 psn=$4 script=${5:-none}
  printf '%s %s %s %s %s %s %s %s %s %s\n' "$cvn" "$pan" "$psn" "$ATC" "$ARQC" "${8:-8}" \
    "${6:--}" "${7:--}" "${9:--}" "$script" >>"$W/cases"
  printf '%s\t%s\n' "${10:-ok}" "$name" >>"$W/names"
}
ref_run() {
  local results want name res
  results=$(python3 "$REF" batch "$W/cases" 2>&1)
  while IFS=$'\t' read -r want name && IFS= read -r res <&3; do
    if [ "$want" = ok ] && [ "$res" = ok ]; then pass "$name: the reference recomputes it"
    elif [ "$want" = bad ] && [ "$res" != ok ]; then pass "$name: the reference refuses it ($res)"
    else fail "$name: reference says '$res'"; fi
  done <"$W/names" 3<<<"$results"
  [ "$(wc -l <"$W/names")" = "$(wc -l <<<"$results")" ] || fail "reference: $results"
}

# ---- the reference itself against the published examples ----
if python3 "$REF" selftest >"$W/selftest" 2>&1; then pass "reference selftest"; else
  fail "reference selftest: $(cat "$W/selftest")"; fi

# ---- every kind through the CLI, one CVN of each family ----
VISA=4761739001010010
MC=5413330089010012
CCD=6799998900000000013
for row in "18 $VISA 01 pin-unblock" "18 $VISA 01 app-block" "16 $MC 00 app-unblock" \
  "21 $MC 00 card-block" "5 $CCD 01 pin-unblock" "5 $CCD 01 app-block"; do
  read -r cvn pan psn kind <<<"$row"
  {
    build "" "$kind" --pan "$pan" --psn "$psn" --cvn "$cvn" --atc $ATC --arqc $ARQC
    if [ "$rc" = 0 ] && [[ "$out" =~ ^71[0-9A-F]+$ ]]; then
      ref_check "CVN $cvn $kind" "$cvn" "$pan" "$psn" "$out" 71
    else
      fail "CVN $cvn $kind: exit $rc, '$out' $err"
    fi
  }
done

# 72 with a script identifier, a 4-byte MAC, PUT DATA and UPDATE RECORD
build "" app-block --pan $VISA --psn 01 --cvn 10 --atc $ATC --arqc $ARQC --after --id 0A0B0C0D
[[ "$out" =~ ^72..9F18040A0B0C0D86 ]] && pass "--after --id: 72 with 9F18 first" ||
  fail "--after --id: '$out' $err"
ref_check "CVN 10 app-block 72" 10 $VISA 01 "$out" 72 0A0B0C0D
build "" put-data --tag 9F14 --data 05 --pan $MC --cvn 20 --atc $ATC --arqc $ARQC --mac-len 4
ref_check "CVN 20 put-data 9F14, MAC of 4" 20 $MC 00 "$out" - - 4
build "" update-record --sfi 1 --record 2 --data 70055A03541333 --pan $CCD --psn 01 --cvn 5 \
  --atc $ATC --arqc $ARQC
ref_check "CVN 5 update-record" 5 $CCD 01 "$out"

# the reference is no rubber stamp: another ATC is another MAC
build "" app-block --pan $VISA --psn 01 --cvn 22 --atc $ATC --arqc $ARQC
ref_check "CVN 22 app-block" 22 $VISA 01 "$out"
ATC=002B ref_check "CVN 22 app-block checked with another ATC" 22 $VISA 01 "$out" - - 8 - bad

# ---- pin-change: the PIN on stdin only, shown nowhere ----
for row in "10 $VISA 01" "17 $MC 00" "5 $CCD 01"; do
  read -r cvn pan psn <<<"$row"
  build $'86420\n' pin-change --pan "$pan" --psn "$psn" --cvn "$cvn" --atc $ATC --arqc $ARQC --json
  script=$(sed -n 's/.*"script":"\([0-9A-F]*\)".*/\1/p' <<<"$out")
  if [ "$rc" = 0 ] && [ -n "$script" ]; then
    ref_check "CVN $cvn pin-change (MAC, enciphered PIN)" "$cvn" "$pan" "$psn" "$script" - - 8 86420
    ref_check "CVN $cvn pin-change against another PIN" "$cvn" "$pan" "$psn" "$script" - - 8 86421 bad
  else
    fail "CVN $cvn pin-change: exit $rc $err"
  fi
  if grep -qi "2586420\|86420" <<<"$out$err"; then fail "CVN $cvn pin-change: the PIN shows"; else
    pass "CVN $cvn pin-change: the PIN is not in the output"; fi
done
build $'12a4\n' pin-change --pan $VISA --cvn 10 --atc $ATC --arqc $ARQC
[ "$rc" = 2 ] && ! grep -q "12a4" <<<"$err" && pass "pin-change: a bad PIN is a usage error, not echoed" ||
  fail "pin-change bad PIN: exit $rc, $err"
build "" pin-change --pan $VISA --cvn 10 --atc $ATC --arqc $ARQC --data 1234
[ "$rc" = 2 ] && pass "pin-change: no PIN from the command line" || fail "pin-change --data: exit $rc"

# ---- refusals: missing key, key of the wrong role, CVN without a method ----
build "" app-block --pan $VISA --cvn 18 --atc $ATC --arqc $ARQC --imk-smi no-such-key
[ "$rc" = 5 ] && grep -q "no-such-key" <<<"$err" && pass "missing SMI key: exit 5 naming it" ||
  fail "missing key: exit $rc, $err"
build "" app-block --pan $VISA --cvn 18 --atc $ATC --arqc $ARQC --imk-smi imk-ac
[ "$rc" = 5 ] && grep -q "role imk;.*imk-smi" <<<"$err" && pass "AC IMK as SMI: exit 5, role named" ||
  fail "wrong-role SMI: exit $rc, $err"
build $'1234\n' pin-change --pan $VISA --cvn 18 --atc $ATC --arqc $ARQC --imk-smc imk-smi
[ "$rc" = 5 ] && grep -q "imk-smc" <<<"$err" && pass "SMI IMK as SMC: exit 5, role named" ||
  fail "wrong-role SMC: exit $rc, $err"
build "" app-block --pan $VISA --cvn 6 --atc $ATC --arqc $ARQC
[ "$rc" = 5 ] && grep -q "CVN 6" <<<"$err" && pass "CVN 6: no method, exit 5" ||
  fail "CVN 6: exit $rc, $err"

# ---- kortvagtd: scripts with the ARPC ----
KORTVAGTD=$(dirname "$K")/kortvagtd
if [ ! -x "$KORTVAGTD" ]; then
  fail "kortvagtd not built at $KORTVAGTD"
else
  TOKEN=tok-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
  (umask 077 && printf '%s verify\n' "$TOKEN" >"$W/tokens")
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$KORTVAGTD" --tokens "$W/tokens" --port "$PORT" --workers 1 >"$W/d.log" 2>&1 &
  DPID=$!
  up() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/healthz")" = 200 ]; }
  wait_for 100 up || fail "kortvagtd did not start: $(cat "$W/d.log")"
  http() {
    curl -s -o "$W/body" -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" \
      -H 'Content-Type: application/json' --data-binary "$1" "http://127.0.0.1:$PORT/v1/verify/arqc"
    printf ' %s' "$(cat "$W/body")"
  }
  DATA=000000010000000000000000020800000000000208260301003912345678
  AC=$("$K" arqc generate --key imk-ac --pan $VISA --psn 01 --cvn 18 --atc $ATC --data $DATA)
  ARQC=$AC
  base="\"pan\":\"$VISA\",\"psn\":\"01\",\"imk\":\"imk-ac\",\"cvn\":18,\"arqc\":\"$AC\",\"data\":\"$DATA\",\"atc\":\"$ATC\",\"csu\":\"00820000\""
  o=$(http "{$base,\"script_id\":\"01020304\",\"scripts\":[{\"kind\":\"app-block\"},{\"kind\":\"pin-unblock\",\"after\":true},{\"kind\":\"put-data\",\"tag\":\"9F14\",\"data\":\"03\"}]}")
  sh=$(sed -n 's/.*"scripts":"\([0-9A-F]*\)".*/\1/p' <<<"$o")
  if [ "${o%% *}" = 200 ] && grep -q '"arpc"' <<<"$o" && [[ "$sh" =~ ^71.*72 ]]; then
    pass "daemon: 200 with arpc and the 71/72 scripts"
    ref_check "daemon 71 + 72" 18 $VISA 01 "$sh" - 01020304
  else
    fail "daemon scripts: $o"
  fi
  o=$(http "{$base,\"scripts\":[{\"kind\":\"app-block\"}]}")
  sh=$(sed -n 's/.*"scripts":"\([0-9A-F]*\)".*/\1/p' <<<"$o")
  ref_check "daemon 71 app-block" 18 $VISA 01 "$sh" 71
  o=$(http "{${base/$AC/0000000000000000},\"scripts\":[{\"kind\":\"app-block\"}]}")
  grep -q '"mismatch"' <<<"$o" && ! grep -q '"scripts"' <<<"$o" &&
    pass "daemon: no scripts for an ARQC that does not verify" || fail "daemon mismatch: $o"
  # PIN CHANGE only with the new PIN as a format 4 PIN block under a PIN key
  o=$(http "{$base,\"pin_key\":\"$TPK\",\"scripts\":[{\"kind\":\"pin-change\"}]}")
  [ "${o%% *}" = 400 ] && grep -q 'scripts\[0\].pin_block' <<<"$o" &&
    pass "daemon: pin-change without pin_block: 400 naming the field" || fail "daemon pin-change: $o"
  PB=$(printf '2468\n' | "$K" pinblock encode --format 4 --pan $VISA --key "$TPK" --json |
    sed -n 's/.*"block":"\([0-9A-Fa-f]*\)".*/\1/p')
  o=$(http "{$base,\"scripts\":[{\"kind\":\"pin-change\",\"pin_block\":\"$PB\"}]}")
  [ "${o%% *}" = 400 ] && grep -q '"pin_key"\|pin_key' <<<"$o" &&
    pass "daemon: pin-change without pin_key: 400" || fail "daemon pin-change no pin_key: $o"
  o=$(http "{$base,\"pin_key\":\"$TPK\",\"scripts\":[{\"kind\":\"pin-change\",\"pin_block\":\"$PB\",\"after\":true}]}")
  sh=$(sed -n 's/.*"scripts":"\([0-9A-F]*\)".*/\1/p' <<<"$o")
  if [ "${o%% *}" = 200 ] && [ -n "$sh" ]; then
    ref_check "daemon pin-change from a format 4 block" 18 $VISA 01 "$sh" 72 - 8 2468
    ref_check "daemon pin-change against another PIN" 18 $VISA 01 "$sh" 72 - 8 2469 bad
  else
    fail "daemon pin-change with pin_block: $o"
  fi
  grep -q "2468" <<<"$o" && fail "daemon pin-change: the PIN shows" ||
    pass "daemon pin-change: the PIN is not in the answer"
  o=$(http "{$base,\"pin_key\":\"$TPK\",\"scripts\":[{\"kind\":\"pin-change\",\"pin_block\":\"00112233445566778899AABBCCDDEEFF\"}]}")
  [ "${o%% *}" = 400 ] && grep -q 'pin_block' <<<"$o" &&
    pass "daemon: a block that is no format 4 block of this PAN: 400" || fail "daemon bad block: $o"
  o=$(http "{$base,\"pin_key\":\"imk-ac\",\"scripts\":[{\"kind\":\"pin-change\",\"pin_block\":\"$PB\"}]}")
  [ "${o%% *}" = 403 ] && pass "daemon: an IMK as pin_key refused (403)" ||
    fail "daemon pin_key of wrong role: $o"
  o=$(http "{$base,\"imk_smi\":\"imk-ac\",\"scripts\":[{\"kind\":\"card-block\"}]}")
  [ "${o%% *}" = 403 ] && pass "daemon: AC IMK as SMI refused (403 key_role)" ||
    fail "daemon wrong role: $o"
  kill -TERM "$DPID" 2>/dev/null
  wait "$DPID" 2>/dev/null
fi

ref_run
rm -rf -- "$W"
echo "$((checks - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
