#!/usr/bin/env bash
# The virtual card's test-lab faults (tests/data/README.md "faults") against
# `kortvagt card transact`, through pcscd + vpcd + the card + SoftHSM2: each
# fault kind with the terminal's expected outcome (EMV Books 2-4). Two
# personalities on one card (emv_cards.sh): v10 (Visa CVN 10, CDA) and c5
# (CCD CVN 5, DDA); a fault matched by P1 hits one of them only (the 1st
# GENERATE AC of a CDA card is 80 AE 90, of a DDA card 80 AE 80; the 2nd asks
# for a TC with CDA, 50, or without, 40). Faults of the records and of GPO:
# test_emv_faults_records.sh.
# shellcheck disable=SC1091
. "$(dirname "$0")/lab_common.sh"
. "$(dirname "$0")/emv_cards.sh"
trap 'rm -rf "$W"' EXIT

emv_perso v10 c5
emv_multi "$W/base.json" v10 c5
# the fault cards: the two-application card with these faults (one python for all)
FA='[{"ins": "AE", "p1": "90", "corrupt": "sdad"}, {"ins": "AE", "p1": "80", "corrupt": "ac"}]'
FB='[{"ins": "AE", "p1": "50", "corrupt": "sdad"}, {"ins": "AE", "p1": "80", "atc_skew": 1}]'
FC='[{"ins": "82", "sw": "6300"}, {"ins": "AE", "p1": "40", "tear": "after"}]'
python3 - "$W" fa "$FA" fb "$FB" fc "$FC" <<'PY'
import json, sys
w, a = sys.argv[1], sys.argv[2:]
for name, faults in zip(a[0::2], a[1::2]):
    d = json.load(open(f"{w}/base.json"))
    d["faults"] = json.loads(faults)
    json.dump(d, open(f"{w}/{name}.json", "w"))
PY
card_with() { lab_insert "$W/$1.json" || fail "insert $1"; }

# A: a corrupted SDAD on the 1st GENERATE AC (CDA) and a corrupted AC (DDA card)
card_with fa
echo 1234 | txn 1 fa_v10 v10 --amount 1000 --pin-stdin
# Book 4: an ARQC whose CDA signature fails is declined offline; the card gets its AAC
fields fa_v10 "(d['outcome'], d['oda']['result'], int(d['tvr'][0:2], 16) & 0x04)" \
  "('declined_offline', 'failed', 4)"
fields fa_v10 "(d['first_ac'], d['second_ac'], d['arc'], d['reason'])" "('arqc', 'aac', 'Z1', 'CDA failed')"
echo 1234 | txn 1 fa_c5 c5 --amount 1000 --pin-stdin
fields fa_c5 "(d['outcome'], d['arqc']['verified'], d['arc'], d['reason'])" \
  "('declined_online', False, '05', 'ARQC not verified')"

# B: a corrupted SDAD on the 2nd GENERATE AC (TC with CDA); the ATC of the DDA card skewed
card_with fb
echo 1234 | txn 1 fb_v10 v10 --amount 1000 --pin-stdin
fields fb_v10 "(d['outcome'], d['cda_second'], d['second_ac'], int(d['tvr'][0:2], 16) & 0x04)" \
  "('declined_online', 'failed', 'tc', 4)"
echo 1234 | txn 1 fb_c5 c5 --amount 1000 --pin-stdin
fields fb_c5 "(d['outcome'], d['arqc']['verified'])" "('declined_online', False)"

# C: EXTERNAL AUTHENTICATE refused (6300); the CA revocation list; then the card torn away
# after the 2nd GENERATE AC
card_with fc
echo 1234 | txn_any fc_v10 v10 --amount 1000 --pin-stdin
fields fc_v10 "(d['issuer_authentication'], int(d['tvr'][8:10], 16) & 0x40, d['arpc']['via'])" \
  "('failed', 64, 'external_authenticate')"
fields fc_v10 "d['outcome'] in ('approved_online', 'declined_online')" True
# the CA revocation list (Book 2 §5.3 step 9): the c5 card's issuer certificate listed ->
# ODA fails (DDA failed), the issuer declines (an AAC: no tear). Its serial: the issuer
# certificate opened with the CA key
python3 - "$W/base.json" "$CAPK" "$W/revoked.txt" <<'PY'
import json, sys
d, ca = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
app = [a for a in d["applications"] if a["aid"].startswith("A000000121")][0]
tags = {}
for r in app["records"]:
    b = bytes.fromhex(r.get("hex", ""))
    i = 2 if b[1] < 0x80 else 2 + (b[1] & 0x7F)
    while i < len(b):
        t = b[i]; i += 1
        if t & 0x1F == 0x1F:
            t = t << 8 | b[i]; i += 1
        n = b[i]; i += 1
        if n & 0x80:
            k = n & 0x7F; n = int.from_bytes(b[i:i + k], "big"); i += k
        tags[t] = b[i:i + n]; i += n
k = [k for k in ca["keys"] if k["rid"] == "A000000121" and k["index"] == tags[0x8F].hex().upper()][0]
m, e = int(k["modulus"], 16), int(k["exponent"], 16)
rec = pow(int.from_bytes(tags[0x90], "big"), e, m).to_bytes(len(tags[0x90]), "big")
open(sys.argv[3], "w").write("# test\nA000000121 %s %s\n" % (k["index"], rec[8:11].hex().upper()))
PY
echo 1234 | txn 1 ff_c5 c5 --amount 1000 --pin-stdin --capk-revoked "$W/revoked.txt"
fields ff_c5 "(d['oda']['result'], int(d['tvr'][0:2], 16) & 0x08, d['outcome'])" \
  "('failed', 8, 'declined_online')"
echo 1234 | KORTVAGT_CAPK_REVOKED=$W/revoked.txt txn 1 ff_c5_env c5 --amount 1000 --pin-stdin
fields ff_c5_env "d['oda']['result']" failed
echo 'A000000121 E1 XYZ' >"$W/bad_revoked.txt"
expect_rc 2 "a bad revocation list" "$K" card transact --amount 1 --currency DKK \
  --capk-revoked "$W/bad_revoked.txt"
echo 1234 | expect_rc 3 "fc_c5: torn after the 2nd GENERATE AC" "$K" card transact --no-authorize \
  --capk "$CAPK" --select "$(aid_of c5)" --currency DKK --amount 1000 --pin-stdin --json
if grep -q approved "$LAB/last.out"; then fail "fc_c5: a torn card approved"; else pass "fc_c5: nothing approved"; fi

fields_check
finish
