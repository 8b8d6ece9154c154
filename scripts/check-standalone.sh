#!/usr/bin/env bash
# check-standalone.sh -- the repository must build, test and document itself
# with nothing beside it. Fails (exit 1) and prints FILE:LINE for every line of
# a tracked file, or of an untracked file that .gitignore does not hide, that
# refers to a sibling "shared" folder outside the repository (its relative
# path from the repository root, or the absolute path of the development
# machines). Without git (an exported tree) it checks every file except build
# directories.
#
# The pattern is put together from pieces at run time, so this script holds no
# literal hit of its own and needs no exclusion that could hide a real one.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

outside=shared
pattern="\\.\\./${outside}|/work/${outside}"

list_files() {
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard
  else
    find . \( -name .git -o -name 'build*' \) -prune -o -type f -print0
  fi
}

# -I skips binary files; -s ignores files listed by git but deleted on disk.
hits=$(list_files | xargs -0 -r grep -nIsE -- "$pattern" || true)
if [ -n "$hits" ]; then
  printf '%s\n' "$hits" | sed 's|^\./||'
  n=$(printf '%s\n' "$hits" | wc -l)
  echo "check-standalone: FAIL: $n line(s) refer to a folder outside the repository" \
    "(use src/RULES.md, tests/data/VECTORS.md, tests/data/traces/ instead)" >&2
  exit 1
fi
echo "check-standalone: OK"
