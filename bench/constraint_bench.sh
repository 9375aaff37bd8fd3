#!/usr/bin/env bash
# constraint_bench.sh — the figures of BENCHMARKS.md "Structured output":
# the mask's cost per token against a decode step on the full-size random
# Qwen3.5-0.8B checkpoint with a real-size (248k) vocabulary, and schema
# compile time. Builds bench/constraint_bench.c against a build's static
# libraries.
# usage: bench/constraint_bench.sh [BUILD_DIR] [MODEL_DIR] [N_TOKENS] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
MODEL=${2:-/tmp/q35-0.8b}
N=${3:-128}
THREADS=${4:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ ! -f "$MODEL/model.safetensors" ]; then
  /usr/bin/python3 bench/make_checkpoint.py "$MODEL"
fi
xz -dc tests/data/tokenizer/tokenizer.qwen35.json.xz >"$work/tokenizer.qwen35.json"
/usr/bin/python3 bench/tokenizer_make_248k.py "$work/tokenizer.qwen35.json" "$work/tok248k" >&2
libs=""
for l in voice runtime constraint forward text model kernels formats core; do
  [ -f "$BUILD/libq35_$l.a" ] && libs="$libs $BUILD/libq35_$l.a"
done
cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude bench/constraint_bench.c $libs \
  $(pkg-config --libs libcjson libpcre2-8 libutf8proc libcurl libcrypto) -lm -lpthread \
  -o "$work/constraint_bench"
cat >"$work/schema.json" <<'JSON'
{"type": "object",
 "properties": {
   "intent": {"enum": ["lights_on", "lights_off", "set_timer", "play_music", "weather"]},
   "room": {"type": ["string", "null"], "maxLength": 24},
   "minutes": {"type": "integer", "minimum": 1, "maximum": 180},
   "when": {"type": "string", "format": "date-time"},
   "slots": {"type": "array", "items": {"type": "object",
             "properties": {"name": {"type": "string", "maxLength": 32},
                            "value": {"anyOf": [{"type": "string", "maxLength": 64},
                                                {"type": "number"}, {"type": "boolean"}]}},
             "required": ["name", "value"], "additionalProperties": false},
             "maxItems": 8},
   "confidence": {"type": "number"},
   "reply": {"type": "string", "maxLength": 200}},
 "required": ["intent", "room", "reply"],
 "additionalProperties": false}
JSON
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$work/constraint_bench" "$MODEL" "$work/tok248k" "$work/schema.json" "$N" "$THREADS"
