#!/usr/bin/env bash
# Integration test of the payment-crypto commands (cvv, cvc3, pvv, ibm3624,
# pinblock, arqc, arpc) against a real SoftHSM2 token (an isolated one, from
# hsm_env.sh) with keys loaded by the key ceremony (`kortvagt key import`):
#   - every known-answer vector of tests/data/VECTORS.md through the CLI;
#   - generate -> verify round trips, and one wrong digit -> exit 1;
#   - PINs only on stdin, never in any process's arguments, never in output
#     unless --reveal;
#   - bad inputs, each with its error and exit code.
# Independent references: the published vectors; format 0 blocks enciphered
# by the openssl command line.
set -uo pipefail

: "${KORTVAGT:?set KORTVAGT to the kortvagt binary}"
KV_SOURCE_DIR=${KV_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck source=tests/integration/hsm_env.sh
. "$KV_SOURCE_DIR/tests/integration/hsm_env.sh"

# shellcheck source=tests/integration/cli_checks.sh
. "$KV_SOURCE_DIR/tests/integration/cli_checks.sh"

# verify commands count wrong PINs and codes per card in a store (issue 11): this
# test's own store and configuration. The IBM 3624 parameters of the PVK come from
# the configuration, never from the command line: the vector's decimalisation
# table, and validation data = all 16 digits of PAN 1122334455667788.
export KORTVAGT_STORE="sqlite:$KV_HSM_DIR/store.db"
export KORTVAGT_CONFIG="$KV_HSM_DIR/kortvagt.conf"
printf '[pvk.pvk]\ndec_table = 1234567890123456\nvalidation_data = pan:0:16\npad = F\n' >"$KORTVAGT_CONFIG"

# expect NAME WANT_RC WANT_STDOUT (exact; "*" = any) -- on the last kv run
expect() {
  local name=$1 want_rc=$2 want_out=$3
  if [ "$rc" = "$want_rc" ] && { [ "$want_out" = "*" ] || [ "$out" = "$want_out" ]; }; then
    pass "$name"
  else
    fail "$name (rc $rc want $want_rc; stdout '$out' want '$want_out'; stderr '$err')"
  fi
}

# expect_err NAME WANT_RC TEXT -- exit code and a stderr message containing TEXT
expect_err() {
  local name=$1 want_rc=$2 text=$3
  if [ "$rc" = "$want_rc" ] && [[ "$err" == *"$text"* ]]; then
    pass "$name"
  else
    fail "$name (rc $rc want $want_rc; stderr '$err' should contain '$text')"
  fi
}

# 3DES-ECB of one 8-byte block under a double-length key, by openssl (reference)
tdes() { printf '%s' "$2" | xxd -r -p | openssl enc -des-ede-ecb -K "$1" -nopad | xxd -p | tr a-f A-F; }
# the 16-hex-digit XOR of two values, with shell arithmetic
xor64() { printf '%016X' $((16#$1 ^ 16#$2)); }

K2=0123456789ABCDEFFEDCBA9876543210 # tests/data/VECTORS.md test key (KCV 08D7)
K_CVC3=01234567899876543210012345678998
K_AES=00112233445566778899AABBCCDDEEFF

# ---- keys, through the ceremony ----
import_key() { # LABEL TYPE USAGE KCV HEX
  local o
  if o=$(kv_hsm_import "$1" "$2" "$3" "$4" "$5" 2>&1); then
    pass "key import $1 ($2, usage ${3:-none})"
  else
    fail "key import $1: $o"
  fi
}
import_key cvk des2 cvk 08D7 "$K2"
import_key pvk des2 pvk 08D7 "$K2"
import_key zpk des2 pin 08D7 "$K2"
import_key zpk2 des2 pin "" FEDCBA98765432100123456789ABCDEF
import_key tpk aes128 pin "" "$K_AES"
import_key imk des2 imk 08D7 "$K2"
import_key imk-cvc3 des2 imk-cvc3 "" "$K_CVC3"

# ---- CVV / CVC (tests/data/VECTORS.md: cfpp test_magstripe.c) ----
kv cvv1 "" cvv generate --key cvk --pan 4123456789012345 --expiry 8701 --service-code 101
expect "CVV vector 1 (561)" 0 561
kv cvv2 "" cvv generate --key cvk --pan 4999988887777000 --expiry 9105 --service-code 111
expect "CVV vector 2 (245)" 0 245
kv cvv3 "" cvv verify --key cvk --pan 4123456789012345 --expiry 8701 --service-code 101 --cvv 561
expect "CVV verify vector 1" 0 match
kv cvv4 "" cvv verify --key cvk --pan 4999988887777000 --expiry 9105 --service-code 111 --cvv 245
expect "CVV verify vector 2" 0 match
kv cvv5 "" cvv verify --key cvk --pan 4123456789012345 --expiry 8701 --service-code 101 --cvv 562
expect "CVV one wrong digit -> mismatch" 1 mismatch
kv cvv6 "" cvv verify --key cvk --pan 4123456789012345 --expiry 8701 --service-code 101 --cvv 562 --json
expect "CVV mismatch --json says only the result" 1 '{"result":"mismatch"}'
kv cvv7 "" cvv verify --key cvk --pan 4123456789012346 --expiry 8701 --service-code 101 --cvv 561
expect "CVV other PAN -> mismatch" 1 mismatch
for sc in 000 999 201; do
  kv "cvvg$sc" "" cvv generate --key cvk --pan 5413330089020011 --expiry 2912 --service-code $sc
  g=$out
  kv "cvvv$sc" "" cvv verify --key cvk --pan 5413330089020011 --expiry 2912 --service-code $sc --cvv "$g"
  expect "CVV round trip service code $sc ($g)" 0 match
  w=$(printf '%03d' $(((10#$g + 1) % 1000)))
  kv "cvvw$sc" "" cvv verify --key cvk --pan 5413330089020011 --expiry 2912 --service-code $sc --cvv "$w"
  expect "CVV round trip service code $sc, wrong value -> mismatch" 1 mismatch
done
kv cvvj "" cvv generate --key cvk --pan 4123456789012345 --expiry 8701 --service-code 101 --json
expect "CVV --json masks the PAN" 0 '{"pan":"412345******2345","expiry":"8701","service_code":"101","cvv":"561"}'

# ---- Visa PVV (tests/data/VECTORS.md: psec test_pin.py), PIN on stdin ----
kv pvv1 $'4524\n' pvv generate --key pvk --pan 1122334455667788 --pvki 1
expect "PVV vector 1 (8523)" 0 8523
kv pvv2 $'1912\n' pvv generate --key pvk --pan 1122334455667788 --pvki 2
expect "PVV vector 2 (3244)" 0 3244
kv pvv3 $'4524\n' pvv verify --key pvk --pan 1122334455667788 --pvki 1 --pvv 8523
expect "PVV verify vector 1" 0 match
kv pvv4 $'1912\n' pvv verify --key pvk --pan 1122334455667788 --pvki 2 --pvv 3244
expect "PVV verify vector 2" 0 match
kv pvv5 $'4525\n' pvv verify --key pvk --pan 1122334455667788 --pvki 1 --pvv 8523
expect "PVV wrong PIN digit -> mismatch" 1 mismatch
kv pvv6 $'4524\n' pvv verify --key pvk --pan 1122334455667788 --pvki 1 --pvv 8524
expect "PVV wrong PVV digit -> mismatch" 1 mismatch
kv pvv7 $'4524\n' pvv verify --key pvk --pan 1122334455667788 --pvki 2 --pvv 8523
expect "PVV other PVKI -> mismatch" 1 mismatch
# three wrong PINs in a row block the card's PIN verifications (finding 4): clear them
kv pvvr "" card settings --pan 1122334455667788 --reset-tries
expect "card settings --reset-tries after three wrong PINs" 0 "*"

# ---- IBM 3624 (tests/data/VECTORS.md) ----
IBM=(--key pvk --pan 1122334455667788) # dec_table and validation_data: [pvk.pvk] above
for row in 4524:0000 5635:1111 1234:7710; do
  pin=${row%%:*} off=${row##*:}
  kv "ibm$pin" "$pin"$'\n' ibm3624 offset "${IBM[@]}"
  expect "IBM 3624 offset vector $off" 0 "$off"
  kv "ibmv$pin" "$pin"$'\n' ibm3624 verify "${IBM[@]}" --offset "$off"
  expect "IBM 3624 verify vector offset $off" 0 match
done
kv ibmw $'1235\n' ibm3624 verify "${IBM[@]}" --offset 7710
expect "IBM 3624 wrong PIN digit -> mismatch" 1 mismatch
kv ibmw2 $'1234\n' ibm3624 verify "${IBM[@]}" --offset 7711
expect "IBM 3624 wrong offset digit -> mismatch" 1 mismatch
kv ibm6 $'123456\n' ibm3624 offset "${IBM[@]}"
o6=$out
kv ibm6v $'123456\n' ibm3624 verify "${IBM[@]}" --offset "$o6"
expect "IBM 3624 round trip, 6-digit PIN (offset $o6)" 0 match

# ---- ISO 9564 PIN blocks (tests/data/VECTORS.md: psec, cfpp) ----
# format 0 is deterministic: the token's block must equal openssl's encryption
# of the published clear block.
E0=$(tdes "$K2" 041261AAAAEDCBA9)
kv pb0 $'1234\n' pinblock encode --format 0 --pan 5555555551234567 --key zpk
expect "format 0 vector (psec 041261AAAAEDCBA9) via the token" 0 "$E0"
E0b=$(tdes "$K2" 041200A9876FEDCB)
kv pb0b $'1234\n' pinblock encode --format 0 --pan 0123456789012345 --key zpk
expect "format 0 vector (cfpp 041200A9876FEDCB) via the token" 0 "$E0b"
kv pb0d "" pinblock decode --format 0 --pan 5555555551234567 --key zpk --block "$E0" --reveal
expect "format 0 decode --reveal" 0 1234
kv pb0n "" pinblock decode --format 0 --pan 5555555551234567 --key zpk --block "$E0"
if [ "$rc" = 0 ] && [[ "$out" != *1234* ]]; then pass "format 0 decode without --reveal hides the PIN ($out)"; else fail "decode without --reveal: rc $rc out '$out'"; fi
E3=$(tdes "$K2" 341261AAAAEDCBA9)
kv pb3d "" pinblock decode --format 3 --pan 5555555551234567 --key zpk --block "$E3" --reveal
expect "format 3 decode vector (psec 341261AAAAEDCBA9)" 0 1234
kv pb3j "" pinblock decode --format 3 --pan 5555555551234567 --key zpk --block "$E3" --json
expect "format 3 decode --json without --reveal" 0 '{"format":3,"valid":true}'
kv pb4d "" pinblock decode --format 4 --pan 1234567890123456789 --key tpk --block 28B41FDDD29B743E93124BD8E32D921E --reveal
expect "format 4 decode vector (psec 28B41FDD...)" 0 1234
kv pb4x "" pinblock decode --format 4 --pan 1234567890123456788 --key tpk --block 28B41FDDD29B743E93124BD8E32D921E
expect "format 4 vector with another PAN -> not valid" 1 "format 4: not a valid PIN block for this key and PAN"
kv pb0x "" pinblock decode --format 0 --pan 5555555551234667 --key zpk --block "$E0"
expect "format 0 with another PAN -> not valid" 1 "format 0: not a valid PIN block for this key and PAN"
# translate 4 -> 0: the result is deterministic, so it has a known answer:
# PIN field 041234FFFFFFFFFF XOR PAN field 0000 || 789012345678 (ISO 9564-1)
E40=$(tdes "$K2" "$(xor64 041234FFFFFFFFFF 0000789012345678)")
kv pbt "" pinblock translate --format 4 --pan 1234567890123456789 --key tpk --block 28B41FDDD29B743E93124BD8E32D921E --to-format 0 --to-key zpk
expect "translate the format 4 vector to format 0 (known answer)" 0 "$E40"
# round trips through every format, and random fill
for f in 0 1 3 4; do
  k=zpk
  [ $f = 4 ] && k=tpk
  kv "pbe$f" $'98765432\n' pinblock encode --format $f --pan 4000001234562 --key $k
  b=$out
  kv "pbe${f}b" $'98765432\n' pinblock encode --format $f --pan 4000001234562 --key $k
  b2=$out
  kv "pbd$f" "" pinblock decode --format $f --pan 4000001234562 --key $k --block "$b" --reveal
  expect "format $f encode -> decode round trip" 0 98765432
  if [ $f = 0 ]; then
    [ "$b" = "$b2" ] && pass "format 0 is deterministic" || fail "format 0 differs: $b $b2"
  else
    [ "$b" != "$b2" ] && pass "format $f has random fill ($b / $b2)" || fail "format $f repeated: $b"
  fi
done
kv pbt30 "" pinblock translate --format 3 --pan 5555555551234567 --key zpk --block "$E3" --to-format 0 --to-key zpk2
kv pbt30d "" pinblock decode --format 0 --pan 5555555551234567 --key zpk2 --block "$out" --reveal
expect "translate format 3 (zpk) -> 0 (zpk2) keeps the PIN" 0 1234
kv pbt01 "" pinblock translate --format 0 --pan 5555555551234567 --key zpk --block "$E0" --to-format 1 --to-key zpk2
kv pbt01d "" pinblock decode --format 1 --key zpk2 --block "$out" --reveal
expect "translate format 0 -> 1 (no PAN needed to decode)" 0 1234
kv pbtbad "" pinblock translate --format 0 --pan 5555555551234667 --key zpk --block "$E0" --to-format 4 --to-key tpk
expect_err "translate of an invalid block -> exit 1" 1 "not a valid format 0 PIN block"

# ---- PVV and IBM 3624 from an encrypted PIN block (online PIN) ----
kv pbp4 $'4524\n' pinblock encode --format 4 --pan 1122334455667788 --key tpk
B4=$out
kv pvvb1 "" pvv verify --key pvk --pan 1122334455667788 --pvki 1 --pvv 8523 --pin-block "$B4" --pin-key tpk --format 4
expect "PVV verify from a format 4 PIN block" 0 match
kv pvvb2 "" pvv verify --key pvk --pan 1122334455667788 --pvki 1 --pvv 8524 --pin-block "$B4" --pin-key tpk --format 4
expect "PVV verify from a PIN block, wrong PVV -> mismatch" 1 mismatch
kv pbp0 $'4524\n' pinblock encode --format 0 --pan 1122334455667788 --key zpk
kv pvvb3 "" pvv verify --key pvk --pan 1122334455667788 --pvki 1 --pvv 8523 --pin-block "$out" --pin-key zpk --format 0
expect "PVV verify from a format 0 PIN block" 0 match
kv pvvb4 "" pvv verify --key pvk --pan 1122334455667788 --pvki 1 --pvv 8523 --pin-block 0123456789ABCDEF --pin-key zpk --format 0
expect "PVV verify from a garbage PIN block -> mismatch (no format oracle)" 1 mismatch
kv pbp3 $'1234\n' pinblock encode --format 3 --pan 1122334455667788 --key zpk
B3=$out
kv ibmb "" ibm3624 verify "${IBM[@]}" --offset 7710 --pin-block "$B3" --pin-key zpk --format 3
expect "IBM 3624 verify from a format 3 PIN block" 0 match
kv ibmb2 "" ibm3624 verify "${IBM[@]}" --offset 7711 --pin-block "$B3" --pin-key zpk --format 3
expect "IBM 3624 from a PIN block, wrong offset -> mismatch" 1 mismatch

# ---- CVC3 (tests/data/VECTORS.md: pyemv test_cvv_hsm.py) ----
C3=(--key imk-cvc3 --pan 5123456789012345 --psn 00 --atc 005E --un 00000899 --track 5123456789012345D35121010000000000000F)
kv c31 "" cvc3 generate "${C3[@]}"
expect "CVC3 vector (29488)" 0 29488
kv c32 "" cvc3 verify "${C3[@]}" --cvc3 29488
expect "CVC3 verify, 5 digits" 0 match
kv c33 "" cvc3 verify "${C3[@]}" --cvc3 488
expect "CVC3 verify, last 3 digits (as pyemv checks)" 0 match
# the length (issue 11): as many digits as the card's PCVC3 bitmap has bits, never fewer than 3
kv c3l1 "" cvc3 verify "${C3[@]}" --cvc3 88
expect_err "CVC3 of 2 digits is refused" 2 "at least 3 digits"
kv c3l2 "" cvc3 verify "${C3[@]}" --pcvc3 001F --cvc3 488
expect_err "CVC3 of 3 digits for a PCVC3 of 5 bits is refused" 2 "at least 5 digits"
kv c3l3 "" cvc3 verify "${C3[@]}" --pcvc3 001F --cvc3 29488
expect "CVC3 of 5 digits for a PCVC3 of 5 bits" 0 match
kv c3l4 "" cvc3 verify "${C3[@]}" --pcvc3 000E --cvc3 488
expect "CVC3 of 3 digits for a PCVC3 of 3 bits" 0 match
kv c3l5 "" cvc3 verify "${C3[@]}" --pcvc3 0003 --cvc3 488
expect_err "a PCVC3 of 2 bits is no card profile" 2 "places 2 CVC3 digits"
kv c34 "" cvc3 verify "${C3[@]}" --cvc3 29489
expect "CVC3 one wrong digit -> mismatch" 1 mismatch
kv c35 "" cvc3 verify --key imk-cvc3 --pan 5123456789012345 --psn 00 --atc 005F --un 00000899 --track 5123456789012345D35121010000000000000F --cvc3 29488
expect "CVC3 other ATC -> mismatch" 1 mismatch
kv c36 "" cvc3 generate --key imk-cvc3 --pan 5123456789012345 --atc 0001 --un 12345678 --track-ascii 'B5123456789012345^DOE/JOHN^3512101000000000'
g=$out
kv c37 "" cvc3 verify --key imk-cvc3 --pan 5123456789012345 --atc 0001 --un 12345678 --track-ascii 'B5123456789012345^DOE/JOHN^3512101000000000' --cvc3 "$g"
expect "CVC3 track 1 round trip ($g)" 0 match

# ---- ARQC / ARPC (tests/data/VECTORS.md: pyemv test_ac_hsm.py) ----
EMV=(--key imk --pan 9901234567890123 --psn 45)
ACD=0123456789ABCDEF0123456789ABCDEF
kv aq1 "" arqc verify "${EMV[@]}" --cvn 18 --r 1234567890123456 --data $ACD --arqc 4B46013359B7A58B
expect "ARQC vector (session key R=1234567890123456, padding 2)" 0 match
kv aq2 "" arqc verify "${EMV[@]}" --cvn 18 --r 1234567890123456 --data $ACD --arqc 4B46013359B7A58C
expect "ARQC one wrong digit -> mismatch" 1 mismatch
kv aq3 "" arqc generate "${EMV[@]}" --cvn 18 --r 1234567890123456 --data $ACD
expect "ARQC generate vector" 0 4B46013359B7A58B
kv ap1 "" arpc generate "${EMV[@]}" --cvn 10 --arqc 4B46013359B7A58B --rc 0000
expect "ARPC method 1 vector (ICC MK, RC 0000)" 0 F8C9CECAABD55AD1
kv ap2 "" arpc generate "${EMV[@]}" --cvn 18 --r 1234567890123456 --arqc 4B46013359B7A58B --csu 00000000
expect "ARPC method 2 vector (session key, CSU 00000000)" 0 7DFB1188
kv ap3 "" arpc generate "${EMV[@]}" --cvn 18 --r 1234567890123456 --arqc 4B46013359B7A58B --csu 00000000 --json
expect "ARPC --json" 0 '{"cvn":18,"method":2,"key":"sk","arpc":"7DFB1188"}'
# generate -> verify for every CVN; Mastercard SKD needs the UN
DATA=0000000100000000000000000208000000000002082401010012345678390000AB
for cvn in 10 18 22 16 17 20 21; do
  kv "aqg$cvn" "" arqc generate "${EMV[@]}" --cvn $cvn --atc 00AB --un 12345678 --data $DATA
  g=$out
  kv "aqv$cvn" "" arqc verify "${EMV[@]}" --cvn $cvn --atc 00AB --un 12345678 --data $DATA --arqc "$g"
  expect "ARQC CVN $cvn round trip ($g)" 0 match
  kv "aqa$cvn" "" arqc verify "${EMV[@]}" --cvn $cvn --atc 00AC --un 12345678 --data $DATA --arqc "$g"
  if [ $cvn = 10 ]; then
    expect "ARQC CVN 10 has no session key: the ATC outside the data does not matter" 0 match
  else
    expect "ARQC CVN $cvn other ATC -> mismatch" 1 mismatch
  fi
done
kv aqun "" arqc verify "${EMV[@]}" --cvn 16 --atc 00AB --un 12345679 --data $DATA --arqc "$(cat "$OUT/aqg16.out")"
expect "ARQC CVN 16 other UN -> mismatch" 1 mismatch
kv aqc10 "" arqc verify "${EMV[@]}" --cvn 10 --data ${DATA}00 --arqc "$(cat "$OUT/aqg10.out")"
expect "ARQC CVN 10 data with a trailing zero byte: padding method 1 makes it equal" 0 match
kv aqc18 "" arqc verify "${EMV[@]}" --cvn 18 --atc 00AB --data ${DATA}00 --arqc "$(cat "$OUT/aqg18.out")"
expect "ARQC CVN 18 data with a trailing zero byte: padding method 2 tells them apart" 1 mismatch
# option B: a 19-digit PAN (CVN 18 uses option B; option A gives another key)
kv aqb "" arqc generate --key imk --pan 1234567890123456789 --psn 01 --cvn 18 --atc 0001 --data $DATA
g=$out
kv aqbv "" arqc verify --key imk --pan 1234567890123456789 --psn 01 --cvn 18 --atc 0001 --data $DATA --arqc "$g"
expect "ARQC option B (19-digit PAN) round trip" 0 match
kv aqba "" arqc verify --key imk --pan 1234567890123456789 --psn 01 --cvn 18 --mk-option A --atc 0001 --data $DATA --arqc "$g"
expect "ARQC option A instead of B on a 19-digit PAN -> mismatch" 1 mismatch
# CVN 16: ARPC method 1 under the ICC MK; the ICC MK of tests/data/VECTORS.md (F84315C7...)
# and openssl give the known answer 3DES(MK)(ARQC XOR 3030 || 00..)
ARPC16=$(tdes F84315C7B95BD3B0C74694922C3808B0 "$(xor64 4B46013359B7A58B 3030000000000000)")
kv apr "" arpc generate "${EMV[@]}" --cvn 16 --arqc 4B46013359B7A58B --rc 3030 --json
expect "ARPC CVN 16: method 1 under the ICC MK (known answer)" 0 '{"cvn":16,"method":1,"key":"mk","arpc":"'"$ARPC16"'"}'

# ---- the PIN never in process arguments, never in output ----
FIFO=$KV_HSM_DIR/pin.fifo
mkfifo "$FIFO"
"$KORTVAGT" pvv generate --key pvk --pan 1122334455667788 --pvki 1 <"$FIFO" >"$OUT/fifo.out" 2>&1 &
pid=$!
exec 7>"$FIFO" # the process now waits for the PIN on stdin
# read its arguments once it runs kortvagt (the child has exec'd)
running_pvv() { tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'pvv generate'; }
wait_for 120 running_pvv || true
args=$(tr '\0' ' ' </proc/$pid/cmdline 2>/dev/null)
printf '8231\n' >&7
exec 7>&-
wait $pid
prc=$?
if [ -n "$args" ] && [[ "$args" != *8231* ]] && [ $prc = 0 ]; then
  pass "a waiting 'pvv generate' has no PIN in its arguments ($args)"
else
  fail "process arguments while waiting for the PIN: '$args' (rc $prc)"
fi
kv pinarg "" pvv generate --key pvk --pan 1122334455667788 --pvki 1 --pin 4524
expect_err "a PIN option does not exist" 2 "unknown option '--pin'"
if grep -q -e 98765432 -e 8231 "$ALL_OUTPUT"; then
  # 98765432 is printed only by the --reveal decodes above; anything else is a leak
  n=$(grep -c -e 98765432 -e 8231 "$ALL_OUTPUT")
  if [ "$n" = 4 ]; then pass "PINs appear in output only where --reveal asked for them"; else fail "PIN found $n times in output"; fi
else
  fail "the --reveal outputs are missing"
fi

# ---- bad input: each with its error ----
kv b1 "" cvv generate --key cvk --pan 41234567890X2345 --expiry 8701 --service-code 101
expect_err "PAN with a letter" 2 "--pan must be decimal digits"
kv b2 "" cvv generate --key cvk --pan 41234567890123456789 --expiry 8701 --service-code 101
expect_err "PAN of 20 digits" 2 "--pan must be 1 to 19 digits"
kv b3 "" cvv generate --key cvk --pan 4123456789012345 --expiry 871 --service-code 101
expect_err "expiry of 3 digits" 2 "--expiry must be 4 digits"
kv b4 "" cvv verify --key cvk --pan 4123456789012345 --expiry 8701 --service-code 101
expect_err "verify without --cvv" 2 "missing --cvv"
kv b5 "" cvv generate --key nosuchkey --pan 4123456789012345 --expiry 8701 --service-code 101
expect_err "unknown key label" 5 "key 'nosuchkey' not found"
kv b6 "" cvv generate --key pvk --pan 4123456789012345 --expiry 8701 --service-code 101
expect_err "CVV under a PVK (another role, no A||A companion): the role is named" 5 "has role pvk; this operation needs a cvk key"
kv b7 $'123\n' pvv generate --key pvk --pan 1122334455667788 --pvki 1
expect_err "PIN of 3 digits" 2 "the PIN must be 4 to 12 digits, got 3"
kv b8 $'1234567890123\n' pvv generate --key pvk --pan 1122334455667788 --pvki 1
expect_err "PIN of 13 digits" 2 "the PIN must be 4 to 12 digits, got 13"
kv b9 $'12a4\n' pvv generate --key pvk --pan 1122334455667788 --pvki 1
expect_err "PIN with a letter" 2 "the PIN must be decimal digits only"
if [[ "$(cat "$OUT/b7.err" "$OUT/b8.err" "$OUT/b9.err")" != *12a4* ]] && [[ "$(cat "$OUT/b8.err")" != *1234567890123* ]]; then pass "a bad PIN is not echoed"; else fail "a bad PIN was echoed"; fi
kv b10 "" pvv generate --key pvk --pan 1122334455667788 --pvki 1
expect_err "no PIN on stdin" 2 "no PIN on standard input"
kv b11 "" arqc verify "${EMV[@]}" --cvn 18 --atc 005 --data $ACD --arqc 4B46013359B7A58B
expect_err "odd hex (ATC)" 2 "--atc: odd number of hex digits"
kv b12 "" arqc verify "${EMV[@]}" --cvn 18 --atc 005E --data 0123XY --arqc 4B46013359B7A58B
expect_err "non-hex data" 2 "--data: 'X' at position 5 is not a hex digit"
kv b13 "" arqc verify "${EMV[@]}" --cvn 18 --atc 005E --data $ACD --arqc 4B46013359B7A5
expect_err "ARQC of 7 bytes" 2 "--arqc must be 8 bytes"
kv b14 "" arqc verify "${EMV[@]}" --cvn 99 --atc 005E --data $ACD --arqc 4B46013359B7A58B
expect_err "unsupported CVN" 2 "--cvn '99' is not supported"
kv b15 "" arqc verify "${EMV[@]}" --cvn 16 --atc 005E --data $ACD --arqc 4B46013359B7A58B
expect_err "Mastercard SKD without --un" 2 "missing --un"
kv b16 "" pinblock encode --format 2 --pan 4000001234562 --key zpk
expect_err "PIN block format 2" 2 "--format must be 0, 1, 3 or 4"
kv b17 "" pinblock decode --format 0 --pan 4000001234562 --key zpk --block 0123456789ABCD
expect_err "PIN block of 7 bytes" 2 "--block must be 8 bytes"
kv b18 $'1234\n' pinblock encode --format 4 --pan 4000001234562 --key zpk
expect_err "format 4 under a 3DES key" 5 "wrong type: need an AES key"
kv b19 "" pinblock decode --format 0 --key zpk --block "$E0"
expect_err "format 0 without a PAN" 2 "missing --pan"
kv b20 "" arpc generate "${EMV[@]}" --cvn 10 --arqc 4B46013359B7A58B --rc 0000 --csu 00000000
expect_err "ARPC with both --rc and --csu" 2 "exactly one of --rc"
kv b21 "" cvc3 generate --key imk-cvc3 --pan 5123456789012345 --atc 005E --un 00000899 --track 5123456789012345D35121010000000000000
expect_err "odd track 2 hex" 2 "--track: odd number of hex digits"
kv b22 "" ibm3624 offset --key pvk --pan 1122334455667788 --dec-table 0000000000000000
expect_err "a decimalisation table from the command line is refused (server configuration only)" 2 "--dec-table is no longer accepted"
kv b23 "" cvv generate --key cvk --pan 4123456789012345 --expiry 8701 --service-code 101 --cvv 561
expect_err "--cvv on generate" 2 "--cvv belongs to 'cvv verify'"
kv b24 "" cvv frobnicate
expect_err "unknown command" 2 "unknown command 'frobnicate'"
for g in cvv cvc3 pvv ibm3624 pinblock arqc arpc; do
  kv "help$g" "" $g --help
  if [ "$rc" = 0 ] && [[ "$out" == Usage:* ]]; then pass "$g --help"; else fail "$g --help (rc $rc)"; fi
done

echo "$((checks - fails))/$checks checks passed"
[ "$fails" = 0 ]
