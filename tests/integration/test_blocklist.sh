#!/bin/bash
# test_blocklist.sh -- the block list (src/RULES.md §3) end to end over a real
# SoftHSM2 token and an SQLite store: listing, the hot-card check in
# `authorize` (card and wallet token declined with card_blocked), the
# permission refusal, what check/export disclose, the notice, requests,
# corrections, recovery/replacement and purge.
set -u
. "$KV_SOURCE_DIR/tests/integration/hsm_env.sh"
. "$KV_SOURCE_DIR/tests/integration/authorize_common.sh"

B() { "$K" blocklist "$@"; }
expect_rc() { # expect_rc WANT WHAT CMD...
  local want=$1 what=$2 rc
  shift 2
  "$@" >"$W/out" 2>"$W/err"
  rc=$?
  [ "$rc" = "$want" ] || fail "$what: exit $rc, want $want: $(cat "$W/out" "$W/err")"
}

PAN_B=5413330089010434
PAN_C=4000001234567899
WALLET=4895370012345678
AT=2026-03-01T09:00:00Z

# --help, usage errors name the problem
expect_rc 0 "--help" B --help
grep -q "export" "$W/out" || fail "--help does not list export"
expect_rc 2 "bad PAN" B check --pan 12ab
grep -q -- "--pan" "$W/err" || fail "bad PAN error does not name --pan: $(cat "$W/err")"
expect_rc 2 "bad expiry" B add --pan "$PAN_A" --reason lost --expiry 2613
grep -q -- "--expiry" "$W/err" || fail "bad expiry error does not name --expiry"
expect_rc 2 "bad reason" B add --pan "$PAN_A" --reason gone --expiry 2812
expect_rc 2 "unknown option" B check --pan "$PAN_A" --colour red

# before listing: approved
r=$(auth_json "$(req contactless 100 Shop 5411 '')")
d=$(field "$r" decision)
[ "$d" != "" ] || fail "no decision before listing: $r"
[ "$(field "$r" reason)" != "card_blocked" ] || fail "declined card_blocked before listing: $r"

# issuer-initiated listing without the permission: refused (exit 7)
expect_rc 7 "issuer listing without permission" B add --pan "$PAN_B" --reason suspected_copy \
  --source issuer --expiry 2812 --at "$AT"
grep -qi "permission" "$W/err" || fail "refusal does not name the permission: $(cat "$W/err")"
expect_rc 0 "check after refusal" B check --pan "$PAN_B"
[ "$(cat "$W/out")" = "not blocked" ] || fail "refused card is listed: $(cat "$W/out")"

# cardholder reports the card lost, with a wallet token
expect_rc 0 "add lost" B add --pan "$PAN_A" --reason lost --expiry 2812 --at "$AT" \
  --wallet-token "$WALLET" --json
out=$(cat "$W/out")
[ "$(field "$out" notified_at)" = "$AT" ] || fail "notified_at is not the block time: $out"
[ "$(field "$out" notice_due)" = "false" ] || fail "notice due for a lost card: $out"
grep -q "lost" <<<"$out" && fail "add --json reveals the reason: $out"
expect_rc 0 "show" B show --pan "$PAN_A" --json
[ "$(field "$(cat "$W/out")" notified_at)" = "$AT" ] || fail "show: notified_at: $(cat "$W/out")"

# check: blocked, and nothing else
expect_rc 0 "check listed" B check --pan "$PAN_A"
[ "$(cat "$W/out")" = "blocked" ] || fail "check prints '$(cat "$W/out")', want 'blocked'"
expect_rc 0 "check --json" B check --pan "$PAN_A" --json
[ "$(cat "$W/out")" = '{"blocked":true}' ] || fail "check --json: $(cat "$W/out")"
expect_rc 0 "check wallet token" B check --pan "$WALLET"
[ "$(cat "$W/out")" = "blocked" ] || fail "the wallet token is not blocked with its card"

# authorize declines the card and its wallet token with card_blocked
r=$(auth_json "$(req contactless 100 Shop 5411 '')")
expect "$r" decision decline "listed card"
expect "$r" reason card_blocked "listed card"
r=$(auth_json "$(req contactless 100 Shop 5411 '' "$WALLET")")
expect "$r" decision decline "listed wallet token"
expect "$r" reason card_blocked "listed wallet token"

# no notice for a lost card
expect_rc 0 "notice lost" B notice --pan "$PAN_A"
grep -q "no notice" "$W/out" || fail "a notice for a card reported lost: $(cat "$W/out")"

# the issuer's own listing with the permission configured
cat >"$KORTVAGT_CONFIG" <<CONF
[blocklist]
permission = 2011-44-0123
issuer_name = Testbanken A/S
issuer_address = Bankgade 1, 1000 København K
recipients = Nets (det fælles Dankort-register)
CONF
expect_rc 7 "overdraft with 1 reminder" B add --pan "$PAN_B" --reason overdraft --reminders 1 \
  --expiry 2812 --at "$AT"
grep -q "reminders" "$W/err" || fail "overdraft refusal does not name the reminders"
expect_rc 0 "overdraft with 2 reminders" B add --pan "$PAN_B" --reason overdraft --reminders 2 \
  --expiry 2812 --at "$AT"
expect_rc 0 "suspected copy" B add --pan "$PAN_C" --reason suspected_copy --expiry 2702 --at "$AT"

# notice: every element, no reason
expect_rc 0 "notice" B notice --pan "$PAN_B"
n=$(cat "$W/out")
for want in "Testbanken A/S" "Bankgade 1, 1000 København K" "Nets (det fælles Dankort-register)" \
  "indsigt" "Datatilsynet" "klage"; do
  grep -q -- "$want" <<<"$n" || fail "notice lacks '$want': $n"
done
grep -qi "overdraft\|overtræk" <<<"$n" && fail "notice reveals the reason: $n"

# export: numbers only, one per line; recorded recipient
expect_rc 0 "export" B export --to "Nets" --at 2026-03-02T08:00:00Z
sort "$W/out" >"$W/export"
printf '%s\n' "$PAN_A" "$PAN_B" "$PAN_C" "$WALLET" | sort >"$W/want"
cmp -s "$W/export" "$W/want" || fail "export: $(cat "$W/export") want $(cat "$W/want")"
grep -qv '^[0-9]*$' "$W/out" && fail "export holds more than numbers: $(cat "$W/out")"
expect_rc 0 "recipients" B recipients
grep -q "^Nets " "$W/out" || fail "Nets not recorded as recipient: $(cat "$W/out")"

# correction goes to every recipient
expect_rc 0 "correct" B correct --pan "$PAN_B" --reason unusual_pattern --at 2026-03-03T08:00:00Z
grep -q "Nets (det fælles Dankort-register); Nets" "$W/out" ||
  fail "correction not sent to every recipient: $(cat "$W/out")"
expect_rc 0 "corrections" B corrections --json
grep -q '"recipients":"Nets (det fælles Dankort-register); Nets"' "$W/out" ||
  fail "corrections log: $(cat "$W/out")"

# requests: 4-week due dates, overdue marked
expect_rc 0 "request access" B request add --pan "$PAN_B" --kind access --at 2026-03-01T10:00:00Z
expect_rc 0 "request objection" B request add --pan "$PAN_C" --kind objection \
  --at 2026-03-20T10:00:00Z --json
[ "$(field "$(cat "$W/out")" due)" = "2026-04-17T09:00:00Z" ] || fail "due: $(cat "$W/out")"
expect_rc 0 "requests" B requests --now 2026-04-01T00:00:00Z
grep -q "access .*due 2026-03-29T09:00:00Z  OVERDUE" "$W/out" || fail "requests: $(cat "$W/out")"
grep -q "objection .*due 2026-04-17T09:00:00Z  open" "$W/out" || fail "requests: $(cat "$W/out")"

# recovered: lost card deleted at once (wallet token with it); suspected copy kept
expect_rc 0 "recovered lost" B recovered --pan "$PAN_A"
grep -q "deleted" "$W/out" || fail "recovered lost card not deleted: $(cat "$W/out")"
expect_rc 0 "check wallet after recovery" B check --pan "$WALLET"
[ "$(cat "$W/out")" = "not blocked" ] || fail "wallet token outlived its card's entry"
expect_rc 0 "recovered copy" B recovered --pan "$PAN_C"
grep -q "kept" "$W/out" || fail "suspected-copy card not kept: $(cat "$W/out")"
r=$(auth_json "$(req contactless 100 Shop 5411 '')")
[ "$(field "$r" reason)" != "card_blocked" ] || fail "deleted card still declined card_blocked: $r"

# replaced: deleted at once; not listed afterwards: exit 1
expect_rc 0 "replaced" B replaced --pan "$PAN_B"
expect_rc 1 "replaced again" B replaced --pan "$PAN_B"

# purge at the end of the expiry month (02/27 ends 2027-03-01 00:00 Copenhagen = 2027-02-28T23:00Z)
expect_rc 0 "purge early" B purge --now 2027-02-28T22:59:59Z --json
[ "$(cat "$W/out")" = '{"purged":0}' ] || fail "purged before the month's end: $(cat "$W/out")"
expect_rc 0 "purge" B purge --now 2027-02-28T23:00:00Z --json
[ "$(cat "$W/out")" = '{"purged":1}' ] || fail "not purged at the month's end: $(cat "$W/out")"

# the contract's form, without --expiry: listed, and kept until recovered, replaced or removed
PAN_D=$(python3 -c 'b="457100000000001"; d=[int(c) for c in b][::-1]
s=sum(x if i%2 else (2*x-9 if 2*x>9 else 2*x) for i,x in enumerate(d)); print(b+str((10-s%10)%10))')
expect_rc 0 "add without expiry" B add --pan "$PAN_D" --reason stolen
expect_rc 0 "show without expiry" B show --pan "$PAN_D" --json
[ "$(field "$(cat "$W/out")" expires_at)" = "null" ] || fail "expires_at: $(cat "$W/out")"
expect_rc 0 "purge leaves it" B purge --now 2099-01-01T00:00:00Z --json
[ "$(cat "$W/out")" = '{"purged":0}' ] || fail "purged an entry without expiry: $(cat "$W/out")"
expect_rc 0 "check without expiry" B check --pan "$PAN_D"
[ "$(cat "$W/out")" = "blocked" ] || fail "entry without expiry not blocked"
expect_rc 0 "remove without expiry" B remove --pan "$PAN_D"

# the store holds no clear PAN and no clear reason
if command -v sqlite3 >/dev/null; then
  dump=$(sqlite3 "$W/store.db" .dump)
  for s in "$PAN_A" "$PAN_C" "$WALLET" suspected_copy overdraft; do
    grep -q "$s" <<<"$dump" && fail "the store holds '$s' in clear"
  done
else
  for s in "$PAN_C" suspected_copy; do
    grep -aq "$s" "$W/store.db" "$W/store.db-wal" 2>/dev/null && fail "the store holds '$s'"
  done
fi
echo "test_blocklist: ok"
