#!/usr/bin/env bash
# The layers point one way (README "Architecture"):
#
#   src/base                      depends on nothing of the project
#   apdu/ (apdu/vcard/), hsm/     include only src/base (and themselves; never each other)
#   src/<policy modules>          include src/base, apdu/, hsm/ and each other without a cycle;
#                                 the store does not know the HSM
#   src/app                       the composition root: opens and wires the policy modules
#   src/cli, src/daemon           the front ends: may include everything below
#
# Every #include "..." of the C sources under src/, apdu/ and hsm/ is checked.
# An include that points up is named as file:line; a cycle between modules is
# named with the includes that close it. Exit 0: the layers hold.
#
# Usage: scripts/check-layers.sh [--graph]   (--graph prints the module edges)
set -euo pipefail
cd "$(dirname "$0")/.."

graph=0
[ "${1:-}" = "--graph" ] && graph=1
edges=$(mktemp)
trap 'rm -f "$edges"' EXIT

fail=0
grep -rn --include='*.c' --include='*.h' -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' \
  src apdu hsm | awk -v edges="$edges" '
function module_of(p,   a) {
  if (p ~ /^apdu\/vcard\//) return "apdu/vcard"
  if (p ~ /^apdu\//) return "apdu"
  if (p ~ /^hsm\//) return "hsm"
  if (p ~ /^src\/[^\/]+\//) { split(p, a, "/"); return "src/" a[2] }
  return ""
}
function rank_of(m) {
  if (m == "src/base") return 0
  if (m == "apdu" || m == "apdu/vcard" || m == "hsm") return 1
  if (m == "src/app") return 3
  if (m == "src/cli" || m == "src/daemon") return 4
  return 2
}
{
  file = $0; sub(/:.*/, "", file)
  rest = substr($0, length(file) + 2)
  line = rest; sub(/:.*/, "", line)
  inc = rest; sub(/^[^"]*"/, "", inc); sub(/".*/, "", inc)
  from = module_of(file); to = module_of(inc)
  if (to == "" || from == to) next
  rf = rank_of(from); rt = rank_of(to); why = ""
  if (rf == 0)
    why = "src/base depends on nothing of the project"
  else if (rf == 1 && rt >= 2)
    why = from " includes nothing of src/ but src/base"
  else if ((from == "hsm" && to ~ /^apdu/) || (from ~ /^apdu/ && to == "hsm"))
    why = "apdu/ and hsm/ do not include each other"
  else if (from == "apdu" && to == "apdu/vcard")
    why = "apdu/ does not include the virtual card (apdu/vcard sits on apdu/)"
  else if (from == "src/store" && to == "hsm")
    why = "the store does not know the HSM (keyed functions are injected: src/store/keyed.h)"
  else if (rt > rf)
    why = from " (layer " rf ") includes " to " (layer " rt "): points up"
  else if (rf == 4 && rt == 4)
    why = "the front ends do not include each other"
  if (why != "") {
    printf "check-layers: %s:%s: #include \"%s\": %s\n", file, line, inc, why > "/dev/stderr"
    bad = 1
  }
  print from, to, file ":" line > edges
}
END { exit bad }' || fail=1

if [ "$graph" = 1 ]; then
  awk '{print $1" -> "$2}' "$edges" | sort | uniq -c | awk '{printf "%-14s -> %-14s (%d)\n", $2, $4, $1}'
fi

# cycles: tsort names the modules of each loop it breaks; for each loop, one
# include per module edge inside it (the first found) says where to cut
loops=$(awk '{print $1, $2}' "$edges" | sort -u | tsort 2>&1 >/dev/null || true)
if grep -q 'contains a loop' <<<"$loops"; then
  awk -v edgefile="$edges" '
    BEGIN { while ((getline l < edgefile) > 0) { split(l, e, " "); k = e[1] " " e[2]
              if (!(k in where)) { where[k] = e[3]; order[++ne] = k } } }
    /contains a loop/ { flush(); next }
    { sub(/^tsort: /, ""); members[$0] = 1; list = list " " $0 }
    END { flush() }
    function flush(   i, k, f) {
      if (list == "") return
      print "check-layers: a cycle between modules:" list
      for (i = 1; i <= ne; i++) { k = order[i]; split(k, f, " ")
        if ((f[1] in members) && (f[2] in members))
          print "check-layers:   " where[k] ": " f[1] " -> " f[2] }
      delete members; list = "" }' <<<"$loops" >&2
  fail=1
fi

if [ "$fail" = 0 ]; then
  echo "check-layers: ok ($(awk '{print $1, $2}' "$edges" | sort -u | wc -l) module edges; no include points up; no cycle)"
fi
exit "$fail"
