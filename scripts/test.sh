#!/usr/bin/env bash
# Every test of kortvagt, on a fresh Debian 12 machine:
#   deps -> format check -> tree checks (standalone, layers) -> build -> unit tests -> Release build (gcc -O3),
#   installed into a temporary DESTDIR and run from there, and the Debian
#   package -> ASan+UBSan build, unit tests
#   and fuzz corpora -> libFuzzer build and corpus replay -> the integration
#   tests with the ASan+UBSan binaries against the virtual lab -> the full suite
#   (unit, fuzz corpora, integration; the two longest integration tests only in
#   the ASan+UBSan pass) against the virtual lab. Ends with
#   ctest's summary. Every build treats warnings as errors (-DKV_WERROR=ON).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
JOBS=$(nproc)
step() { printf '\n==== %s ====\n' "$*"; }
fail() { printf 'test.sh: %s\n' "$*" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

step "dependencies"
bash scripts/deps.sh

# Debian's python3, as on a fresh machine: the tests' helpers (JSON checks, the
# independent reference scripts) run it often, and a version manager's shim in
# front of it costs half a second per start.
if [ -x /usr/bin/python3 ]; then
  mkdir -p "$TMP/bin"
  ln -sf /usr/bin/python3 "$TMP/bin/python3"
  export PATH="$TMP/bin:$PATH"
fi

step "format check (clang-format)"
mapfile -t sources < <(git ls-files '*.c' '*.h' 2>/dev/null || find apdu hsm src tests -name '*.[ch]')
clang-format --dry-run -Werror "${sources[@]}"

step "tree checks: the repository stands alone, layers point one way"
bash scripts/check-standalone.sh
bash scripts/check-layers.sh

step "build (RelWithDebInfo)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKV_WERROR=ON >/dev/null
cmake --build build -j "$JOBS"

step "unit tests"
ctest --test-dir build -L unit --output-on-failure -j "$JOBS"

step "Release build (gcc -O3), installed into a temporary DESTDIR, Debian package"
# what a distribution builds; its tests are the ones above, so none run here
cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=gcc \
  -DCMAKE_INSTALL_PREFIX=/usr -DKV_WERROR=ON >/dev/null
cmake --build build-release -j "$JOBS"
version=$(sed -n 's/^project(kortvagt VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
root=$TMP/root
DESTDIR=$root cmake --install build-release --prefix /usr >/dev/null
for f in usr/bin/kortvagt usr/bin/kortvagtd usr/share/kortvagt/capk.json \
  usr/share/man/man1/kortvagt.1 usr/share/man/man8/kortvagtd.8 \
  usr/share/doc/kortvagt/examples/kortvagtd.conf.sample usr/lib/systemd/system/kortvagtd.service; do
  [ -f "$root/$f" ] || fail "cmake --install did not install /$f"
done
grep -q '^ExecStart=/usr/bin/kortvagtd ' "$root/usr/lib/systemd/system/kortvagtd.service" ||
  fail "kortvagtd.service: ExecStart does not name /usr/bin/kortvagtd"
# run from / without KORTVAGT_CAPK: nothing of the source tree can be found by accident
installed() { (cd / && env -u KORTVAGT_CAPK -u KORTVAGT_CONFIG "$@"); }
out=$(installed "$root/usr/bin/kortvagt" --version)
[ "$out" = "kortvagt $version" ] || fail "installed kortvagt --version: '$out', not 'kortvagt $version'"
out=$(installed "$root/usr/bin/kortvagtd" --version)
[ "$out" = "kortvagtd $version" ] || fail "installed kortvagtd --version: '$out'"
out=$(installed "$root/usr/bin/kortvagt" tlv decode 9F3704AABBCCDD)
grep -q '^9F37 Unpredictable Number \[4\]: AABBCCDD$' <<<"$out" || fail "installed tlv decode: $out"
# the CA key file through the install prefix: the issuer certificate of this
# profile recovers under Mastercard test key EF and has expired, an answer
# perso check gives only after it found the installed capk.json and used it
out=$(installed "$root/usr/bin/kortvagt" perso check --profile "$REPO/tests/data/capk/mc_test_card_certs.json") &&
  fail "installed perso check: exit 0 on an expired certificate"
grep -q '^issuer certificate: ODA: certificate expired$' <<<"$out" ||
  fail "installed perso check did not use the installed CA key file: $out"
echo "installed into a DESTDIR: kortvagt $version runs, tlv decode and perso check (installed capk.json) work"
(cd build-release && cpack -G DEB -B "$TMP/deb" >"$TMP/cpack.log" 2>&1) ||
  { cat "$TMP/cpack.log"; fail "cpack -G DEB failed"; }
deb=$(ls "$TMP"/deb/kortvagt_*.deb)
dpkg-deb -c "$deb" >"$TMP/deb.list"
for f in usr/bin/kortvagt usr/bin/kortvagtd usr/share/kortvagt/capk.json; do
  grep -q " \./$f\$" "$TMP/deb.list" || fail "$deb lacks /$f"
done
dpkg-deb -f "$deb" Depends | grep -q libpcsclite1 || fail "$deb: no libpcsclite1 in Depends"
dpkg -x "$deb" "$TMP/deb-root"
out=$(installed "$TMP/deb-root/usr/bin/kortvagt" --version)
[ "$out" = "kortvagt $version" ] || fail "kortvagt --version from the .deb: '$out'"
echo "$(basename "$deb"): Depends: $(dpkg-deb -f "$deb" Depends)"

step "ASan+UBSan build and tests"
CC=clang cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DKV_SANITIZE=ON -DKV_WERROR=ON \
  >/dev/null
cmake --build build-asan -j "$JOBS"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan -L 'unit|fuzz' --output-on-failure -j "$JOBS"

step "libFuzzer build and corpus replay"
CC=clang cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug -DKV_FUZZ=ON -DKV_WERROR=ON \
  >/dev/null
cmake --build build-fuzz -j "$JOBS"
ctest --test-dir build-fuzz -L fuzz --output-on-failure -j "$JOBS"

export KV_REQUIRE_PG=1

step "integration tests with the ASan+UBSan binaries, against the virtual lab"
KORTVAGT_LAB="$REPO/build-asan/lab" KORTVAGT_BIN="$REPO/build-asan/bin/kortvagt" \
  bash scripts/lab.sh stop >/dev/null 2>&1 || true
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  KORTVAGT_LAB="$REPO/build-asan/lab" KORTVAGT_BIN="$REPO/build-asan/bin/kortvagt" \
  bash scripts/lab.sh run -- ctest --test-dir build-asan -L integration --output-on-failure

step "full suite against the virtual lab"
# The longest card tests ran above with the ASan+UBSan binaries: every card
# profile read in three modes and the card-present transactions (over a minute
# each), the EMV terminal per personality, its issuer scripts and the fault
# kinds. They are not run a second time here, to keep the whole run well under
# 15 minutes. Every other test runs again with the optimised binaries.
export KORTVAGT_LAB="$REPO/build/lab"
KORTVAGT_BIN="$REPO/build/bin/kortvagt" bash scripts/lab.sh stop >/dev/null 2>&1 || true
KORTVAGT_BIN="$REPO/build/bin/kortvagt" bash scripts/lab.sh run -- \
  ctest --test-dir build --output-on-failure \
  -E '^integration_test_(card_read|transact|emv_terminal|emv_scripts|emv_faults|emv_faults_records|vcard_faults)$'
