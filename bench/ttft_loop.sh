#!/usr/bin/env bash
# ttft_loop.sh — builds bench/ttft_loop.c against a build's static libraries
# and runs it on the texts bench/chat_ttft.py uses (a 200-token system
# prompt, a 64-token message). Extra arguments (e.g. q4) go to ttft_loop;
# PERF=1 runs it under `perf record -g` into /tmp/ttft_loop.perf.
# usage: bench/ttft_loop.sh [BUILD_DIR] [MODEL] [THREADS] [TURNS] [q4|q8]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
MODEL=${2:-/tmp/q35-0.8b}
THREADS=${3:-2}
N=${4:-10}
shift $(($# < 4 ? $# : 4))
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
libs=""
for l in voice runtime constraint forward text model kernels formats core; do
  [ -f "$BUILD/libq35_$l.a" ] && libs="$libs $BUILD/libq35_$l.a"
  if [ $l = forward ] && [ -f "$BUILD/src/cuda/libq35_cuda.a" ]; then # the CUDA backend, if built
    cudart=$(find /usr/local/cuda*/lib /usr/local/cuda*/lib64 /usr/lib/x86_64-linux-gnu -name libcudart_static.a 2>/dev/null | head -1)
    libs="$libs $BUILD/src/cuda/libq35_cuda.a $BUILD/libq35_model.a $cudart -lstdc++ -ldl -lrt"
  fi
done
cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude bench/ttft_loop.c $libs \
  $(pkg-config --libs libcjson libpcre2-8 libutf8proc libcurl libcrypto) -lm -lpthread \
  -o "$work/ttft_loop"
texts=$(/usr/bin/python3 - "$BUILD/q35" "$MODEL" <<'PY'
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("ct", "bench/chat_ttft.py")
sys.argv = [sys.argv[0], sys.argv[1], sys.argv[2], "2", "0"]
ct = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ct)
print(json.dumps([ct.text_of(200, 0), ct.text_of(64, 17)]))
PY
)
sys_text=$(/usr/bin/python3 -c 'import json,sys; print(json.loads(sys.argv[1])[0])' "$texts")
user_text=$(/usr/bin/python3 -c 'import json,sys; print(json.loads(sys.argv[1])[1])' "$texts")
run=("$work/ttft_loop" "$MODEL" "$THREADS" "$N" "$sys_text" "$user_text" "$@")
if [ "${PERF:-0}" = 1 ]; then
  perf record -g -o /tmp/ttft_loop.perf -- "${run[@]}"
else
  "${run[@]}"
fi
