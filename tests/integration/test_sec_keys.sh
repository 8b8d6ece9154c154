#!/usr/bin/env bash
# shellcheck disable=SC2015 # pass never fails: "A && pass || fail" is if-then-else here
# Issue 11, findings 2 (ceremony side) and 3: keys are bound to their roles and
# cannot be re-flagged, copied, or used beyond their role, tried on a real
# SoftHSM2 token (hsm_env.sh) with the token's user PIN the way any PKCS#11
# tool could (tests/tools/kv_p11_attack.c):
#   - every key the ceremony makes (import and generate, with A||A companions)
#     refuses C_SetAttributeValue(CKA_DECRYPT = true) and C_CopyObject;
#   - its role is recorded in CKA_ID ("kortvagt:role:<name>:"), it is not
#     modifiable and not copyable;
#   - an IMK only derives: C_EncryptInit under it is refused; a KEK neither
#     encrypts nor signs (no KCV attribute left switched on);
#   - C_DeriveKey on an IMK with {CKA_SENSITIVE false, CKA_EXTRACTABLE true}:
#     refused where the module enforces CKA_DERIVE_TEMPLATE; SoftHSM2 2.6 does
#     not know the attribute, and then the test asserts what kortvagt does
#     guarantee -- the ceremony says so (key import --json: derive_template
#     "unsupported") -- and records the module limitation;
#   - the new role names work (imk-cvc3 ...) and a cryptogram under an IMK of
#     another role is refused, naming both roles.
# On the code before issue 11 (063727f) every setattr/copy/encrypt attempt
# answered CKR_OK and imk-cvc3 was an unknown usage.
set -uo pipefail

: "${KORTVAGT:?set KORTVAGT to the kortvagt binary}"
KV_SOURCE_DIR=${KV_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck source=tests/integration/hsm_env.sh
. "$KV_SOURCE_DIR/tests/integration/hsm_env.sh"

ATTACK=${KV_P11_ATTACK:-${KV_BUILD_DIR:-$(dirname "$KORTVAGT")/..}/bin/kv_p11_attack}
[ -x "$ATTACK" ] || { echo "FAIL: the test tool kv_p11_attack is not built at $ATTACK"; exit 1; }

fails=0
pass() { printf 'PASS: %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*"; fails=$((fails + 1)); }
OUT=$KV_HSM_DIR/out
mkdir -p "$OUT"

K2=0123456789ABCDEFFEDCBA9876543210 # tests/data/VECTORS.md (KCV 08D7B4)
KC=01234567899876543210012345678998
KA=000102030405060708090A0B0C0D0E0F

imp() { # LABEL TYPE USAGE HEX: key import --json, output kept in $OUT/LABEL.json
  printf '%s\n' "$4" | "$KORTVAGT" key import --label "$1" --type "$2" --usage "$3" --json \
    >"$OUT/$1.json" 2>"$OUT/$1.err"
}
imp cvk des2 cvk "$K2" && pass "import cvk" || fail "import cvk: $(cat "$OUT/cvk.err")"
imp imk-ac des2 imk "$K2" && pass "import imk" || fail "import imk: $(cat "$OUT/imk-ac.err")"
imp imk-c des2 imk-cvc3 "$KC" && pass "import --usage imk-cvc3 (a new role name)" ||
  fail "import --usage imk-cvc3: $(cat "$OUT/imk-c.err")"
imp kek aes128 kek "$KA" && pass "import kek" || fail "import kek: $(cat "$OUT/kek.err")"
grep -q '"kcv":"BE7ED6"' "$OUT/kek.json" 2>/dev/null && pass "kek import: KCV from a twin (AES-CMAC BE7ED6, openssl mac CMAC)" ||
  fail "kek import KCV: $(cat "$OUT/kek.json" "$OUT/kek.err")"
grep -q '"kcv":"08D7B4"' "$OUT/imk-ac.json" 2>/dev/null && pass "imk import: KCV 08D7B4 from a twin" ||
  fail "imk import KCV: $(cat "$OUT/imk-ac.json")"
"$KORTVAGT" key generate --label gimk --type des2 --usage imk-smi >"$OUT/gimk.out" 2>&1 &&
  pass "generate imk-smi" || fail "generate imk-smi: $(cat "$OUT/gimk.out")"
"$KORTVAGT" key generate --label gkek --type des3 --usage kek >"$OUT/gkek.out" 2>&1 &&
  pass "generate des3 kek" || fail "generate kek: $(cat "$OUT/gkek.out")"
"$KORTVAGT" key generate --label gcvk --type des2 --usage cvk >"$OUT/gcvk.out" 2>&1 &&
  pass "generate cvk" || fail "generate cvk: $(cat "$OUT/gcvk.out")"

attack() { # OP LABEL: the module's answer (CKR_...)
  "$ATTACK" "$1" "$2" 2>&1 | sed -n "s/^$1 $2: //p"
}

# --- finding 3: nothing can be re-flagged or copied -------------------------------
for l in cvk cvk.aa imk-ac imk-c kek gimk gkek gcvk gcvk.aa; do
  a=$(attack setattr "$l")
  case $a in
  CKR_ACTION_PROHIBITED* | CKR_ATTRIBUTE_READ_ONLY*) pass "$l: C_SetAttributeValue(CKA_DECRYPT=true) refused ($a)" ;;
  *) fail "$l: C_SetAttributeValue(CKA_DECRYPT=true) answered '$a'" ;;
  esac
  a=$(attack copy "$l")
  case $a in
  CKR_ACTION_PROHIBITED* | CKR_ATTRIBUTE_READ_ONLY*) pass "$l: C_CopyObject refused ($a)" ;;
  *) fail "$l: C_CopyObject answered '$a'" ;;
  esac
  i=$("$ATTACK" info "$l" 2>&1)
  case $i in
  *" modifiable=0 copyable=0 "*) pass "$l: not modifiable, not copyable" ;;
  *) fail "$l: $i" ;;
  esac
done

# --- finding 2 (ceremony): roles recorded, usages only what the role needs ---------
hexof() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }
role_has() { # LABEL ROLE
  "$ATTACK" info "$1" 2>&1 | grep -q "id=[0-9a-f]*$(hexof "kortvagt:role:$2:")"
}
for lr in cvk:cvk cvk.aa:cvk imk-ac:imk imk-c:imk-cvc3 kek:kek gimk:imk-smi gkek:kek; do
  role_has "${lr%%:*}" "${lr#*:}" && pass "${lr%%:*}: role ${lr#*:} in CKA_ID" ||
    fail "${lr%%:*}: no role ${lr#*:} in CKA_ID: $("$ATTACK" info "${lr%%:*}" 2>&1)"
done
usage_is() { # LABEL EXPECTED-WORDS...
  local l=$1 i w
  shift
  i=$("$ATTACK" info "$l" 2>&1)
  for w in "$@"; do
    case " $i " in *" $w "*) ;; *)
      fail "$l: want $w: $i"
      return
      ;;
    esac
  done
  pass "$l: $*"
}
usage_is imk-ac encrypt=0 decrypt=0 sign=0 wrap=0 unwrap=0 derive=1
usage_is gimk encrypt=0 decrypt=0 sign=0 wrap=0 unwrap=0 derive=1
usage_is kek encrypt=0 decrypt=0 sign=0 wrap=1 unwrap=1 derive=0
usage_is gkek encrypt=0 decrypt=0 sign=0 wrap=1 unwrap=1 derive=0
usage_is cvk encrypt=1 decrypt=0 derive=0
for l in imk-ac imk-c gimk; do
  a=$(attack encrypt "$l")
  [ "$a" = CKR_KEY_FUNCTION_NOT_PERMITTED ] && pass "$l: an IMK does not encrypt ($a)" ||
    fail "$l: C_EncryptInit under an IMK answered '$a'"
done
[ "$(attack encrypt kek)" = CKR_KEY_FUNCTION_NOT_PERMITTED ] && pass "kek: no encrypt left on" ||
  fail "kek: C_EncryptInit answered '$(attack encrypt kek)'"

# --- finding 3: derivation with an extractable template -----------------------------
a=$("$ATTACK" derive imk-ac 2>&1)
case $a in
"derive imk-ac: CKR_OK value=readable"*)
  # the module ignores derive templates: kortvagt must say so, it cannot stop it
  if grep -q '"derive_template":"unsupported"' "$OUT/imk-ac.json"; then
    pass "derive with {sensitive false, extractable true}: SoftHSM2 does not enforce CKA_DERIVE_TEMPLATE (module limitation, recorded); key import says derive_template unsupported"
    echo "NOTE: module limitation: $a"
  else
    fail "the module derived a clear key from an IMK and key import did not say the template is unsupported: $(cat "$OUT/imk-ac.json")"
  fi
  ;;
"derive imk-ac: CKR_OK"*) fail "derive with an extractable template: '$a'" ;;
"derive imk-ac: CKR_"*) pass "derive with {sensitive false, extractable true} refused by the module ($a)" ;;
*) fail "derive attempt: $a" ;;
esac

# --- the roles at work ----------------------------------------------------------------
EMV=(--pan 9901234567890123 --psn 45 --cvn 10 --atc 0001 --data 0000000010000000000000000826008000008026080001)
"$KORTVAGT" arqc generate --key imk-ac "${EMV[@]}" >"$OUT/ac1.out" 2>&1 &&
  pass "arqc generate under the imk (derive-only) works" || fail "arqc generate under imk: $(cat "$OUT/ac1.out")"
"$KORTVAGT" arqc generate --key imk-c "${EMV[@]}" >"$OUT/ac2.out" 2>&1
rc=$?
if [ "$rc" -ne 0 ] && grep -q "role imk-cvc3" "$OUT/ac2.out" && grep -q "needs a imk key" "$OUT/ac2.out"; then
  pass "a cryptogram under an imk-cvc3 key is refused, naming both roles"
else
  fail "arqc generate under imk-cvc3: exit $rc: $(cat "$OUT/ac2.out")"
fi
"$KORTVAGT" arqc generate --key cvk "${EMV[@]}" >"$OUT/ac3.out" 2>&1
rc=$?
[ "$rc" -ne 0 ] && grep -q "role cvk" "$OUT/ac3.out" && pass "a cryptogram under a cvk is refused (role cvk)" ||
  fail "arqc generate under cvk: exit $rc: $(cat "$OUT/ac3.out")"

if [ "$fails" -gt 0 ]; then
  echo "$fails check(s) failed"
  exit 1
fi
echo "all checks passed"
