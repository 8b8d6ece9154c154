#!/usr/bin/env bash
# What the demo does inside the lab (scripts/demo.sh runs it with the lab's
# environment): read the virtual card, then personalize a card with the bench
# (keys from the lab's HSM, TEST values), insert it and run a verified
# chip+PIN transaction and a contactless one, verify the evidence chain and
# settle a dispute; end with a summary computed from what the steps printed
# (each step's output is kept in $KORTVAGT_LAB/demo/NAME.out).
set -euo pipefail
K=${KORTVAGT_BIN:?}
KV_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TPL=$KV_REPO/tests/data/templates
CAPK=$KV_REPO/tests/data/capk/capk.json
OUT=${KORTVAGT_LAB:?}/demo
rm -rf "$OUT"
mkdir -p "$OUT"
# keep NAME CMD...: run CMD, show its output and keep it in $OUT/NAME.out
keep() {
  local name=$1
  shift
  "$@" | tee "$OUT/$name.out"
}
echo "== readers"
"$K" readers
echo
echo "== the card in '$KORTVAGT_READER'"
keep read "$K" card read --reader "$KORTVAGT_READER"
echo
echo "== the same read as JSON"
keep read_json "$K" card read --reader "$KORTVAGT_READER" --json
echo
echo "== the HSM token"
"$K" hsm info
echo
echo "== personalize a CDA card (enciphered PIN) and a contactless card"
"$K" perso --issuer "$TPL/issuer_lab.json" --card "$TPL/card_visa_cda.json" --out "$OUT/visa_cda.json"
"$K" perso --issuer "$TPL/issuer_lab.json" --card "$TPL/card_mc_contactless.json" --out "$OUT/mc_cl.json"
"$K" perso check --profile "$OUT/visa_cda.json" --capk "$CAPK"
echo
echo "== chip + PIN (lab PIN 1234 from stdin), 123.45 DKK"
bash "$KV_REPO/scripts/lab.sh" insert "$OUT/visa_cda.json"
echo 1234 | keep txn_chip "$K" card transact --amount 12345 --currency DKK --pin-stdin --capk "$CAPK"
echo
echo "== the same as JSON (the verification result)"
echo 1234 | keep txn_chip_json "$K" card transact --amount 12345 --currency DKK --pin-stdin --capk "$CAPK" --json
echo
echo "== contactless, 200.00 DKK (below the CVM limit: no CVM, CVC3 checked in the HSM)"
bash "$KV_REPO/scripts/lab.sh" insert "$OUT/mc_cl.json"
keep txn_cl "$K" card transact --amount 20000 --currency DKK --contactless --capk "$CAPK"
keep txn_cl_json "$K" card transact --amount 20000 --currency DKK --contactless --capk "$CAPK" --json
echo
echo "== the evidence chain: every decision above, hash-linked and MAC'd in the HSM"
keep evidence "$K" evidence verify
echo
echo "== a dispute: the cardholder objects to the chip+PIN payment (evidence 1) and to an"
echo "   unauthenticated contactless payment; betalingsloven § 100 as src/RULES.md §2 states it"
CASE=$OUT/dispute.json
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
BEFORE=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)
cat >"$CASE" <<JSON
{
  "currency": "DKK",
  "discovered_at": "$NOW",
  "notified_at": "$NOW",
  "objection_at": "$NOW",
  "cards": [{"id": "A", "credential": "pin-1", "blocked_at": "$NOW"}],
  "transactions": [
    {"id": "chip-pin", "card": "A", "at": "$BEFORE", "debited_at": "$BEFORE", "amount": 12345,
     "channel": "contact", "verification": {"method": "offline_pin"}, "evidence": "1"},
    {"id": "tap", "card": "A", "at": "$BEFORE", "debited_at": "$BEFORE", "amount": 20000,
     "channel": "contactless", "verification": {"method": "none"}}
  ]
}
JSON
keep dispute "$K" liability assess "$CASE" --lang en
keep dispute_json "$K" liability assess "$CASE" --json
echo
echo "== summary (from the outputs above, kept in $OUT)"
python3 - "$OUT" <<'PY'
import json, os, re, sys
out = sys.argv[1]


def text(name):
    with open(os.path.join(out, name + ".out")) as f:
        return f.read()


def human_field(name, label):
    m = re.search(r"^" + re.escape(label) + r"\s*(.*)$", text(name), re.M)
    return m.group(1).strip() if m else "?"


def money(minor, ccy):
    return "%d.%02d %s" % (minor // 100, minor % 100, ccy)


# cards: the lab's card (card read) and the personalized cards the
# transactions ran on (the lab card and the CDA card may share a test PAN)
rd = json.loads(text("read_json"))
cards = [(rd["pan"], "%s, read (%s, %d APDUs)" % (rd.get("label") or "?", rd["selection"], rd["apdu_count"]))]
txns = []
for name, kind in (("txn_chip", "chip+PIN"), ("txn_cl", "contactless")):
    h = (human_field(name, "PAN:"), human_field(name, "Decision:").split()[0].lower())
    j = json.loads(text(name + "_json"))
    for pan in sorted({h[0], j["pan"]}):
        cards.append((pan, "personalized, %s transactions" % kind))
    for decision in (h[1], j["decision"]):
        txns.append((kind, decision, j))
print("cards read:        %d" % len(cards))
for pan, what in cards:
    print("                   %s  %s" % (pan, what))
approved = sum(1 for t in txns if t[1] == "approved")
print("transactions:      %d run, %d approved" % (len(txns), approved))
seen = set()
for kind, _, j in txns:
    if kind in seen:
        continue
    seen.add(kind)
    facts = ["CVM %s %s" % (j["cvm"]["method"], j["cvm"]["result"]),
             "ODA %s %s" % (j["oda"]["method"], j["oda"]["result"]),
             "ARQC %s" % ("verified" if j["arqc"]["verified"] else "NOT verified")]
    if "cvc3" in j:
        facts.append("CVC3 %s" % ("verified" if j["cvc3"]["verified"] else "NOT verified"))
    facts.append("card %s" % j["card_decision"])
    print("                   %s, %s: %s" % (kind, money(j["amount"], j["currency"]), ", ".join(facts)))
m = re.search(r"evidence chain (intact|broken)[^0-9]*([0-9]+) records", text("evidence"))
print("evidence records:  %s" % ("%s, chain %s (hash links and HSM MACs checked)" % (m.group(2), m.group(1)) if m else "?"))
d = json.loads(text("dispute_json"))
ccy = d["currency"]
print("dispute:           %s disputed; the cardholder pays %s, the issuer %s; objection %s"
      % (money(d["total"], ccy), money(d["cardholder"], ccy), money(d["issuer"], ccy), d["objection"]))
for t in d["transactions"]:
    print("                   %s: %s, cardholder %s, issuer %s" % (t["id"], t["class"], money(t["cardholder"], ccy),
                                                              money(t["issuer"], ccy)))
PY
