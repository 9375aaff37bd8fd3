#!/usr/bin/env bash
# The embedding examples (examples/*.c) build and run: voice_turn streams a
# reply from the golden chat model with 4-bit weights and reports it; a
# missing model is a message and exit 1, not a crash.
set -u
fail=0
check() { if eval "$2"; then echo "ok - $1"; else echo "FAIL - $1"; fail=1; fi; }
bin=$(dirname "$Q35")/voice_turn
out=$("$bin" "$Q35_FIXTURES/models/tiny-chat" "Hello there" 2>&1); rc=$?
check "voice_turn answers" "[ $rc -eq 0 ] && grep -qE '^\[[0-9]+ tokens, [0-9]+ ms to first token, stop: (eos|max_tokens)\]$' <<<\"\$out\""
err=$("$bin" /nonexistent/model 2>&1 >/dev/null); rc=$?
check "voice_turn: missing model" "[ $rc -eq 1 ] && grep -q 'voice_turn: .*no such file' <<<\"\$err\""
exit $fail
