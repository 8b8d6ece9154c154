#!/usr/bin/env bash
# The store unit tests (test_blocklist, test_store, test_sca: block list, schema, counters, reversals,
# recurring series, limits across midnight in Copenhagen) against the lab's
# PostgreSQL instead of SQLite, on a database of their own; then the schema
# itself: its version, and evidence that refuses updates and deletes.
# Skips without a lab PostgreSQL.
set -euo pipefail
: "${KV_BUILD_DIR:?}" "${KV_SOURCE_DIR:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/kv-store-pg.XXXXXX")
trap 'rm -rf -- "$W"' EXIT
KORTVAGT=${KORTVAGT:-$KV_BUILD_DIR/bin/kortvagt}
KORTVAGTD=/bin/true # pg_createdb needs only daemon_common's helpers
. "$KV_SOURCE_DIR/tests/integration/daemon_common.sh"

pg_createdb kv_test_store_pg
for t in test_blocklist test_store test_sca; do
  bin="$KV_BUILD_DIR/bin/$t"
  [ -x "$bin" ] || fail "$bin not built"
  KORTVAGT_TEST_PG_URL=$PG_URL KV_TEST_DATA="$KV_SOURCE_DIR/tests/data" \
    "$bin" >"$W/$t.log" 2>&1 ||
    fail "$t against PostgreSQL: $(tail -30 "$W/$t.log")"
  grep -q "PASSED" "$W/$t.log" || fail "$t: $(tail -5 "$W/$t.log")"
done
sql() { psql -qtA "$PG_URL" -c "$1" 2>&1; }
# the #define may continue on the next line (a comment after the number)
want=$(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$KV_SOURCE_DIR/src/store/store.h" |
  sed -n 's/^#define KV_STORE_SCHEMA_VERSION *\([0-9][0-9]*\).*/\1/p')
[ -n "$want" ] || fail "KV_STORE_SCHEMA_VERSION not found in store.h"
[ "$(sql "SELECT version FROM schema_version")" = "$want" ] || fail "schema_version: $(sql "SELECT * FROM schema_version")"
n=$(sql "SELECT count(*) FROM evidence")
[ "$n" -gt 0 ] || fail "the tests left no evidence"
o=$(sql "UPDATE evidence SET body = 'x' WHERE id = 1" || true)
grep -q "append-only" <<<"$o" || fail "evidence UPDATE was allowed: $o"
o=$(sql "DELETE FROM evidence" || true)
grep -q "append-only" <<<"$o" || fail "evidence DELETE was allowed: $o"
[ "$(sql "SELECT count(*) FROM evidence")" = "$n" ] || fail "evidence changed"
# schema 3: attempt counters, reference values and row MACs on cards, row MACs on the
# block list, request ids
for col in cards.pin_failures cards.code_failures cards.pvki cards.pvv cards.ibm_offset cards.mac \
  blocklist.mac blocklist_wallet.mac requests.key requests.answer requests.at requests.mac; do
  t=${col%%.*} c=${col#*.}
  [ "$(sql "SELECT count(*) FROM information_schema.columns WHERE table_name = '$t' AND column_name = '$c'")" = 1 ] ||
    fail "schema 3: no column $col"
done
echo "PASS test_store_pg"
