#!/usr/bin/env bash
# test_http_errors.sh — the errors of the HTTP layer itself, each sent with
# curl (or, where curl cannot write the bytes, bash's /dev/tcp) to q35 serve
# on the tiny chat model: each must come back with its 4xx/5xx status and
# OpenAI's error shape {"error": {"message", "type", "param", "code"}} as
# JSON, never libmicrohttpd's HTML pages, and the server keeps serving.
set -euo pipefail
: "${Q35:?}" "${Q35_TINY_CHAT:?}"
log=$(mktemp)
body=$(mktemp)
big=$(mktemp)
"$Q35" serve -m "$Q35_TINY_CHAT" --port 0 -t 1 --parallel 2 --quiet --timeout 2 \
  --max-body 100000 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$log" "$body" "$big"' EXIT
port=
for _ in $(seq 1 300); do
  port=$(grep -o '127.0.0.1:[0-9]*' "$log" | head -1 | cut -d: -f2 || true)
  [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
  sleep 0.05
done
[ -n "$port" ] || { cat "$log"; echo "server did not start" >&2; exit 1; }
url="http://127.0.0.1:$port"
fails=0

# the body of the last answer must be OpenAI's error object with this code
is_error() { # NAME WANT_STATUS GOT_STATUS CODE
  if [ "$3" = "$2" ] &&
    python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["error"]; \
assert set(e)=={"message","type","param","code"} and e["message"] and e["code"]==sys.argv[2], e' \
      "$body" "$4" 2>/dev/null; then
    echo "ok   $1 ($3 $4)"
  else
    echo "FAIL $1: status $3 (want $2, code $4): $(head -c 300 "$body")"
    fails=$((fails + 1))
  fi
}
curl_status() { curl -s -o "$body" -w '%{http_code}' "$@" || true; }

head -c 40000 /dev/zero | tr '\0' x >"$big"
is_error "headers over 32 KiB" 431 "$(curl_status -H "X-Big: $(cat "$big")" "$url/v1/models")" \
  headers_too_large
is_error "URI over 8 KiB" 414 "$(curl_status "$url/v1/$(head -c 9000 "$big")")" uri_too_long
is_error "unknown route" 404 "$(curl_status "$url/v2/nothing")" not_found
is_error "method not allowed" 405 "$(curl_status -X DELETE "$url/v1/chat/completions")" \
  method_not_allowed
is_error "unknown method" 405 "$(curl_status -X BREW "$url/v1/models")" method_not_allowed
is_error "space in the method" 400 "$(curl_status -X 'GE T' "$url/v1/models")" bad_request
is_error "header name with a space" 400 "$(curl_status -H 'Bad Name: y' "$url/v1/models")" \
  bad_request
is_error "Content-Length not a number" 400 \
  "$(curl_status -H 'Content-Length: 12x' -d '{}' "$url/v1/chat/completions")" bad_request
is_error "Content-Length over --max-body (refused before the body)" 413 \
  "$(curl_status -H 'Expect: 100-continue' -H 'Content-Length: 5000000' -d '{}' \
    "$url/v1/chat/completions")" request_too_large
head -c 150000 /dev/zero | tr '\0' ' ' >"$big.body"
is_error "body over --max-body" 413 \
  "$(curl_status -H 'Content-Type: application/json' --data-binary @"$big.body" \
    "$url/v1/chat/completions")" request_too_large
rm -f "$big.body"
is_error "unknown Transfer-Encoding" 501 \
  "$(curl_status -H 'Transfer-Encoding: gzip' -d '{}' "$url/v1/chat/completions")" \
  not_implemented

# raw bytes curl will not send: another HTTP version, a head that stops
# arriving (the --timeout of 2 s), a request line that is not one
raw() { # BYTES -> the answer's status and body into $body
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  printf '%b' "$1" >&3
  timeout 10 cat <&3 >"$body.raw" || true
  exec 3<&-
  sed -n '1s/^HTTP\/1.1 \([0-9]*\).*/\1/p' "$body.raw" | tr -d '\r'
  sed '1,/^\r$/d' "$body.raw" >"$body"
  rm -f "$body.raw"
}
is_error "HTTP/2.0 request line" 505 "$(raw 'GET /v1/models HTTP/2.0\r\nHost: x\r\n\r\n')" \
  http_version_not_supported
is_error "HTTP/0.9 request (no version)" 400 "$(raw 'GET /v1/models\r\n\r\n')" bad_request
is_error "garbage request line" 400 "$(raw 'GARBAGE\r\n\r\n')" bad_request
is_error "head cut off, then silence" 408 "$(raw 'GET /v1/models HTTP/1.1\r\nHost: x\r\n')" \
  request_timeout
is_error "both Content-Length and chunked" 400 \
  "$(raw 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}')" \
  bad_request

# still serving, keep-alive included
out=$(curl -sf "$url/v1/models" "$url/health")
echo "$out" | grep -q '"object":"list"' && echo "$out" | grep -q '"status":"ok"' ||
  { echo "FAIL the server stopped answering"; fails=$((fails + 1)); }
out=$(curl -sf "$url/v1/chat/completions" -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' \
  -d '{"messages":[{"role":"user","content":"hi"}],"max_tokens":4}')
echo "$out" | grep -q '"object":"chat.completion"' ||
  { echo "FAIL a chunked request body: $out"; fails=$((fails + 1)); }
[ "$fails" = 0 ] || exit 1
echo "all HTTP-layer errors in OpenAI's shape"
