#!/usr/bin/env bash
# llama_cpp.sh — llama.cpp (the peer every bench script compares against),
# built for the CPU this runs on. A build with -DGGML_NATIVE=OFF and the
# AVX-512 options on dies with "Illegal instruction" on an AVX2-only CPU, so
# each GGML_* instruction-set option is set from /proc/cpuinfo. AMX stays
# off: llama.cpp's AMX path crashed with Q4_0 on the Xeon machines we use.
#
# usage: bench/llama_cpp.sh [--avx2] BUILD_DIR [SRC_DIR]
#   --avx2    an AVX2-only build (AVX2+FMA+F16C, no AVX-512, no AVX-VNNI), to
#             compare against Q35_KERNELS=avx2 on an AVX-512 machine
#   BUILD_DIR where the build goes. If BUILD_DIR/bin/llama-bench exists it
#             is used as it is (a llama.cpp built elsewhere is fine): the
#             instruction sets are then read from its CMakeCache.txt.
#   SRC_DIR   llama.cpp sources; default: the release bundled in the npm
#             package node-llama-cpp 3.22.1, fetched into $WORK (default
#             /tmp/q35-bench).
# Prints one line on stdout, the instruction sets the build uses (and, for a
# build it made, writes it to BUILD_DIR/q35-isa.txt); the rest goes to
# stderr.
set -euo pipefail
avx2_only=0
if [ "${1:-}" = "--avx2" ]; then avx2_only=1; shift; fi
BUILD=${1:?usage: bench/llama_cpp.sh [--avx2] BUILD_DIR [SRC_DIR]}
SRC=${2:-}
WORK=${WORK:-/tmp/q35-bench}

# The ISA line of an existing build, from the options it was configured with.
isa_of_cache() { # cache file
  local on=() opt
  for opt in AVX AVX2 FMA F16C AVX_VNNI AVX512 AVX512_VBMI AVX512_VNNI AVX512_BF16 \
             AMX_TILE AMX_INT8 AMX_BF16 NATIVE; do
    if grep -Eq "^GGML_${opt}:BOOL=(ON|1|TRUE)$" "$1"; then on+=("$opt"); fi
  done
  echo "llama.cpp ISA: ${on[*]:-none}"
}

if [ -x "$BUILD/bin/llama-bench" ] && [ -f "$BUILD/CMakeCache.txt" ]; then
  isa_of_cache "$BUILD/CMakeCache.txt" # a build made elsewhere is only read
  exit 0
fi

if [ -z "$SRC" ]; then
  SRC=$WORK/llama.cpp
  if [ ! -f "$SRC/CMakeLists.txt" ]; then
    mkdir -p "$WORK"
    (cd "$WORK" && npm pack -q node-llama-cpp@3.22.1 >/dev/null &&
       mkdir -p pkg && tar xzf node-llama-cpp-3.22.1.tgz -C pkg &&
       rm -rf "$SRC" && git clone -q pkg/package/llama/gitRelease.bundle "$SRC") >&2
  fi
fi

flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
has() { [[ " $flags " == *" $1 "* ]]; }
onoff() { if has "$1"; then echo ON; else echo OFF; fi; }
if [ $avx2_only = 1 ]; then
  has avx2 || { echo "llama_cpp.sh: --avx2 on a CPU without AVX2" >&2; exit 1; }
  opts=(-DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX_VNNI=OFF
        -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF)
elif [ -n "$flags" ]; then
  opts=(-DGGML_AVX="$(onoff avx)" -DGGML_AVX2="$(onoff avx2)" -DGGML_FMA="$(onoff fma)"
        -DGGML_F16C="$(onoff f16c)" -DGGML_AVX_VNNI="$(onoff avx_vnni)"
        -DGGML_AVX512="$(onoff avx512f)" -DGGML_AVX512_VBMI="$(onoff avx512vbmi)"
        -DGGML_AVX512_VNNI="$(onoff avx512_vnni)" -DGGML_AVX512_BF16="$(onoff avx512_bf16)")
else # not x86 (no x86 flags line): let llama.cpp pick for the machine
  opts=(-DGGML_NATIVE=ON)
fi
native=OFF; [ "${opts[0]}" = -DGGML_NATIVE=ON ] && native=ON
cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=$native "${opts[@]}" \
  -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAMA_CURL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF >&2
cmake --build "$BUILD" -j"${JOBS:-2}" --target llama-bench llama-quantize >&2
line=$(isa_of_cache "$BUILD/CMakeCache.txt")
echo "$line" >"$BUILD/q35-isa.txt"
echo "$line"
