#!/bin/bash
# test_sec_store.sh -- issue 11, finding 11 (store side) and the store's Low
# items, against a real SQLite file, the lab's PostgreSQL, a SoftHSM2 token
# and the kortvagt CLI:
#   - a card row's counter reset with the sqlite3 CLI / psql is detected
#     (row MAC): the card reads as tampered, authorize does not approve it;
#   - a block-list row edited or deleted in the file (a hot card un-listed)
#     is detected (row MAC, block-list digest);
#   - the SQLite file, its -wal, -shm and -wlock are created 0600;
#   - a symbolic link at the lock path is refused and never followed;
#   - the default URL commits with synchronous=FULL (the WAL is synced on
#     every commit; counted with strace when it can trace);
#   - a sealed PAN copied into another block-list row does not open (AEAD
#     with the row's token as associated data; the row MAC refuses it first).
# Every check fails on the code before issue 11 (commit 063727f).
set -u
umask 022 # what a default shell gives: the store must still be 0600
. "$KV_SOURCE_DIR/tests/integration/hsm_env.sh"
. "$KV_SOURCE_DIR/tests/integration/authorize_common.sh"

command -v sqlite3 >/dev/null || fail "sqlite3 (the CLI) is needed: scripts/deps.sh installs it"
bad=0
ok() { echo "PASS: $*"; }
no() {
  echo "FAIL: $*"
  bad=$((bad + 1))
}
# authz REQUEST: the response line (or the error text) of `kortvagt authorize`
authz() { printf '%s\n' "$1" | "$K" authorize - --json 2>&1; }
# not_approved NAME OUTPUT: the decision is no approval, and store_tampered is named
not_approved() {
  if grep -q '"decision":"approve"' <<<"$2"; then
    no "$1: approved: $2"
  elif grep -qi "store_tampered\|tampered" <<<"$2"; then
    ok "$1: $(head -c 160 <<<"$2")"
  else
    no "$1: no store_tampered in: $2"
  fi
}
DB=$W/store.db
PAN_B=5413330089010434
PAN_C=4000001234567899
AT=2026-03-01T09:00:00Z

# ---- a counter reset in the database file (finding 11) ----
r=$(authz "$(req contactless 100 Shop 5411 '')")
grep -q '"decision":"approve"' <<<"$r" || fail "first payment not approved: $r"
out=$("$K" card settings --pan "$PAN_A" --json 2>&1) || fail "card settings before tampering: $out"
sqlite3 "$DB" "UPDATE cards SET cl_count = 0, sca_failures = 0" || fail "sqlite3 UPDATE"
if out=$("$K" card settings --pan "$PAN_A" --json 2>&1); then
  no "card settings reads a card whose counters were reset in the file: $out"
elif grep -qi "tamper" <<<"$out"; then
  ok "card settings: the reset card row reads as tampered"
else
  no "card settings failed without naming the tampering: $out"
fi
not_approved "authorize after the counter reset" "$(authz "$(req contactless 100 Shop 5411 '')")"
# the MAC column itself stripped
sqlite3 "$DB" "UPDATE cards SET mac = NULL" 2>/dev/null || true
not_approved "authorize after the row MAC was stripped" "$(authz "$(req contactless 100 Shop 5411 '')")"

# ---- the block list: a hot card edited, then deleted, in the file ----
"$K" blocklist add --pan "$PAN_B" --reason lost --expiry 2812 --at "$AT" >/dev/null 2>&1 ||
  fail "blocklist add: $("$K" blocklist add --pan "$PAN_B" --reason lost --expiry 2812 --at "$AT" 2>&1)"
r=$(authz "$(req contactless 100 Shop 5411 '' "$PAN_B")")
grep -q '"reason":"card_blocked"' <<<"$r" || fail "listed card not declined card_blocked: $r"
exp=$(sqlite3 "$DB" "SELECT expires_at FROM blocklist")
sqlite3 "$DB" "UPDATE blocklist SET expires_at = 1" # purge would now delete it
out=$("$K" blocklist check --pan "$PAN_B" 2>&1)
if grep -qi "tamper" <<<"$out"; then ok "blocklist check: the edited entry reads as tampered"; else
  no "blocklist check after an edit of the entry: $out"; fi
sqlite3 "$DB" "UPDATE blocklist SET expires_at = $exp"
out=$("$K" blocklist check --pan "$PAN_B" 2>&1)
[ "$out" = "blocked" ] || no "blocklist check after restoring the entry: $out"
# un-list the hot card by deleting its row
sqlite3 "$DB" "DELETE FROM blocklist"
out=$("$K" blocklist check --pan "$PAN_B" 2>&1)
if [ "$out" = "not blocked" ]; then no "blocklist check: a deleted entry reads as not blocked"; elif
  grep -qi "tamper" <<<"$out"; then ok "blocklist check: the deleted entry is noticed"; else
  no "blocklist check after deleting the entry: $out"; fi
not_approved "authorize of the un-listed hot card" "$(authz "$(req contactless 100 Shop 5411 '' "$PAN_B")")"

# ---- files: 0600 ----
# SQLite removes -wal and -shm when the last connection closes: a reader keeps
# one open (sqlite3 on a FIFO) while kortvagt writes
export KORTVAGT_STORE="sqlite:$W/modes.db"
"$K" card settings --pan "$PAN_C" >/dev/null 2>&1 || fail "card settings on a new store"
mkfifo "$W/hold"
sqlite3 "$W/modes.db" <"$W/hold" >/dev/null 2>&1 &
holder=$!
exec 3>"$W/hold"
echo "SELECT count(*) FROM cards;" >&3
wait_for 10 test -e "$W/modes.db-shm" || no "the reader did not open the store"
"$K" card settings --pan "$PAN_C" --ecommerce off >/dev/null 2>&1 || no "card settings --ecommerce off"
for f in "$W/modes.db" "$W/modes.db-wal" "$W/modes.db-shm" "$W/modes.db-wlock"; do
  if [ ! -e "$f" ]; then no "$f does not exist"; continue; fi
  m=$(stat -c %a "$f")
  if [ "$m" = 600 ]; then ok "$(basename "$f") is 0600"; else no "$(basename "$f") is $m, want 600"; fi
done
exec 3>&-
wait "$holder" 2>/dev/null
export KORTVAGT_STORE="sqlite:$DB"

# ---- a symbolic link at the lock path is refused ----
ln -s "$W/elsewhere" "$W/linked.db-wlock"
if out=$(KORTVAGT_STORE="sqlite:$W/linked.db" "$K" card settings --pan "$PAN_C" 2>&1); then
  no "a store whose lock path is a symbolic link was opened"
elif grep -qi "symbolic link" <<<"$out"; then
  ok "a symbolic link at the lock path is refused: $out"
else
  no "the symlinked lock path failed without saying so: $out"
fi
[ ! -e "$W/elsewhere" ] || no "the symbolic link was followed: $W/elsewhere was created"

# ---- synchronous=FULL by default: the WAL is synced at every commit ----
if strace -f -e trace=none true >/dev/null 2>&1; then
  export KORTVAGT_STORE="sqlite:$W/sync.db"
  authz "$(req contactless 100 Shop 5411 '' "$PAN_C")" >/dev/null # schema, keys: warm up
  strace -f -qq -e trace=fsync,fdatasync -o "$W/strace" "$K" card settings --pan "$PAN_C" \
    --ecommerce off >/dev/null 2>&1
  n=$(grep -c "sync(" "$W/strace")
  export KORTVAGT_STORE="sqlite:$W/sync.db?synchronous=normal"
  strace -f -qq -e trace=fsync,fdatasync -o "$W/strace.n" "$K" card settings --pan "$PAN_C" \
    --ecommerce on >/dev/null 2>&1
  nn=$(grep -c "sync(" "$W/strace.n")
  if [ "$n" -gt "$nn" ]; then ok "default URL syncs at commit ($n syncs; synchronous=normal: $nn)"; else
    no "default URL: $n syncs per write command, synchronous=normal: $nn (want more)"; fi
  export KORTVAGT_STORE="sqlite:$DB"
else
  echo "SKIP: strace cannot trace here (the unit test test_store checks PRAGMA synchronous)"
fi

# ---- a sealed PAN copied to another row ----
export KORTVAGT_STORE="sqlite:$W/seal.db"
"$K" blocklist add --pan "$PAN_B" --reason lost --expiry 2812 --at "$AT" >/dev/null 2>&1 || fail "add B"
"$K" blocklist add --pan "$PAN_C" --reason stolen --expiry 2812 --at 2026-03-01T09:05:00Z \
  >/dev/null 2>&1 || fail "add C"
for f in "$W/seal.db" "$W/seal.db-wal"; do
  if [ -e "$f" ] && grep -qa "$PAN_B\|$PAN_C" "$f"; then no "$(basename "$f") holds a clear PAN"; fi
done
out=$("$K" blocklist export 2>&1) || fail "export before: $out"
[ "$(sort <<<"$out" | tr '\n' ' ')" = "$PAN_C $PAN_B " ] || fail "export before: $out"
# B's sealed PAN into C's row
sqlite3 "$W/seal.db" "UPDATE blocklist SET pan_sealed = (SELECT pan_sealed FROM blocklist ORDER BY listed_at LIMIT 1)"
if out=$("$K" blocklist export 2>&1); then
  no "export with a sealed PAN moved to another row succeeded: $(tr '\n' ' ' <<<"$out")"
else
  ok "export refuses a sealed PAN moved to another row: $(grep -i tamper <<<"$out" | head -1)"
fi

# ---- the same on PostgreSQL ----
pg_part() {
  bad=0
  KORTVAGTD=/bin/true
  . "$KV_SOURCE_DIR/tests/integration/daemon_common.sh"
  pg_createdb kv_test_sec_store
  export KORTVAGT_STORE=$PG_URL
  psql_do() { psql -qtA "$PG_URL" -c "$1" >/dev/null 2>&1 || no "psql: $1"; }
  r=$(authz "$(req contactless 100 Shop 5411 '')")
  grep -q '"decision":"approve"' <<<"$r" || { no "postgresql: first payment: $r"; return; }
  psql_do "UPDATE cards SET cl_count = 0"
  not_approved "postgresql: authorize after the counter reset" "$(authz "$(req contactless 100 Shop 5411 '')")"
  "$K" blocklist add --pan "$PAN_B" --reason lost --expiry 2812 --at "$AT" >/dev/null 2>&1 ||
    no "postgresql: blocklist add"
  psql_do "DELETE FROM blocklist"
  not_approved "postgresql: authorize of the un-listed hot card" \
    "$(authz "$(req contactless 100 Shop 5411 '' "$PAN_B")")"
  [ "$bad" -eq 0 ]
}
(pg_part)
case $? in 0 | 77) ;; *) bad=$((bad + 1)) ;; esac

echo "$bad failed"
[ "$bad" -eq 0 ]
