"""The KV cache's element types (Q35_KV_CACHE: f32, f16 = the default, bf16)
on a small random Qwen3.5 (tests/tools/make_mlx.py --random, bf16 HF
layout) against the float64 numpy reference (tests/tools/ref_numpy.py),
prefill and token-by-token decode:
  - f32 is the exact mode: rel <= 1e-4 of the largest logit (float32
    against float64);
  - f16 rounds each cached key and value once (2^-11 relative): rel <= 5e-4
    and the same argmax at every position;
  - bf16 (2^-8): rel <= 5e-3;
  - q8 (Q8_0 blocks of 32 along each head, scale amax/127): rel <= 1.5e-2;
  - q35 eval with the default gives the f16 logits bit for bit, and a bad
    Q35_KV_CACHE value falls back to the default.
The bounds are ten times what the rounding gives on this model (f16 ~5e-5,
bf16 ~5e-4, q8 ~1.4e-3): wrong rows, a wrong stride or a missed conversion move logits
by far more. The memory side (half the bytes per position) is measured in
BENCHMARKS.md.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
import ref_numpy  # noqa: E402

Q35 = os.environ["Q35"]
PY = os.environ.get("Q35_PYTHON", sys.executable)
IDS = [5, 77, 3, 190, 42, 8, 250, 16, 99, 1, 130, 64, 7, 200, 33, 11, 180, 2, 95, 61,
       140, 23, 9, 170]
fails = 0


def check(what, ok, detail=""):
    global fails
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        fails += 1
        if detail:
            print("     " + detail.strip())


def run(model, kv, decode_from=None):
    out = os.path.join(os.path.dirname(model), f"l-{kv}-{decode_from}.f32")
    env = dict(os.environ)
    env.pop("Q35_KV_CACHE", None)
    if kv is not None:
        env["Q35_KV_CACHE"] = kv
    cmd = [Q35, "eval", "-m", model, "--ids", ",".join(map(str, IDS)), "--logits-out", out,
           "--threads", "2"]
    if decode_from is not None:
        cmd += ["--decode-from", str(decode_from)]
    p = subprocess.run(cmd, capture_output=True, env=env)
    if p.returncode:
        return None, p.stderr.decode()
    return np.fromfile(out, "<f4").reshape(-1, 256), ""


def main():
    tmp = tempfile.mkdtemp(prefix="q35_kv_")
    src = os.path.join(tmp, "src")
    p = subprocess.run([PY, os.path.join(HERE, "..", "tools", "make_mlx.py"), src,
                        os.path.join(tmp, "q"), os.path.join(tmp, "d"), "--random", "11"],
                       capture_output=True)
    check("make_mlx.py wrote a random checkpoint", p.returncode == 0, p.stderr.decode())
    if p.returncode:
        return 1
    ref = ref_numpy.Model(src).forward(np.array(IDS))
    bounds = {"f32": 1e-4, "f16": 5e-4, "bf16": 5e-3, "q8": 1.5e-2}
    got = {}
    for kv, bound in bounds.items():
        for dec in (None, 6):
            x, err = run(src, kv, dec)
            if x is None:
                check(f"{kv} cache: q35 eval", False, err)
                continue
            r = ref if dec is None else ref[dec - 1:]
            rel = np.abs(x - r).max() / np.abs(r).max()
            same = (x.argmax(1) == r.argmax(1)).all()
            how = "prefill" if dec is None else f"decode from {dec}"
            check(f"{kv} cache, {how}: rel {rel:.2g} <= {bound:g}"
                  + (", argmax agrees" if kv not in ("bf16", "q8") else ""),
                  rel <= bound and (same or kv in ("bf16", "q8")))
            got[(kv, dec)] = x
    d, err = run(src, None)
    check("the default cache is f16 (same bits)",
          d is not None and ("f16", None) in got and np.array_equal(d, got[("f16", None)]), err)
    b, err = run(src, "f64")
    check("an unknown Q35_KV_CACHE value falls back to the default",
          b is not None and d is not None and np.array_equal(b, d), err)
    subprocess.run(["rm", "-rf", tmp])
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
