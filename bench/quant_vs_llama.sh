#!/usr/bin/env bash
# quant_vs_llama.sh — q35 against llama.cpp on the same 8- and 4-bit
# checkpoint, same machine, same run (BENCHMARKS.md "CPU forward,
# quantized"). Steps:
#  1. the random full-size Qwen3.5-0.8B (bench/make_checkpoint.py);
#  2. `q35 convert` to a bf16 GGUF in llama.cpp's layout, then llama.cpp's
#     own llama-quantize to Q8_0 and Q4_0 (so both engines read files made
#     by llama.cpp's quantizer);
#  3. llama-bench and `q35 bench` on each file, -p 512 -n 128, 2 threads,
#     alternating engines so that load changes hit both.
# llama.cpp is the release bundled in the npm package node-llama-cpp 3.22.1,
# built by bench/llama_cpp.sh for the CPU at hand (each AVX-512 / AVX-VNNI
# option from /proc/cpuinfo, AMX off). On an AVX-512 machine a second,
# AVX2-only llama.cpp runs against q35 with Q35_KERNELS=avx2, so the AVX2
# ratio is measured too. Each result line names the instruction sets used.
# Everything lives under $WORK (default /tmp/q35-bench), not in git.
# usage: bench/quant_vs_llama.sh [Q35_BINARY] [REPS]
# env: LLAMA=DIR       a llama.cpp build dir (with bin/llama-bench) to use
#                      as it is instead of building one
#      LLAMA_AVX2=DIR  the same for the AVX2-only build
#      ISAS="native avx2"  which pairs to run (avx2 only where AVX-512 is)
#      MODEL, WORK
set -euo pipefail
cd "$(dirname "$0")/.."
Q35=$(realpath "${1:-build/q35}")
REPS=${2:-3}
WORK=${WORK:-/tmp/q35-bench}
MODEL=${MODEL:-/tmp/q35-0.8b}
mkdir -p "$WORK"
if [ ! -f "$MODEL/model.safetensors" ]; then
  /usr/bin/python3 bench/make_checkpoint.py "$MODEL"
fi
avx512=0; grep -qw avx512f /proc/cpuinfo 2>/dev/null && avx512=1
if [ -z "${ISAS:-}" ]; then
  ISAS=native
  if [ $avx512 = 1 ]; then ISAS="native avx2"; fi
fi
LLAMA=${LLAMA:-$WORK/llama-native}
LLAMA_AVX2=${LLAMA_AVX2:-$WORK/llama-avx2}
isa_native=$(bench/llama_cpp.sh "$LLAMA")
isa_avx2=
if [[ " $ISAS " == *" avx2 "* ]]; then isa_avx2=$(bench/llama_cpp.sh --avx2 "$LLAMA_AVX2"); fi
QUANTIZE=$LLAMA/bin/llama-quantize
[ -f "$WORK/bf16.gguf" ] || "$Q35" convert "$MODEL" "$WORK/bf16.gguf" --type bf16 -q
for t in Q8_0 Q4_0; do
  [ -f "$WORK/$t.gguf" ] || "$QUANTIZE" "$WORK/bf16.gguf" "$WORK/$t.gguf" "$t" 2 >/dev/null 2>&1
done
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "CPU flags: $(grep -m1 -o -w 'avx2\|fma\|f16c\|avx_vnni\|avx512f\|avx512bw\|avx512vl\|avx512_vnni\|avx512_bf16\|avx512vbmi\|amx_tile\|amx_int8' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "native pair: $isa_native; q35 kernels ${Q35_KERNELS:-auto (best the CPU has)}"
[ -n "$isa_avx2" ] && echo "avx2 pair: $isa_avx2; q35 kernels Q35_KERNELS=avx2"
llama_line() { # build dir, file: "pp512 X tg128 Y" from llama-bench's JSON
  "$1/bin/llama-bench" -m "$2" -p 512 -n 128 -t 2 -r 1 -o json 2>/dev/null |
    /usr/bin/python3 -c 'import json, sys
print(" ".join("%s %.2f" % ("pp%d" % r["n_prompt"] if r["n_prompt"] else "tg%d" % r["n_gen"],
                            r["avg_ts"]) for r in json.load(sys.stdin)))'
}
q35_line() { # kernels (or "" for auto), file, extra options: the same from q35 bench --json
  local k=$1; shift
  # shellcheck disable=SC2086
  env ${k:+Q35_KERNELS=$k} "$Q35" bench -m "$1" $2 -p 512 -n 128 -t 2 -r 1 --json |
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
  for isa in $ISAS; do
    if [ "$isa" = avx2 ]; then dir=$LLAMA_AVX2 k=avx2; else dir=$LLAMA k=${Q35_KERNELS:-}; fi
    for rep in $(seq "$REPS"); do
      echo "[$isa] llama.cpp $t: $(llama_line "$dir" "$WORK/$t.gguf")"
      echo "[$isa] q35 $t $extra: $(q35_line "$k" "$WORK/$t.gguf" "$extra")"
    done
  done
done
