#!/bin/bash
# Drives `kortvagt liability assess` with the case files of tests/data/liability:
# the result JSON of src/RULES.md §2 (checked with python3), the Danish and English
# statements, the contract errors (exit 2, naming the field) and the SVG
# timeline (well-formed XML with one mark per transaction). Needs no lab.
set -u
K=${KORTVAGT:?KORTVAGT must name the kortvagt binary}
SRC=${KV_SOURCE_DIR:?}
DATA=$SRC/tests/data/liability
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
failures=0
checks=0
# No evidence store unless a check sets one up; never touch ./kortvagt.db.
export KORTVAGT_STORE="sqlite:$TMP/no-store.db"

pass() { checks=$((checks + 1)); echo "PASS: $*"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*"; }

# expect_rc WANT NAME CMD... : run CMD (stdout/stderr to $TMP/out, $TMP/err), compare the exit code
expect_rc() {
  local want=$1 name=$2 rc=0
  shift 2
  "$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
  if [ "$rc" -eq "$want" ]; then pass "$name (exit $rc)"; else
    fail "$name: exit $rc, want $want"; sed 's/^/    /' "$TMP/err" | head -5; fi
}

# expect_grep NAME PATTERN FILE : FILE contains PATTERN (fixed string)
expect_grep() {
  if grep -qF -- "$2" "$3"; then pass "$1"; else fail "$1: '$2' not in $(basename "$3")"; sed 's/^/    /' "$3" | head -20; fi
}

# check_json NAME FILE PYTHON-EXPR-ON-r : the JSON in FILE satisfies the assertions
check_json() {
  local name=$1 file=$2 code=$3
  if python3 - "$file" "$code" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]), object_pairs_hook=lambda kv: dict(kv))
raw = open(sys.argv[1]).read()
def tx(i):
    return next(t for t in r["transactions"] if t["id"] == i)
def row(i):
    t = tx(i)
    return (t["class"], t["cardholder"], t["issuer"], t["rule"], t["objection"])
exec(sys.argv[2])
PY
  then pass "$name"; else fail "$name"; sed 's/^/    /' "$file" | head -40; fi
}

# check_svg NAME FILE N : well-formed XML, N marks (circles of class "mark ...")
check_svg() {
  local name=$1 file=$2 n=$3
  if python3 - "$file" "$n" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
ns = "{http://www.w3.org/2000/svg}"
assert root.tag == ns + "svg", root.tag
marks = [c for c in root.iter(ns + "circle") if c.get("class", "").split()[:1] == ["mark"]]
assert len(marks) == int(sys.argv[2]), (len(marks), sys.argv[2])
ids = [c.get("data-id") for c in marks]
assert len(set(ids)) == len(ids), ids
events = [g.get("class") for g in root.iter(ns + "g") if (g.get("class") or "").startswith("event")]
assert "event discovered" in events and "event objection" in events, events
totals = [t for t in root.iter(ns + "text") if t.get("class") == "totals"]
assert len(totals) == 1, totals
legend = [g for g in root.iter(ns + "g") if g.get("class") == "legend"]
assert len(legend) == len({c.get("class").split()[1] for c in marks}), (len(legend), marks)
PY
  then pass "$name"; else fail "$name"; fi
}

# --- usage ---
expect_rc 0 "liability --help" "$K" liability --help
expect_grep "help names the command" "liability assess FILE" "$TMP/out"
expect_rc 0 "liability assess --help" "$K" liability assess --help
expect_rc 2 "liability without a command" "$K" liability
expect_rc 2 "liability unknown command" "$K" liability judge "$DATA/rules_example.json"
expect_rc 2 "assess without a file" "$K" liability assess
expect_rc 2 "assess with two files" "$K" liability assess "$DATA/rules_example.json" "$DATA/rules_example.json"
expect_rc 2 "unknown option" "$K" liability assess "$DATA/rules_example.json" --verbose
expect_rc 2 "bad --lang" "$K" liability assess "$DATA/rules_example.json" --lang de
expect_grep "bad --lang is named" "--lang must be da or en" "$TMP/err"
expect_rc 2 "--svg to stdout refused" "$K" liability assess "$DATA/rules_example.json" --svg -
expect_rc 8 "missing case file" "$K" liability assess "$TMP/nonexistent.json"

# --- the src/RULES.md §2 example, exactly ---
expect_rc 0 "rules example --json" "$K" liability assess "$DATA/rules_example.json" --json
cp "$TMP/out" "$TMP/rules.json"
check_json "rules example result" "$TMP/rules.json" '
want = {"currency": "DKK", "total": 300000, "cardholder": 37500, "issuer": 262500,
        "objection": "timely",
        "transactions": [{"id": "t1", "class": "credential_used", "cardholder": 37500,
                          "issuer": 262500, "rule": "§ 100 stk. 3", "objection": "timely"}]}
assert r == want, r
assert list(r) == list(want), list(r)
assert list(r["transactions"][0]) == list(want["transactions"][0])
'
expect_rc 0 "case from stdin" bash -c "\"$K\" liability assess - --json < \"$DATA/rules_example.json\""
cmp -s "$TMP/out" "$TMP/rules.json" && pass "stdin gives the same result" || fail "stdin result differs"

# --- two cards with one PIN blocked together, a wallet card, unproven evidence ---
# Hand-worked: visa and mastercard share one 375 kr cap (same credential, same blocked_at), taken
# in time order: shop-1 (22:40, 250 kr) takes 250 kr, atm-1 (23:10, 2,000 kr) the remaining 125 kr.
# tap-1 (contactless, no PIN) and web-1 (SMS code alone) are unauthenticated; atm-2 is after the
# block request; wallet-1 is another credential: its own cap, 375 of 500 kr. claimed-pin names an
# evidence record but no store is available: not proven.
expect_rc 0 "two cards --json" "$K" liability assess "$DATA/incident_two_cards.json" --json --svg "$TMP/two.svg"
cp "$TMP/out" "$TMP/two.json"
expect_grep "unproven evidence is reported" "names evidence record ev-000042" "$TMP/err"
expect_grep "missing store is named" "no evidence store at $TMP/no-store.db" "$TMP/err"
[ -e "$TMP/no-store.db" ] && fail "a missing store was created" || pass "a missing store is not created"
check_json "two cards result" "$TMP/two.json" '
assert row("shop-1") == ("credential_used", 25000, 0, "§ 100 stk. 3", "timely"), row("shop-1")
assert row("atm-1") == ("credential_used", 12500, 187500, "§ 100 stk. 3", "timely"), row("atm-1")
assert row("tap-1") == ("unauthenticated", 0, 29900, "§ 100 stk. 1", "timely")
assert row("web-1") == ("unauthenticated", 0, 149500, "§ 100 stk. 1", "timely")
assert row("atm-2") == ("after_notification", 0, 200000, "§ 100 stk. 6 nr. 1", "timely")
assert row("wallet-1") == ("credential_used", 37500, 12500, "§ 100 stk. 3", "timely")
assert row("claimed-pin") == ("unauthenticated", 0, 80000, "§ 100 stk. 1", "timely")
assert (r["total"], r["cardholder"], r["issuer"], r["objection"]) == (734400, 75000, 659400, "timely"), r
assert [t["id"] for t in r["transactions"]] == ["atm-1", "shop-1", "tap-1", "web-1", "atm-2", "wallet-1", "claimed-pin"]
'
check_svg "two cards SVG: well-formed, 7 marks" "$TMP/two.svg" 7
if grep -q "4761739001010119" "$TMP/two.svg"; then fail "SVG shows a full PAN"; else pass "SVG masks the PAN"; fi

expect_rc 0 "two cards, Danish text (default)" "$K" liability assess "$DATA/incident_two_cards.json"
expect_grep "Danish totals" "I alt 7.344,00 kr: kortholder 750,00 kr, udsteder 6.594,00 kr" "$TMP/out"
expect_grep "Danish statement names the rule" "§ 100 stk. 6 nr. 1" "$TMP/out"
expect_grep "PAN masked in text" "476173******0119" "$TMP/out"
if grep -q "4761739001010119" "$TMP/out"; then fail "text shows a full PAN"; else pass "text hides the full PAN"; fi
expect_rc 0 "two cards, English text" "$K" liability assess "$DATA/incident_two_cards.json" --lang en
expect_grep "English totals" "Total 7,344.00 kr: cardholder 750.00 kr, issuer 6,594.00 kr" "$TMP/out"
expect_grep "English evidence note" "no evidence store available: not proven" "$TMP/out"

# --- objection: barred after 13 months, after 8 weeks for an unknown final amount, late ---
# old: debited 2025-02-10T12:00Z + 13 months = 2026-03-10T12:00Z < objection 2026-03-20: barred.
# hotel: final amount unknown, debited 2026-01-12T09:00Z + 8 weeks = 2026-03-09T09:00Z: barred.
# atm: late notification (8,000 kr cap) on 12,000 kr; objection 19 days after discovery: late.
expect_rc 0 "late and barred --json" "$K" liability assess "$DATA/late_and_barred.json" --json --svg "$TMP/late.svg"
cp "$TMP/out" "$TMP/late.json"
check_json "late and barred result" "$TMP/late.json" '
assert row("old") == ("barred", 100000, 0, "§ 97", "barred"), row("old")
assert row("hotel") == ("barred", 450000, 0, "PSD2 art. 77", "barred"), row("hotel")
assert row("atm") == ("negligent", 800000, 400000, "§ 100 stk. 4", "late"), row("atm")
assert (r["total"], r["cardholder"], r["issuer"], r["objection"]) == (1750000, 1350000, 400000, "barred"), r
'
check_svg "late and barred SVG: well-formed, 3 marks" "$TMP/late.svg" 3

# --- contract errors name the field, exit 2 ---
expect_rc 2 "unknown field" "$K" liability assess "$DATA/bad_unknown_field.json"
expect_grep "unknown field named" 'transactions[0]: unknown field "merchant"' "$TMP/err"
expect_rc 2 "missing required field" "$K" liability assess "$DATA/bad_missing_field.json" --json
expect_grep "missing field named" "transactions[0].verification.method: missing required field" "$TMP/err"
printf '{"currency":"DKK"' >"$TMP/trunc.json"
expect_rc 2 "truncated JSON" "$K" liability assess "$TMP/trunc.json"
expect_grep "syntax error located" "not valid JSON" "$TMP/err"

# --- XML escaping in the SVG ---
cat >"$TMP/escape.json" <<'JSON'
{"currency": "DKK", "discovered_at": "2026-03-01T10:00:00Z", "objection_at": "2026-03-02T09:00:00Z",
 "cards": [{"id": "<card & \"co\">", "credential": "pin'1", "blocked_at": "2026-03-01T11:00:00Z"}],
 "transactions": [{"id": "t<1>&", "card": "<card & \"co\">", "at": "2026-02-28T20:00:00Z",
   "debited_at": "2026-02-28T20:00:00Z", "amount": 0, "channel": "contact",
   "verification": {"method": "offline_pin", "proven": true}}]}
JSON
expect_rc 0 "hostile names" "$K" liability assess "$TMP/escape.json" --svg "$TMP/escape.svg"
check_svg "hostile names: SVG well-formed, 1 mark" "$TMP/escape.svg" 1

# --- evidence records in a real store, MACs checked in a SoftHSM2 token ---
# A throwaway token with an HMAC key "evidence" (pkcs11-tool), an SQLite store whose evidence
# chain holds record 1 (MAC made in the token: proves an online PIN) and record 2 (correct hash
# and link, wrong MAC). t1 (claims nothing) is proven by record 1: 375 kr; t2 (claims a proven
# offline PIN) names the broken record 2: not proven, 0 kr; t3 names no such record: 0 kr.
MODULE=${KORTVAGT_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
if command -v softhsm2-util >/dev/null && command -v pkcs11-tool >/dev/null && [ -r "$MODULE" ]; then
  mkdir -p "$TMP/tokens"
  printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$TMP" >"$TMP/softhsm2.conf"
  export SOFTHSM2_CONF="$TMP/softhsm2.conf" KORTVAGT_PKCS11_MODULE="$MODULE" KORTVAGT_TOKEN=liability-test
  export KORTVAGT_PIN=4711
  softhsm2-util --init-token --free --label liability-test --pin 4711 --so-pin 47114711 >/dev/null 2>&1
  pkcs11-tool --module "$MODULE" --token-label liability-test --login --pin 4711 --keygen \
    --key-type GENERIC:32 --label evidence --usage-sign >/dev/null 2>&1
  cat >"$TMP/evcase.json" <<'JSON'
{"currency": "DKK", "discovered_at": "2026-03-01T10:00:00Z", "objection_at": "2026-03-02T09:00:00Z",
 "cards": [{"id": "A", "credential": "pin-1", "blocked_at": "2026-03-01T11:00:00Z"}],
 "transactions": [
  {"id": "t1", "card": "A", "at": "2026-02-28T20:00:00Z", "debited_at": "2026-02-28T20:00:00Z",
   "amount": 300000, "channel": "atm", "evidence": "1", "verification": {"method": "none"}},
  {"id": "t2", "card": "A", "at": "2026-02-28T20:30:00Z", "debited_at": "2026-02-28T20:30:00Z",
   "amount": 300000, "channel": "atm", "evidence": "2",
   "verification": {"method": "offline_pin", "proven": true}},
  {"id": "t3", "card": "A", "at": "2026-02-28T21:00:00Z", "debited_at": "2026-02-28T21:00:00Z",
   "amount": 300000, "channel": "atm", "evidence": "3",
   "verification": {"method": "online_pin", "proven": true}}]}
JSON
  : >"$TMP/ev.db"
  # the first run creates the store's schema; nothing is recorded yet, nothing is proven
  expect_rc 0 "evidence: empty store" env KORTVAGT_STORE="sqlite:$TMP/ev.db" "$K" liability assess "$TMP/evcase.json" --json
  cp "$TMP/out" "$TMP/ev0.json"
  check_json "evidence: empty store proves nothing" "$TMP/ev0.json" 'assert r["cardholder"] == 0, r'
  if python3 - "$TMP" "$MODULE" <<'PY'
import hashlib, json, sqlite3, subprocess, sys
tmp, module = sys.argv[1], sys.argv[2]
def body(n, prev):
    rec = {"id": n, "prev": prev, "type": "authorization", "time": "2026-02-28T20:00:00Z",
           "recorded": "2026-02-28T20:00:01Z",
           "request": {"channel": "atm", "amount": 300000, "currency": "DKK"},
           "verification": {"method": "online_pin", "factors": ["pin_online"], "proven": True,
                            "sca_required": True, "per_transaction_code": False},
           "response": {"decision": "approve"}}
    return json.dumps(rec, separators=(",", ":")).encode()
b1 = body(1, "0" * 64)
b2 = body(2, hashlib.sha256(b1).hexdigest())
open(tmp + "/b1", "wb").write(b1)
subprocess.run(["pkcs11-tool", "--module", module, "--token-label", "liability-test", "--login",
                "--pin", "4711", "--sign", "-m", "SHA256-HMAC", "--label", "evidence",
                "-i", tmp + "/b1", "-o", tmp + "/m1"], check=True, capture_output=True)
m1 = open(tmp + "/m1", "rb").read()
assert len(m1) == 32, len(m1)
db = sqlite3.connect(tmp + "/ev.db")
db.execute("INSERT INTO evidence(id, t, body, hash, mac) VALUES (?, ?, ?, ?, ?)",
           (1, 1772308800, b1.decode(), hashlib.sha256(b1).digest(), m1))
db.execute("INSERT INTO evidence(id, t, body, hash, mac) VALUES (?, ?, ?, ?, ?)",
           (2, 1772310600, b2.decode(), hashlib.sha256(b2).digest(), bytes(32)))
db.commit()
PY
  then
    pass "evidence: records written"
    expect_rc 0 "evidence: assess with the store" env KORTVAGT_STORE="sqlite:$TMP/ev.db" "$K" liability assess "$TMP/evcase.json" --json
    cp "$TMP/out" "$TMP/ev.json"
    check_json "evidence: record 1 proves, record 2 (broken MAC) and 3 (missing) do not" "$TMP/ev.json" '
assert row("t1") == ("credential_used", 37500, 262500, "§ 100 stk. 3", "timely"), row("t1")
assert row("t2") == ("unauthenticated", 0, 300000, "§ 100 stk. 1", "timely"), row("t2")
assert row("t3") == ("unauthenticated", 0, 300000, "§ 100 stk. 1", "timely"), row("t3")
'
    expect_rc 0 "evidence: English statement" env KORTVAGT_STORE="sqlite:$TMP/ev.db" "$K" liability assess "$TMP/evcase.json" --lang en
    expect_grep "broken record is reported" "Evidence 2: record's chain or MAC is broken" "$TMP/out"
    expect_grep "good record is reported" "Evidence 1: record verified" "$TMP/out"
  else
    fail "evidence: could not write records into the store"
  fi
  # the store exists but the HSM cannot be opened: an error, not a silent "not proven"
  expect_rc 5 "evidence: no HSM module" env KORTVAGT_STORE="sqlite:$TMP/ev.db" KORTVAGT_PKCS11_MODULE="$TMP/no-such-module.so" "$K" liability assess "$TMP/evcase.json"
  expect_grep "HSM failure is named" "the evidence MACs need the HSM token" "$TMP/err"
else
  echo "SKIP: evidence with SoftHSM2 (softhsm2-util, pkcs11-tool or $MODULE missing)"
fi

echo "$checks checks, $failures failures"
[ "$failures" -eq 0 ]
