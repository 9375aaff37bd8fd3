#!/usr/bin/env python3
"""Other shapes: random Qwen3.5 checkpoints whose sizes differ from every
golden (odd hidden and vocab sizes, 3 query heads per KV head, several value
heads per key head, dk != dv, other conv kernels, eps, rotary fractions and
layer patterns, both config layouts and both naming schemes, tied and untied)
are run through `q35 eval` (prefill, and the decode path with --decode-from)
and compared with tests/tools/ref_numpy.py, the float64 reading of SPEC §2
that produced the goldens. Tolerance as for the goldens: max|ours - ref| /
max|ref| <= 2e-3, and equal argmax wherever the reference top-2 margin
exceeds 1e-2.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
import ref_numpy  # noqa: E402

Q35 = os.environ.get("Q35", "q35")
# compared with the float64 reference at 1e-3: the exact f32 KV cache (the
# 16-bit default rounds keys and values, 2e-3 on the "odd" shape; its own
# bounds are in test_kv_cache.py)
os.environ["Q35_KV_CACHE"] = "f32"

SHAPES = [
    # name, text config, layer pattern, nested, tied
    ("odd", dict(vocab_size=509, hidden_size=72, intermediate_size=100, num_attention_heads=6,
                 num_key_value_heads=2, head_dim=20, linear_num_key_heads=1,
                 linear_num_value_heads=3, linear_key_head_dim=12, linear_value_head_dim=20,
                 linear_conv_kernel_dim=3, rms_norm_eps=1e-5),
     "FLLFL", False, False, dict(rope_theta=10000.0, partial_rotary_factor=0.4)),
    ("nested", dict(vocab_size=301, hidden_size=40, intermediate_size=64, num_attention_heads=2,
                    num_key_value_heads=2, head_dim=16, linear_num_key_heads=2,
                    linear_num_value_heads=8, linear_key_head_dim=8, linear_value_head_dim=6,
                    linear_conv_kernel_dim=5, rms_norm_eps=1e-6),
     "LLF", True, True, dict(rope_theta=1e6, partial_rotary_factor=1.0)),
    ("alllinear", dict(vocab_size=130, hidden_size=33, intermediate_size=47, num_attention_heads=1,
                       num_key_value_heads=1, head_dim=8, linear_num_key_heads=3,
                       linear_num_value_heads=3, linear_key_head_dim=10, linear_value_head_dim=14,
                       linear_conv_kernel_dim=2, rms_norm_eps=1e-4),
     "LL", False, True, dict(rope_theta=1e7, partial_rotary_factor=0.25)),
    ("allfull", dict(vocab_size=257, hidden_size=48, intermediate_size=80, num_attention_heads=4,
                     num_key_value_heads=1, head_dim=24, linear_num_key_heads=1,
                     linear_num_value_heads=1, linear_key_head_dim=8, linear_value_head_dim=8,
                     linear_conv_kernel_dim=4, rms_norm_eps=1e-6),
     "FF", True, False, dict(rope_theta=5e5, partial_rotary_factor=0.5)),
]


def bf16(x):
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def write_checkpoint(d, name, c, pattern, nested, tied, rope, rng):
    H, I, V = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    nh, nkv, hd = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
    nk, nv, dk, dv, K = (c["linear_num_key_heads"], c["linear_num_value_heads"],
                         c["linear_key_head_dim"], c["linear_value_head_dim"],
                         c["linear_conv_kernel_dim"])
    C = 2 * nk * dk + nv * dv
    t = {}

    def mat(n, shape):
        t[n] = rng.standard_normal(shape) * 1.5 / np.sqrt(shape[-1])

    def vec(n, size, base=0.0):
        t[n] = base + rng.uniform(-0.2, 0.2, size)

    pre = "model.language_model." if nested else "model."
    mat(pre + "embed_tokens.weight", (V, H))
    vec(pre + "norm.weight", H)
    if not tied:
        mat("lm_head.weight", (V, H))
    for i, kind in enumerate(pattern):
        p = f"{pre}layers.{i}."
        vec(p + "input_layernorm.weight", H)
        vec(p + "post_attention_layernorm.weight", H)
        mat(p + "mlp.gate_proj.weight", (I, H))
        mat(p + "mlp.up_proj.weight", (I, H))
        mat(p + "mlp.down_proj.weight", (H, I))
        if kind == "F":
            mat(p + "self_attn.q_proj.weight", (nh * 2 * hd, H))
            mat(p + "self_attn.k_proj.weight", (nkv * hd, H))
            mat(p + "self_attn.v_proj.weight", (nkv * hd, H))
            mat(p + "self_attn.o_proj.weight", (H, nh * hd))
            vec(p + "self_attn.q_norm.weight", hd)
            vec(p + "self_attn.k_norm.weight", hd)
        else:
            q = p + "linear_attn."
            mat(q + "in_proj_qkv.weight", (C, H))
            mat(q + "in_proj_z.weight", (nv * dv, H))
            mat(q + "in_proj_b.weight", (nv, H))
            mat(q + "in_proj_a.weight", (nv, H))
            mat(q + "out_proj.weight", (H, nv * dv))
            t[q + "conv1d.weight"] = rng.standard_normal((C, 1, K)) * 0.5
            t[q + "A_log"] = rng.uniform(-1, 2, nv)
            t[q + "dt_bias"] = rng.uniform(-1, 1, nv)
            vec(q + "norm.weight", dv, 1.0)
    header, blobs, off = {}, [], 0
    for n, a in t.items():
        raw = bf16(a).tobytes()
        header[n] = {"dtype": "BF16", "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    text = dict(c, num_hidden_layers=len(pattern), tie_word_embeddings=tied,
                layer_types=["full_attention" if k == "F" else "linear_attention" for k in pattern],
                rope_parameters=dict(rope, rope_type="default"), eos_token_id=c["vocab_size"] - 1)
    cfg = {"architectures": ["Qwen3_5ForConditionalGeneration"], "text_config": text,
           "tie_word_embeddings": tied} if nested else dict(text, architectures=["Qwen3_5ForCausalLM"])
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"))


def q35_eval(d, ids, out, decode_from=None):
    cmd = [Q35, "eval", "-m", d, "--ids", ",".join(map(str, ids)), "--logits-out", out]
    if decode_from is not None:
        cmd += ["--decode-from", str(decode_from)]
    subprocess.run(cmd, check=True)
    return np.fromfile(out, "<f4")


def compare(label, got, ref):
    got = got.reshape(ref.shape)
    err = np.abs(got - ref).max() / np.abs(ref).max()
    srt = np.sort(ref, -1)
    margin = srt[:, -1] - srt[:, -2]
    bad = [i for i in range(ref.shape[0]) if margin[i] > 1e-2 and got[i].argmax() != ref[i].argmax()]
    ok = err <= 2e-3 and not bad
    print(f"{'ok' if ok else 'FAIL'} - {label}: max rel err {err:.2e}, argmax mismatches {bad}")
    return ok


def main():
    rng = np.random.default_rng(1234)
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, c, pattern, nested, tied, rope in SHAPES:
            d = os.path.join(tmp, name)
            write_checkpoint(d, name, c, pattern, nested, tied, rope, rng)
            ref = ref_numpy.Model(d)
            T = 23
            ids = rng.integers(0, c["vocab_size"], T)
            want = ref.forward(ids)
            out = os.path.join(tmp, name + ".f32")
            failed += not compare(f"{name} prefill", q35_eval(d, ids, out), want)
            n = 9
            failed += not compare(f"{name} decode from {n}", q35_eval(d, ids, out, n), want[n - 1:])
    print(f"{len(SHAPES) * 2 - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
