#!/usr/bin/env bash
# The repository stands alone (issue 9): nothing in the build, the tests,
# the scripts or the sources reads the development checkout's sibling
# folder of reference data, and the old variables that named it are gone.
# Checked: every file git tracks (or, outside git, every file under the
# code folders), except notes and Markdown, which may tell history.
set -u
cd "$(dirname "$0")/../.."
# each spelled in pieces so that this file passes itself
sib='\.\./'"shared"
old_var='Q35_''GOLDEN'
pattern="$sib|shared/(golden|bench)|$old_var"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  files=$(git ls-files | grep -v -E '^\.notes/|\.md$')
else
  files=$(find CMakeLists.txt .ci bench examples include scripts src tests tools -type f \
            ! -name '*.md' ! -path '*/__pycache__/*' ! -path '*/node_modules/*' 2>/dev/null)
fi
bad=0
for f in $files; do
  [ -f "$f" ] || continue
  if hits=$(grep -I -n -E "$pattern" "$f"); then
    while IFS= read -r h; do echo "reads outside the repo: $f:$h"; done <<<"$hits"
    bad=$((bad + 1))
  fi
done
echo "$(echo "$files" | wc -w) files checked, $bad name the sibling reference folder"
[ "$bad" -eq 0 ]
