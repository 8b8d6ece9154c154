#!/usr/bin/env bash
# `kortvagt card transact` as an EMV contact terminal (EMV Book 3 §10), end to
# end through pcscd + vpcd + the virtual card + SoftHSM2, for every card
# personality the bench builds: Visa VSDC CVN 10 (CDA), 18 and 22, Mastercard
# M/Chip CVN 16 (CDA) and 17, EMV CCD CVN 5 and 6 (AES).
#
# The cards are personalized once (`kortvagt perso`, the lab's issuer keys)
# and put on ONE multi-application card (one insertion; each application
# keeps its keys, PIN and ATC); `--select AID` picks the personality. Per
# personality: online approve (CDA on both GENERATE ACs where the card does
# CDA), online decline (the issuer: wrong online PIN), offline approve under
# the floor limit, terminal action analysis denial, unable to go online
# (default action codes, ARC Y3/Z3), and issuer scripts with a good and a bad
# MAC. The faults of the virtual card live in test_emv_faults.sh.
# shellcheck disable=SC1091
. "$(dirname "$0")/lab_common.sh"

W=$(mktemp -d /tmp/kv_emvterm.XXXXXX)
SUF=$$
BADSMI=emvterm-bad-smi-$SUF
cleanup() {
  "$K" key delete --label "$BADSMI" >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT
TPL=$SRC/tests/data/templates
CAPK=$SRC/tests/data/capk/capk.json
# a secure-messaging integrity key the card does not know: every MAC under it is bad
echo 0F0E0D0C0B0A09080706050403020100 | "$K" key import --label "$BADSMI" --type des2 \
  --usage imk-smi >/dev/null 2>&1 || fail "import the wrong SMI key"

# --- the cards: one personalization per personality ---
card_file() { # OUT TEMPLATE CVN
  python3 - "$1" "$TPL/$2" "$3" <<'PY'
import json, sys
d = json.load(open(sys.argv[2]))
d["template"] = sys.argv[2].rsplit("/", 1)[0] + "/" + d["template"]
if sys.argv[3] != "-":
    d["cvn"] = int(sys.argv[3])
json.dump(d, open(sys.argv[1], "w"))
PY
}
perso() { # NAME CARD-TEMPLATE CVN
  card_file "$W/c_$1.json" "$2" "$3"
  if "$K" perso --issuer "$TPL/issuer_lab.json" --card "$W/c_$1.json" --out "$W/p_$1.json" \
    >"$W/p_$1.out" 2>"$W/p_$1.err"; then pass "perso $1"; else fail "perso $1: $(head -c 300 "$W/p_$1.err")"; fi
}
perso v10 card_visa_cda.json -
perso v18 card_visa_dda.json 18
perso v22 card_visa_cvn22.json -
perso m16 card_mchip.json -
perso m17 card_mchip.json 17
perso c5 card_ccd.json -
perso c6 card_ccd_aes.json -

# NAME:AID pairs. Longer AIDs than the terminal's match it under ASI partial.
APPS="v10:A0000000031010 v18:A000000003101018 v22:A000000003101022 m16:A0000000041010
m17:A000000004101017 c5:A0000001211010 c6:A000000121101006"
# one card, every personality an application with its own keys, PIN and ATC
python3 - "$W/multi.json" "$W" $APPS <<'PY'
import json, sys
out, w, specs = sys.argv[1], sys.argv[2], sys.argv[3:]
base, apps = None, []
for sp in specs:
    name, aid = sp.split(":")
    d = json.load(open(f"{w}/p_{name}.json"))
    a = d["applications"][0]
    a["aid"] = aid
    for k in ("keys", "risk", "pin"):
        if k in d:
            a[k] = d[k]
    base = base or d
    apps.append(a)
for k in ("keys", "risk", "expect"):
    base.pop(k, None)
base["applications"] = apps
json.dump(base, open(out, "w"))
PY
lab_insert "$W/multi.json" || fail "insert the multi-application card"

aid_of() { for p in $APPS; do [ "${p%%:*}" = "$1" ] && echo "${p#*:}"; done; }
txn() { # EXPECTED-RC NAME APP ARGS... (stdin: PIN)
  local want=$1 name=$2 app=$3
  shift 3
  expect_rc "$want" "$name" "$K" card transact --no-authorize --capk "$CAPK" --json \
    --select "$(aid_of "$app")" --currency DKK "$@"
  cp "$LAB/last.out" "$W/$name.json" 2>/dev/null || true
}
txn_any() { # NAME APP ARGS...: the outcome decides, any exit code 0 or 1
  local name=$1 app=$2 rc=0
  shift 2
  "$K" card transact --no-authorize --capk "$CAPK" --json --select "$(aid_of "$app")" \
    --currency DKK "$@" >"$W/$name.json" 2>"$W/$name.err" || rc=$?
  if [ "$rc" = 0 ] || [ "$rc" = 1 ]; then pass "$name (exit $rc)"; else fail "$name: exit $rc: $(head -c 200 "$W/$name.err")"; fi
}
jq_() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }
field() { # NAME EXPR WANT
  local got
  got=$(jq_ "$W/$1.json" "$2" 2>/dev/null || echo "?")
  if [ "$got" = "$3" ]; then pass "$1: $2 = $3"; else fail "$1: $2 = $got, wanted $3"; fi
}

# terminal configurations (README "Terminal configuration"): the built-in AIDs changed
conf() { # OUT KEY=VALUE...
  local out=$1 aid
  shift
  : >"$out"
  for aid in A0000000031010 A0000000041010 A0000001211010; do
    echo "[aid $aid]" >>"$out"
    printf '%s\n' "$@" >>"$out"
  done
}
# offline: under a high floor limit, no random selection, the terminal asks nothing online
conf "$W/offline.ini" floor_limit=1000000 threshold=0 target_percent=0 max_target_percent=0 \
  tac_denial=0000000000 tac_online=0000000000 tac_default=0000000000
# denial: "transaction exceeds floor limit" is a reason to decline offline
conf "$W/deny.ini" floor_limit=0 tac_denial=0000008000
# unable to go online: online because the merchant forces it; the default codes ask for nothing
conf "$W/unable.ini" floor_limit=1000000 threshold=0 target_percent=0 max_target_percent=0 \
  tac_denial=0000000000 tac_online=0000000800 tac_default=0000000000

for pa in $APPS; do
  a=${pa%%:*}
  cvn=$(jq_ "$W/p_$a.json" "d['keys']['cvn']" 2>/dev/null)
  # 1. online approve; CDA on both GENERATE ACs for a CDA card
  echo 1234 | txn 0 "${a}_approve" "$a" --amount 1000 --pin-stdin
  field "${a}_approve" "d['outcome']" approved_online
  field "${a}_approve" "(d['cvn'], d['arqc']['verified'], d['first_ac'], d['second_ac'], d['arc'])" \
    "($cvn, True, 'arqc', 'tc', '00')"
  field "${a}_approve" "d['issuer_authentication']" ok
  field "${a}_approve" "d['cvr']['layout'] != 'unknown' and d['cvr']['hex'] is not None" True
  case $a in
  v10 | m16) field "${a}_approve" "(d['oda']['method'], d['cda_second'])" "('cda', 'ok')" ;;
  *) field "${a}_approve" "(d['oda']['result'], d['cda_second'])" "('passed', 'not_requested')" ;;
  esac

  # 3. offline approve under the floor limit (TC asked for and given)
  echo 1234 | txn 0 "${a}_offline" "$a" --amount 1000 --pin-stdin --config "$W/offline.ini"
  field "${a}_offline" "(d['outcome'], d['first_ac_requested'], d['first_ac'], d['second_ac'])" \
    "('approved_offline', 'tc', 'tc', None)"
  field "${a}_offline" "int(d['tvr'][6:8], 16) & 0x80" 0

  # 4. terminal action analysis: TAC-Denial matches the TVR -> AAC, no online
  echo 1234 | txn 1 "${a}_deny" "$a" --amount 1000 --pin-stdin --config "$W/deny.ini"
  field "${a}_deny" "(d['outcome'], d['first_ac_requested'], d['first_ac'])" \
    "('declined_offline', 'aac', 'aac')"

  # 5. unable to go online: default action codes decide, ARC Y3 (TC) or Z3 (AAC)
  echo 1234 | txn_any "${a}_unable" "$a" --amount 1000 --pin-stdin --unable-online \
    --force-online --config "$W/unable.ini"
  field "${a}_unable" "d['first_ac']" arqc
  field "${a}_unable" "(d['outcome'], d['arc']) in [('approved_unable_online', 'Y3'), ('declined_unable_online', 'Y3'), ('declined_unable_online', 'Z3')]" True
  field "${a}_unable" "d['outcome'] == 'approved_unable_online' or d['second_ac'] == 'aac'" True
  field "${a}_unable" "int(d['tvr'][6:8], 16) & 0x08" 8

  # 2. online decline: the issuer checks the online PIN against a PVV it does not match
  echo 1234 | txn 1 "${a}_decline" "$a" --amount 1000 --profile atm --type cash --pin-stdin \
    --pvk pvk --pvv 0000
  field "${a}_decline" "(d['outcome'], d['first_ac'], d['second_ac'], d['arc'])" \
    "('declined_online', 'arqc', 'aac', '05')"

done

# --- issuer scripts (Book 3 §10.10): built in the HSM for the card's CVN, sent as 71
# (before the 2nd GENERATE AC) or 72 (after); the card checks the MAC ---
script_ok() { # NAME TEMPLATE
  field "$1" "[(s['template'], s['sw'], s['result']) for s in d['scripts']]" "[('$2', '9000', 'successful')]"
  field "$1" "int(d['tsi'][0:2], 16) & 0x04" 4
}
script_bad() { # NAME TEMPLATE
  field "$1" "[(s['template'], s['sw'], s['result']) for s in d['scripts']]" "[('$2', '6988', 'failed')]"
  if [ "$2" = 71 ]; then bit=32; else bit=16; fi
  field "$1" "int(d['tvr'][8:10], 16) & 0x30" "$bit"
}
# PIN CHANGE (new PIN enciphered under the SMC key): PIN and new PIN on two stdin lines
printf '1234\n4321\n' | txn 0 v10_pin_change v10 --amount 1000 --pin-stdin --issuer-script pin-change
script_ok v10_pin_change 71
echo 4321 | txn 0 v10_new_pin v10 --amount 1000 --pin-stdin
field v10_new_pin "(d['cvm']['result'], d['cvr']['offline_pin_verified'])" "('successful', True)"
printf '4321\n1234\n' | txn 0 v10_pin_back v10 --amount 1000 --pin-stdin --issuer-script pin-change \
  --script-after
script_ok v10_pin_back 72
# PIN UNBLOCK, APPLICATION UNBLOCK: good MACs, before and after the 2nd GENERATE AC
for c in "v18 pin-unblock 71" "v22 app-unblock 71" "c6 pin-unblock 72" "m17 app-unblock 72"; do
  set -- $c
  [ "$3" = 72 ] && after=--script-after || after=
  echo 1234 | txn 0 "$1_$2" "$1" --amount 1000 --pin-stdin --issuer-script "$2" $after
  script_ok "$1_$2" "$3"
done
# bad MACs (a key the card does not know): 6988, TVR script failed before/after
for c in "c5 pin-unblock 71" "v18 app-block 71" "m16 card-block 72" "c6 pin-change 71"; do
  set -- $c
  [ "$3" = 72 ] && after=--script-after || after=
  printf '1234\n5678\n' | txn 0 "$1_bad_$2" "$1" --amount 1000 --pin-stdin --issuer-script "$2" \
    --imk-smi "$BADSMI" $after
  script_bad "$1_bad_$2" "$3"
done
# an issuer host's own template (--script-tlv): 9F18 script id, one command with a bad MAC
echo 1234 | txn 0 c5_tlv c5 --amount 1000 --pin-stdin \
  --script-tlv 71169F180400000001860D84180000080102030405060708
field c5_tlv "[(s['id'], s['ins'], s['sw']) for s in d['scripts']]" "[('00000001', '18', '6988')]"
# APPLICATION BLOCK (72, good MAC): that application is gone, the others stay
echo 1234 | txn 0 m17_app_block m17 --amount 1000 --pin-stdin --issuer-script app-block --script-after
script_ok m17_app_block 72
echo 1234 | expect_rc 4 "m17 blocked: not selected" "$K" card transact --no-authorize --capk "$CAPK" \
  --select "$(aid_of m17)" --currency DKK --amount 1000 --pin-stdin
echo 1234 | txn 0 m16_after_block m16 --amount 1000 --pin-stdin
# CARD BLOCK (good MAC) last: no application of the card answers any more
echo 1234 | txn 0 c5_card_block c5 --amount 1000 --pin-stdin --issuer-script card-block --script-after
script_ok c5_card_block 72
echo 1234 | expect_rc 4 "card blocked: no application" "$K" card transact --no-authorize --capk "$CAPK" \
  --currency DKK --amount 1000 --pin-stdin

# usage: no scripts without an issuer; the new PIN only from stdin
expect_rc 2 "scripts need an issuer" "$K" card transact --amount 1 --currency DKK --unable-online \
  --issuer-script app-block
expect_rc 2 "unknown script" "$K" card transact --amount 1 --currency DKK --issuer-script put-data
expect_rc 2 "bad --select" "$K" card transact --amount 1 --currency DKK --select A000
finish
