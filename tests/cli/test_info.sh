#!/usr/bin/env bash
# q35 info: reports the shape and files of a checkpoint; fails cleanly on a
# path that is not a model.
set -u
fail=0
check() { if eval "$2"; then echo "ok - $1"; else echo "FAIL - $1"; fail=1; fi; }
out=$("$Q35" info -m "$Q35_FIXTURES/models/tiny-b" --json)
check "json is valid and describes tiny-b" "python3 -c '
import json,sys; d=json.loads(sys.argv[1])
assert d[\"vocab_size\"]==1024 and d[\"n_layers\"]==8 and d[\"layers\"]==\"LLLFLLLF\", d
assert d[\"tied\"] is False and d[\"format\"]==\"safetensors\" and d[\"files\"][0][\"bytes\"]>0
' \"\$out\""
txt=$("$Q35" info -m "$Q35_FIXTURES/models/tiny-a")
check "text output names the format and file" "grep -q 'format: *safetensors' <<<\"\$txt\" && grep -q 'model.safetensors' <<<\"\$txt\""
gguf="$Q35_FIXTURES/gguf/tiny-b-Q4_K_M.gguf"
out=$("$Q35" info -m "$gguf" --json)
check "quantized GGUF: file type, stored types, used in place" "python3 -c '
import json,os,sys; d=json.loads(sys.argv[1])
assert d[\"format\"]==\"gguf\" and d[\"quantization\"]==\"Q4_K_M\", d
types={s[\"type\"]:s for s in d[\"stored\"]}
assert set(types)=={\"Q4_K\",\"Q6_K\"}, types
# 8 layers: 6 DeltaNet x 8 matrices + 2 attention x 7 + embedding + head
assert sum(s[\"tensors\"] for s in d[\"stored\"])==6*8+2*7+2, types
f=d[\"files\"]; assert len(f)==1 and f[0][\"bytes\"]==os.path.getsize(sys.argv[2]) and f[0][\"mapped\"], f
# computed in place as the k-quant blocks they are
assert set(d[\"bytes_by_type\"])=={\"q4_K\",\"q6_K\"}, d[\"bytes_by_type\"]
' \"\$out\" \"\$gguf\""
out=$("$Q35" info -m "$Q35_FIXTURES/gguf/tiny-a-bf16.gguf" --json)
check "bf16 GGUF: mapped in place" "python3 -c '
import json,sys; d=json.loads(sys.argv[1])
assert d[\"quantization\"]==\"BF16\" and d[\"stored\"][0][\"type\"]==\"BF16\" and d[\"files\"][0][\"mapped\"], d
' \"\$out\""
txt=$("$Q35" info -m "$Q35_FIXTURES/models/tiny-b" --quant q4)
check "--quant q4: converted at load, no file kept open" "grep -q 'quantization: *none, computed as q4_0' <<<\"\$txt\" && grep -q 'computed as: *q4_0' <<<\"\$txt\" && grep -q 'none kept open' <<<\"\$txt\""
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
if "$Q35_PYTHON" "$(dirname "$0")/../tools/make_mlx.py" "$Q35_FIXTURES/models/tiny-a" "$tmp/q" "$tmp/d" \
    --bits 4 --group 32 >/dev/null; then
  txt=$("$Q35" info -m "$tmp/q")
  check "MLX checkpoint: affine bits and group" "grep -q 'quantization: *MLX affine 4-bit, group 32' <<<\"\$txt\" && grep -q 'mlx4/g32' <<<\"\$txt\""
else
  check "make_mlx.py wrote the MLX copy" false
fi
txt=$("$Q35" info -m "$Q35_FIXTURES/models/tiny-a")
check "layer pattern source: layer_types" "grep -q '^layer pattern: from config.json layer_types\$' <<<\"\$txt\""
txt=$("$Q35" info -m "$Q35_FIXTURES/gguf/tiny-a-bf16.gguf")
check "layer pattern source: GGUF recurrent_layers" "grep -q '^layer pattern: from GGUF qwen35.attention.recurrent_layers\$' <<<\"\$txt\""
out=$("$Q35" info -m "$Q35_FIXTURES/gguf/tiny-mixed-bf16.gguf" --json)
check "irregular pattern (GGUF): recurrent_layers wins over the interval" "python3 -c '
import json,sys; d=json.loads(sys.argv[1])
assert d[\"layers\"]==\"LFLLFL\", d
assert d[\"layers_from\"]==\"GGUF qwen35.attention.recurrent_layers (full_attention_interval 4 disagrees, ignored)\", d
' \"\$out\""
txt=$("$Q35" info -m "$Q35_FIXTURES/models/tiny-mixed")
check "irregular pattern (config.json): layer_types wins over the interval" "grep -q 'LFLLFL' <<<\"\$txt\" && grep -q '^layer pattern: from config.json layer_types (full_attention_interval 4 disagrees' <<<\"\$txt\""
err=$("$Q35" info -m /nonexistent/model 2>&1 >/dev/null); rc=$?
check "missing model: exit 1 with a message" "[ $rc -eq 1 ] && grep -q 'no such file' <<<\"\$err\""
"$Q35" info 2>/dev/null; rc=$?
check "no -m: usage error" "[ $rc -eq 2 ]"
exit $fail
