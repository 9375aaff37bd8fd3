#!/usr/bin/env bash
# quant_vs_llama.sh — q35 against llama.cpp on the same 8- and 4-bit
# checkpoint, same machine, same run (BENCHMARKS.md "CPU forward,
# quantized"). Steps:
#  1. the random full-size Qwen3.5-0.8B (../shared/bench/make_fullsize.py);
#  2. `q35 convert` to a bf16 GGUF in llama.cpp's layout, then llama.cpp's
#     own llama-quantize to Q8_0 and Q4_0 (so both engines read files made
#     by llama.cpp's quantizer);
#  3. llama-bench and `q35 bench` on each file, -p 512 -n 128, 2 threads,
#     alternating engines so that load changes hit both.
# llama.cpp is the release bundled in the npm package node-llama-cpp 3.22.1
# (as in ../shared/bench/README.md), built from its git bundle with the
# AVX-512 kernels and without AMX (its AMX path crashes on this machine
# kind). Everything lives under $WORK (default /tmp/q35-bench), not in git.
# usage: bench/quant_vs_llama.sh [Q35_BINARY] [REPS]
set -euo pipefail
cd "$(dirname "$0")/.."
Q35=$(realpath "${1:-build/q35}")
REPS=${2:-3}
WORK=${WORK:-/tmp/q35-bench}
MODEL=${MODEL:-/tmp/q35-0.8b}
mkdir -p "$WORK"
if [ ! -f "$MODEL/model.safetensors" ]; then
  /usr/bin/python3 ../shared/bench/make_fullsize.py "$MODEL" \
    ../shared/golden/tokenizer/tokenizer.qwen35.json ../shared/golden/tokenizer/tokenizer_config.qwen3.json
fi
LLAMA=$WORK/llama.cpp
if [ ! -x "$LLAMA/build/bin/llama-bench" ]; then
  (cd "$WORK" && npm pack -q node-llama-cpp@3.22.1 >/dev/null &&
     mkdir -p pkg && tar xzf node-llama-cpp-3.22.1.tgz -C pkg &&
     rm -rf "$LLAMA" && git clone -q pkg/package/llama/gitRelease.bundle "$LLAMA")
  cmake -S "$LLAMA" -B "$LLAMA/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF \
    -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=ON \
    -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AVX512_VBMI=ON -DGGML_AMX_TILE=OFF \
    -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_SERVER=OFF >/dev/null
  cmake --build "$LLAMA/build" -j"$(nproc)" --target llama-bench llama-quantize >/dev/null
fi
[ -f "$WORK/bf16.gguf" ] || "$Q35" convert "$MODEL" "$WORK/bf16.gguf" --type bf16 -q
for t in Q8_0 Q4_0; do
  [ -f "$WORK/$t.gguf" ] || "$LLAMA/build/bin/llama-quantize" "$WORK/bf16.gguf" "$WORK/$t.gguf" "$t" 2 >/dev/null 2>&1
done
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
llama_line() { # file: "pp512 X tg128 Y" from llama-bench's JSON
  "$LLAMA/build/bin/llama-bench" -m "$1" -p 512 -n 128 -t 2 -r 1 -o json 2>/dev/null |
    /usr/bin/python3 -c 'import json, sys
print(" ".join("%s %.2f" % ("pp%d" % r["n_prompt"] if r["n_prompt"] else "tg%d" % r["n_gen"],
                            r["avg_ts"]) for r in json.load(sys.stdin)))'
}
q35_line() { # file, extra options: the same from q35 bench --json
  # shellcheck disable=SC2086
  "$Q35" bench -m "$1" $2 -p 512 -n 128 -t 2 -r 1 --json |
    /usr/bin/python3 -c 'import json, sys
r = json.load(sys.stdin)
print("pp512 %.2f tg128 %.2f ttft_ms %.1f rss_mb %.0f" % (r["prefill_tok_s"], r["decode_tok_s"],
                                                          r["ttft_ms"], r["peak_rss_mb"]))'
}
for t in Q8_0 Q4_0; do
  # Q4_0 files from llama-quantize keep the tied embedding at Q6_K, which q35
  # has no kernel for (it would be decoded to float32): --quant q4 makes it
  # Q4_0 too, as q35 would hold such a model.
  extra=; [ "$t" = Q4_0 ] && extra="--quant q4"
  for rep in $(seq "$REPS"); do
    echo "llama.cpp $t: $(llama_line "$WORK/$t.gguf")"
    echo "q35 $t $extra: $(q35_line "$WORK/$t.gguf" "$extra")"
  done
done
