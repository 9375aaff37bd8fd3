#!/usr/bin/env bash
# q35 info: reports the shape and files of a checkpoint; fails cleanly on a
# path that is not a model.
set -u
fail=0
check() { if eval "$2"; then echo "ok - $1"; else echo "FAIL - $1"; fail=1; fi; }
out=$("$Q35" info -m "$Q35_GOLDEN/models/tiny-b" --json)
check "json is valid and describes tiny-b" "python3 -c '
import json,sys; d=json.loads(sys.argv[1])
assert d[\"vocab_size\"]==1024 and d[\"n_layers\"]==8 and d[\"layers\"]==\"LLLFLLLF\", d
assert d[\"tied\"] is False and d[\"format\"]==\"safetensors\" and d[\"files\"][0][\"bytes\"]>0
' \"\$out\""
txt=$("$Q35" info -m "$Q35_GOLDEN/models/tiny-a")
check "text output names the format and file" "grep -q 'format: *safetensors' <<<\"\$txt\" && grep -q 'model.safetensors' <<<\"\$txt\""
err=$("$Q35" info -m /nonexistent/model 2>&1 >/dev/null); rc=$?
check "missing model: exit 1 with a message" "[ $rc -eq 1 ] && grep -q 'no such file' <<<\"\$err\""
"$Q35" info 2>/dev/null; rc=$?
check "no -m: usage error" "[ $rc -eq 2 ]"
exit $fail
