#!/usr/bin/env bash
# Issue 11, finding 3: `kortvagt key audit` and the derive-template report of
# `kortvagt hsm info`, against a real (isolated) SoftHSM2 token.
#   - a fresh `hsm init` audits clean (exit 0, --json []);
#   - so does the key set-up of the personalization bench (IMKs by the ceremony,
#     an issuer RSA key made by `perso card`);
#   - a key made outside the ceremony (pkcs11-tool: modifiable, encrypt +
#     decrypt + more, no role) makes the audit exit 1 and name it; so does one
#     that carries a forged role mark in its CKA_ID but is modifiable;
#   - `hsm info` says whether the module enforces CKA_DERIVE_TEMPLATE, and the
#     test checks the answer against its own experiment on the module (python
#     ctypes straight on the PKCS#11 library: a derive key with the template
#     {sensitive, unextractable} asked for an extractable key).
set -uo pipefail

: "${KORTVAGT:?set KORTVAGT to the kortvagt binary}"
KV_SOURCE_DIR=${KV_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck source=tests/integration/hsm_env.sh
. "$KV_SOURCE_DIR/tests/integration/hsm_env.sh"
# shellcheck source=tests/integration/cli_checks.sh
. "$KV_SOURCE_DIR/tests/integration/cli_checks.sh"
TPL=$KV_SOURCE_DIR/tests/data/templates
CAKEY=$KV_SOURCE_DIR/tests/data/capk/kortvagt-test-ca-e1.pem

# expect WHAT RC [TEXT]: the last kv's exit code is RC and its output contains TEXT
expect() {
  local what=$1 want_rc=$2 text=${3:-}
  if [ "$rc" -ne "$want_rc" ]; then
    fail "$what: exit $rc, want $want_rc; out: ${out:0:600}; err: ${err:0:600}"
  elif [ -n "$text" ] && ! printf '%s\n%s' "$out" "$err" | grep -qF -- "$text"; then
    fail "$what: output lacks '$text'; out: ${out:0:600}; err: ${err:0:600}"
  else
    pass "$what"
  fi
}

# ---- a fresh token (hsm_env.sh ran `kortvagt hsm init`) ----
kv audit_fresh "" key audit
expect "key audit on a fresh hsm init: clean" 0 "none is weaker"
kv audit_fresh_json "" key audit --json
expect "key audit --json on a fresh hsm init" 0
if [ "$(printf '%s' "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin))' 2>/dev/null)" = "[]" ]; then
  pass "key audit --json on a fresh token is []"
else
  fail "key audit --json on a fresh token: $out"
fi

# ---- the personalization bench's keys (as test_perso.sh sets them up) ----
K2=0123456789ABCDEFFEDCBA9876543210 # tests/data/VECTORS.md test IMK (KCV 08D7)
K_CVC3=01234567899876543210012345678998
if kv_hsm_import imk-ac des2 imk 08D7 "$K2" >/dev/null 2>&1; then pass "import imk-ac"; else fail "import imk-ac"; fi
if kv_hsm_import imk-cvc3 des2 imk-cvc3 "" "$K_CVC3" >/dev/null 2>&1; then pass "import imk-cvc3"; else fail "import imk-cvc3"; fi
kv perso "" perso card --template "$TPL/mc_contactless_cvc3.json" --out "$OUT/mc.json" --imk imk-ac \
  --cvc3-imk imk-cvc3 --pan 5413330000000019 --psn 00 --expiry 3012 --ca-key "$CAKEY" --json
expect "perso card (creates the issuer RSA key)" 0 '"issuer_key_created":true'
kv audit_bench "" key audit
expect "key audit after the perso bench set-up: clean" 0 "none is weaker"

# ---- keys made outside the ceremony ----
M=$KORTVAGT_PKCS11_MODULE
if command -v pkcs11-tool >/dev/null 2>&1; then
  # the test token's PIN is a public test value; pkcs11-tool only takes it as an argument
  if pkcs11-tool --module "$M" --token-label kortvagt --login --pin "$KORTVAGT_PIN" --keygen \
    --key-type AES:16 --label outside-weak --usage-decrypt >"$OUT/p11tool.out" 2>&1; then
    pass "pkcs11-tool made a key outside the ceremony"
  else
    fail "pkcs11-tool --keygen: $(head -c 300 "$OUT/p11tool.out")"
  fi
  # a forged role mark ("kortvagt:role:pin:") on a modifiable key is no role
  forged=$(printf 'kortvagt:role:pin:' | xxd -p | tr -d '\n')
  if pkcs11-tool --module "$M" --token-label kortvagt --login --pin "$KORTVAGT_PIN" --keygen \
    --key-type AES:16 --label forged-pin --id "$forged" --usage-decrypt >"$OUT/p11tool2.out" 2>&1; then
    pass "pkcs11-tool made a key with a forged role mark"
  else
    fail "pkcs11-tool --keygen (forged): $(head -c 300 "$OUT/p11tool2.out")"
  fi
  kv audit_weak "" key audit
  expect "key audit with a key made outside the ceremony: exit 1" 1 "outside-weak:"
  if printf '%s' "$out" | grep -F "outside-weak:" | grep -q "no role recorded" &&
    printf '%s' "$out" | grep -F "outside-weak:" | grep -q "modifiable"; then
    pass "audit names outside-weak: no role, modifiable"
  else
    fail "audit line for outside-weak: $out"
  fi
  if printf '%s' "$out" | grep -F "forged-pin:" | grep -q "modifiable" &&
    printf '%s' "$out" | grep -F "forged-pin:" | grep -q "usages beyond role pin"; then
    pass "audit names forged-pin: modifiable, usages beyond role pin"
  else
    fail "audit line for forged-pin: $out"
  fi
  if [ "$(printf '%s\n' "$out" | grep -c ':')" = 2 ]; then
    pass "audit lists exactly the two weak keys, not the ceremony's"
  else
    fail "audit lists other keys too: $out"
  fi
  kv audit_weak_json "" key audit --json
  expect "key audit --json with weak keys: exit 1" 1
  if printf '%s' "$out" | python3 -c '
import json, sys
d = {e["label"]: e for e in json.load(sys.stdin)}
assert set(d) == {"outside-weak", "forged-pin"}, d.keys()
assert "no_role" in d["outside-weak"]["problems"] and "modifiable" in d["outside-weak"]["problems"]
assert d["forged-pin"]["role"] == "pin" and "extra_usage" in d["forged-pin"]["problems"]
' 2>"$OUT/json.err"; then
    pass "key audit --json names both keys and their problems"
  else
    fail "key audit --json: $(head -c 300 "$OUT/json.err") $out"
  fi
else
  echo "SKIP: pkcs11-tool not installed: no key outside the ceremony"
fi

# ---- hsm info: derive templates, checked against the module itself ----
kv info "" hsm info --json
expect "hsm info --json" 0 '"derive_template"'
said=$(printf '%s' "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["derive_template"]["enforced"])' 2>/dev/null)
# the experiment: C_CreateObject a DES2 derive key with CKA_DERIVE_TEMPLATE {SENSITIVE,
# !EXTRACTABLE} (without it if the module does not know the attribute), then C_DeriveKey
# CKM_DES3_ECB_ENCRYPT_DATA with SENSITIVE false / EXTRACTABLE true and read CKA_VALUE
truth=$(python3 - "$M" <<'PY' 2>"$OUT/ctypes.err"
import ctypes as C, sys
lib = C.CDLL(sys.argv[1])
UL = C.c_ulong
class ATTR(C.Structure):
    _fields_ = [("type", UL), ("pValue", C.c_void_p), ("ulValueLen", UL)]
class MECH(C.Structure):
    _fields_ = [("mechanism", UL), ("pParameter", C.c_void_p), ("ulParameterLen", UL)]
class DERIV(C.Structure):
    _fields_ = [("pData", C.c_void_p), ("ulLen", UL)]
CKA_CLASS, CKA_TOKEN, CKA_PRIVATE, CKA_VALUE, CKA_KEY_TYPE = 0, 1, 2, 0x11, 0x100
CKA_SENSITIVE, CKA_ENCRYPT, CKA_DERIVE, CKA_EXTRACTABLE = 0x103, 0x104, 0x10C, 0x162
CKA_DERIVE_TEMPLATE = (1 << 30) | 0x213
CKO_SECRET_KEY, CKK_DES2, CKM_DES3_ECB_ENCRYPT_DATA = 4, 0x14, 0x1102
CKR_ATTRIBUTE_TYPE_INVALID = 0x12
keep = []
def b(v):
    x = C.c_ubyte(1 if v else 0); keep.append(x); return x
def u(v):
    x = UL(v); keep.append(x); return x
def tpl(items):
    arr = (ATTR * len(items))()
    for i, (t, obj) in enumerate(items):
        arr[i].type = t
        if obj is None:
            arr[i].pValue, arr[i].ulValueLen = None, 0
        else:
            arr[i].pValue, arr[i].ulValueLen = C.cast(C.pointer(obj), C.c_void_p), C.sizeof(obj)
    keep.append(arr)
    return arr
assert lib.C_Initialize(None) == 0
n = UL(0)
assert lib.C_GetSlotList(C.c_ubyte(1), None, C.byref(n)) == 0 and n.value > 0
slots = (UL * n.value)()
assert lib.C_GetSlotList(C.c_ubyte(1), slots, C.byref(n)) == 0
s = UL(0)
assert lib.C_OpenSession(slots[0], UL(6), None, None, C.byref(s)) == 0  # CKF_SERIAL|CKF_RW
key = (C.c_ubyte * 16)(*bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"))
dt = tpl([(CKA_SENSITIVE, b(1)), (CKA_EXTRACTABLE, b(0))])
base_items = [(CKA_CLASS, u(CKO_SECRET_KEY)), (CKA_KEY_TYPE, u(CKK_DES2)), (CKA_TOKEN, b(0)),
              (CKA_PRIVATE, b(0)), (CKA_SENSITIVE, b(1)), (CKA_EXTRACTABLE, b(0)),
              (CKA_DERIVE, b(1)), (CKA_VALUE, key)]
t = tpl(base_items)
full = (ATTR * (len(base_items) + 1))(*t, ATTR(CKA_DERIVE_TEMPLATE, C.cast(dt, C.c_void_p), C.sizeof(dt)))
h = UL(0)
rv = lib.C_CreateObject(s, full, UL(len(full)), C.byref(h))
if rv == CKR_ATTRIBUTE_TYPE_INVALID:
    rv = lib.C_CreateObject(s, t, UL(len(base_items)), C.byref(h))
assert rv == 0, hex(rv)
data = (C.c_ubyte * 16)(*range(16))
p = DERIV(C.cast(data, C.c_void_p), 16)
m = MECH(CKM_DES3_ECB_ENCRYPT_DATA, C.cast(C.pointer(p), C.c_void_p), C.sizeof(p))
weak = tpl([(CKA_CLASS, u(CKO_SECRET_KEY)), (CKA_KEY_TYPE, u(CKK_DES2)), (CKA_TOKEN, b(0)),
            (CKA_PRIVATE, b(0)), (CKA_ENCRYPT, b(1)), (CKA_SENSITIVE, b(0)), (CKA_EXTRACTABLE, b(1))])
d = UL(0)
rv = lib.C_DeriveKey(s, C.byref(m), h, weak, UL(len(weak)), C.byref(d))
clear = False
if rv == 0:
    buf = (C.c_ubyte * 64)()
    a = ATTR(CKA_VALUE, C.cast(buf, C.c_void_p), 64)
    clear = lib.C_GetAttributeValue(s, d, C.byref(a), UL(1)) == 0
    lib.C_DestroyObject(s, d)
lib.C_DestroyObject(s, h)
lib.C_CloseSession(s)
lib.C_Finalize(None)
print("False" if clear else "True")
PY
)
if [ -z "$truth" ]; then
  fail "the ctypes experiment on the module failed: $(tail -3 "$OUT/ctypes.err")"
elif [ "$said" = "$truth" ]; then
  pass "hsm info says enforced=$said; the module's own behaviour agrees (clear key derivable: $([ "$truth" = False ] && echo yes || echo no))"
else
  fail "hsm info says enforced=$said, but the experiment says enforced=$truth"
fi
kv info_text "" hsm info
if [ "$truth" = False ]; then
  expect "hsm info warns plainly" 0 "this module does not enforce CKA_DERIVE_TEMPLATE: a holder of the token PIN can derive clear session keys from an IMK; use an HSM that enforces it in production"
else
  expect "hsm info reports enforcement" 0 "derive template (CKA_DERIVE_TEMPLATE): enforced"
fi
echo "$((checks - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
