#!/bin/bash
# pre_extra.sh — cudapre's part of a shared device call, run from the build
# directory of device_run.sh (or pre_device_run.sh) once the model /tmp/m08
# exists: builds and runs test_cuda_prefill (prefill kernels against float64,
# their times, the opt-in double-buffered DeltaNet state pass too), then
# pp512 + ttft with Q35_CUDA_GDN_PREFETCH=1 and Q35_CUDA_CONV_PAR=1 (bf16:
# each and both; Q8_0, Q4_0: both) (the defaults are device_run.sh's
# own bench lines; PRE_BEFORE=1 adds the before-variant, prefill GEMM off
# and the recurrent DeltaNet). Logs into $OUT/prefill.log and
# $OUT/pre_bench.log; about 75 s (105 with PRE_BEFORE; PRE_SHORT=1: the test
# alone, ~25 s).
OUT=${OUT:-/tmp/out}
cmake --build . -j16 --target test_cuda_prefill >"$OUT/pre_build.log" 2>&1 ||
  { grep -iE "error" "$OUT/pre_build.log" | head; exit 1; }
timeout 120 ./tests/test_cuda_prefill >"$OUT/prefill.log" 2>&1; echo "test_cuda_prefill rc=$?"
grep -E "^gdn|conv over|all five|FAILED|PASSED|PREFETCH" "$OUT/prefill.log" | cut -c1-200
[ -n "$PRE_SHORT" ] && exit 0
for q in none q8 q4; do
  V="Q35_CUDA_GDN_PREFETCH=1,Q35_CUDA_CONV_PAR=1"
  [ $q = none ] && V="Q35_CUDA_GDN_PREFETCH=1 Q35_CUDA_CONV_PAR=1 $V"
  [ -n "$PRE_BEFORE" ] && V="$V Q35_CUDA_PREFILL_GEMM=off,Q35_CUDA_GDN=recurrent"
  for v in $V; do
    v=${v//,/ }
    env $v timeout 90 ./tests/bench_cuda /tmp/m08 $q 512 8 2>&1 | tee -a "$OUT/pre_bench.log" |
      grep -oE "weights [a-z0-9_ ]+|pp512 [0-9]+ tok/s|ttft.*" | tr '\n' ' ' | sed "s/^/[$v] /"
    echo
  done
done
