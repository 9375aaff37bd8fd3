#!/bin/bash
# run_on_gpu.sh [BUILD_DIR] — where a CUDA GPU is visible: build the CUDA
# targets, run the GPU tests, the float64 goldens and the chat goldens on
# the GPU (Q35_DEVICE=cuda), memcheck the GPU tests, then time the random
# full-size 0.8B (bench/make_checkpoint.py's output in $Q35_BENCH_MODEL, if
# set) in bf16, Q4_0 and Q8_0. The CTest way: ctest -L cuda.
set -o pipefail
B=${1:-build-cuda}
cmake -S "$(dirname "$0")/../.." -B "$B" -DCMAKE_BUILD_TYPE=Release >/dev/null || exit 1
cmake --build "$B" -j"$(nproc)" --target test_cuda_forward bench_cuda test_golden test_chat_golden || exit 1
cd "$B" || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
rc=0
./tests/test_cuda_forward || rc=1
Q35_DEVICE=cuda ./tests/test_golden || rc=1
Q35_DEVICE=cuda ./tests/test_chat_golden || rc=1
if command -v compute-sanitizer >/dev/null; then
  compute-sanitizer --tool memcheck --error-exitcode 1 ./tests/test_cuda_forward >/dev/null || rc=1
fi
if [ -n "$Q35_BENCH_MODEL" ]; then
  for q in none q4 q8; do ./tests/bench_cuda "$Q35_BENCH_MODEL" $q 512 128 || rc=1; done
fi
exit $rc
