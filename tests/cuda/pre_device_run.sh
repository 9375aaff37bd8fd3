#!/bin/bash
# pre_device_run.sh STAGES — cudapre's one call on the device machine (as
# device_run.sh, but the tree is .cuda-dev/pre-src.tar from
# .cuda-dev/pre-mktar.sh). STAGES, comma-separated: kern (test_cuda_prefill:
# the prefill kernels against float64 and the kernels they replace, with
# their times), test (test_cuda_forward, goldens and chat goldens on the
# GPU), san / race (memcheck / racecheck of test_cuda_prefill's correctness part),
# bench (bench_cuda pp512 + ttft, before = Q35_CUDA_PREFILL_GEMM=off
# Q35_CUDA_GDN=recurrent, after = split / chunk, in the same call; Q35_MORE:
# single settings on top of `after`, bf16 only). Logs go to $OUT.
set -o pipefail
D=$(cd "$(dirname "$0")/../../.cuda-dev" && pwd)
OUT=${OUT:-/tmp/out}
S=${1:-kern,test,bench}
mkdir -p "$OUT" /tmp/deps
for f in "$D"/debs/*.deb; do dpkg -x "$f" /tmp/deps; done
L=/tmp/deps/usr/lib/x86_64-linux-gnu
sed -i "s|^prefix=.*|prefix=/tmp/deps/usr|; s|=/usr|=/tmp/deps/usr|g" $L/pkgconfig/*.pc
export PKG_CONFIG_PATH=$L/pkgconfig LD_LIBRARY_PATH=$L:/tmp/deps/lib/x86_64-linux-gnu:$LD_LIBRARY_PATH
export CPATH=/tmp/deps/usr/include:/tmp/deps/usr/include/x86_64-linux-gnu LIBRARY_PATH=$L
SRC=$(pwd)
if [[ $S == *bench* ]]; then
  ( echo "{}" >/tmp/tj.json; t0=$(date +%s)
    [ -d /tmp/m08 ] || timeout 240 python3 "$D/make_fullsize.py" /tmp/m08 /tmp/tj.json /tmp/tj.json >/dev/null
    echo "gen $(($(date +%s) - t0)) s" ) >/tmp/gen.log 2>&1 &
  GEN=$!
fi
cd /tmp && rm -rf q35 && mkdir q35 && cd q35 && tar xf "$D/pre-src.tar" && cp -r "$SRC/tests/data" tests/
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader
cmake -S . -B b -DCMAKE_BUILD_TYPE=Release -DQ35_PYTHON="$(command -v python3)" >/tmp/cfg.log 2>&1 ||
  { tail -20 /tmp/cfg.log; exit 1; }
t0=$(date +%s)
cmake --build b -j16 --target test_cuda_prefill test_cuda_forward bench_cuda test_golden \
  test_chat_golden >"$OUT/build.log" 2>&1 || { grep -iE "error" "$OUT/build.log" | head -30; exit 1; }
echo "build $(($(date +%s) - t0)) s"
cd b
rc=0
if [[ $S == *kern* ]]; then
  timeout 150 ./tests/test_cuda_prefill >"$OUT/prefill.log" 2>&1 || rc=1
  grep -E "^gdn|all five|FAIL|PASSED|Error|error" "$OUT/prefill.log" | cut -c1-230
  grep -E "^gemm" "$OUT/prefill.log" | awk '{print $2,$3,$4,$5,$6,$10,$12,$14,$16}' | sort -u -k1,1 -k6,6r | head -6
fi
if [[ $S == *test* ]]; then
  export Q35_CUDA_PREFILL_GEMM=${Q35_CUDA_PREFILL_GEMM:-split} Q35_CUDA_GDN=${Q35_CUDA_GDN:-chunk}
  timeout 120 ./tests/test_cuda_forward >"$OUT/test_cuda.log" 2>&1 || rc=1
  grep -E "vs CPU|PASSED|FAILED|rror" "$OUT/test_cuda.log" | head -12
  Q35_DEVICE=cuda timeout 90 ./tests/test_golden >"$OUT/golden.log" 2>&1 || rc=1
  grep -E "worst|FAIL|PASSED" "$OUT/golden.log" | tail -8
  Q35_CUDA_PREFILL_GEMM=bf16 Q35_DEVICE=cuda timeout 90 ./tests/test_golden 2>&1 |
    grep -E "worst|FAIL|PASSED" | tail -3 | sed 's/^/[bf16 activations] /'
  Q35_DEVICE=cuda timeout 90 ./tests/test_chat_golden >"$OUT/chat.log" 2>&1 || rc=1
  tail -2 "$OUT/chat.log"
  unset Q35_CUDA_PREFILL_GEMM Q35_CUDA_GDN
fi
if [[ $S == *san* ]]; then
  Q35_PREFILL_QUICK=1 timeout 100 compute-sanitizer --tool memcheck --error-exitcode 9 \
    ./tests/test_cuda_prefill >"$OUT/memcheck.log" 2>&1; echo "memcheck rc=$?"
  grep -E "ERROR SUMMARY" "$OUT/memcheck.log" | head -3
fi
if [[ $S == *race* ]]; then
  Q35_PREFILL_QUICK=1 timeout 150 compute-sanitizer --tool racecheck --racecheck-report hazard \
    --error-exitcode 9 ./tests/test_cuda_prefill >"$OUT/racecheck.log" 2>&1; echo "racecheck rc=$?"
  grep -E "RACECHECK SUMMARY|hazard" "$OUT/racecheck.log" | head -3
fi
if [ -n "$GEN" ]; then wait $GEN; cat /tmp/gen.log; fi
if [[ $S == *bench* ]]; then
  for q in none q8 q4; do
    for v in "Q35_CUDA_PREFILL_GEMM=off Q35_CUDA_GDN=recurrent" "Q35_CUDA_PREFILL_GEMM=split Q35_CUDA_GDN=chunk" \
      ${Q35_VARIANTS:+"$Q35_VARIANTS"}; do
      env $v timeout 90 ./tests/bench_cuda /tmp/m08 $q 512 8 2>&1 | tee -a "$OUT/bench.log" |
        grep -oE "weights [a-z0-9_ ]+|pp512 [0-9]+ tok/s|ttft.*" | tr '\n' ' ' | sed "s/^/[$v] /"
      echo
    done
  done
  if [ -n "$Q35_MORE" ]; then
    for v in $Q35_MORE; do
      env Q35_CUDA_PREFILL_GEMM=split Q35_CUDA_GDN=chunk $v timeout 90 ./tests/bench_cuda /tmp/m08 none 512 8 2>&1 | tee -a "$OUT/bench.log" |
        grep -oE "pp512 [0-9]+ tok/s|ttft.*" | tr '\n' ' ' | sed "s/^/[$v] /"
      echo
    done
  fi
fi
exit $rc
