#!/usr/bin/env bash
# test_openai_client.sh — q35 serve with real clients on the tiny chat model:
# curl (plain, streamed, an error), the official openai npm package
# (openai_client.mjs), and a bounded loopback load test (load_test.mjs)
# that must end with zero failed requests. The npm package is installed by
# scripts/setup (npm ci in tests/server).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${Q35:?}" "${Q35_TINY_CHAT:?}"
if [ ! -d "$here/node_modules/openai" ]; then
  echo "tests/server/node_modules/openai is missing: run scripts/setup (npm ci in tests/server)" >&2
  exit 1
fi
log=$(mktemp)
"$Q35" serve -m "$Q35_TINY_CHAT" --port 0 -t 1 --parallel 4 --quiet 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$log"' EXIT
port=
for _ in $(seq 1 300); do
  port=$(grep -o '127.0.0.1:[0-9]*' "$log" | head -1 | cut -d: -f2 || true)
  [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
  sleep 0.05
done
[ -n "$port" ] || { cat "$log"; echo "server did not start" >&2; exit 1; }
base="http://127.0.0.1:$port/v1"

# curl: a whole answer, a stream ending in [DONE], an error in OpenAI's shape
out=$(curl -sf "$base/chat/completions" -H 'Content-Type: application/json' \
  -d '{"messages":[{"role":"user","content":"hi"}],"max_tokens":8}')
echo "$out" | grep -q '"object":"chat.completion"'
echo "$out" | grep -q '"cached_tokens":'
curl -sfN "$base/chat/completions" -d '{"messages":[{"role":"user","content":"hi"}],"max_tokens":8,"stream":true}' \
  | tail -n 2 | grep -q '^data: \[DONE\]$'
code=$(curl -s -o /tmp/q35-err-$$ -w '%{http_code}' "$base/chat/completions" -d '{"messages":[],"n":2}')
[ "$code" = 400 ] && grep -q '"error":{"message"' /tmp/q35-err-$$
rm -f /tmp/q35-err-$$
echo "ok   curl"

node "$here/openai_client.mjs" "$base"
node "$here/load_test.mjs" "http://127.0.0.1:$port" 40 4 16 stream
node "$here/load_test.mjs" "http://127.0.0.1:$port" 24 8 8
