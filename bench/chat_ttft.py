"""chat_ttft.py — the figures of BENCHMARKS.md "Chat runtime": time to first
token of a 64-token user turn after a 200-token system prompt, with the
system prompt cached (the chat computes it once, before the turn, as
`q35 chat` does at start-up) and without any caching (--no-cache: the whole
prompt is prefilled in the turn). Both through `q35 chat --jsonl`, whose
ttft_ms runs from the q35_chat_generate call (render, tokenize, restore,
prefill) to the first sampled id. Median of RUNS fresh processes each, each
warmed up first (--warmup: one throw-away token, then the history is reset)
so that the figure is a running chat's, not a cold start's page faults.

usage: /usr/bin/python3 bench/chat_ttft.py [Q35] [MODEL_DIR] [THREADS] [RUNS] [q35 options...]
(options after RUNS, e.g. --quant q4, go to every `q35 chat`)
"""
import json
import statistics
import subprocess
import sys

Q35 = sys.argv[1] if len(sys.argv) > 1 else "build/q35"
MODEL = sys.argv[2] if len(sys.argv) > 2 else "/tmp/q35-0.8b"
THREADS = sys.argv[3] if len(sys.argv) > 3 else "2"
RUNS = int(sys.argv[4]) if len(sys.argv) > 4 else 5
OPTIONS = sys.argv[5:]

WORDS = ("the quick brown fox jumps over a lazy dog while seven wizards quietly "
         "judge boxing matches and a voice assistant answers questions about the "
         "weather trains music recipes and the news in short friendly sentences "
         "without lists or markup because everything it says is spoken aloud").split()


def n_tokens(text):
    out = subprocess.run([Q35, "tokenize", "-m", MODEL, "--no-special", "--text", text],
                         capture_output=True, check=True).stdout.split()
    return len(out)


def text_of(n, offset):
    """Words from WORDS (starting at `offset`) tokenizing to exactly n ids."""
    words, k = [], offset
    while n_tokens(" ".join(words)) < n:
        words.append(WORDS[k % len(WORDS)])
        k += 1
    text = " ".join(words)
    while n_tokens(text) > n:  # a last word worth several tokens: trim characters
        text = text[:-1]
    assert n_tokens(text) == n, "cannot hit the token count exactly"
    return text


def ttft(system, user, extra):
    p = subprocess.run([Q35, "chat", "-m", MODEL, "-s", system, "--jsonl", "-q", "-t", THREADS,
                        "--temp", "0", "-n", "1", "--warmup"] + OPTIONS + extra,
                       input=(json.dumps(user) + "\n").encode(), capture_output=True, check=True)
    r = json.loads(p.stdout.decode().splitlines()[0])
    return r["ttft_ms"], r["prefilled_tokens"], r["reused_tokens"]


def main():
    system = text_of(200, 0)
    user = text_of(64, 17)
    print(f"system prompt {n_tokens(system)} tokens, user message {n_tokens(user)} tokens; "
          f"{THREADS} threads, median of {RUNS} {' '.join(OPTIONS)}")
    for name, extra in (("cached system prompt", []), ("no caching", ["--no-cache"])):
        rows = [ttft(system, user, extra) for _ in range(RUNS)]
        times = [r[0] for r in rows]
        print(f"{name:22s} ttft median {statistics.median(times):8.1f} ms "
              f"(min {min(times):.1f}, max {max(times):.1f}); prefilled {rows[0][1]}, "
              f"reused {rows[0][2]} tokens")


if __name__ == "__main__":
    main()
