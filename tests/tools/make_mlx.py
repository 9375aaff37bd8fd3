#!/usr/bin/env python3
"""Writes an MLX-format (mlx-lm layout) affine-quantized copy of an HF Qwen3.5
checkpoint, and beside it the float32 HF-layout checkpoint that its
dequantization must equal.

The MLX layout, as mlx-lm's qwen3_5 sanitize() and nn.quantize() leave it:
  - names under language_model.model.* (lm_head: language_model.lm_head.*),
    no mtp.* and no vision tensors;
  - zero-centred RMSNorm weights with the +1 folded in (input/post-attention
    norms, final norm, q/k norms); the DeltaNet gated norm as is;
  - conv1d.weight channels-last [C, K, 1];
  - every Linear / Embedding whose input size is a multiple of the group size
    quantized: weight U32 [out, in*bits/32] packed from the low bits up,
    scales and biases [out, in/group] in bf16, w = scale * q + bias;
  - config.json gains "quantization": {"group_size": G, "bits": B}.

usage: make_mlx.py SRC_DIR MLX_DIR DEQUANT_DIR --bits 4 --group 64
"""
import argparse
import json
import os
import struct

import numpy as np

FOLDED = (".input_layernorm.weight", ".post_attention_layernorm.weight", "model.norm.weight",
          ".q_norm.weight", ".k_norm.weight")
QUANTIZABLE = ("_proj.weight", "embed_tokens.weight", "lm_head.weight")


def read_st(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = data[b:e]
        if info["dtype"] == "BF16":
            u = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
            arr = u.view(np.float32)
        elif info["dtype"] == "F32":
            arr = np.frombuffer(raw, dtype=np.float32)
        else:
            raise SystemExit(f"unsupported dtype {info['dtype']}")
        out[name] = arr.reshape(info["shape"]).copy()
    return out


def to_bf16(x):
    """float32 -> (bf16 bits, the float32 value they hold), round to nearest even."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    bits = u.astype(np.uint16)
    return bits, (bits.astype(np.uint32) << 16).view(np.float32)


def write_st(path, tensors):
    """tensors: name -> (dtype string, numpy array of matching storage type)."""
    header, blobs, off = {}, [], 0
    for name, (dt, arr) in tensors.items():
        raw = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def quantize(w, bits, group):
    rows, cols = w.shape
    g = w.reshape(rows, cols // group, group)
    lo, hi = g.min(axis=2), g.max(axis=2)
    n_bins = (1 << bits) - 1
    scale = np.where(hi > lo, (hi - lo) / n_bins, 1.0).astype(np.float32)
    sbits, scale_f = to_bf16(scale)
    bbits, bias_f = to_bf16(lo)
    q = np.clip(np.rint((g - bias_f[..., None]) / scale_f[..., None]), 0, n_bins).astype(np.uint32)
    q = q.reshape(rows, cols)
    per_word = 32 // bits
    words = np.zeros((rows, cols // per_word), dtype=np.uint32)
    for j in range(per_word):
        words |= q[:, j::per_word] << np.uint32(j * bits)
    deq = (scale_f[..., None] * q.reshape(rows, cols // group, group).astype(np.float32)
           + bias_f[..., None]).reshape(rows, cols).astype(np.float32)
    return words, sbits, bbits, deq


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("mlx_dir")
    ap.add_argument("deq_dir")
    ap.add_argument("--bits", type=int, default=4)
    ap.add_argument("--group", type=int, default=64)
    a = ap.parse_args()
    cfg = json.load(open(os.path.join(a.src, "config.json")))
    w = read_st(os.path.join(a.src, "model.safetensors"))
    mlx, deq = {}, {}
    for name, arr in w.items():
        if name.startswith("mtp.") or ".visual." in name:
            continue
        mname = "language_model." + name  # model.X -> language_model.model.X
        if any(name.endswith(s) for s in FOLDED) and arr.ndim == 1:
            _, folded = to_bf16(arr + 1.0)
            mlx[mname] = ("BF16", to_bf16(arr + 1.0)[0])
            deq[name] = ("F32", (folded - 1.0).astype(np.float32))
        elif name.endswith("conv1d.weight"):
            mlx[mname] = ("BF16", to_bf16(arr.transpose(0, 2, 1))[0])
            deq[name] = ("F32", arr)
        elif name.endswith(QUANTIZABLE) and arr.ndim == 2 and arr.shape[1] % a.group == 0:
            words, s, b, d = quantize(arr, a.bits, a.group)
            stem = mname[: -len(".weight")]
            mlx[mname] = ("U32", words)
            mlx[stem + ".scales"] = ("BF16", s)
            mlx[stem + ".biases"] = ("BF16", b)
            deq[name] = ("F32", d)
        else:
            mlx[mname] = ("BF16", to_bf16(arr)[0])
            deq[name] = ("F32", arr)
    for d in (a.mlx_dir, a.deq_dir):
        os.makedirs(d, exist_ok=True)
    json.dump(cfg, open(os.path.join(a.deq_dir, "config.json"), "w"), indent=1)
    cfg["quantization"] = {"group_size": a.group, "bits": a.bits}
    json.dump(cfg, open(os.path.join(a.mlx_dir, "config.json"), "w"), indent=1)
    write_st(os.path.join(a.mlx_dir, "model.safetensors"), mlx)
    write_st(os.path.join(a.deq_dir, "model.safetensors"), deq)


if __name__ == "__main__":
    main()
