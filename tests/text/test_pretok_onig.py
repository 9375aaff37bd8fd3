#!/usr/bin/env python3
"""test_pretok_onig.py — the pre-tokenizer against Oniguruma, the regex
engine HF tokenizers runs, on text the goldens do not have: random strings
dense in the code points where regex dialects disagree (every kind of
space, zero-width characters, combining marks, Indic and Thai vowel signs,
letter-like numbers, case-folding oddities such as U+017F and U+212A),
for both the Qwen3 and the Qwen3.5 pattern. Oniguruma (libonig5, as
scripts/setup installs) is driven through ctypes with the pattern read from
each tokenizer.json, split "Isolated" as HF's Split does, after NFC;
`q35 tokenize --no-added --pieces` gives ours."""
import ctypes
import ctypes.util
import json
import os
import random
import subprocess
import sys
import unicodedata

Q35, GOLDEN = os.environ["Q35"], os.environ["Q35_FIXTURES"]


class Region(ctypes.Structure):
    _fields_ = [("allocated", ctypes.c_int), ("num_regs", ctypes.c_int),
                ("beg", ctypes.POINTER(ctypes.c_int)), ("end", ctypes.POINTER(ctypes.c_int))]


def load_onig():
    try:
        onig = ctypes.CDLL(ctypes.util.find_library("onig") or "libonig.so.5")
    except OSError:
        sys.exit("libonig (Debian libonig5) is missing: run scripts/setup")
    enc = ctypes.addressof(ctypes.c_char.in_dll(onig, "OnigEncodingUTF8"))
    syntax = ctypes.addressof(ctypes.c_char.in_dll(onig, "OnigSyntaxRuby"))  # onig's default
    assert onig.onig_initialize((ctypes.c_void_p * 1)(enc), 1) == 0
    onig.onig_region_new.restype = ctypes.POINTER(Region)
    onig.onig_search.argtypes = [ctypes.c_void_p] + [ctypes.c_void_p] * 4 + \
        [ctypes.POINTER(Region), ctypes.c_uint]
    onig.onig_new.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p, ctypes.c_void_p,
                              ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    return onig, enc, syntax


def onig_split(onig, enc, syntax, pattern, text):
    reg = ctypes.c_void_p()
    p = ctypes.create_string_buffer(pattern.encode())
    einfo = ctypes.create_string_buffer(64)
    n = len(pattern.encode())
    assert onig.onig_new(ctypes.byref(reg), ctypes.addressof(p), ctypes.addressof(p) + n, 0, enc,
                         syntax, einfo) == 0
    region = onig.onig_region_new()
    b = text.encode()
    buf = ctypes.create_string_buffer(b)
    base, end = ctypes.addressof(buf), ctypes.addressof(buf) + len(b)
    pos = last = 0
    out = []
    while pos < len(b):  # every match is a piece, and so is every gap (Isolated)
        if onig.onig_search(reg, base, end, base + pos, end, region, 0) < 0:
            break
        ms, me = region.contents.beg[0], region.contents.end[0]
        if me == ms:
            pos = ms + 1
            while pos < len(b) and (b[pos] & 0xC0) == 0x80:
                pos += 1
            continue
        if ms > last:
            out.append(b[last:ms])
        out.append(b[ms:me])
        last = pos = me
    if last < len(b):
        out.append(b[last:])
    return out


SPECIAL = [0x85, 0xA0, 0x1680, 0x180E, 0x2000, 0x2007, 0x200A, 0x200B, 0x200C, 0x200D, 0x2028,
           0x2029, 0x202F, 0x205F, 0x3000, 0xFEFF, 0x0B, 0x0C, 0x1C, 0x1F, 0x17F, 0x212A, 0x130,
           0x131, 0x2160, 0x3007, 0xFF10, 0x0660, 0x0966, 0xB2, 0xBD, 0x2070, 0x1F600, 0x1F3FD,
           0x0300, 0x0301, 0x0345, 0x0903, 0x093F, 0x0E31, 0x0E47, 0x20DD, 0x05B0, 0x064B, 0x1AB0,
           0xE000, 0x10FFFD, 0x02B0, 0x02C6, 0x0F0B, 0x1F1E6, 0xA8E0]


def random_text(seed, n_chars):
    rng = random.Random(seed)
    out = []
    for _ in range(n_chars):
        r = rng.random()
        if r < 0.35:
            out.append(rng.choice(" \t\n\r'sStTdDmMlLvVreE0123456789aZ.,!?-_/\\\"#$%&()*+"))
        elif r < 0.6:
            out.append(chr(rng.choice(SPECIAL)))
        else:
            cp = rng.choice([rng.randrange(0x80, 0x3000), rng.randrange(0x3000, 0xD800),
                             rng.randrange(0xE000, 0x30000)])
            out.append(chr(cp))
    return "".join(out)


def main():
    onig, enc, syntax = load_onig()
    failed = passed = 0
    for name in ("qwen3", "qwen35"):
        path = os.path.join(GOLDEN, "tokenizer", f"tokenizer.{name}.json")
        pattern = json.load(open(path, encoding="utf-8"))["pre_tokenizer"]["pretokenizers"][0][
            "pattern"]["Regex"]
        for seed in (1, 2, 3):
            text = random_text(seed, 20000)
            r = subprocess.run([Q35, "tokenize", "-m", path, "--no-added", "--pieces", "--file",
                                "-"], input=text.encode(), capture_output=True, timeout=120)
            ours = [bytes.fromhex(h) for h in r.stdout.decode().split()]
            ref = onig_split(onig, enc, syntax, pattern, unicodedata.normalize("NFC", text))
            if r.returncode == 0 and ours == ref:
                passed += 1
                continue
            failed += 1
            i = next((k for k in range(min(len(ours), len(ref))) if ours[k] != ref[k]),
                     min(len(ours), len(ref)))
            print(f"FAIL {name} seed {seed}: {len(ours)} pieces vs onig {len(ref)}; first "
                  f"difference at piece {i}: ours {ours[i:i + 3]} onig {ref[i:i + 3]} "
                  f"{r.stderr.decode()}")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
