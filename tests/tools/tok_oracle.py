#!/usr/bin/env python3
"""The tokenizer oracle: HF `tokenizers` encodes and decodes the strings of
tok_oracle_strings.py with both golden tokenizer files, in the shape of
golden/tokenizer/tok_cases.json, so test_tokenizer_golden.c can hold q35
to strings no golden file has. Run where `tokenizers` is installed (the
device machine has it; this machine has no PyPI):

  tok_oracle.py GOLDEN_TOKENIZER_DIR STRINGS.json OUT.json

First it re-derives golden tok_cases.json the same way and refuses to write
anything if one id differs, so the method is the goldens' method."""
import json
import os
import sys

import tokenizers
from tokenizers import Tokenizer

NAMES = ("qwen3", "qwen35")


def encode(tok, text, special):
    tok.encode_special_tokens = not special
    try:
        return tok.encode(text, add_special_tokens=False).ids
    finally:
        tok.encode_special_tokens = False


def case(toks, text):
    c = {"text": text}
    for n in NAMES:
        ids = encode(toks[n], text, True)
        c[n] = ids
        c[n + "_nospecial"] = encode(toks[n], text, False)
        c[n + "_decoded"] = toks[n].decode(ids, skip_special_tokens=False)
    return c


def main():
    tokdir, strings_path, out_path = sys.argv[1:4]
    toks = {n: Tokenizer.from_file(os.path.join(tokdir, "tokenizer.%s.json" % n)) for n in NAMES}
    with open(os.path.join(tokdir, "tok_cases.json")) as f:
        golden = json.load(f)["cases"]
    bad = [g["text"] for g in golden if case(toks, g["text"]) != g]
    if bad:
        sys.exit("method disagrees with the goldens on %d strings, e.g. %r" % (len(bad), bad[0]))
    with open(strings_path) as f:
        src = json.load(f)
    cases = [case(toks, s) for s in src["strings"]]
    # Decoded text also as UTF-8 hex: it may hold NUL, which C JSON readers
    # cut strings at.
    dec = []
    for ids in src["decode"]:
        d = {"ids": ids}
        for n in NAMES:
            text = toks[n].decode(ids, skip_special_tokens=False)
            d[n + "_decoded"] = text
            d[n + "_decoded_hex"] = text.encode("utf-8").hex()
        dec.append(d)
    with open(out_path, "w") as f:
        json.dump({"reference": "tokenizers " + tokenizers.__version__, "cases": cases,
                   "decode_cases": dec}, f, ensure_ascii=False, separators=(",", ":"))
    print("golden method check: %d/%d equal; wrote %d cases, %d decode cases"
          % (len(golden), len(golden), len(cases), len(dec)))


if __name__ == "__main__":
    main()
