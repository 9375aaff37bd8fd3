"""make_fixtures.py — regenerates the chat-format fixtures from references.

  jinja_cases.json: conversations drawn by test_template_oracle.py's
    generator (seed 3535) rendered by chat_reference.py (the published
    Qwen3.5 template under jinja2, set up as transformers does; it matches
    every golden case). Each case keeps the messages and tools as the JSON
    text both sides read, the flags, and the reference text or "error".
    Half of them use no added-token text in messages. Lets the C tests
    check the renderer and the encoder without Python at test time.
  float_repr.json: Python's repr() of doubles (edge values and random bit
    patterns), as [hex of the IEEE bits, repr] pairs.

Usage: python3 tests/data/chat/make_fixtures.py FIXTURES_DIR   (e.g. build-test/tests/fixtures)
"""
import json
import os
import random
import struct
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "cli"))
import chat_reference  # noqa: E402
import test_template_oracle as gen  # noqa: E402


def jinja_cases(golden, n=100):
    tmpl = chat_reference.load_template(golden)
    chat_reference.check_goldens(tmpl, golden)
    rng = random.Random(3535)
    cases = []
    all_words = gen.WORDS
    plain_words = [w for w in all_words if "<" not in w]
    while len(cases) < n:
        # half the conversations hold no added-token text in their messages,
        # so the encoder test can compare their ids with a whole-text encoding
        gen.WORDS = plain_words if len(cases) % 2 else all_words
        msgs = gen.conversation(rng)
        tools = [gen.tool_def(rng) for _ in range(rng.randint(0, 2))] if rng.random() < 0.12 else None
        gp = rng.random() < 0.8
        think = rng.choice([None, True, False])
        mt = gen.to_json(msgs, rng)
        tt = gen.to_json(tools, rng) if tools is not None else None
        try:
            text = chat_reference.render(tmpl, gen.decode_string_arguments(json.loads(mt)),
                                         json.loads(tt) if tt else None,
                                         gp, think)
        except Exception:
            text = None
        if text is None and rng.random() < 0.7:
            continue  # keep refusals to a minority
        cases.append({"messages": mt, "tools": tt, "add_generation_prompt": gp,
                      "enable_thinking": think is not False, "text": text})
    return cases


def float_cases(n=1200):
    rng = random.Random(35)
    xs = [0.0, -0.0, 1.0, -1.0, 0.1, 0.5, 1e16, 1e15, 9999999999999998.0, 1e-4, 1e-5, 5e-324,
          2.2250738585072014e-308, 1.7976931348623157e308, float("inf"), float("-inf"),
          2.0 ** 52, 2.0 ** 53, 2.0 ** 63, 2.0 ** -1022, 123456.789, 0.30000000000000004, 1 / 3]
    for k in range(-60, 60):
        xs.append(2.0 ** k)
        xs.append(10.0 ** k if k < 300 else 0.0)
    while len(xs) < n:
        bits = rng.getrandbits(64)
        x = struct.unpack("<d", struct.pack("<Q", bits))[0]
        if x != x:
            continue
        if rng.random() < 0.5:  # also short decimals, where repr is short
            x = round(rng.uniform(-1e6, 1e6), rng.randint(0, 8))
        xs.append(x)
    return [[struct.pack(">d", x).hex(), repr(x)] for x in xs]


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_fixtures.py FIXTURES_DIR (a build's tests/fixtures, laid out by "
                 "tests/data/materialize.py)")
    golden = sys.argv[1]
    with open(os.path.join(here, "jinja_cases.json"), "w", encoding="utf-8") as f:
        json.dump({"reference": "chat_reference.py (jinja2 " + __import__("jinja2").__version__
                   + ", transformers' settings) over chat_template.qwen35.jinja",
                   "cases": jinja_cases(golden)}, f, ensure_ascii=False, indent=0)
    with open(os.path.join(here, "float_repr.json"), "w") as f:
        json.dump({"reference": "Python " + sys.version.split()[0] + " repr(float)",
                   "cases": float_cases()}, f, indent=0)


if __name__ == "__main__":
    main()
