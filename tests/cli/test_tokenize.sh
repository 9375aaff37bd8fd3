#!/usr/bin/env bash
# test_tokenize.sh — `q35 tokenize` / `q35 detokenize` (SPEC §8) against the
# HF reference ids in golden/tokenizer/tok_cases.json: -m as a tokenizer.json
# path and as a model directory, --no-special, --file (NUL bytes, invalid
# UTF-8, stdin), and the exit status of bad invocations.
set -euo pipefail
: "${Q35:?path of the q35 binary}" "${Q35_FIXTURES:?golden dir}"
export XDG_CACHE_HOME
XDG_CACHE_HOME=$(mktemp -d)
trap 'rm -rf "$XDG_CACHE_HOME"' EXIT
exec python3 - "$Q35" "$Q35_FIXTURES" <<'PY'
import json, os, subprocess, sys, tempfile

q35, golden = sys.argv[1], sys.argv[2]
tokdir = os.path.join(golden, "tokenizer")
files = {"qwen3": os.path.join(tokdir, "tokenizer.qwen3.json"),
         "qwen35": os.path.join(tokdir, "tokenizer.qwen35.json")}
model_dir = os.path.join(golden, "models", "tiny-chat")  # Qwen3.5 tokenizer.json + config
passed = failed = 0


def run(args, stdin=None):
    return subprocess.run([q35] + args, input=stdin, capture_output=True, timeout=60)


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)


cases = json.load(open(os.path.join(tokdir, "tok_cases.json"), encoding="utf-8"))["cases"]
# the library test checks every case; here a quarter of them (and every one
# with control tokens) is enough to show the CLI passes text and ids through
for i, c in enumerate(cases):
    text = c["text"]
    if i % 4 and "<|" not in text:
        continue
    name = "qwen35" if i % 8 == 0 else "qwen3"
    for flag, key in (([], name), (["--no-special"], name + "_nospecial")):
        r = run(["tokenize", "-m", files[name], "--text", text] + flag)
        got = [int(x) for x in r.stdout.split()]
        check(r.returncode == 0 and got == c[key], f"tokenize {key} {text!r}: {r.stdout!r} {r.stderr!r}")
    ids = ",".join(str(x) for x in c[name])
    if ids:
        r = run(["detokenize", "-m", files[name], "--ids", ids])
        check(r.returncode == 0 and r.stdout == c[name + "_decoded"].encode(),
              f"detokenize {text!r}: {r.stdout!r}")

# -m as a model directory (tokenizer.json + tokenizer_config.json)
c = cases[34]
assert "<|im_start|>" in c["text"]
r = run(["tokenize", "-m", model_dir, "--text", c["text"]])
check(r.returncode == 0 and [int(x) for x in r.stdout.split()] == c["qwen35"], "model dir")
r = run(["detokenize", "-m", model_dir, "--ids", ",".join(map(str, c["qwen35"])), "--skip-special"])
check(r.returncode == 0 and b"<|im_start|>" not in r.stdout and b"Hi" in r.stdout, "skip special")

# --file: any bytes, round trip up to U+FFFD repair; stdin
with tempfile.NamedTemporaryFile(delete=False) as f:
    f.write(b"a\x00b \xff\xfe caf\xc3\xa9 \xe2\x82")
    path = f.name
r = run(["tokenize", "-m", files["qwen35"], "--file", path])
check(r.returncode == 0 and len(r.stdout.split()) >= 6, f"file with NUL / invalid bytes: {r.stderr!r}")
ids = ",".join(r.stdout.decode().split())
r2 = run(["detokenize", "-m", files["qwen35"], "--ids", ids])
check(r2.returncode == 0 and r2.stdout == "a\x00b \ufffd\ufffd café \ufffd".encode(), f"lossy: {r2.stdout!r}")
r3 = run(["tokenize", "-m", files["qwen35"], "--file", "-"], stdin=open(path, "rb").read())
check(r3.stdout == r.stdout, "stdin")
os.unlink(path)

# bad invocations: usage errors exit 2, failures exit 1 with a message
for args, code in ((["tokenize", "--text", "x"], 2),
                   (["tokenize", "-m", files["qwen3"]], 2),
                   (["tokenize", "-m", files["qwen3"], "--text", "x", "--file", "y"], 2),
                   (["tokenize", "-m", "/nonexistent", "--text", "x"], 1),
                   (["tokenize", "-m", os.path.join(tokdir, "tok_cases.json"), "--text", "x"], 1),
                   (["detokenize", "-m", files["qwen3"], "--ids", "1,x"], 1),
                   (["detokenize", "-m", files["qwen3"], "--ids", "151669"], 1),
                   (["detokenize", "-m", files["qwen3"]], 2)):
    r = run(args)
    check(r.returncode == code and (code == 2 or r.stderr.startswith(b"q35 ")),
          f"{args}: exit {r.returncode}, {r.stderr!r}")

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
