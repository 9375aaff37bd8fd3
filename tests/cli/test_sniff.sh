#!/usr/bin/env bash
# Model files are known by their content, not their name: `q35 convert SRC
# out` writes a GGUF called `out`, and every command that takes a model path
# (bench, info, tokenize, chat) must read it; a safetensors file is read as
# the checkpoint directory that holds it, whatever its name; a file of
# neither kind, or a broken file named .gguf, fails with a message that
# says so.
set -u
fail=0
check() { if eval "$2"; then echo "ok - $1"; else echo "FAIL - $1"; fail=1; fi; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
chat=$Q35_TINY_CHAT

"$Q35" convert "$chat" "$tmp/out" --type bf16 -q
check "convert wrote out (no extension)" "[ -s '$tmp/out' ] && [ \"\$(head -c 4 '$tmp/out')\" = GGUF ]"
out=$("$Q35" bench -m "$tmp/out" -p 4 -n 2 -r 1 --json 2>&1); rc=$?
check "bench -m out" "[ $rc -eq 0 ] && python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d[\"decode_tok_s\"] > 0' \"\$out\""
txt=$("$Q35" info -m "$tmp/out")
check "info -m out: a GGUF" "grep -q 'format: *gguf' <<<\"\$txt\""
want=$("$Q35" tokenize -m "$chat" --text 'Hello, world' 2>&1)
got=$("$Q35" tokenize -m "$tmp/out" --text 'Hello, world' 2>&1)
check "tokenize -m out: the tokenizer carried in the GGUF, same ids" "[ -n \"\$want\" ] && [ \"\$want\" = \"\$got\" ]"
reply=$(printf 'Hi\n' | "$Q35" chat -m "$tmp/out" --max-tokens 4 2>&1); rc=$?
check "chat -m out" "[ $rc -eq 0 ]"

cp "$tmp/out" "$tmp/model.safetensors"
txt=$("$Q35" info -m "$tmp/model.safetensors")
check "a GGUF named .safetensors is read as GGUF" "grep -q 'format: *gguf' <<<\"\$txt\""

mkdir "$tmp/ck"
cp "$chat/config.json" "$tmp/ck/"
cp "$chat/model.safetensors" "$tmp/ck/weights.bin"
txt=$("$Q35" info -m "$tmp/ck/weights.bin" 2>&1)
check "a safetensors file of any name: its directory's checkpoint" "grep -q 'format: *safetensors' <<<\"\$txt\""

printf 'not a model at all\n' >"$tmp/junk"
err=$("$Q35" info -m "$tmp/junk" 2>&1 >/dev/null); rc=$?
check "neither kind: exit 1, says what it is not" "[ $rc -eq 1 ] && grep -q 'not a model directory, GGUF file or safetensors file' <<<\"\$err\""
cp "$tmp/junk" "$tmp/junk.gguf"
err=$("$Q35" info -m "$tmp/junk.gguf" 2>&1 >/dev/null); rc=$?
check "a broken .gguf: the GGUF parser's message" "[ $rc -eq 1 ] && grep -q 'GGUF header' <<<\"\$err\""
exit $fail
