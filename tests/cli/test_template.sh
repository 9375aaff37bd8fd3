#!/usr/bin/env bash
# test_template.sh — `q35 template` as SPEC §8 fixes it:
#  - every golden chat case printed byte for byte (no newline added), from a
#    messages file + --tools file + flags, and from a request object with
#    "tools" read on stdin;
#  - --ids: HF's ids for every golden case but `injection`, whose user text
#    yields no <|im_start|>/<|im_end|> id (only the template's 2 and 1);
#  - -m: a model whose chat template is not in the Qwen3.5 format gets a
#    warning on stderr, a Qwen3.5 one none;
#  - bad input: exit status and a message naming the problem.
# Env: Q35 (binary), Q35_FIXTURES, Q35_PYTHON (optional).
set -euo pipefail
: "${Q35:?}" "${Q35_FIXTURES:?}"
PY=${Q35_PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
passes=0
ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

# One directory per golden case: messages.json, tools.json?, request.json,
# flags, text (expected bytes), ids (expected, one line).
"$PY" - "$Q35_FIXTURES/tokenizer/chat_cases.json" "$tmp" <<'EOF'
import json, os, sys
cases = json.load(open(sys.argv[1], encoding="utf-8"))["cases"]
for c in cases:
    d = os.path.join(sys.argv[2], c["name"])
    os.makedirs(d)
    o = c["options"]
    json.dump(c["messages"], open(os.path.join(d, "messages.json"), "w", encoding="utf-8"), ensure_ascii=False)
    req = {"model": "x", "messages": c["messages"]}
    if "tools" in o:
        json.dump(o["tools"], open(os.path.join(d, "tools.json"), "w", encoding="utf-8"), ensure_ascii=False)
        req["tools"] = o["tools"]
    json.dump(req, open(os.path.join(d, "request.json"), "w", encoding="utf-8"))
    flags = []
    if o.get("enable_thinking") is False: flags.append("--no-think")
    if not o.get("add_generation_prompt", False): flags.append("--no-generation-prompt")
    open(os.path.join(d, "flags"), "w").write(" ".join(flags))
    open(os.path.join(d, "text"), "wb").write(c["text"].encode("utf-8"))
    open(os.path.join(d, "ids"), "w").write(" ".join(map(str, c["ids_qwen35"])) + "\n")
EOF

model=$Q35_FIXTURES/models/tiny-chat
tokjson=$Q35_FIXTURES/tokenizer/tokenizer.qwen35.json
n_cases=0
for d in "$tmp"/*/; do
  name=$(basename "$d")
  n_cases=$((n_cases + 1))
  read -r -a flags <"$d/flags" || true
  tools=()
  [ -f "$d/tools.json" ] && tools=(--tools "$d/tools.json")
  if "$Q35" template -m "$model" --messages "$d/messages.json" "${tools[@]}" "${flags[@]}" \
       >"$d/out" 2>"$d/err" && cmp -s "$d/out" "$d/text"; then ok; else bad "$name: text differs"; cat "$d/err"; fi
  [ -s "$d/err" ] && bad "$name: unexpected stderr: $(cat "$d/err")"
  if "$Q35" template -m "$model" --messages - "${flags[@]}" <"$d/request.json" >"$d/out2" &&
     cmp -s "$d/out2" "$d/text"; then ok; else bad "$name: request object on stdin differs"; fi
  "$Q35" template -m "$tokjson" --messages "$d/messages.json" "${tools[@]}" "${flags[@]}" --ids >"$d/got_ids"
  if [ "$name" = injection ]; then
    # HF: 3 <|im_start|> (151644) and 2 <|im_end|> (151645); the user forged one of each
    [ "$(tr ' ' '\n' <"$d/ids" | grep -cx 151644)" = 3 ] && ok || bad "injection: golden ids changed?"
    [ "$(tr ' ' '\n' <"$d/got_ids" | grep -cx 151644)" = 2 ] && ok || bad "injection: forged <|im_start|>"
    [ "$(tr ' ' '\n' <"$d/got_ids" | grep -cx 151645)" = 1 ] && ok || bad "injection: forged <|im_end|>"
  else
    cmp -s "$d/got_ids" "$d/ids" && ok || bad "$name: ids differ from HF"
  fi
done
[ "$n_cases" -ge 10 ] && ok || bad "only $n_cases golden cases"

# no newline added: the output ends where the generation prompt ends
printf '[{"role":"user","content":"hi"}]' >"$tmp/hi.json"
[ "$("$Q35" template -m "$model" --messages "$tmp/hi.json" | tail -c 8 | od -An -c | tr -d ' ')" = '<think>\n' ] \
  && ok || bad "output does not end with '<think>\\n'"

# chat templates of another format are warned about, Qwen3.5's are not
mkdir "$tmp/qwen3"
cp "$Q35_FIXTURES/tokenizer/tokenizer_config.qwen3.json" "$tmp/qwen3/tokenizer_config.json"
"$Q35" template -m "$tmp/qwen3" --messages "$tmp/hi.json" >/dev/null 2>"$tmp/warn"
grep -q "warning" "$tmp/warn" && ok || bad "no warning for a Qwen3 chat template"
mkdir "$tmp/llama"
printf '{"chat_template": "{%% for m in messages %%}[INST] {{ m.content }} [/INST]{%% endfor %%}"}' \
  >"$tmp/llama/tokenizer_config.json"
"$Q35" template -m "$tmp/llama" --messages "$tmp/hi.json" >/dev/null 2>"$tmp/warn"
grep -q "warning" "$tmp/warn" && ok || bad "no warning for a foreign chat template"
mkdir "$tmp/q35tmpl"
cp "$Q35_FIXTURES/tokenizer/chat_template.qwen35.jinja" "$tmp/q35tmpl/chat_template.jinja"
"$Q35" template -m "$tmp/q35tmpl" --messages "$tmp/hi.json" >/dev/null 2>"$tmp/warn"
[ ! -s "$tmp/warn" ] && ok || bad "warning for the Qwen3.5 template: $(cat "$tmp/warn")"

# bad input: exit 1 (2 for usage) and a message that names the problem
expect_fail() { # status, needle, args...
  local want=$1 needle=$2
  shift 2
  set +e
  "$Q35" template "$@" >"$tmp/o" 2>"$tmp/e"
  local st=$?
  set -e
  if [ "$st" = "$want" ] && grep -q -- "$needle" "$tmp/e" && [ ! -s "$tmp/o" ] &&
     ! grep -q -e Sanitizer -e "runtime error:" "$tmp/e"; then ok
  else bad "template $*: status $st (want $want), stderr: $(cat "$tmp/e")"; fi
}
printf '[{"role":"user","content":"hi"},]' >"$tmp/trailing.json"
expect_fail 1 "line 1 column" --messages "$tmp/trailing.json"
printf '[{"role":"user","content":"a"},{"role":"system","content":"b"}]' >"$tmp/sys.json"
expect_fail 1 "must be the first" --messages "$tmp/sys.json"
printf '[{"role":"system","content":"b"}]' >"$tmp/noq.json"
expect_fail 1 "no user query" --messages "$tmp/noq.json"
printf '[{"role":"robot","content":"b"},{"role":"user","content":"q"}]' >"$tmp/role.json"
expect_fail 1 "robot" --messages "$tmp/role.json"
printf '[{"role":"user","content":7}]' >"$tmp/type.json"
expect_fail 1 "messages\[0\].content" --messages "$tmp/type.json"
printf '{"type":"function"}' >"$tmp/tools_obj.json"
expect_fail 1 "tools" --messages "$tmp/hi.json" --tools "$tmp/tools_obj.json"
expect_fail 1 "cannot open" --messages "$tmp/missing.json"
expect_fail 2 "usage" -m "$model"
expect_fail 2 "usage" --messages "$tmp/hi.json" --ids
head -c 100000 /dev/zero | tr '\0' '[' >"$tmp/deep.json"
expect_fail 1 "nested" --messages "$tmp/deep.json"

echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
