#!/usr/bin/env bash
# tokenizer_bench.sh — the figures of BENCHMARKS.md "Tokenizer": load time of
# a 248k-token tokenizer.json (JSON parse, then from the binary cache) and of
# the real 151k one, and encode throughput on ~10 MB texts. Medians of
# several runs of `q35 tokenize --timing`.
# usage: bench/tokenizer_bench.sh [Q35_BINARY]
# The tokenizer and test strings come from tests/data/tokenizer.
set -euo pipefail
cd "$(dirname "$0")/.."
Q35=${1:-build/q35}
TOKDATA=tests/data/tokenizer
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export XDG_CACHE_HOME=$work/cache
tok=$work/tokenizer.qwen35.json
xz -dc "$TOKDATA/tokenizer.qwen35.json.xz" >"$tok"
python3 bench/tokenizer_make_248k.py "$tok" "$work/tok248k" >&2
python3 bench/tokenizer_make_text.py "$TOKDATA/tok_cases.json" "$work/text"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
load_ms() { # model, runs, env...
  local m=$1 n=$2; shift 2
  for _ in $(seq "$n"); do
    env "$@" "$Q35" tokenize -m "$m" --text hi --timing 2>&1 >/dev/null | sed -E 's/^load ([0-9.]+) ms.*/\1/'
  done | median
}
for m in "$work/tok248k" "$tok"; do
  n=$("$Q35" tokenize -m "$m" --text hi --timing 2>&1 >/dev/null | sed -E 's/.*\(([0-9]+) ids\).*/\1/')
  echo "vocabulary $n: load from JSON $(load_ms "$m" 5 Q35_NO_TOKENIZER_CACHE=1) ms," \
       "from cache $(load_ms "$m" 9 Q35_NO_TOKENIZER_CACHE=0) ms (median)"
done
for t in mixed random; do
  for _ in 1 2 3; do
    "$Q35" tokenize -m "$tok" --file "$work/text/$t.txt" --timing \
      2>&1 >/dev/null | sed -E 's/.*\(([0-9.]+) MB\/s\).*/\1/'
  done | median | xargs echo "encode $t.txt (10 MB), MB/s (median of 3):"
done
