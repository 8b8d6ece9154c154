# shellcheck shell=bash
# Sourced by the EMV terminal tests (test_emv_terminal.sh, test_emv_scripts.sh,
# test_emv_faults.sh) after lab_common.sh: the cards of every personality the
# personalization bench builds, and helpers to run `card transact` on them.
#
#   emv_perso NAME...     personalize each of NAME (v10 v18 v22 m16 m17 c5 c6)
#                         with the lab's issuer keys into $W/p_NAME.json
#   emv_multi OUT NAME... one multi-application card of those personalities
#                         (each application keeps its keys, PIN, ATC, risk)
#   txn RC NAME APP ARGS...   card transact --select APP's AID; RC the exit code
#   txn_any NAME APP ARGS...  the same, exit 0 or 1 (the outcome decides)
#   fields NAME EXPR WANT...  values of the NAME.json result (python expressions on d),
#                             checked by fields_check (call it before finish)
#
# Personalities (templates in tests/data/templates): v10 Visa CVN 10 with CDA,
# v18 Visa CVN 18 (DDA), v22 Visa CVN 22 (IAD format 2), m16 M/Chip CVN 16
# (CDA), m17 M/Chip CVN 17 (CDA), c5 EMV CCD CVN 5 (DDA), c6 CCD CVN 6 (AES).
# On one card the longer AIDs match the terminal's under ASI partial.
# shellcheck disable=SC2034
W=$(mktemp -d /tmp/kv_emv.XXXXXX)
TPL=$SRC/tests/data/templates
CAPK=$SRC/tests/data/capk/capk.json
# personalized once per lab: the profiles are kept in the lab directory, keyed by the
# templates and the kortvagt binary (the keys are the lab's fixed test keys)
EMV_CACHE=$LAB/emv_cards.$(cat "$TPL"/*.json "$K" | cksum | cut -d' ' -f1)
EMV_AIDS="v10:A0000000031010 v18:A000000003101018 v22:A000000003101022 m16:A0000000041010
m17:A000000004101017 c5:A0000001211010 c6:A000000121101006"

emv_template() { # NAME -> template and CVN override
  case $1 in
  v10) echo "card_visa_cda.json -" ;;
  v18) echo "card_visa_dda.json 18" ;;
  v22) echo "card_visa_cvn22.json -" ;;
  m16) echo "card_mchip.json -" ;;
  m17) echo "card_mchip.json 17" ;;
  c5) echo "card_ccd.json -" ;;
  c6) echo "card_ccd_aes.json -" ;;
  esac
}

emv_perso() {
  local n t c args=""
  for n in "$@"; do
    read -r t c <<<"$(emv_template "$n")"
    args="$args $W/c_$n.json $TPL/$t $c"
  done
  # the card files (one python for all: an interpreter start is the slow part here)
  # shellcheck disable=SC2086
  python3 - $args <<'PY'
import json, sys
a = sys.argv[1:]
for out, tmpl, cvn in zip(a[0::3], a[1::3], a[2::3]):
    d = json.load(open(tmpl))
    d["template"] = tmpl.rsplit("/", 1)[0] + "/" + d["template"]
    if cvn != "-":
        d["cvn"] = int(cvn)
    json.dump(d, open(out, "w"))
PY
  for n in "$@"; do
    if [ -s "$EMV_CACHE/p_$n.json" ]; then
      cp "$EMV_CACHE/p_$n.json" "$W/p_$n.json"
      pass "perso $n (this lab's card, personalized by an earlier test)"
    elif "$K" perso --issuer "$TPL/issuer_lab.json" --card "$W/c_$n.json" --out "$W/p_$n.json" \
      >"$W/p_$n.out" 2>"$W/p_$n.err"; then
      pass "perso $n"
      mkdir -p "$EMV_CACHE" && cp "$W/p_$n.json" "$EMV_CACHE/p_$n.json.tmp" &&
        mv "$EMV_CACHE/p_$n.json.tmp" "$EMV_CACHE/p_$n.json"
    else
      fail "perso $n: $(head -c 300 "$W/p_$n.err")"
    fi
  done
}

aid_of() { local p; for p in $EMV_AIDS; do [ "${p%%:*}" = "$1" ] && echo "${p#*:}"; done; }

# OUT NAME... : a card whose applications are the personalities. A card without
# card risk management ("risk") gets LCOL 3 / UCOL 6, so that it follows the
# terminal's TC (apdu/vcard/CRYPTO.md §6) instead of always asking to go online.
emv_multi() {
  local out=$1 n specs=""
  shift
  for n in "$@"; do specs="$specs $n:$(aid_of "$n")"; done
  # shellcheck disable=SC2086
  python3 - "$out" "$W" $specs <<'PY'
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
    a.setdefault("risk", {"lcol": 3, "ucol": 6})
    base = base or d
    apps.append(a)
for k in ("keys", "risk", "expect"):
    base.pop(k, None)
base["applications"] = apps
json.dump(base, open(out, "w"))
PY
}

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
# fields NAME EXPR WANT [EXPR WANT]...: values of the NAME.json result (python expressions on d),
# checked all at once by fields_check (one interpreter for the whole test)
fields() {
  local name=$1
  shift
  while [ $# -ge 2 ]; do
    printf '%s\t%s\t%s\n' "$name" "$1" "$2" >>"$W/checks.tsv"
    shift 2
  done
}
fields_check() {
  local line
  [ -f "$W/checks.tsv" ] || return 0
  while IFS= read -r line; do
    case $line in
    P*) pass "${line#P }" ;;
    *) fail "${line#F }" ;;
    esac
  done < <(python3 - "$W" <<'PY'
import json, sys
w = sys.argv[1]
for row in open(f"{w}/checks.tsv"):
    name, expr, want = row.rstrip("\n").split("\t")
    try:
        d = json.load(open(f"{w}/{name}.json"))
    except Exception:
        d = None
    try:
        got = str(eval(expr))
    except Exception:
        got = "?"
    if got == want:
        print(f"P {name}: {expr} = {want}")
    else:
        extra = f" (tvr {d.get('tvr')}, reason {d.get('reason')})" if isinstance(d, dict) else ""
        print(f"F {name}: {expr} = {got}, wanted {want}{extra}")
PY
  )
  rm -f "$W/checks.tsv"
}

# terminal configurations (README "Terminal configuration"): the built-in AIDs changed
emv_conf() { # OUT KEY=VALUE...
  local out=$1 aid
  shift
  : >"$out"
  for aid in A0000000031010 A0000000041010 A0000001211010; do
    echo "[aid $aid]" >>"$out"
    printf '%s\n' "$@" >>"$out"
  done
}
