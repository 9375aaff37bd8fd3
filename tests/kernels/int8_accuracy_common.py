"""What the two integer-accuracy tests (test_int8_accuracy.py for GGUF
files, test_int8_accuracy_mlx.py for MLX affine ones) measure alike: the
logits of every position of the tiny goldens' prefill_64 / prefill_65
cases through the decode path, mean KL(ref64 || q35) and top-1 agreement
at positions whose f64 top-2 margin exceeds 1e-2, and the kernel modes to
measure (the best set, and Q35_KERNELS=avx2 where this CPU has it)."""
import json
import os
import subprocess

import numpy as np

Q35 = os.environ.get("Q35", "q35")
FX = os.environ["Q35_FIXTURES"]
CASES = ("prefill_64", "prefill_65")


def cpu_has(flag):
    try:
        with open("/proc/cpuinfo") as f:
            return any(flag in line.split() for line in f if line.startswith("flags"))
    except OSError:
        return False


def logits(model, ids, env_extra, tmp):
    out = os.path.join(tmp, "l.f32")
    env = dict(os.environ)
    env.pop("Q35_EXACT", None)
    env.pop("Q35_KERNELS", None)
    env.update(env_extra)
    subprocess.run([Q35, "eval", "-m", model, "--ids", ",".join(map(str, ids)), "--logits-out",
                    out, "--threads", "2", "--decode-from", "1"], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    return np.fromfile(out, dtype=np.float32)


def kl_rows(ref, got):
    ref = ref.astype(np.float64)
    got = got.astype(np.float64)
    lp = ref - ref.max(1, keepdims=True)
    lp -= np.log(np.exp(lp).sum(1, keepdims=True))
    lq = got - got.max(1, keepdims=True)
    lq -= np.log(np.exp(lq).sum(1, keepdims=True))
    return (np.exp(lp) * (lp - lq)).sum(1)


def measure(tiny, model, env_extra, tmp):
    cases = {c["name"]: c for c in json.load(open(f"{FX}/models/{tiny}/cases.json"))["cases"]}
    kls, agree, raw = [], [], []
    for name in CASES:
        c = cases[name]
        V = c["shape"][1]
        ref = np.fromfile(f"{FX}/models/{tiny}/{c['logits_f64']}", dtype=np.float32).reshape(-1, V)
        got = logits(model, c["input_ids"], env_extra, tmp).reshape(-1, V)
        raw.append(got)
        kls.extend(kl_rows(ref, got))
        top2 = np.sort(ref, 1)
        sel = (top2[:, -1] - top2[:, -2]) > 1e-2
        agree.extend((ref.argmax(1) == got.argmax(1))[sel])
    return float(np.mean(kls)), float(np.mean(agree)), np.concatenate([r.ravel() for r in raw])


def kernel_modes():
    modes = [("best", {})]
    if cpu_has("avx2") and cpu_has("fma") and cpu_has("f16c"):
        modes.append(("avx2", {"Q35_KERNELS": "avx2"}))
    return modes
