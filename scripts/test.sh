#!/usr/bin/env bash
# Every test of kortvagt, on a fresh Debian 12 machine:
#   deps -> format check -> build -> unit tests -> ASan+UBSan build, unit tests
#   and fuzz corpora -> libFuzzer build and corpus replay -> the integration
#   tests with the ASan+UBSan binaries against the virtual lab -> the full suite
#   (unit, fuzz corpora, integration) against the virtual lab. Ends with
#   ctest's summary.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
JOBS=$(nproc)
step() { printf '\n==== %s ====\n' "$*"; }

step "dependencies"
bash scripts/deps.sh

step "format check (clang-format)"
mapfile -t sources < <(git ls-files '*.c' '*.h' 2>/dev/null || find apdu hsm src tests -name '*.[ch]')
clang-format --dry-run -Werror "${sources[@]}"

step "build (RelWithDebInfo)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$JOBS"

step "unit tests"
ctest --test-dir build -L unit --output-on-failure -j "$JOBS"

step "ASan+UBSan build and tests"
CC=clang cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DKV_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$JOBS"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan -L 'unit|fuzz' --output-on-failure -j "$JOBS"

step "libFuzzer build and corpus replay"
CC=clang cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug -DKV_FUZZ=ON >/dev/null
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
export KORTVAGT_LAB="$REPO/build/lab"
KORTVAGT_BIN="$REPO/build/bin/kortvagt" bash scripts/lab.sh stop >/dev/null 2>&1 || true
KORTVAGT_BIN="$REPO/build/bin/kortvagt" bash scripts/lab.sh run -- \
  ctest --test-dir build --output-on-failure
