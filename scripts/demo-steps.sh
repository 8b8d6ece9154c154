#!/usr/bin/env bash
# What the demo does inside the lab (scripts/demo.sh runs it with the lab's
# environment): read the virtual card, then personalize a card with the bench
# (keys from the lab's HSM, TEST values), insert it and run a verified
# chip+PIN transaction and a contactless one.
set -euo pipefail
K=${KORTVAGT_BIN:?}
KV_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TPL=$KV_REPO/tests/data/templates
CAPK=$KV_REPO/tests/data/capk/capk.json
OUT=${KORTVAGT_LAB:?}/demo
mkdir -p "$OUT"
echo "== readers"
"$K" readers
echo
echo "== the card in '$KORTVAGT_READER'"
"$K" card read --reader "$KORTVAGT_READER"
echo
echo "== the same read as JSON"
"$K" card read --reader "$KORTVAGT_READER" --json
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
echo 1234 | "$K" card transact --amount 12345 --currency DKK --pin-stdin --capk "$CAPK"
echo
echo "== the same as JSON (the verification result)"
echo 1234 | "$K" card transact --amount 12345 --currency DKK --pin-stdin --capk "$CAPK" --json
echo
echo "== contactless, 200.00 DKK (below the CVM limit: no CVM, CVC3 checked in the HSM)"
bash "$KV_REPO/scripts/lab.sh" insert "$OUT/mc_cl.json"
"$K" card transact --amount 20000 --currency DKK --contactless --capk "$CAPK"
"$K" card transact --amount 20000 --currency DKK --contactless --capk "$CAPK" --json
echo
echo "== the evidence chain: every decision above, hash-linked and MAC'd in the HSM"
"$K" evidence verify
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
"$K" liability assess "$CASE" --lang en
"$K" liability assess "$CASE" --json
