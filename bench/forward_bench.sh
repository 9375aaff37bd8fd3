#!/usr/bin/env bash
# forward_bench.sh — the figures of BENCHMARKS.md "CPU forward (bf16)":
# `q35 bench` on the random full-size Qwen3.5-0.8B checkpoint, llama-bench
# style (pp = one prompt of P tokens, tg = N tokens one at a time), best of
# several runs because the machine is shared.
# usage: bench/forward_bench.sh [Q35_BINARY] [MODEL_DIR] [THREADS] [RUNS]
# The model is made once with bench/make_checkpoint.py; it is 1.5 GB and
# stays out of git.
set -euo pipefail
cd "$(dirname "$0")/.."
Q35=${1:-build/q35}
MODEL=${2:-/tmp/q35-0.8b}
THREADS=${3:-2}
RUNS=${4:-5}
if [ ! -f "$MODEL/model.safetensors" ]; then
  /usr/bin/python3 bench/make_checkpoint.py "$MODEL"
fi
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "CPU flags: $(grep -m1 -o -w 'avx2\|fma\|avx512f\|avx512_vnni\|avx512_bf16\|amx_tile\|asimddp\|i8mm' /proc/cpuinfo | sort -u | tr '\n' ' '); q35 kernels ${Q35_KERNELS:-auto (best the CPU has)}"
for shape in "-p 512 -n 128" "-p 64 -n 32"; do
  # shellcheck disable=SC2086
  "$Q35" bench -m "$MODEL" $shape -t "$THREADS" -r "$RUNS" --json
done
