#!/usr/bin/env python3
"""Writes the texts the tokenizer encode benchmark reads (BENCHMARKS.md,
"Tokenizer"), deterministically, ~10 MB each:
  mixed.txt  — the golden tok_cases strings (prose, code, URLs, CJK,
               Cyrillic, Arabic, Devanagari, emoji, marks) in random order,
               as running text repeats its words;
  random.txt — random "words" of random scripts and lengths, almost none
               repeated: the worst case for the per-call word cache.

usage: tokenizer_make_text.py TOK_CASES_JSON OUT_DIR
"""
import json
import os
import random
import sys

SIZE = 10 * 1000 * 1000


def main():
    cases = json.load(open(sys.argv[1], encoding="utf-8"))["cases"]
    out = sys.argv[2]
    os.makedirs(out, exist_ok=True)
    rng = random.Random(35)
    texts = [c["text"] for c in cases if c["text"].strip()]
    parts, n = [], 0
    while n < SIZE:
        s = rng.choice(texts) + rng.choice([" ", " ", "\n", "\n\n"])
        parts.append(s)
        n += len(s.encode())
    open(os.path.join(out, "mixed.txt"), "w", encoding="utf-8").write("".join(parts))
    alphabets = ["abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij",
                 "абвгдежзийклмнопрстуфхцчшщыэюя", "αβγδεζηθικλμνξοπρστυφχψω",
                 "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年",
                 "0123456789", ".,;:!?-()[]{}<>/+=*&%$#@"]
    parts, n = [], 0
    while n < SIZE:
        a = rng.choice(alphabets)
        w = "".join(rng.choice(a) for _ in range(1 + int(rng.expovariate(0.25))))
        s = w + rng.choice([" ", " ", " ", "\n", ", ", ". "])
        parts.append(s)
        n += len(s.encode())
    open(os.path.join(out, "random.txt"), "w", encoding="utf-8").write("".join(parts))


if __name__ == "__main__":
    main()
