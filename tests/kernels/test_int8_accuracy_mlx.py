#!/usr/bin/env python3
"""The integer path's accuracy on MLX affine files written with MLX's own
quantizer and packing (tests/tools/make_mlx.py, group 64): tiny-a (tied
embeddings) as the reference app writes its int4 / int5 / int8 files, and
tiny-b (an untied head, which the app's layout cannot hold) as mlx-lm
writes its 4- and 8-bit conversions; every position of
cases prefill_64 and prefill_65 through the decode path (T = 1; every MLX
matrix, the tied embedding head included, through the integer
micro-kernels), with the best kernel set and with Q35_KERNELS=avx2 where
this CPU has it, against the float64 reference of the original weights
(ref64): mean KL(ref64 || q35) and top-1 agreement at positions whose f64
top-2 margin exceeds 1e-2.

Thresholds, and why (those of test_int8_accuracy.py for Q4_0 / Q8_0,
whose reasoning carries over: the activations are quantized the same way,
to 8 bits per 32 elements, whatever the weight format):
 - against q35's exact float path on the same file: mean KL <= 2.5x
   exact + 1e-4 and top-1 >= exact - 0.06. 8-bit activations add an error
   of about the size of 8-bit weights' own (the Q8_0 files measure 1.8x and
   2.2x the exact KL there); at 4 and 5 bits the weights' error dominates
   and the integer path is within a few percent of exact.
 - at 4 bits, against llama.cpp's Q4_0 on the same model (tests/data/
   kernels/llama_cpp_accuracy.json, tiny-b-Q4_0): mean KL <= 1.5x its KL.
   MLX 4-bit at group 64 spends the bits Q4_0 does (4.5 per weight: an f16
   scale and bias per 64 against an f16 scale per 32) on an affine grid
   that fits each group's range; a wrong code, scale, bias or block offset
   costs several times the KL, where 1.5x leaves room for the different
   rounding of the two grids.
 - the integer path must be in use: its logits differ from the exact
   path's (else the checks above would be vacuous).
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from int8_accuracy_common import FX, kernel_modes, measure

DATA = os.environ["Q35_TEST_DATA"]
PY = os.environ.get("Q35_PYTHON", sys.executable)
HERE = os.path.dirname(os.path.abspath(__file__))
MAKE = os.path.join(HERE, "..", "tools", "make_mlx.py")
LLAMA = json.load(open(os.path.join(DATA, "kernels", "llama_cpp_accuracy.json")))["files"]
RUNS = (("tiny-a", "app", 4), ("tiny-a", "app", 5), ("tiny-a", "app", 8), ("tiny-b", "mlx-lm", 4),
        ("tiny-b", "mlx-lm", 8))


def main():
    modes = kernel_modes()
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for tiny, layout, bits in RUNS:
            model = os.path.join(tmp, f"{tiny}-{layout}-{bits}")
            p = subprocess.run([PY, MAKE, os.path.join(FX, "models", tiny), model, "-",
                                "--bits", str(bits), "--group", "64", "--layout", layout]
                               + (["--app-bits-keys"] if bits == 5 else []),
                               capture_output=True, text=True)
            if p.returncode:
                print(f"FAIL make_mlx.py {tiny} {layout} {bits} bits: {p.stderr}")
                failures += 1
                continue
            ekl, etop, eraw = measure(tiny, model, {"Q35_EXACT": "1"}, tmp)
            q4 = LLAMA.get(f"{tiny}-Q4_0") if bits == 4 else None
            for label, env in modes:
                kl, top, raw = measure(tiny, model, env, tmp)
                line = (f"{tiny} MLX {bits}-bit g64 ({layout}) {label}: KL {kl:.3e} "
                        f"top-1 {top:.3f} (exact {ekl:.3e} / {etop:.3f}")
                ok = kl <= 2.5 * ekl + 1e-4 and top >= etop - 0.06
                ok = ok and not np.array_equal(raw, eraw)
                if q4:
                    line += f"; llama.cpp Q4_0 {q4['mean_kl']:.3e} / {q4['top1']:.3f}"
                    ok = ok and kl <= 1.5 * q4["mean_kl"]
                print(line + ")" + ("" if ok else "  FAIL"), flush=True)
                failures += not ok
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
