#!/usr/bin/env bash
# test_neon_qemu.sh — the AArch64 kernel sets, checked on x86 machines:
# cross-compiled with aarch64-linux-gnu-gcc and run under qemu-aarch64 with
# CPU models of each integer capability, so that each of the three NEON
# sets (plain, +dotprod, +i8mm) runs on a CPU that has exactly its
# instructions, and the plain set on one that has none of the later ones
# (qemu raises SIGILL for an instruction the model lacks):
#   cortex-a53  Armv8.0: NEON only            -> set "neon"
#   cortex-a76  Armv8.2: + dotprod (sdot)     -> set "neon-dotprod"
#   max         everything qemu has: + i8mm   -> set "neon-i8mm"
# Under each: aarch64/test_neon_variants.c (detection, Q35_KERNELS names,
# every integer set the CPU offers against the plain C definitions:
# quantizer bytes, micro-kernels at every tile shape, the driver) and
# test_int8.c and test_int8_mlx_q5k.c (the integer path of the best set,
# as on x86). Under the
# last: the whole of test_kernels.c (every float set against the plain C
# float definitions; the three sets share their float functions, built for
# Armv8.0, so one model is enough, and it is the suite's slowest part) and
# tests/model/test_mlx_q5k_kernels.c (MLX affine and Q5_K on the best set).
# Skips (exit 0, says so) where the cross compiler or qemu is missing; on an
# AArch64 host it builds with the native compiler and runs on the CPU at
# hand only.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if [ "$(uname -m)" = aarch64 ]; then
  cc=${CC:-cc}
  models=(native)
else
  cc=$(command -v aarch64-linux-gnu-gcc || true)
  qemu=$(command -v qemu-aarch64 || command -v qemu-aarch64-static || true)
  if [ -z "$cc" ] || [ -z "$qemu" ]; then echo "skipped: no aarch64-linux-gnu-gcc or qemu-aarch64"; exit 0; fi
  models=(cortex-a53:neon cortex-a76:neon-dotprod max:neon-i8mm)
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
srcs=()
for f in "$root"/src/kernels/*.c; do
  case "$f" in *_avx2.c|*_avx512.c) continue ;; esac
  srcs+=("$f")
done
flags=(-std=c11 -D_GNU_SOURCE -O2 -ffp-contract=off -Wall -Wextra -Werror -Wno-unused-parameter
       -I"$root/include" -I"$root/src" -I"$here/aarch64")
[ "${models[0]}" = native ] || flags+=(-static)
# The library sources once, then the two test programs against them.
mkdir -p "$out/obj"
(cd "$out/obj" && "$cc" "${flags[@]}" -c "${srcs[@]}" "$root/src/core/threadpool.c" "$root/src/core/err.c" \
  "$root/src/formats/gguf_quants.c")
progs=("$here/test_kernels.c" "$here/aarch64/test_neon_variants.c")
[ -f "$here/test_int8.c" ] && progs+=("$here/test_int8.c")
[ -f "$here/test_int8_mlx_q5k.c" ] && progs+=("$here/test_int8_mlx_q5k.c") # MLX affine, Q5_K
mlxq5k="$root/tests/model/test_mlx_q5k_kernels.c" # MLX affine and Q5_K on the best set
[ -f "$mlxq5k" ] && progs+=("$mlxq5k")
for t in "${progs[@]}"; do
  "$cc" "${flags[@]}" "$t" "$out"/obj/*.o -lm -lpthread -o "$out/$(basename "$t" .c)"
done

run() { # run CPU-MODEL PROGRAM: the program's output in $out/log
  local model=$1 rc=0; shift
  if [ "$model" = native ]; then "$@" >"$out/log" 2>&1 || rc=$?
  else "$qemu" -cpu "$model" "$@" >"$out/log" 2>&1 || rc=$?; fi
  if [ $rc -ne 0 ]; then
    cat "$out/log"; echo "FAIL: $(basename "$1") under -cpu $model (exit status $rc)"; exit 1
  fi
}

for m in "${models[@]}"; do
  model=${m%%:*} set=${m#*:}
  [ "$model" = native ] && set=
  Q35_EXPECT_NEON=$set run "$model" "$out/test_neon_variants"
  grep -q "PASSED" "$out/log" || { cat "$out/log"; echo "FAIL: test_neon_variants under $model"; exit 1; }
  echo "-cpu $model: test_neon_variants: $(grep -m1 '^features:' "$out/log"), $(grep -c 'OK \]' "$out/log") tests passed"
  if [ -x "$out/test_int8" ]; then
    run "$model" "$out/test_int8"
    if [ "$model" != native ]; then
      grep -q "^integer set: $set\$" "$out/log" || { cat "$out/log"; echo "FAIL: integer set $set did not run under $model"; exit 1; }
    fi
    grep -q "PASSED" "$out/log" || { cat "$out/log"; echo "FAIL: test_int8 under $model"; exit 1; }
    echo "-cpu $model: test_int8: $(grep -c 'OK \]' "$out/log") tests passed ($(grep '^integer set:' "$out/log" | tr '\n' ' '))"
  fi
  if [ -x "$out/test_int8_mlx_q5k" ]; then
    run "$model" "$out/test_int8_mlx_q5k"
    if [ "$model" != native ]; then
      grep -q "^integer set: $set\$" "$out/log" || { cat "$out/log"; echo "FAIL: integer set $set did not run under $model"; exit 1; }
    fi
    grep -q "PASSED" "$out/log" || { cat "$out/log"; echo "FAIL: test_int8_mlx_q5k under $model"; exit 1; }
    echo "-cpu $model: test_int8_mlx_q5k: $(grep -c 'OK \]' "$out/log") tests passed"
  fi
done

for m in "${models[-1]}"; do
  model=${m%%:*} set=${m#*:}
  run "$model" "$out/test_kernels"
  if [ "$model" != native ]; then
    grep -q "^kernel set: $set\$" "$out/log" || { cat "$out/log"; echo "FAIL: set $set did not run under $model"; exit 1; }
  fi
  for t in test_matmul test_matmul_quant test_quant_edges test_matmul_threaded test_matmul_kquant test_kquant_edges; do
    grep -q "OK \] $t\$" "$out/log" || { cat "$out/log"; echo "FAIL: $t did not pass under $model"; exit 1; }
  done
  echo "-cpu $model: test_kernels: $(grep -c 'OK \]' "$out/log") tests passed ($(grep '^kernel set:' "$out/log" | tr '\n' ' '))"
  if [ -x "$out/test_mlx_q5k_kernels" ]; then
    run "$model" "$out/test_mlx_q5k_kernels"
    grep -q "PASSED" "$out/log" || { cat "$out/log"; echo "FAIL: test_mlx_q5k_kernels under $model"; exit 1; }
    echo "-cpu $model: test_mlx_q5k_kernels: $(grep -c 'OK \]' "$out/log") tests passed"
  fi
done
