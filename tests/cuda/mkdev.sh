#!/bin/bash
# mkdev.sh [TREE] — (re)makes the ignored .cuda-dev/ that device_run.sh
# needs on the device machine (which has nvcc and CMake but none of the
# project's Debian packages, and no network):
#   debs/*.deb        the -dev packages CMakeLists.txt's pkg-config modules
#                     need (libcjson libpcre2-8 libutf8proc libcurl libcrypto
#                     libmicrohttpd cmocka) with the runtime libraries they
#                     link against, from the Debian 12 mirror (apt-get
#                     download; 13 MB); libc, zlib, zstd, gmp and ffi are
#                     taken from the machine;
#   src.tar           HEAD of TREE (default: this checkout) with TREE's
#                     src/cuda and tests/cuda over it, tests/data left out
#                     (device_run.sh copies it from the working tree);
#   make_fullsize.py  the random full-size model's maker, bench/make_checkpoint.py
#                     (or $Q35_FULLSIZE); tokenizer from tests/data/tokenizer
#   tok.tar.xz        tokenizer.json + tokenizer_config.json ($Q35_TOKDIR),
#                     which `q35 convert` needs for the llama stage.
# Existing debs are kept; everything else is made again. Light: no build.
# To time an unapplied patch: `git worktree add --detach /tmp/wt HEAD`,
# `git -C /tmp/wt apply PATCH`, `bash tests/cuda/mkdev.sh /tmp/wt` (the
# working tree's own tests/cuda/device_run.sh is the one that runs).
set -euo pipefail
R=$(cd "$(dirname "$0")/../.." && pwd)
T=$(cd "${1:-$R}" && pwd)
D=$R/.cuda-dev
EX=$(git -C "$R" rev-parse --git-path info/exclude)
case $EX in /*) ;; *) EX=$R/$EX ;; esac
mkdir -p "$D/debs" "$(dirname "$EX")"
grep -qx '/.cuda-dev/' "$EX" 2>/dev/null || echo '/.cuda-dev/' >>"$EX"
PKGS="libcjson-dev libcjson1 libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0
  libpcre2-posix3 libutf8proc-dev libutf8proc2 libcurl4-openssl-dev libcurl4 libssl-dev
  libssl3 libmicrohttpd-dev libmicrohttpd12 libcmocka-dev libcmocka0 libbrotli1
  libnghttp2-14 libidn2-0 libunistring2 librtmp1 libssh2-1 libpsl5 libgssapi-krb5-2
  libkrb5-3 libk5crypto3 libkrb5support0 libcom-err2 libkeyutils1 libldap-2.5-0
  libsasl2-2 libsasl2-modules-db libdb5.3 libgnutls30 libp11-kit0 libtasn1-6 libnettle8
  libhogweed6 pkgconf pkgconf-bin libpkgconf3"
need=()
for p in $PKGS; do
  ls "$D/debs/${p}_"*.deb >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  (cd "$D/debs" && apt-get download "${need[@]}" 2>&1 | grep -vE "^(Get|Fetched|W: Download is performed unsandboxed)" || true)
fi
# HEAD of TREE, its CUDA files over it, no tests/data
git -C "$T" archive --format=tar HEAD >"$D/src.tar"
tar --delete -f "$D/src.tar" src/cuda tests/cuda tests/data
tar -C "$T" -rf "$D/src.tar" src/cuda tests/cuda
# the project's own maker of the random full-size model (same CLI and bytes)
cp "${Q35_FULLSIZE:-$R/bench/make_checkpoint.py}" "$D/make_fullsize.py"
chmod u+w "$D/make_fullsize.py"
TD=${Q35_TOKDIR:-$R/tests/data/tokenizer}
tmp=$(mktemp -d)
if [ -f "$TD/tokenizer.qwen35.json" ]; then
  cp "$TD/tokenizer.qwen35.json" "$tmp/tokenizer.json"
else
  xz -dc "$TD/tokenizer.qwen35.json.xz" >"$tmp/tokenizer.json"
fi
cp "$TD/tokenizer_config.qwen3.json" "$tmp/tokenizer_config.json"
tar cJf "$D/tok.tar.xz" -C "$tmp" tokenizer.json tokenizer_config.json
rm -rf "$tmp"
echo "debs: $(ls "$D/debs" | wc -l) files; $(du -sh "$D" | cut -f1) in .cuda-dev"
echo "tracked tree: $(git -C "$R" ls-files -z | (cd "$R" && xargs -0 stat -c %s 2>/dev/null) |
  awk '{s += $1} END {printf "%.1f", s / 1048576}') MiB (the limit: 64 MiB with .cuda-dev)"
