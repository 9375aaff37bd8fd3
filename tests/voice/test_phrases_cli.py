"""test_phrases_cli.py — `q35 phrases` and `q35 run --phrases`:
  - `q35 phrases` prints one phrase per line for text on stdin, the same
    phrases whether the text arrives at once or in small pieces over time
    (a pipe that delivers it slowly), and `--spoken` prints the spoken form;
  - `q35 run --phrases` on the tiny chat model prints phrases that, in
    order, make up the spoken form of the answer `q35 run` prints for the
    same greedy turn (compared with the spaces taken out, since a cut
    between CJK characters drops no space).
"""
import os
import subprocess
import sys
import time

Q35 = os.environ["Q35"]
TEXT = ("# Plan\n\nSure, it costs $1,200.50 at 10:30 a.m. today. Dr. Watson said so, "
        "e.g. in the U.S. office.\n\n1. Call **Bob** at bob@example.org.\n"
        "2. Visit [the site](https://example.com/a.b).\n\n```\ncode here\n```\n"
        "<think>not this</think>Done… 你好。再见！")
WANT = ["Plan", "Sure, it costs $1,200.50 at 10:30 a.m. today.",
        "Dr. Watson said so, e.g. in the U.S. office.", "1. Call Bob at bob@example.org.",
        "2. Visit the site.", "Done… 你好。再见！"]


def phrases(text, slow=False):
    p = subprocess.Popen([Q35, "phrases"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    data = text.encode()
    if slow:
        for i in range(0, len(data), 7):
            p.stdin.write(data[i:i + 7])
            p.stdin.flush()
            time.sleep(0.002)
    else:
        p.stdin.write(data)
    p.stdin.close()
    out = p.stdout.read().decode()
    assert p.wait() == 0
    return out.splitlines()


def main():
    got = phrases(TEXT)
    assert got == WANT, "phrases:\n%s\nwant:\n%s" % ("\n".join(got), "\n".join(WANT))
    assert phrases(TEXT, slow=True) == WANT
    spoken = subprocess.run([Q35, "phrases", "--spoken"], input=TEXT.encode(),
                            capture_output=True, check=True).stdout.decode().strip()
    assert spoken == " ".join(WANT), spoken

    model = os.environ["Q35_TINY_CHAT"]
    base = [Q35, "run", "-m", model, "--temp", "0", "-n", "60", "--no-think", "-q",
            "-p", "Tell me about the weather."]
    answer = subprocess.run(base, capture_output=True, check=True).stdout.decode()
    lines = subprocess.run(base + ["--phrases"], capture_output=True,
                           check=True).stdout.decode().splitlines()
    assert lines, "no phrases"
    for ln in lines:
        assert ln and ln == ln.strip(), repr(ln)
    spoken = subprocess.run([Q35, "phrases", "--spoken"], input=answer.encode(),
                            capture_output=True, check=True).stdout.decode().strip()
    assert "".join(lines).replace(" ", "") == spoken.replace(" ", ""), (lines, spoken)
    print("PASS: %d phrases from the model's answer" % len(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
