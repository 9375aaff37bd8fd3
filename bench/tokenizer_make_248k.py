#!/usr/bin/env python3
"""Makes a tokenizer.json the size of Qwen3.5's real one (248044 vocabulary
entries + 26 added tokens at 248044..248069) from the 151k-entry Qwen
tokenizer in golden/tokenizer, for measuring load time (BENCHMARKS.md,
"Tokenizer"). The extra entries are concatenations of two existing pieces,
each with the merge that makes it, appended after the real merges (lowest
priority), so the file is a valid byte-level BPE tokenizer of the real
shape. Deterministic. Output is ~10 MB: don't commit it.

usage: tokenizer_make_248k.py GOLDEN_TOKENIZER_JSON OUT_DIR
"""
import json
import os
import random
import sys

TARGET = 248044


def main():
    src, out_dir = sys.argv[1], sys.argv[2]
    with open(src, encoding="utf-8") as f:
        tok = json.load(f)
    vocab = tok["model"]["vocab"]
    merges = tok["model"]["merges"]
    pieces = sorted(vocab, key=vocab.get)
    rng = random.Random(35)
    short = [p for p in pieces if len(p) <= 6]
    next_id = len(vocab)
    while next_id < TARGET:
        a, b = rng.choice(short), rng.choice(short)
        if a + b in vocab:
            continue
        vocab[a + b] = next_id
        merges.append([a, b] if isinstance(merges[0], list) else f"{a} {b}")
        next_id += 1
    shift = TARGET - 151643
    for t in tok["added_tokens"]:
        t["id"] += shift
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)
    cfg = {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
           "added_tokens_decoder": {str(t["id"]): {k: v for k, v in t.items() if k != "id"}
                                    for t in tok["added_tokens"]}}
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, ensure_ascii=False, indent=1)
    print(f"{out_dir}: {len(vocab)} vocabulary entries, {len(merges)} merges, "
          f"{len(tok['added_tokens'])} added tokens")


if __name__ == "__main__":
    main()
