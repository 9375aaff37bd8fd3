"""test_cli_chat.py — `q35 run` and `q35 chat` as SPEC §8 and issue 4 fix
them, driven like other programs will drive them:
  - `q35 chat --jsonl` replays every run of golden/chat/chat_runs.json (one
    process per run, one stdin line per turn) and must give the golden ids,
    forced positions, thinking, answer and stop, with the cache counters
    consistent (a later turn reuses the cached prefix);
  - `q35 run` streams exactly the answer (with --show-thinking: the
    thinking between <think> and </think> first), from -p or from stdin;
  - interactive `q35 chat` obeys /think off, /stats, /reset, /quit;
  - Ctrl-C (SIGINT) during a reply stops that reply (kept, partial, in the
    history) and the program goes on reading commands.
Environment: Q35 (the binary), Q35_FIXTURES."""
import json
import os
import signal
import subprocess
import sys
import time

Q35 = os.environ["Q35"]
GOLDEN = os.environ["Q35_FIXTURES"]
MODEL = os.path.join(GOLDEN, "models", "tiny-chat")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def run_options(run):
    opts = ["--temp", "0", "-n", str(run["max_tokens"]),
            "--repeat-penalty", str(run["repetition_penalty"]), "--seed", "1"]
    if not run["enable_thinking"]:
        opts.append("--no-think")
    budget = run["max_thinking_tokens"]
    opts += ["--think-budget", str(budget if budget is not None else -1)]
    first = run["turns"][0]["messages"][0]
    if first["role"] == "system":
        opts += ["-s", first["content"]]
    return opts


def test_jsonl_golden():
    with open(os.path.join(GOLDEN, "chat", "chat_runs.json"), encoding="utf-8") as f:
        runs = json.load(f)["runs"]
    for run in runs:
        users = [t["messages"][-1]["content"] for t in run["turns"]]
        stdin = "".join(json.dumps(u, ensure_ascii=False) + "\n" for u in users)
        p = subprocess.run([Q35, "chat", "-m", MODEL, "--jsonl", "-q"] + run_options(run),
                           input=stdin.encode(), capture_output=True, timeout=300)
        check(p.returncode == 0, f"{run['name']}: exit {p.returncode}: {p.stderr.decode()[-500:]}")
        lines = p.stdout.decode().splitlines()
        check(len(lines) == len(users), f"{run['name']}: {len(lines)} replies for {len(users)} lines")
        for i, (line, want) in enumerate(zip(lines, run["turns"])):
            got = json.loads(line)
            tag = f"{run['name']} turn {i}"
            for key in ("generated_ids", "forced_positions", "thinking", "answer", "text",
                        "stopped_at_eos"):
                check(got[key] == want[key], f"{tag}: {key} {got[key]!r} != {want[key]!r}")
            check(got["prompt_tokens"] == len(want["prompt_ids"]), f"{tag}: prompt_tokens")
            check(got["prefilled_tokens"] + got["reused_tokens"] == got["prompt_tokens"],
                  f"{tag}: prefilled + reused != prompt")
            if i > 0:
                check(got["reused_tokens"] > 0, f"{tag}: nothing reused")
            for key in ("ttft_ms", "tok_s"):
                check(isinstance(got[key], (int, float)) and got[key] >= 0, f"{tag}: {key}")


def test_run():
    with open(os.path.join(GOLDEN, "chat", "chat_runs.json"), encoding="utf-8") as f:
        runs = {r["name"]: r for r in json.load(f)["runs"]}
    for name in ("single_nothink", "think_budget"):
        run = runs[name]
        turn = run["turns"][0]
        user = turn["messages"][-1]["content"]
        p = subprocess.run([Q35, "run", "-m", MODEL, "-p", user] + run_options(run),
                           capture_output=True, timeout=300)
        check(p.returncode == 0, f"run {name}: exit {p.returncode}")
        check(p.stdout.decode() == turn["answer"] + "\n", f"run {name}: stdout {p.stdout!r}")
        check(b"tok/s" in p.stderr and b"ttft" in p.stderr, f"run {name}: no timing summary")
        # the prompt from stdin, thinking shown
        p = subprocess.run([Q35, "run", "-m", MODEL, "--show-thinking", "-q"] + run_options(run),
                           input=user.encode(), capture_output=True, timeout=300)
        want = turn["answer"] + "\n"
        if turn["thinking"] or run["enable_thinking"]:
            want = "<think>\n" + turn["thinking"] + "\n</think>\n\n" + want
        check(p.stdout.decode() == want, f"run {name} --show-thinking: {p.stdout!r} != {want!r}")
        check(p.stderr == b"", f"run {name} -q: stderr {p.stderr!r}")
    p = subprocess.run([Q35, "run", "-m", MODEL, "-p", "x", "--top-p", "7"], capture_output=True)
    check(p.returncode == 2 and b"top-p" in p.stderr, "run: a bad option is a usage error")
    p = subprocess.run([Q35, "run", "-m", "/nonexistent/model", "-p", "x"], capture_output=True)
    check(p.returncode == 1 and b"q35 run:" in p.stderr, "run: a missing model is an error")
    # hostile stdin: a NUL byte is refused (not a prompt silently cut short),
    # a prompt past the context is an overflow error; neither crashes
    p = subprocess.run([Q35, "run", "-m", MODEL, "-n", "2"], input=b"hi\0there",
                       capture_output=True, timeout=300)
    check(p.returncode == 1 and b"NUL" in p.stderr and p.stdout == b"",
          f"run: NUL in the prompt: exit {p.returncode}, {p.stderr[-200:]!r}")
    p = subprocess.run([Q35, "run", "-m", MODEL, "-n", "2"], input=b"word " * 20000,
                       capture_output=True, timeout=300)
    check(p.returncode == 1 and b"overflow" in p.stderr,
          f"run: an oversized prompt: exit {p.returncode}, {p.stderr[-200:]!r}")


def test_jsonl_hostile_lines():
    # a NUL (raw or as \u0000) is an error line for that turn, not a message
    # silently cut at the NUL; the conversation goes on with the next line
    stdin = b'"a\\u0000b"\n"a\\\\u0000b"\nhi\0x\n"ok"\n'
    p = subprocess.run([Q35, "chat", "-m", MODEL, "--jsonl", "-q", "-n", "2", "--temp", "0"],
                       input=stdin, capture_output=True, timeout=300)
    out = [json.loads(x) for x in p.stdout.decode().splitlines()]
    check(len(out) == 4, f"jsonl hostile: {len(out)} answers for 4 lines")
    if len(out) == 4:
        check("error" in out[0] and "u0000" in out[0]["error"], f"jsonl \\u0000: {out[0]}")
        check("error" not in out[1], f"jsonl escaped backslash then u0000 is text: {out[1]}")
        check("error" in out[2] and "NUL" in out[2]["error"], f"jsonl raw NUL: {out[2]}")
        check("error" not in out[3] and out[3]["reused_tokens"] > 0,
              f"jsonl: the conversation went on after the errors: {out[3]}")
    check(p.returncode == 1, f"jsonl hostile: exit {p.returncode} (a turn failed)")


def test_interactive_commands():
    script = "/think off\nHello\n/stats\n/reset\n/stats\nHi again\n/quit\nnever read\n"
    p = subprocess.run([Q35, "chat", "-m", MODEL, "-s", "Be brief.", "--temp", "0", "-n", "5"],
                       input=script.encode(), capture_output=True, timeout=300)
    err = p.stderr.decode()
    check(p.returncode == 0, f"chat: exit {p.returncode}: {err[-300:]}")
    check("[thinking off]" in err, "chat: /think off not acknowledged")
    check(err.count("turns 1 |") == 1 and err.count("turns 0 |") == 1,
          f"chat: /stats before and after /reset: {err!r}")
    check(err.count("[prompt ") == 2, "chat: two replies expected")
    check(p.stdout.strip() != b"", "chat: no reply on stdout")


def test_ctrl_c_stops_the_reply():
    p = subprocess.Popen([Q35, "chat", "-m", MODEL, "--temp", "0", "--no-think",
                          "-n", "100000", "--ctx", "4096"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdin.write(b"Tell me everything\n")
    p.stdin.flush()
    os.set_blocking(p.stdout.fileno(), False)
    got = b""
    deadline = time.time() + 120
    while not got and time.time() < deadline:
        time.sleep(0.01)
        got = p.stdout.read() or b""
    check(bool(got), "Ctrl-C test: no output started")
    p.send_signal(signal.SIGINT)
    time.sleep(0.2)
    check(p.poll() is None, "Ctrl-C ended the program")
    p.stdin.write(b"/stats\n/quit\n")
    p.stdin.flush()
    os.set_blocking(p.stdout.fileno(), True)
    out, err = p.communicate(timeout=300)
    err = err.decode()
    check(p.returncode == 0, f"Ctrl-C test: exit {p.returncode}")
    check("[stopped]" in err and "stop: cancelled" in err,
          f"Ctrl-C test: the reply was not reported stopped: {err[-300:]!r}")
    # the program went on: it answered /stats, with the cancelled turn kept
    check("turns 1 |" in err, f"Ctrl-C test: no /stats after the cancel: {err[-300:]!r}")

test_jsonl_golden()
test_run()
test_jsonl_hostile_lines()
test_interactive_commands()
test_ctrl_c_stops_the_reply()
if failures:
    sys.exit(f"{len(failures)} check(s) failed")
print("ok")
