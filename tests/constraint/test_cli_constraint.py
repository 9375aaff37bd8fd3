#!/usr/bin/env python3
"""q35 run / q35 chat with --json, --json-schema and --grammar on the tiny
random chat model (its words are noise): every reply that ends (stop
"eos") is a valid document, checked by Python's json + jsonschema;
thinking on with a budget still gets its forced </think> and a valid
answer; a reply cut by -n says "max_tokens" and is not a document; an
unsupported keyword fails before any generation, naming keyword and JSON
pointer."""
import json
import os
import re
import subprocess
import sys
import tempfile

import jsonschema

Q35 = os.environ["Q35"]
MODEL = os.environ["Q35_TINY_CHAT"]
FAILS = []


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what)


def write(tmp, name, text):
    path = os.path.join(tmp, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def chat_jsonl(args, lines):
    p = subprocess.run([Q35, "chat", "-m", MODEL, "--jsonl", "-q", "--temp", "1", "-c", "8192"]
                       + args, input="\n".join(lines) + "\n", capture_output=True, text=True,
                       timeout=600)
    check(p.returncode == 0, f"chat {args}: exit {p.returncode}: {p.stderr[-500:]}")
    return [json.loads(x) for x in p.stdout.splitlines() if x.strip()]


SCHEMAS = [
    {"type": "object", "properties": {
        "intent": {"enum": ["lights_on", "lights_off", "set_timer"]},
        "room": {"type": ["string", "null"], "maxLength": 8},
        "minutes": {"type": "integer", "minimum": 1, "maximum": 90}},
     "required": ["intent", "room"], "additionalProperties": False},
    {"type": "array", "items": {"type": "object", "properties": {
        "d": {"type": "string", "format": "date"}, "ok": {"type": "boolean"}},
        "required": ["d"], "additionalProperties": False}, "minItems": 1, "maxItems": 2},
]


def main():
    with tempfile.TemporaryDirectory() as tmp:
        # schemas: several seeds, thinking off and on (budget: forced </think>)
        for k, schema in enumerate(SCHEMAS):
            path = write(tmp, f"s{k}.json", json.dumps(schema))
            validator = jsonschema.Draft202012Validator(schema)
            for seed, think in ((1, False), (2, False), (3, True)):
                args = ["--json-schema", path, "--seed", str(seed), "-n", "64"]
                args += ["--think-budget", "3"] if think else ["--no-think"]
                replies = chat_jsonl(args, [f"message {i}" for i in range(12)])
                check(len(replies) == 12, f"schema {k} seed {seed}: {len(replies)} replies")
                n_eos = 0
                for r in replies:
                    check(r["stop"] in ("eos", "max_tokens"), f"stop {r['stop']}")
                    if think:
                        check(len(r["forced_positions"]) > 0, "thinking budget: nothing forced")
                    if r["stop"] != "eos":
                        continue
                    n_eos += 1
                    try:
                        validator.validate(json.loads(r["answer"]))
                    except Exception as e:  # noqa: BLE001
                        check(False, f"schema {k} seed {seed}: {r['answer']!r}: {e}")
                check(n_eos >= 6, f"schema {k} seed {seed}: only {n_eos} of 12 replies ended")

        # a grammar, through q35 run (one process per seed)
        gpath = write(tmp, "g.gbnf", 'root ::= ("yes" | "no") (", " [a-z]{1,4}){0,2} "."\n')
        for seed in range(4):
            p = subprocess.run([Q35, "run", "-m", MODEL, "-p", "hi", "--grammar", gpath,
                                "--temp", "1", "--seed", str(seed), "--no-think", "-n", "40"],
                               capture_output=True, text=True, timeout=300)
            check(p.returncode == 0, f"run --grammar: {p.stderr[-300:]}")
            out = p.stdout[:-1] if p.stdout.endswith("\n") else p.stdout
            if "stop: eos" in p.stderr:
                check(re.fullmatch(r"(yes|no)(, [a-z]{1,4}){0,2}\.", out) is not None,
                      f"grammar reply {out!r}")

        # JSON mode
        for r in chat_jsonl(["--json", "--seed", "7", "-n", "48", "--no-think"],
                            ["a", "b", "c", "d"]):
            if r["stop"] == "eos":
                check(isinstance(json.loads(r["answer"]), dict), f"--json: {r['answer']!r}")

        # cut short: max_tokens, never a complete document
        for r in chat_jsonl(["--json-schema", os.path.join(tmp, "s0.json"), "--seed", "5",
                             "-n", "3", "--no-think"], ["x", "y"]):
            check(r["stop"] == "max_tokens", f"-n 3: stop {r['stop']}")
            try:
                json.loads(r["answer"])
                check(False, f"-n 3: a complete document {r['answer']!r}")
            except ValueError:
                pass

        # fail closed
        bad = write(tmp, "bad.json", json.dumps(
            {"type": "object", "properties": {"a": {"type": "string", "contains": {}}}}))
        p = subprocess.run([Q35, "run", "-m", MODEL, "-p", "hi", "--json-schema", bad],
                           capture_output=True, text=True, timeout=120)
        check(p.returncode != 0 and p.stdout == "", f"bad schema: exit {p.returncode}")
        check("unsupported keyword 'contains'" in p.stderr and "/properties/a/contains"
              in p.stderr, f"bad schema message: {p.stderr!r}")
        p = subprocess.run([Q35, "run", "-m", MODEL, "-p", "hi", "--json", "--grammar", gpath],
                           capture_output=True, text=True, timeout=120)
        check(p.returncode == 2, "--json with --grammar is a usage error")
    print("ok" if not FAILS else f"{len(FAILS)} failures")
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
