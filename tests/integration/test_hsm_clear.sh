#!/usr/bin/env bash
# Integration test of the lab functions of issue 10 against a real SoftHSM2
# token (an isolated one, from hsm_env.sh):
#   - `pinblock encode|decode` without --key: the clear ISO 9564-1 PIN block
#     (formats 0, 1, 3) and the plaintext PIN and PAN fields of format 4;
#   - `key import --allow-single-des`: a double-length key with equal halves
#     is refused without the flag, stored marked weak with it, listed as weak,
#     and kortvagtd refuses it unless [hsm] allow_weak_keys = true.
# Independent references: the ISO 9564-1 field definitions computed here by
# python3 (format 0 example PIN 1234, PAN 4111111111111111 -> 041225EEEEEEEEEE;
# psec 041261AAAAEDCBA9; cfpp 041200A9876FEDCB), 3DES by the openssl command
# line, the single-DES KCV D5D44F of 0123456789ABCDEF (OpenSSL).
set -uo pipefail

: "${KORTVAGT:?set KORTVAGT to the kortvagt binary}"
KV_SOURCE_DIR=${KV_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck source=tests/integration/hsm_env.sh
. "$KV_SOURCE_DIR/tests/integration/hsm_env.sh"

# shellcheck source=tests/integration/cli_checks.sh
. "$KV_SOURCE_DIR/tests/integration/cli_checks.sh"
bad() { fail "$@"; }
expect() { # NAME WANT_RC WANT_STDOUT ("*" = any)
  if [ "$rc" = "$2" ] && { [ "$3" = "*" ] || [ "$out" = "$3" ]; }; then
    pass "$1"
  else
    bad "$1 (rc $rc want $2; stdout '$out' want '$3'; stderr '$err')"
  fi
}
expect_err() { # NAME WANT_RC TEXT-IN-STDERR
  if [ "$rc" = "$2" ] && [[ "$err" == *"$3"* ]]; then pass "$1"; else bad "$1 (rc $rc; stderr '$err')"; fi
}

# ISO 9564-1 reference, independent of kortvagt: the clear block of formats 0 and 3
# (FILL: the fill nibble; format 3 takes the fill of a block under test).
iso() { # iso FORMAT PIN PAN [FILL]
  python3 - "$@" <<'PY'
import sys
fmt, pin, pan = int(sys.argv[1]), sys.argv[2], sys.argv[3]
fill = sys.argv[4] if len(sys.argv) > 4 else "F"
pinf = ("%d%X%s" % (fmt, len(pin), pin) + fill * 16)[:16]
panf = "0000" + pan[:-1][-12:].rjust(12, "0")
print("%016X" % (int(pinf, 16) ^ int(panf, 16)))
PY
}
# 3DES-ECB of one block under a double-length key, by openssl (reference)
tdes() { printf '%s' "$2" | xxd -r -p | openssl enc -des-ede-ecb -K "$1" -nopad | xxd -p | tr a-f A-F; }
tdes_dec() { printf '%s' "$2" | xxd -r -p | openssl enc -d -des-ede-ecb -K "$1" -nopad | xxd -p | tr a-f A-F; }

# ---- clear PIN blocks, format 0: deterministic, published examples -------------------------
for row in 1234:4111111111111111 1234:5555555551234567 1234:0123456789012345 98765432:4000001234562; do
  pin=${row%%:*} pan=${row##*:}
  want=$(iso 0 "$pin" "$pan")
  kv "c0$pan" "$pin"$'\n' pinblock encode --format 0 --pan "$pan"
  expect "clear format 0, PIN $pin, PAN $pan -> $want (ISO 9564-1, python3)" 0 "$want"
done
[ "$(iso 0 1234 4111111111111111)" = 041225EEEEEEEEEE ] && pass "the reference gives the ISO example 041225EEEEEEEEEE" ||
  bad "python reference for the ISO example"
[ "$(iso 0 1234 5555555551234567)" = 041261AAAAEDCBA9 ] && pass "the reference gives psec's 041261AAAAEDCBA9" ||
  bad "python reference for psec"
kv c0j $'1234\n' pinblock encode --format 0 --pan 0123456789012345 --json
expect "clear format 0 --json (cfpp 041200A9876FEDCB)" 0 '{"format":0,"clear":true,"block":"041200A9876FEDCB"}'
kv d0 "" pinblock decode --format 0 --pan 4111111111111111 --block 041225EEEEEEEEEE
expect "clear decode without --reveal: well-formed and the length only" 0 "format 0: well-formed clear PIN block, PIN of 4 digits"
kv d0r "" pinblock decode --format 0 --pan 4111111111111111 --block 041225EEEEEEEEEE --reveal
expect "clear decode --reveal prints the PIN" 0 1234
kv d0j "" pinblock decode --format 0 --pan 5555555551234567 --block 041261AAAAEDCBA9 --json
expect "clear decode --json" 0 '{"format":0,"clear":true,"valid":true,"pin_length":4}'
kv d0x "" pinblock decode --format 0 --pan 4111111111111211 --block 041225EEEEEEEEEE
expect "clear format 0 under another PAN -> not well-formed (exit 1)" 1 "format 0: not a well-formed clear PIN block for this PAN"
kv d0c "" pinblock decode --format 0 --pan 4111111111111112 --block 041225EEEEEEEEEE --reveal
expect "the PAN's check digit is not in the PAN field" 0 1234

# ---- formats 1 and 3: random fill; fixed parts checked, decoded back -------------------------
for f in 1 3; do
  kv "c$f" $'1234\n' pinblock encode --format $f --pan 5555555551234567
  b1=$out
  kv "c${f}b" $'1234\n' pinblock encode --format $f --pan 5555555551234567
  b2=$out
  [[ "$b1" =~ ^[0-9A-F]{16}$ ]] && [ "$b1" != "$b2" ] && pass "clear format $f: 8 bytes, random fill ($b1 / $b2)" ||
    bad "clear format $f: '$b1' '$b2'"
  if [ $f = 1 ]; then
    # no PAN: the block is the PIN field, 1 || 4 || 1234 || 10 fill nibbles
    [ "${b1:0:6}" = 141234 ] && pass "clear format 1 starts 141234" || bad "format 1 block $b1"
  else
    # PIN field = block XOR PAN field: 3 || 4 || 1234 || fill A-F
    f3=$(printf '%016X' $((16#$b1 ^ 16#0000555555123456)))
    [[ "$f3" =~ ^341234[A-F]{10}$ ]] && pass "clear format 3: PIN field $f3 (fill A-F)" || bad "format 3 PIN field $f3"
  fi
  kv "d$f" "" pinblock decode --format $f --pan 5555555551234567 --block "$b1" --reveal
  expect "clear format $f encode -> decode --reveal" 0 1234
done
# psec's format 3 example decodes
kv d3p "" pinblock decode --format 3 --pan 5555555551234567 --block 341261AAAAEDCBA9 --reveal
expect "clear format 3 example 341261AAAAEDCBA9 (psec)" 0 1234
kv d3bad "" pinblock decode --format 3 --pan 5555555551234567 --block 041261AAAAEDCBA9
expect "a format 0 block is no format 3 block" 1 "format 3: not a well-formed clear PIN block for this PAN"

# ---- format 4: the plaintext PIN field and PAN field -------------------------------------
kv c4 $'1234\n' pinblock encode --format 4 --pan 1234567890123456789
p1=$(sed -n 's/^PIN field: //p' "$OUT/c4.out")
n1=$(sed -n 's/^PAN field: //p' "$OUT/c4.out")
kv c4b $'1234\n' pinblock encode --format 4 --pan 1234567890123456789
p2=$(sed -n 's/^PIN field: //p' "$OUT/c4b.out")
[[ "$p1" =~ ^441234AAAAAAAAAA[0-9A-F]{16}$ ]] && pass "format 4 PIN field: 4 4 1234 A-fill, then 8 random bytes ($p1)" ||
  bad "format 4 PIN field '$p1'"
[ "${p1:16}" != "${p2:16}" ] && pass "format 4: the random half differs between runs" || bad "format 4 random half repeated: $p1 $p2"
[ "$n1" = 71234567890123456789000000000000 ] && pass "format 4 PAN field: M=7, the 19 digits, zeros" || bad "format 4 PAN field '$n1'"
kv c4s $'98765432\n' pinblock encode --format 4 --pan 4111111111111111 --json
python3 - "$out" <<'PY' && pass "format 4 --json: pin_field and pan_field (16-digit PAN: M=4)" || bad "format 4 --json: $out"
import json, sys, re
d = json.loads(sys.argv[1])
assert d["format"] == 4 and d["clear"] is True
assert re.fullmatch(r"4898765432AAAAAA[0-9A-F]{16}", d["pin_field"]), d
assert d["pan_field"] == "44111111111111111000000000000000", d
PY
kv d4 "" pinblock decode --format 4 --block "$p1" --reveal
expect "format 4 PIN field decodes (no PAN needed)" 0 1234
kv d4n "" pinblock decode --format 4 --block "$p1"
expect "format 4 PIN field without --reveal" 0 "format 4: well-formed plaintext PIN field, PIN of 4 digits"
kv d4x "" pinblock decode --format 4 --block "041234FFFFFFFFFF${p1:16}"
expect "a format 0 PIN field is no format 4 field" 1 "format 4: not a well-formed plaintext PIN field"
kv d4short "" pinblock decode --format 4 --block 441234AAAAAAAAAA
expect_err "format 4 clear takes 16 bytes" 2 "--block must be 16 bytes"

# ---- clear and keyed agree: a token's block, deciphered by openssl, is a clear block -------
K2=0123456789ABCDEFFEDCBA9876543210
kv_hsm_import zpk des2 pin 08D7 "$K2" >/dev/null 2>&1 && pass "import zpk" || bad "import zpk"
kv e3 $'4524\n' pinblock encode --format 3 --pan 4000001234562 --key zpk
kv d3o "" pinblock decode --format 3 --pan 4000001234562 --block "$(tdes_dec "$K2" "$out")" --reveal
expect "format 3 under zpk, deciphered by openssl, decodes clear" 0 4524
kv c0k $'4524\n' pinblock encode --format 0 --pan 4000001234562
clear0=$out
kv e0 $'4524\n' pinblock encode --format 0 --pan 4000001234562 --key zpk
expect "keyed format 0 = openssl 3DES of the clear block" 0 "$(tdes "$K2" "$clear0")"

# ---- usage errors --------------------------------------------------------------------------
kv u1 "" pinblock decode --format 0 --pan 4111111111111111 --block 041225EEEEEEEEEE --token kortvagt
expect_err "--token without --key is refused" 2 "--token/--module need --key"
kv u2 "" pinblock translate --format 0 --pan 4111111111111111 --block 041225EEEEEEEEEE --to-format 1 --to-key zpk
expect_err "translate still needs --key" 2 "missing --key"
kv u3 "" pinblock decode --format 0 --block 041225EEEEEEEEEE
expect_err "clear format 0 needs the PAN" 2 "missing --pan"
kv u4 $'12\n' pinblock encode --format 0 --pan 4111111111111111
expect_err "a short PIN is refused, clear too" 2 "the PIN must be 4 to 12 digits"
kv u5 "" pinblock encode --format 0 --pan 4111111111111111 --pin 1234
expect_err "no PIN option, clear too" 2 "unknown option '--pin'"
kv uh "" pinblock --help
[[ "$out" == *"16-byte plaintext PIN field"* ]] && [[ "$out" == *"CLEAR PIN block"* ]] &&
  pass "pinblock --help explains the clear mode and format 4's fields" || bad "pinblock --help"

# ---- --allow-single-des -----------------------------------------------------------------
W1=0123456789ABCDEF0123456789ABCDEF # halves equal: single DES under 0123456789ABCDEF
kv w1 "$W1"$'\n' key import --label wpvk --type des2 --usage pvk
expect_err "a des2 key with equal halves is refused without the flag" 2 "single-DES strength"
[[ "$err" == *"--allow-single-des"* ]] && pass "the refusal names --allow-single-des" || bad "refusal text: $err"
kv w2 "$W1"$'\n' key import --label wpvk --type des2 --usage pvk --kcv D5D44F --allow-single-des
expect_err "... and stored with it; the token's KCV is single DES's D5D44F" 0 ""
[[ "$out" == *"KCV D5D44F"* ]] && [[ "$out" == *"marked weak"* ]] && pass "import says KCV D5D44F, marked weak" || bad "import output: $out"
kv w3 "0123456789ABCDEF0123456789ABCDEFFEDCBA9876543210"$'\n' key import --label w3 --type des3 --usage pvk --allow-single-des
expect_err "des3 with equal parts stays refused" 2 "single-DES strength"
kv w4 "$W1"$'\n' key import --label w4 --type des2 --usage pvk --allow-single-des --json
python3 - "$out" <<'PY' && pass "import --json says weak" || bad "import --json: $out"
import json, sys
d = json.loads(sys.argv[1]); assert d["weak"] is True and d["kcv"] == "D5D44F", d
PY
kv l1 "" key list --json
python3 - "$OUT/l1.out" <<'PY' && pass "key list --json: wpvk and w4 weak (CKA_ID mark), zpk not" || bad "key list --json (see l1.out)"
import json, sys
keys = {k["label"]: k for k in json.load(open(sys.argv[1]))}
assert keys["wpvk"]["weak"] is True and keys["w4"]["weak"] is True, keys["wpvk"]
assert keys["zpk"]["weak"] is False
# the weak mark first, then (issue 11) the role mark of the ceremony
assert keys["wpvk"]["id"].upper() in (b"kortvagt:single-des:".hex().upper(),
                                      b"kortvagt:single-des:kortvagt:role:pvk:".hex().upper()), keys["wpvk"]["id"]
assert "w3" not in keys
PY
kv l2 "" key list
grep -E '^wpvk +des2 .*WEAK' "$OUT/l2.out" >/dev/null && pass "key list shows wpvk as WEAK" || bad "key list: $out"
grep -E '^zpk +des2 ' "$OUT/l2.out" | grep -qv WEAK && pass "key list: zpk is not weak" || bad "key list zpk: $out"
# the weak key works in the CLI (a lab tool): PVV of tests/data/VECTORS.md's PIN under it, checked
# against openssl's 3DES with K||K and the Visa decimalisation done here
kv wp $'4524\n' pvv generate --key wpvk --pan 1122334455667788 --pvki 1
WPVV=$(python3 - "$(tdes "$W1" 3344556677814524)" <<'PY'
import sys
h = sys.argv[1]
d = [c for c in h if c.isdigit()] + [str(int(c, 16) - 10) for c in h if not c.isdigit()]
print("".join(d[:4]))
PY
)
expect "PVV under the weak key = Visa decimalisation of openssl's result ($WPVV)" 0 "$WPVV"

# ---- kortvagtd refuses the weak key unless the configuration allows it --------------------
KORTVAGTD=${KORTVAGTD:-$(dirname "$KORTVAGT")/kortvagtd}
if [ -x "$KORTVAGTD" ]; then
  W=$KV_HSM_DIR/work
  mkdir -p "$W"
  export KORTVAGT_STORE="sqlite:$W/store.db"
  : >"$W/strict.conf"
  printf '[hsm]\nallow_weak_keys = true\n' >"$W/lab.conf"
  TOK=tok-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
  (umask 077 && printf '%s\n' "$TOK" >"$W/tokens")
  kv_hsm_import tpk aes128 pin "" 00112233445566778899AABBCCDDEEFF >/dev/null 2>&1
  kv_hsm_import spvk des2 pvk "" "$K2" >/dev/null 2>&1
  PB=$(printf '4524\n' | "$KORTVAGT" pinblock encode --format 4 --pan 1122334455667788 --key tpk)
  body() { printf '{"pan":"1122334455667788","pin_block":"%s","format":4,"pin_key":"tpk","pvk":"%s","pvki":1,"pvv":"%s"}' "$PB" "$1" "$2"; }
  port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
  post() { curl -s -o "$W/body" -w '%{http_code}' -H "Authorization: Bearer $TOK" \
    -H 'Content-Type: application/json' --data-binary "$2" "http://127.0.0.1:$1/v1/verify/pin"; }
  start() { # NAME CONFIG -> sets P (port) and the pid in $W/NAME.pid; waits for /healthz
    P=$(port)
    "$KORTVAGTD" --tokens "$W/tokens" --port "$P" --workers 1 --config "$2" >"$W/$1.log" 2>&1 &
    echo $! >"$W/$1.pid"
    up_or_gone() {
      [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P/healthz")" = 200 ] ||
        proc_has_exited "$(cat "$W/$1.pid")"
    }
    wait_for 60 up_or_gone "$1" || return 1
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P/healthz")" = 200 ]
  }
  stop() { kill -TERM "$(cat "$W/$1.pid")" 2>/dev/null && wait "$(cat "$W/$1.pid")" 2>/dev/null; }
  trap 'stop strict; stop lab; kv_hsm_cleanup' EXIT
  if start strict "$W/strict.conf"; then
    st=$(post "$P" "$(body spvk 8523)")
    [ "$st" = 200 ] && grep -q '"match"' "$W/body" && pass "kortvagtd: a strong PVK verifies (tests/data/VECTORS.md PVV 8523)" ||
      bad "kortvagtd strong key: $st $(cat "$W/body")"
    st=$(post "$P" "$(body wpvk "$WPVV")")
    [ "$st" = 403 ] && grep -q '"weak_key"' "$W/body" && pass "kortvagtd refuses the weak key by default (403 weak_key)" ||
      bad "kortvagtd weak key, default config: $st $(cat "$W/body")"
    stop strict
  else
    bad "kortvagtd (strict) did not start: $(cat "$W/strict.log")"
  fi
  if start lab "$W/lab.conf"; then
    st=$(post "$P" "$(body wpvk "$WPVV")")
    [ "$st" = 200 ] && grep -q '"match"' "$W/body" && pass "kortvagtd with [hsm] allow_weak_keys = true uses it (match)" ||
      bad "kortvagtd weak key, allowed: $st $(cat "$W/body")"
    stop lab
  else
    bad "kortvagtd (lab) did not start: $(cat "$W/lab.log")"
  fi
else
  bad "kortvagtd not built at $KORTVAGTD"
fi

# ---- no PIN in a decode's output unless --reveal asked ----------------------------------
if grep -h "" "$OUT"/d0.out "$OUT"/d0j.out "$OUT"/d4n.out | grep -q -e 1234 -e 4524; then
  bad "a PIN in a decode without --reveal"
else
  pass "a decode without --reveal prints no PIN"
fi

echo "$((checks - fails))/$checks checks passed"
[ "$fails" = 0 ]
