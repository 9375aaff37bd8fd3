#!/usr/bin/env bash
# Every C source and header in git is as clang-format (with .clang-format)
# leaves it; lists the files that are not. Fix with:
#   clang-format -i $(git ls-files '*.c' '*.h')
set -u
cd "$(dirname "$0")/../.."
command -v clang-format >/dev/null || { echo "FAIL - clang-format not installed"; exit 1; }
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find include src tools tests -name '*.[ch]')
bad=0
for f in $files; do
  if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
    echo "not formatted: $f"
    bad=$((bad + 1))
  fi
done
echo "$(echo "$files" | wc -w) files checked, $bad not formatted"
[ "$bad" -eq 0 ]
