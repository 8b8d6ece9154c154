#!/usr/bin/env bash
# Integration test of `kortvagt hsm` and `kortvagt key` against a real
# SoftHSM2 token (an isolated one, from hsm_env.sh): token creation, the
# mechanism report, the key ceremony (import with KCV, generate, list,
# delete), that no key value can be read, and that PINs and key components
# never show up in process arguments or output.
#
# Independent references: the KCV 08D7(B4) of DES2 key 0123456789ABCDEF
# FEDCBA9876543210 (tests/data/VECTORS.md); AES-CMAC and HMAC-SHA256 KCVs computed by the
# openssl command line.
set -uo pipefail

: "${KORTVAGT:?set KORTVAGT to the kortvagt binary}"
KV_SOURCE_DIR=${KV_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck source=tests/integration/hsm_env.sh
. "$KV_SOURCE_DIR/tests/integration/hsm_env.sh"

fails=0
pass() { printf 'PASS: %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*"; fails=$((fails + 1)); }
check() { # check NAME CONDITION-COMMAND...
  local name=$1
  shift
  if "$@"; then pass "$name"; else fail "$name"; fi
}

OUT=$KV_HSM_DIR/out
mkdir -p "$OUT"
ALL_OUTPUT=$OUT/all.log # everything kortvagt prints, checked for secrets at the end
: >"$ALL_OUTPUT"

# run NAME CMD... : runs kortvagt with stdin from $IN (a file), keeps rc/stdout/stderr
IN=/dev/null
run() {
  local name=$1
  shift
  "$KORTVAGT" "$@" <"$IN" >"$OUT/$name.out" 2>"$OUT/$name.err"
  rc=$?
  cat "$OUT/$name.out" "$OUT/$name.err" >>"$ALL_OUTPUT"
}
has() { grep -qF -- "$2" "$OUT/$1.out" "$OUT/$1.err"; }
key_labels() { "$KORTVAGT" key list --json 2>/dev/null | python3 -c 'import json,sys; print(" ".join(sorted(k["label"] for k in json.load(sys.stdin))))'; }

# Components used below, fed on stdin only. Random per run, so that the
# process-argument check cannot match another program's arguments; built with
# shell builtins only, so they never sit in any process's arguments.
rand_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n' | tr a-f A-F; }
xor_hex() { # xor_hex A B: same-length hex strings, 8 digits at a time (builtins)
  local a=$1 b=$2 out="" i
  for ((i = 0; i < ${#a}; i += 8)); do
    out+=$(printf '%08X' $((16#${a:i:8} ^ 16#${b:i:8})))
  done
  printf '%s' "$out"
}
K_VEC=0123456789ABCDEFFEDCBA9876543210 # tests/data/VECTORS.md, KCV 08D7(B4)
K_A1=$(rand_hex 16)
K_A2=$(xor_hex "$K_VEC" "$K_A1") # K_A1 xor K_A2 = K_VEC
AES_K=$(rand_hex 16)
HMAC_K=$(rand_hex 32)
# independent reference KCVs from the openssl command line -- computed now,
# before the process-argument watch starts (openssl takes the key on argv)
AES_KCV=$(printf '\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0' | openssl mac -cipher AES-128-CBC -macopt "hexkey:$AES_K" CMAC | cut -c1-6)
HMAC_KCV=$(head -c 32 /dev/zero | openssl mac -digest SHA256 -macopt "hexkey:$HMAC_K" HMAC | cut -c1-6)
[ ${#AES_KCV} -eq 6 ] && [ ${#HMAC_KCV} -eq 6 ] || { echo "FAIL: openssl reference KCVs"; exit 1; }
secret_file() { printf '%s\n' "$@" >"$KV_HSM_DIR/in.txt"; IN=$KV_HSM_DIR/in.txt; }

# --- hsm init --------------------------------------------------------------
run init2 hsm init
check "hsm init on an existing token exits 0" [ "$rc" -eq 0 ]
run init2b hsm init
check "hsm init a third time: still exit 0, nothing new" \
  bash -c "[ $rc -eq 0 ] && ! grep -q generated '$OUT/init2b.out'"
check "hsm init says the token exists" has init2 "exists already"

# a fresh token with both PINs on stdin: SO PIN line first, then user PIN
(
  mkdir -p "$KV_HSM_DIR/t2/tokens"
  printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
    "$KV_HSM_DIR/t2/tokens" >"$KV_HSM_DIR/t2/softhsm2.conf"
  export SOFTHSM2_CONF=$KV_HSM_DIR/t2/softhsm2.conf
  unset KORTVAGT_PIN KORTVAGT_SO_PIN
  printf 'so-pin-stdin-91\nuser-pin-stdin-92\n' | "$KORTVAGT" hsm init --token second >"$OUT/init3a.out" 2>&1
  echo "rc=$?" >>"$OUT/init3a.out"
  KORTVAGT_PIN=user-pin-stdin-92 "$KORTVAGT" key list --token second >"$OUT/init3b.out" 2>&1
  echo "rc=$?" >>"$OUT/init3b.out"
  KORTVAGT_PIN=so-pin-stdin-91 "$KORTVAGT" key list --token second >"$OUT/init3c.out" 2>&1
  echo "rc=$?" >>"$OUT/init3c.out"
)
check "hsm init from stdin creates the token (exit 0)" \
  bash -c "grep -q \"token 'second' initialised\" '$OUT/init3a.out' && grep -q '^rc=0$' '$OUT/init3a.out'"
check "the user PIN from stdin line 2 logs in" grep -q '^rc=0$' "$OUT/init3b.out"
check "the SO PIN is not the user PIN" grep -q "CKR_PIN_INCORRECT (wrong user PIN)" "$OUT/init3c.out"
cat "$OUT"/init3?.out >>"$ALL_OUTPUT"

# --- hsm info --------------------------------------------------------------
run info hsm info
check "hsm info exits 0" [ "$rc" -eq 0 ]
for m in CKM_DES3_ECB CKM_DES3_CBC CKM_DES_ECB CKM_AES_ECB CKM_AES_CMAC CKM_SHA256_HMAC \
  CKM_DES3_ECB_ENCRYPT_DATA; do
  check "hsm info: $m works with OPENSSL_CONF set" grep -Eq "^  $m +works" "$OUT/info.out"
done
check "hsm info: no advice when all works" bash -c "! grep -q advice '$OUT/info.out'"
(unset OPENSSL_CONF; "$KORTVAGT" hsm info >"$OUT/info2.out" 2>&1)
check "hsm info without OPENSSL_CONF: CKM_DES_ECB fails" grep -Eq "^  CKM_DES_ECB +FAILS CKR_MECHANISM_INVALID" "$OUT/info2.out"
check "hsm info without OPENSSL_CONF: advice names the config file" \
  grep -qF "Set OPENSSL_CONF=$KV_SOURCE_DIR/scripts/openssl-legacy.cnf" "$OUT/info2.out"
check "hsm info without OPENSSL_CONF: advice says why" grep -q 'legacy" provider' "$OUT/info2.out"
run infojson hsm info --json
check "hsm info --json is JSON with 7 mechanisms" python3 -c '
import json,sys; d=json.load(open(sys.argv[1])); m=d["mechanisms"]
assert len(m)==7 and all(x["works"] for x in m) and d["token"]["label"]=="kortvagt"' "$OUT/infojson.out"

# --- import -----------------------------------------------------------------
# watch every process's arguments while the ceremony runs
PS_LOG=$KV_HSM_DIR/ps.log
(while :; do ps -eo args >>"$PS_LOG" 2>/dev/null; done) &
PS_PID=$!
# the watcher runs before the first import
wait_for 60 test -s "$PS_LOG" || true

before=$(key_labels)
secret_file "$K_A1" "$K_A2"
run imp1 key import --label cvk1 --type des2 --usage cvk --kcv 08D7B4
check "import des2 from 2 components with the right KCV" [ "$rc" -eq 0 ]
check "import prints the KCV 08D7B4" has imp1 "KCV 08D7B4"
check "import creates the A||A companion" has imp1 "A||A companion 'cvk1.aa'"
check "the key and its companion are listed" [ "$(key_labels)" = "$(echo $before cvk1 cvk1.aa | xargs -n1 | LC_ALL=C sort | xargs)" ]

secret_file "$K_A1" "$K_A2"
run imp2 key import --label pvk1 --type des2 --usage pvk --kcv 08D7
check "import with a 2-byte KCV (08D7, tests/data/VECTORS.md)" [ "$rc" -eq 0 ]

before=$(key_labels)
secret_file "$K_A1" "$K_A2"
run badkcv key import --label cvk2 --type des2 --usage cvk --kcv 08D7B5
check "wrong KCV: exit 2" [ "$rc" -eq 2 ]
check "wrong KCV: the error names the mismatch" has badkcv "key check value mismatch"
check "wrong KCV: nothing stored" [ "$(key_labels)" = "$before" ]

secret_file "1111111111111111222222222222222" "$K_A2"
run odd key import --label cvk3 --type des2 --usage cvk
check "odd-length hex: exit 2" [ "$rc" -eq 2 ]
check "odd-length hex: named" has odd "component 1 has an odd number of hex digits"
secret_file "$K_A1" "1032547698BADCFEDCFE98BA5476103Z"
run nonhex key import --label cvk3 --type des2 --usage cvk
check "non-hex: exit 2" [ "$rc" -eq 2 ]
check "non-hex: named" has nonhex "component 2 is not hex: character 32"
secret_file "$K_A1" "0123456789ABCDEF"
run shortc key import --label cvk3 --type des2 --usage cvk
check "wrong component length: exit 2, named" has shortc "component 2 has 8 bytes; type des2 needs 16"
secret_file "$HMAC_K" "${HMAC_K}00"
run mism key import --label h3 --type hmac --usage token
check "mismatched component lengths: exit 2, named" bash -c "[ $rc -eq 2 ] && grep -q 'components differ in length' '$OUT/mism.err'"
check "bad components: nothing stored" [ "$(key_labels)" = "$before" ]

secret_file "$K_A1"
run exists key import --label cvk1 --type des2 --usage cvk
check "an existing label is refused (exit 2)" bash -c "[ $rc -eq 2 ] && grep -q \"'cvk1' exists already\" '$OUT/exists.err'"

secret_file "$AES_K"
run aes key import --label zpk1 --type aes128 --usage pin --kcv "$AES_KCV"
check "import aes128 with the KCV from openssl (AES-CMAC, $AES_KCV)" [ "$rc" -eq 0 ]
secret_file "$HMAC_K"
run hmac key import --label pantok --type hmac --usage token --kcv "$HMAC_KCV"
check "import hmac with the KCV from openssl (HMAC-SHA256, $HMAC_KCV)" [ "$rc" -eq 0 ]
secret_file "$AES_K"
run kek key import --label kek1 --type aes128 --usage kek --kcv "$AES_KCV"
check "import an AES KEK (wrap/unwrap only) with its KCV" [ "$rc" -eq 0 ]

# the user PIN on stdin (first line) when KORTVAGT_PIN is not set
SAVED_PIN=$KORTVAGT_PIN
(
  unset KORTVAGT_PIN
  printf '%s\n%s\n' "$SAVED_PIN" "$AES_K" |
    "$KORTVAGT" key import --label zpk2 --type aes128 --usage pin >"$OUT/pinstdin.out" 2>&1
  echo "rc=$?" >>"$OUT/pinstdin.out"
)
check "user PIN on stdin line 1, then the component" grep -q "^rc=0" "$OUT/pinstdin.out"
cat "$OUT/pinstdin.out" >>"$ALL_OUTPUT"

# --- generate ----------------------------------------------------------------
run gen1 key generate --label gcvk --type des2 --usage cvk
check "generate des2 cvk with companion" bash -c "[ $rc -eq 0 ] && grep -q \"A||A companion 'gcvk.aa'\" '$OUT/gen1.out'"
run gen2 key generate --label gimk --type des2 --usage imk
check "generate des2 imk" [ "$rc" -eq 0 ]
run gen3 key generate --label gev --type hmac --usage evidence
check "generate hmac evidence key" [ "$rc" -eq 0 ]
run gen4 key generate --label gkek --type des3 --usage kek
check "generate des3 kek" [ "$rc" -eq 0 ]

kill "$PS_PID" 2>/dev/null
wait "$PS_PID" 2>/dev/null

# --- list: attributes and KCVs -----------------------------------------------
run list key list --json
check "key list --json" python3 - "$OUT/list.out" "$AES_KCV" "$HMAC_KCV" <<'PY'
import json, sys
keys = {k["label"]: k for k in json.load(open(sys.argv[1]))}
want_kcv = {"cvk1": "08D7B4", "pvk1": "08D7B4", "zpk1": sys.argv[2], "pantok": sys.argv[3]}
use = {"cvk1": ["encrypt"], "cvk1.aa": ["encrypt"], "pvk1": ["encrypt"],
       "zpk1": ["encrypt", "decrypt"], "pantok": ["sign", "verify"], "kek1": ["wrap", "unwrap"],
       "gcvk": ["encrypt"], "gimk": ["derive"], "gev": ["sign", "verify"],
       "gkek": ["wrap", "unwrap"]}
bad = []
for label, k in keys.items():
    if not (k["sensitive"] and not k["extractable"] and k["private"] and k["token"]):
        bad.append(label + ": attributes")
    if label in want_kcv and k["kcv"] != want_kcv[label]:
        bad.append(label + ": kcv " + k["kcv"])
    if label in use and sorted(k["usage"]) != sorted(use[label]):
        bad.append(label + ": usage " + ",".join(k["usage"]))
for g in ("gcvk", "gcvk.aa", "gimk", "gev", "gkek"):
    if not (keys[g]["never_extractable"] and keys[g]["always_sensitive"]):
        bad.append(g + ": generated key not always-sensitive/never-extractable")
if bad:
    print("\n".join(bad)); sys.exit(1)
PY

# --- no key value can be read -------------------------------------------------
for label in $(key_labels); do
  run probe key probe-value --label "$label"
  check "CKA_VALUE of '$label' is refused: CKR_ATTRIBUTE_SENSITIVE" \
    bash -c "[ $rc -eq 0 ] && grep -q 'CKA_VALUE -> CKR_ATTRIBUTE_SENSITIVE' '$OUT/probe.out'"
done

# --- errors -------------------------------------------------------------------
KORTVAGT_PIN=wrong-pin-1 run wrongpin key list
check "wrong token PIN: exit 5" [ "$rc" -eq 5 ]
check "wrong token PIN: clear error" has wrongpin "token login failed: CKR_PIN_INCORRECT (wrong user PIN)"
KORTVAGT_PKCS11_MODULE=/nonexistent/libpkcs11-missing.so run nomod key list
check "missing module: exit 5, names the path" \
  bash -c "[ $rc -eq 5 ] && grep -q 'cannot load PKCS#11 module /nonexistent/libpkcs11-missing.so' '$OUT/nomod.err'"
run nokey key delete --label no-such-key
check "unknown key label: exit 5, named" bash -c "[ $rc -eq 5 ] && grep -q \"key 'no-such-key' not found\" '$OUT/nokey.err'"
run notoken key list --token no-such-token
check "unknown token: named" has notoken "token 'no-such-token' not found"
run badtype key import --label x --type des1
check "unknown type: exit 2" [ "$rc" -eq 2 ]
run badusage key import --label x --type hmac --usage cvk
check "type/usage mismatch: exit 2, named" has badusage "cannot have usage cvk"
run argcomp key import --label x --type des2 "$K_A1"
check "a component on the command line is refused (exit 2)" [ "$rc" -eq 2 ]
for c in "hsm --help" "key --help" "hsm init --help" "key import --help"; do
  # shellcheck disable=SC2086
  run help $c
  check "$c exits 0" [ "$rc" -eq 0 ]
done

# --- delete -------------------------------------------------------------------
run delcomp key delete --label cvk1.aa
check "deleting a companion alone is refused" bash -c "[ $rc -eq 2 ] && grep -q 'companion of' '$OUT/delcomp.err'"
run del key delete --label cvk1
check "delete removes the key and its companion" \
  bash -c "[ $rc -eq 0 ] && ! (\"$KORTVAGT\" key list | grep -q '^cvk1')"

# --- secrets never in arguments, output or token files ------------------------
declare -A secrets=([component K_A1]=$K_A1 [component K_A2]=$K_A2 [AES component]=$AES_K
  [HMAC component]=$HMAC_K [user PIN]=$KORTVAGT_PIN [SO PIN]=$KORTVAGT_SO_PIN
  [stdin SO PIN]=so-pin-stdin-91 [stdin user PIN]=user-pin-stdin-92)
leak=0
for name in "${!secrets[@]}"; do
  s=${secrets[$name]}
  if grep -qiF -- "$s" "$PS_LOG"; then fail "the $name appears in process arguments"; leak=1; fi
  if grep -qiF -- "$s" "$ALL_OUTPUT"; then fail "the $name appears in kortvagt's output"; leak=1; fi
done
check "the ps capture saw the imports run" grep -q "key import --label cvk1" "$PS_LOG"
[ $leak -eq 0 ] && pass "no PIN or component in process arguments or output"
raw=$(printf '\x01\x23\x45\x67\x89\xab\xcd\xef\xfe\xdc\xba\x98\x76\x54\x32\x10')
if LC_ALL=C grep -rqaF -- "$raw" "$KV_HSM_DIR/tokens" "$KV_HSM_DIR/t2/tokens"; then
  fail "the clear key value appears in the token files"
else
  pass "the clear key value is not in the token files"
fi

[ -n "${KV_KEEP:-}" ] && cp -r "$KV_HSM_DIR" "$KV_KEEP" # debugging: keep the run
if [ "$fails" -gt 0 ]; then
  echo "test_hsm_keys: $fails FAILED"
  exit 1
fi
echo "test_hsm_keys: all passed"
exit 0
