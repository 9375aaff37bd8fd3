#!/usr/bin/env bash
# test_neon_qemu.sh — the kernel tests (test_kernels.c: every kernel set
# against the plain C definitions) for AArch64: cross-compiled with
# aarch64-linux-gnu-gcc and run under qemu-aarch64, so the NEON set is
# checked on x86 machines too, quantized (Q8_0/Q4_0) matmuls included. Skips (exit 0, says so) where the cross
# compiler or qemu is missing; on an AArch64 host the ordinary
# test_kernels already covers NEON.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if [ "$(uname -m)" = aarch64 ]; then echo "skipped: native AArch64 (test_kernels covers NEON)"; exit 0; fi
cc=$(command -v aarch64-linux-gnu-gcc || true)
qemu=$(command -v qemu-aarch64 || command -v qemu-aarch64-static || true)
if [ -z "$cc" ] || [ -z "$qemu" ]; then echo "skipped: no aarch64-linux-gnu-gcc or qemu-aarch64"; exit 0; fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
srcs=()
for f in "$root"/src/kernels/*.c; do
  case "$f" in *_avx2.c|*_avx512.c) continue ;; esac
  srcs+=("$f")
done
"$cc" -std=c11 -D_GNU_SOURCE -O2 -ffp-contract=off -Wall -Wextra -Werror -Wno-unused-parameter -static \
  -I"$root/include" -I"$root/src" -I"$here/aarch64" \
  "$here/test_kernels.c" "${srcs[@]}" "$root/src/core/threadpool.c" "$root/src/core/err.c" \
  -lm -lpthread -o "$out/test_kernels"
"$qemu" "$out/test_kernels" | tee "$out/log"
grep -q "kernel set: neon" "$out/log" || { echo "FAIL: the NEON set did not run"; exit 1; }
for t in test_matmul_quant test_quant_edges test_matmul_threaded; do
  grep -q "OK \] $t" "$out/log" || { echo "FAIL: $t did not pass"; exit 1; }
done
