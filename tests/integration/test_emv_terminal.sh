#!/usr/bin/env bash
# `kortvagt card transact` as an EMV contact terminal (EMV Book 3 §10), end to
# end through pcscd + vpcd + the virtual card + SoftHSM2, for every card
# personality the bench builds: Visa VSDC CVN 10 (CDA), 18 and 22, Mastercard
# M/Chip CVN 16 and 17 (CDA), EMV CCD CVN 5 and 6 (AES).
#
# The cards are personalized once (`kortvagt perso`, the lab's issuer keys)
# and put on ONE multi-application card (one insertion; emv_cards.sh). Per
# personality: online approve (CDA on both GENERATE ACs where the card does
# CDA), offline approve under the floor limit, terminal action analysis
# denial, unable to go online (default action codes, ARC Y3/Z3) and an online
# decline (the issuer: wrong online PIN). Issuer scripts: test_emv_scripts.sh;
# the virtual card's faults: test_emv_faults.sh.
# shellcheck disable=SC1091
. "$(dirname "$0")/lab_common.sh"
. "$(dirname "$0")/emv_cards.sh"
trap 'rm -rf "$W"' EXIT

ALL="v10 v18 v22 m16 m17 c5 c6"
# shellcheck disable=SC2086
emv_perso $ALL
# shellcheck disable=SC2086
emv_multi "$W/multi.json" $ALL
lab_insert "$W/multi.json" || fail "insert the multi-application card"

# offline: under a high floor limit, no random selection, the terminal asks nothing online
emv_conf "$W/offline.ini" floor_limit=1000000 threshold=0 target_percent=0 max_target_percent=0 \
  tac_denial=0000000000 tac_online=0000000000 tac_default=0000000000
# denial: "transaction exceeds floor limit" is a reason to decline offline
emv_conf "$W/deny.ini" floor_limit=0 tac_denial=0000008000
# unable to go online: online because the merchant forces it; the default codes ask for nothing
emv_conf "$W/unable.ini" floor_limit=1000000 threshold=0 target_percent=0 max_target_percent=0 \
  tac_denial=0000000000 tac_online=0000000800 tac_default=0000000000

for a in $ALL; do
  cvn=${a#?}
  case $a in v10 | m16 | m17) oda="('cda', 'passed', 'ok')" ;; *) oda="('dda', 'passed', 'not_requested')" ;; esac
  # 1. online approve (floor limit 0: every transaction online), the ARQC per CVN; CDA on
  # both GENERATE ACs for a CDA card
  echo 1234 | txn 0 "${a}_approve" "$a" --amount 1000 --pin-stdin
  fields "${a}_approve" "d['outcome']" approved_online \
    "(d['cvn'], d['arqc']['verified'], d['first_ac'], d['second_ac'], d['arc'])" \
    "($cvn, True, 'arqc', 'tc', '00')" \
    "(d['issuer_authentication'], int(d['tvr'][6:8], 16) & 0x80)" "('ok', 128)" \
    "d['cvr']['layout'] != 'unknown' and d['cvr']['hex'] is not None" True \
    "(d['oda']['method'], d['oda']['result'], d['cda_second'])" "$oda"

  # 2. offline approve under the floor limit: the TAA asks for a TC, the card gives it
  echo 1234 | txn 0 "${a}_offline" "$a" --amount 1000 --pin-stdin --config "$W/offline.ini"
  fields "${a}_offline" "(d['outcome'], d['first_ac_requested'], d['first_ac'], d['second_ac'])" \
    "('approved_offline', 'tc', 'tc', None)" "int(d['tvr'][6:8], 16) & 0x80" 0

  # 3. terminal action analysis: TAC-Denial matches the TVR -> AAC, no online
  echo 1234 | txn 1 "${a}_deny" "$a" --amount 1000 --pin-stdin --config "$W/deny.ini"
  fields "${a}_deny" "(d['outcome'], d['first_ac_requested'], d['first_ac'], d['reason'])" \
    "('declined_offline', 'aac', 'aac', 'terminal action analysis: denial')"

  # 4. unable to go online: default action codes decide, ARC Y3 (TC) or Z3 (AAC)
  echo 1234 | txn_any "${a}_unable" "$a" --amount 1000 --pin-stdin --unable-online \
    --force-online --config "$W/unable.ini"
  fields "${a}_unable" "(d['first_ac'], int(d['tvr'][6:8], 16) & 0x08)" "('arqc', 8)" \
    "(d['outcome'], d['arc']) in [('approved_unable_online', 'Y3'), ('declined_unable_online', 'Y3'), ('declined_unable_online', 'Z3')]" True \
    "d['outcome'] == 'approved_unable_online' or d['second_ac'] == 'aac'" True

  # 5. online decline: the issuer checks the online PIN against a PVV it does not match
  echo 1234 | txn 1 "${a}_decline" "$a" --amount 1000 --profile atm --type cash --pin-stdin \
    --pvk pvk --pvv 0000
  fields "${a}_decline" "(d['outcome'], d['first_ac'], d['second_ac'], d['arc'])" \
    "('declined_online', 'arqc', 'aac', '05')"
done
# a card without IAC-Default (Visa here): unable to go online is an AAC (Z3)
fields v10_unable "(d['outcome'], d['arc'])" "('declined_unable_online', 'Z3')"
# M/Chip's IAC-Default (B860248000) does not match "merchant forced online": Y3
fields m16_unable "d['arc']" Y3

# usage errors of the terminal options
expect_rc 2 "--random out of range" "$K" card transact --amount 1 --currency DKK --random 100
expect_rc 2 "bad --select" "$K" card transact --amount 1 --currency DKK --select A000
expect_rc 2 "--type goods" "$K" card transact --amount 1 --currency DKK --type goods
fields_check
finish
