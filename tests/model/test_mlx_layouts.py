"""MLX affine checkpoints computed in place, in both layouts q35 knows
(mlx-lm's conversions and the reference app's), for every bit width MLX
writes (2, 3, 4, 5, 6, 8) and group sizes 32, 64 and 128.

tests/tools/make_mlx.py makes a small random Qwen3.5, converts it the way
each converter writes its files (MLX's own quantizer and bit packing) and
writes beside it the float32 checkpoint the quantized files mean. Checked:
  - `q35 info` names the layout, the bit width and the group;
  - the logits of the quantized files are those of the float64 numpy
    reference (tests/tools/ref_numpy.py) over the dequantized weights, within
    float32 rounding (rel <= 1e-4 of the largest logit: a float32 engine
    against float64 over four layers is ~1e-6 here; a wrong code, scale,
    bias or norm moves logits by percent);
  - with the plain C kernels (Q35_KERNELS=generic) the in-place matrices
    give exactly the logits of the dequantized float32 checkpoint (the
    plain C matmul decodes each weight to the same float32 and keeps the
    float32 order); with the fastest set only float32 rounding differs
    (rel <= 1e-4: its s * sum(q x) + z * sum(x) per group cancels between
    the two terms, ~2e-5 seen at group 128);
  - all of it on the exact float path (Q35_EXACT=1): the integer path's
    8-bit activations are another computation, held to its own plain C
    definition (tests/kernels/test_int8_mlx_q5k.c) and checked for accuracy
    in tests/kernels/test_int8_accuracy_mlx.py;
  - the reference app's final norm gets its +1 (the app itself leaves it
    out): against a copy whose final norm is read as stored the logits
    must differ.
"""
import json
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
MAKE = os.path.join(HERE, "..", "tools", "make_mlx.py")
IDS = [3, 17, 200, 5, 99, 42, 128, 7, 250, 1, 64, 31]
fails = 0


def check(what, ok, detail=""):
    global fails
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        fails += 1
        if detail:
            print("     " + detail.strip().replace("\n", "\n     "))


def logits(model, env_extra=None):
    out = model.rstrip("/") + ".logits"
    env = dict(os.environ)
    env["Q35_EXACT"] = "1"  # the float path; the integer one: tests/kernels/test_int8_accuracy_mlx.py
    env.update(env_extra or {})
    p = subprocess.run([Q35, "eval", "-m", model, "--ids", ",".join(map(str, IDS)),
                        "--logits-out", out, "--threads", "2"], capture_output=True, env=env)
    if p.returncode:
        return None, p.stderr.decode()
    return np.fromfile(out, "<f4").reshape(len(IDS), -1), ""


def make(tmp, layout, bits, group, extra=()):
    name = f"{layout}-b{bits}-g{group}"
    q, d = os.path.join(tmp, name + "-q"), os.path.join(tmp, name + "-d")
    p = subprocess.run([PY, MAKE, os.path.join(tmp, "src"), q, d, "--bits", str(bits),
                        "--group", str(group), "--layout", layout, *extra], capture_output=True)
    if p.returncode:
        check(f"make_mlx.py {name}", False, p.stderr.decode())
        return None, None
    return q, d


def main():
    tmp = tempfile.mkdtemp(prefix="q35_mlx_layouts_")
    p = subprocess.run([PY, MAKE, os.path.join(tmp, "src"), os.path.join(tmp, "s-q"),
                        os.path.join(tmp, "s-d"), "--random", "7"], capture_output=True)
    check("make_mlx.py wrote a random checkpoint", p.returncode == 0, p.stderr.decode())
    if p.returncode:
        return 1
    # every width in one layout or the other, both layouts at 4 bits, and
    # the other group sizes (kept short: each case is five q35 runs)
    cases = [("mlx-lm", 2, 64), ("app", 3, 64), ("mlx-lm", 4, 64), ("app", 4, 64),
             ("app", 5, 64), ("mlx-lm", 6, 64), ("app", 8, 64), ("mlx-lm", 8, 64),
             ("mlx-lm", 3, 32), ("app", 6, 128), ("mlx-lm", 5, 128), ("app", 2, 32)]
    for layout, bits, group in cases:
        extra = ("--app-bits-keys",) if layout == "app" and (group != 64 or bits == 5) else ()
        q, d = make(tmp, layout, bits, group, extra)
        if not q:
            continue
        name = f"{layout} {bits}-bit group {group}"
        info = subprocess.run([Q35, "info", "-m", q], capture_output=True, text=True)
        want = "reference-app layout" if layout == "app" else "mlx-lm layout"
        check(f"{name}: q35 info names the layout and mlx{bits}/g{group}",
              info.returncode == 0 and want in info.stdout and f"mlx{bits}/g{group}" in info.stdout
              and f"MLX affine {bits}-bit, group {group}" in info.stdout,
              info.stdout + info.stderr)
        got, err = logits(q)
        if got is None:
            check(f"{name}: q35 eval", False, err)
            continue
        ref = ref_numpy.Model(d).forward(np.array(IDS))
        rel = np.abs(got - ref).max() / np.abs(ref).max()
        check(f"{name}: logits vs float64 reference over the dequantized weights "
              f"(rel {rel:.2g})", rel <= 1e-4)
        gq, e1 = logits(q, {"Q35_KERNELS": "generic"})
        gd, e2 = logits(d, {"Q35_KERNELS": "generic"})
        check(f"{name}: generic kernels, in place == decoded to float32 (bit for bit)",
              gq is not None and gd is not None and np.array_equal(gq, gd), e1 + e2)
        bd, e3 = logits(d)
        if bd is not None:
            rel = np.abs(got - bd).max() / np.abs(bd).max()
            check(f"{name}: fastest kernels, in place vs decoded to float32 (rel {rel:.2g})",
                  rel <= 1e-4, e3)
    # the app's final norm: read as stored (the app's bug) would change the logits
    q, d = make(tmp, "app", 4, 64)
    if q:
        a, _ = logits(q)
        cfg_d = json.load(open(os.path.join(d, "config.json")))
        st = ref_numpy.load_safetensors(os.path.join(d, "model.safetensors"))
        m = ref_numpy.Model(d)
        m.W["model.norm.weight"] = st["model.norm.weight"] - 1.0  # what rms(x)*w would compute
        buggy = m.forward(np.array(IDS))
        good = ref_numpy.Model(d).forward(np.array(IDS))
        dg = np.abs(a - good).max() / np.abs(good).max()
        db = np.abs(a - buggy).max() / np.abs(buggy).max()
        check(f"app layout: the final norm gets its +1 (rel {dg:.2g} to the checkpoint's model, "
              f"{db:.2g} to the app's)", a is not None and dg <= 1e-4 and db > 1e-2)
        del cfg_d
    subprocess.run(["rm", "-rf", tmp])
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
