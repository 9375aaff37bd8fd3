#!/bin/bash
# device_run.sh STAGES — one call on the device machine (the lent H100 of
# this workplace; see tests/cuda/run_on_gpu.sh for any machine with a GPU
# and the packages installed). The machine lacks the project's Debian
# packages, so the ignored .cuda-dev/ carries them (.cuda-dev/debs, unpacked
# under /tmp/deps) and the tree to build (.cuda-dev/src.tar: HEAD with the
# CUDA files of the working tree over it, so that other people's unfinished
# edits never reach the build). STAGES: any of test san race bench llama
# nopdl prof phases ks vtest ptxas, comma-separated. The random full-size model (/tmp/m08) is made in
# the background while the tests run; "llama" converts it to GGUF (bf16,
# q8, q4) with `q35 convert` and runs .cuda-dev/llama-bench(.xz) on each, in
# the same call as bench_cuda ("bench" runs without it). Logs go to $OUT.
set -o pipefail
D=$(cd "$(dirname "$0")/../../.cuda-dev" && pwd)
OUT=${OUT:-/tmp/out}
S=${1:-test,bench}
mkdir -p "$OUT" /tmp/deps
for f in "$D"/debs/*.deb; do dpkg -x "$f" /tmp/deps; done
L=/tmp/deps/usr/lib/x86_64-linux-gnu
sed -i "s|^prefix=.*|prefix=/tmp/deps/usr|; s|=/usr|=/tmp/deps/usr|g" $L/pkgconfig/*.pc
sed -i "/^Requires.private/d" $L/pkgconfig/libmicrohttpd.pc 2>/dev/null # gnutls: runtime only
export PKG_CONFIG_PATH=$L/pkgconfig LD_LIBRARY_PATH=$L:/tmp/deps/lib/x86_64-linux-gnu:$LD_LIBRARY_PATH
export PATH=$PATH:/tmp/deps/usr/bin # pkg-config where the machine has none (pkgconf deb)
export CPATH=/tmp/deps/usr/include:/tmp/deps/usr/include/x86_64-linux-gnu LIBRARY_PATH=$L
SRC=$(pwd)
cd /tmp && rm -rf q35 && mkdir q35 && cd q35 && tar xf "$D/src.tar" && cp -r "$SRC/tests/data" tests/
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader
# ptxas: registers and spills of every kernel (ptxas -v), the persistent kernel's printed
PT=; [[ $S == *ptxas* ]] && PT=-DCMAKE_CUDA_FLAGS=--ptxas-options=-v
cmake -S . -B b -DCMAKE_BUILD_TYPE=Release -DQ35_PYTHON="$(command -v python3)" $PT >/tmp/cfg.log 2>&1 ||
  { tail -20 /tmp/cfg.log; exit 1; }
# the random model, made while the build runs (.cuda-dev/tok.tar.xz: the
# real tokenizer files, which q35 convert needs for the GGUFs)
if [[ $S == *bench* || $S == *llama* ]] && [ ! -d /tmp/m08 ]; then
  (
    TJ=/tmp/tj.json TC=/tmp/tj.json
    echo "{}" >/tmp/tj.json
    if [ -f "$D/tok.tar.xz" ]; then
      mkdir -p /tmp/tok && tar xJf "$D/tok.tar.xz" -C /tmp/tok && TJ=/tmp/tok/tokenizer.json TC=/tmp/tok/tokenizer_config.json
    fi
    timeout 240 python3 "$D/make_fullsize.py" /tmp/m08 $TJ $TC >/dev/null
    touch /tmp/m08.done
  ) >/tmp/gen0.log 2>&1 &
fi
t0=$(date +%s)
T="bench_cuda"
[[ $S == *test* || $S == *ks* || $S == *san* || $S == *race* ]] && T="$T test_cuda_forward test_golden test_chat_golden"
[[ $S == *llama* ]] && T="$T q35_cli"
cmake --build b -j16 --target $T >/tmp/build.log 2>&1 || { cp /tmp/build.log "$OUT/"; grep -iE "error" /tmp/build.log | head -30; exit 1; }
echo "build $(($(date +%s) - t0)) s"
if [[ $S == *ptxas* ]]; then
  cp /tmp/build.log "$OUT/"
  grep -A3 "entry function '_Z11mega_kernel" /tmp/build.log | grep -v "Function properties" | grep -oE "_Z11mega_kernel[A-Za-z0-9_]*|[0-9]+ bytes spill (stores|loads)|Used [0-9]+ registers" |
    paste -sd' ' | sed 's/ _Z11/\n_Z11/g'
fi
cd b
# the model, and its GGUFs, made beside the tests
if [[ $S == *bench* || $S == *llama* ]]; then
  (
    t0=$(date +%s)
    for i in $(seq 240); do [ -f /tmp/m08.done ] && break; sleep 1; done
    echo "gen waited $(($(date +%s) - t0)) s"; cat /tmp/gen0.log
    if [[ $S == *llama* ]]; then
      for t in bf16 q8 q4; do
        timeout 120 ./q35 convert /tmp/m08 /tmp/m08-$t.gguf --type $t -q || echo "convert $t failed"
      done
      echo "convert $(($(date +%s) - t0)) s"
    fi
  ) >/tmp/gen.log 2>&1 &
  GEN=$!
fi
rc=0
if [[ $S == *test* ]]; then
  if ! timeout 120 ./tests/test_cuda_forward 2>&1 | tee "$OUT/test_cuda.log" | tail -25; then
    rc=1
    echo "== again without programmatic dependent launch"
    Q35_CUDA_PDL=0 timeout 120 ./tests/test_cuda_forward 2>&1 | tail -12
  fi
  Q35_DEVICE=cuda timeout 90 ./tests/test_golden >"$OUT/golden.log" 2>&1 || rc=1
  grep -E "worst|FAIL|PASSED|rel" "$OUT/golden.log" | tail -12
  Q35_DEVICE=cuda timeout 90 ./tests/test_chat_golden >/tmp/chat.log 2>&1 || rc=1
  tail -4 /tmp/chat.log; cat /tmp/chat.log >>"$OUT/golden.log"
fi
if [[ $S == *san* ]]; then
  t0=$(date +%s)
  timeout 150 compute-sanitizer --tool memcheck --error-exitcode 9 ./tests/test_cuda_forward \
    >"$OUT/memcheck.log" 2>&1
  echo "memcheck rc=$? ($(($(date +%s) - t0)) s)"; grep -E "ERROR SUMMARY|Invalid|PASSED|FAILED" "$OUT/memcheck.log" | head -6
fi
if [[ $S == *race* ]]; then
  # in parts (racecheck replays slowly): the float path (prefill kernels and
  # the one-kernel decode step), the sampling kernels (6 steps a setting),
  # the launch-per-phase decode kernels (Q4_0)
  for part in ${Q35_RACE_PARTS:-"test_float*|" "test_sampling|Q35_CUDA_TEST_QUICK=1" "test_q4*|Q35_CUDA_MEGA=0" "test_batch|"}; do
    f=${part%%|*}; v=${part#*|}; t0=$(date +%s)
    env $v Q35_CUDA_TEST_FILTER="$f" timeout 110 compute-sanitizer --tool racecheck \
      --racecheck-report hazard --error-exitcode 9 ./tests/test_cuda_forward >"$OUT/race-${f%%\*}.log" 2>&1
    echo "racecheck $f $v rc=$? ($(($(date +%s) - t0)) s)"
    grep -E "RACECHECK SUMMARY|hazard|PASSED|FAILED" "$OUT/race-${f%%\*}.log" | head -4
  done
fi
if [ -n "$GEN" ]; then
  wait $GEN
  cat /tmp/gen.log
fi
if [[ $S == *llama* ]]; then
  LB="$D/llama-bench"
  [ -x "$LB" ] || { [ -f "$LB.xz" ] && xz -dc "$LB.xz" >/tmp/llama-bench && chmod +x /tmp/llama-bench && LB=/tmp/llama-bench; }
  if [ -x "$LB" ]; then
    for t in q4 q8 bf16; do
      echo "-- llama.cpp $t"
      timeout 150 "$LB" -m /tmp/m08-$t.gguf -ngl 99 -fa 1 -p 512 -n 128 -r 3 2>&1 |
        tee -a "$OUT/llama.log" | grep -E "^\|" | tail -2
    done
  else
    echo "llama-bench: not carried"
  fi
fi
if [[ $S == *bench* ]]; then
  for q in ${Q35_FORMATS:-none q4 q8}; do
    timeout 90 ./tests/bench_cuda /tmp/m08 $q 512 128 2>&1 | tee -a "$OUT/bench.log" | tail -3
    # Q35_VARIANTS: env settings to compare in the same call, e.g. Q35_CUDA_GV=old
    # (A=1+B=2: two settings in one variant)
    [[ " ${Q35_VARIANT_FORMATS:-none q4 q8} " == *" $q "* ]] || continue
    for v in $Q35_VARIANTS; do
      env ${v//+/ } timeout 90 ./tests/bench_cuda /tmp/m08 $q 64 128 2>&1 | grep -E "^pp|^batched" | sed "s/^/$v /" |
        tee -a "$OUT/bench.log" | tail -2
    done
  done
  if [[ $S == *nopdl* ]]; then
    for q in none q4; do
      Q35_CUDA_PDL=0 timeout 90 ./tests/bench_cuda /tmp/m08 $q 512 128 2>&1 | sed 's/^/nopdl /' |
        tee -a "$OUT/bench.log" | tail -1
    done
  fi
fi
if [[ $S == *prof* ]]; then
  # kernel times of the decode step (Q4_0): the embedding, the persistent
  # kernel, the head's GEMV and argmax, each alone under ncu
  t0=$(date +%s)
  timeout 90 ncu --metrics gpu__time_duration.sum -k regex:"mega_kernel|gemv_kernel|argmax_final|embed_kernel" \
    --launch-count 12 --csv ./tests/bench_cuda /tmp/m08 q4 16 4 >/tmp/prof.log 2>&1
  echo "ncu rc=$? ($(($(date +%s) - t0)) s)"
  grep -E "gpu__time_duration" /tmp/prof.log | awk -F'","' '{print $(NF), $9, $5}' | sed 's/"//g' | cut -c1-90
fi
if [[ $S == *phases* ]]; then
  # the persistent kernel's phases, clocked inside it (Q35_CUDA_MEGA_PROF=1;
  # each state prints its sums when freed: the last report is the main state's)
  for q in ${Q35_PROF_FORMATS:-q4 none}; do
    for v in "" $Q35_PROF_VARIANTS; do
      env Q35_CUDA_MEGA_PROF=1 ${v//+/ } timeout 90 ./tests/bench_cuda /tmp/m08 $q 16 128 >/tmp/mprof.log 2>&1
      echo "== mega prof $q $v (rc $?)"; cat /tmp/mprof.log >>"$OUT/mprof.log"
      grep -E "^pp" /tmp/mprof.log; grep "mega prof" /tmp/mprof.log | tail -15
    done
  done
fi
if [[ $S == *ks* ]]; then # opt-in forms of the persistent kernel against the CPU
  for v in ${Q35_KS_VARIANTS:-Q35_CUDA_MEGA_KS=1}; do
    env ${v//+/ } Q35_CUDA_TEST_FILTER="test_*_path" timeout 60 ./tests/test_cuda_forward 2>&1 |
      grep -E "vs CPU|OK|FAIL|PASSED" | sed "s/^/$v /"
  done
fi
if [[ $S == *vtest* ]]; then # the whole GPU suite again under each of Q35_VTEST (A=1+B=2 ...)
  for v in $Q35_VTEST; do
    env ${v//+/ } timeout 120 ./tests/test_cuda_forward >"$OUT/vtest.log" 2>&1 && echo "$v forward OK" ||
      { rc=1; echo "$v forward FAILED"; grep -E "FAIL|Error|error" "$OUT/vtest.log" | head -8; }
    env ${v//+/ } Q35_DEVICE=cuda timeout 90 ./tests/test_golden >/tmp/vg.log 2>&1 && echo "$v golden OK" ||
      { rc=1; echo "$v golden FAILED"; grep -E "FAIL|worst" /tmp/vg.log | head -6; }
    env ${v//+/ } Q35_DEVICE=cuda timeout 90 ./tests/test_chat_golden >/tmp/vc.log 2>&1 && echo "$v chat OK" ||
      { rc=1; echo "$v chat FAILED"; tail -4 /tmp/vc.log; }
  done
fi
# Q35_EXTRA: another script to run from the build directory (the model made)
[ -n "$Q35_EXTRA" ] && bash "$Q35_EXTRA"
exit $rc
