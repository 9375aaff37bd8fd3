#!/usr/bin/env python3
"""Writes an MLX affine-quantized copy of an HF Qwen3.5 checkpoint the way a
given converter writes it, and beside it the float32 HF-layout checkpoint
that its dequantization means (what tests/tools/ref_numpy.py and q35 compare
against). Optionally makes the source checkpoint first: a small random
Qwen3.5 in HF layout (bf16), shaped so that group sizes 32, 64 and 128 all
divide every matrix's input size.

Quantization is mx.quantize's affine mode (mlx/backend/cpu/quantized.cpp),
in float32, per group of G values along a row, n = 2^bits - 1:
    s = max((max - min) / n, 1e-7); if |min| > |max| the edge is min, else
    s = -s and the edge is max; q0 = rint(edge / s); if q0 != 0 then
    s = edge / q0 and bias = edge, else bias = 0;
    q = clamp(rint((w - bias) / s), 0, n); scales and biases take the input's
    dtype, and a weight means s * q + bias (in float32, as rounded).
Packing: each row's codes are one little-endian bit stream (element j in
bits [j*b, (j+1)*b)), stored as uint32 words [rows, cols*b/32]: for 3, 5 and
6 bits codes straddle bytes and words.

Layouts (--layout):
  mlx-lm  (mlx_lm.convert of the HF checkpoint; its qwen3_5 sanitize):
    names language_model.model.* (an untied head: language_model.lm_head.*),
    no mtp.* or vision tensors; every zero-centred RMSNorm weight (input,
    post-attention, q/k and the final norm) stored as 1 + w; the DeltaNet
    gated norm as is; conv1d.weight channels-last [C, K, 1]; the input's
    dtype (bf16) everywhere; every Linear / Embedding whose input size is a
    multiple of the group quantized; config.json gains
    "quantization": {"group_size": G, "bits": B}.
  app     (the reference app's converter, soniqo/speech-swift
    scripts/convert_qwen35_chat_mlx.py as published in cf90e80):
    weights bf16 -> fp16 first; the prefix stripped (embed_tokens.*,
    layers.N.*, norm.weight), lm_head dropped; embed_tokens and every
    projection quantized (scales / biases fp16); conv1d [C, K, 1] in bf16;
    input / post-attention / q / k norms as fp32 with the +1 added; the gated
    norm and the final norm as in the checkpoint, fp16; A_log, dt_bias fp16;
    a flat config.json with model_type qwen3_5_text, max_seq_len and
    "quantization": "int<B>" (a label; group 64 implied), plus
    quantization_bits / quantization_group_size when --app-bits-keys (the
    later int5 exporter's form).

usage: make_mlx.py SRC_DIR MLX_DIR DEQUANT_DIR [--bits 4] [--group 64]
                   [--layout mlx-lm|app] [--random SEED [--intermediate N]]
                   [--app-bits-keys]
  --random SEED writes a random checkpoint into SRC_DIR first (--intermediate N:
  its MLP width, 256 by default).
"""
import argparse
import json
import os
import struct

import numpy as np

ZERO_CENTRED = (".input_layernorm.weight", ".post_attention_layernorm.weight",
                ".q_norm.weight", ".k_norm.weight")
QUANTIZABLE = ("_proj.weight", "embed_tokens.weight", "lm_head.weight",
               "in_proj_qkv.weight", "in_proj_z.weight", "in_proj_a.weight",
               "in_proj_b.weight")


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
        elif info["dtype"] == "F16":
            arr = np.frombuffer(raw, dtype=np.float16).astype(np.float32)
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


def to_f16(x):
    """float32 -> (f16 array, the float32 value it holds)."""
    h = np.asarray(x, dtype=np.float32).astype(np.float16)
    return h, h.astype(np.float32)


def store(x, dt):
    """(safetensors dtype, stored array, float32 value) of x in dtype dt."""
    if dt == "BF16":
        b, v = to_bf16(x)
        return ("BF16", b), v
    if dt == "F16":
        h, v = to_f16(x)
        return ("F16", h), v
    v = np.asarray(x, dtype=np.float32)
    return ("F32", v), v


def write_st(path, tensors):
    """tensors: name -> (dtype string, numpy array of matching storage type)."""
    header, blobs, off = {}, [], 0
    for name, (dt, arr) in sorted(tensors.items()):
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


def mlx_quantize(w, bits, group):
    """mx.quantize (affine): codes [rows, cols] and float32 scales / biases
    [rows, cols/group] before their rounding to the storage dtype."""
    w = np.asarray(w, dtype=np.float32)
    rows, cols = w.shape
    g = w.reshape(rows, cols // group, group)
    n = np.float32((1 << bits) - 1)
    wmax, wmin = g.max(axis=2), g.min(axis=2)
    s = np.maximum((wmax - wmin) / n, np.float32(1e-7)).astype(np.float32)
    side = np.abs(wmin) > np.abs(wmax)
    s = np.where(side, s, -s).astype(np.float32)
    edge = np.where(side, wmin, wmax).astype(np.float32)
    q0 = np.rint(edge / s).astype(np.float32)
    nz = q0 != 0
    s = np.where(nz, edge / np.where(nz, q0, np.float32(1)), s).astype(np.float32)
    bias = np.where(nz, edge, np.float32(0)).astype(np.float32)
    q = np.clip(np.rint((g - bias[..., None]) / s[..., None]), 0, n).astype(np.uint32)
    return q.reshape(rows, cols), s, bias


def pack(q, bits):
    """Codes [rows, cols] -> uint32 words [rows, cols*bits/32]: one
    little-endian bit stream per row."""
    rows, cols = q.shape
    if bits in (2, 4, 8):  # codes stay inside words: the same bytes, cheaper
        per = 32 // bits
        words = np.zeros((rows, cols // per), dtype=np.uint32)
        for j in range(per):
            words |= q[:, j::per].astype(np.uint32) << np.uint32(j * bits)
        return words
    bitv = ((q[..., None] >> np.arange(bits, dtype=np.uint32)) & 1).astype(np.uint8)
    by = np.packbits(bitv.reshape(rows, cols * bits), axis=1, bitorder="little")
    return np.ascontiguousarray(by).view("<u4").reshape(rows, cols * bits // 32)


def quantized(w, bits, group, aux_dt):
    """(words, scales entry, biases entry, the float32 values they mean)."""
    q, s, b = mlx_quantize(w, bits, group)
    s_e, s_v = store(s, aux_dt)
    b_e, b_v = store(b, aux_dt)
    rows, cols = q.shape
    sq = (s_v[..., None] * q.reshape(rows, cols // group, group).astype(np.float32)).astype(np.float32)
    deq = (sq + b_v[..., None]).astype(np.float32).reshape(rows, cols)
    return pack(q, bits), s_e, b_e, deq


def random_checkpoint(d, seed, I=256):
    rng = np.random.default_rng(seed)
    H, V, L = 128, 256, 4
    nh, nkv, hd = 4, 2, 32
    nk, dk, nv, dv, K = 2, 16, 4, 32, 4
    C = 2 * nk * dk + nv * dv
    types = ["linear_attention"] * 3 + ["full_attention"]
    cfg = {"architectures": ["Qwen3_5ForCausalLM"], "model_type": "qwen3_5_text",
           "hidden_size": H, "intermediate_size": I, "vocab_size": V, "num_hidden_layers": L,
           "num_attention_heads": nh, "num_key_value_heads": nkv, "head_dim": hd,
           "linear_num_key_heads": nk, "linear_key_head_dim": dk,
           "linear_num_value_heads": nv, "linear_value_head_dim": dv,
           "linear_conv_kernel_dim": K, "layer_types": types, "full_attention_interval": 4,
           "rms_norm_eps": 1e-6, "tie_word_embeddings": True, "eos_token_id": V - 1,
           "max_position_embeddings": 4096, "hidden_act": "silu",
           "rope_parameters": {"rope_theta": 10000000.0, "partial_rotary_factor": 0.25,
                               "rope_type": "default", "mrope_interleaved": True,
                               "mrope_section": [2, 2, 0]},
           "partial_rotary_factor": 0.25, "dtype": "bfloat16"}
    w = {}

    def mat(name, r, c, sd=0.08):
        w[name] = rng.normal(0, sd, (r, c)).astype(np.float32)

    def zc(name, n):  # zero-centred norm weights: small, as trained ones are
        w[name] = rng.uniform(0.0, 0.5, n).astype(np.float32)

    mat("model.embed_tokens.weight", V, H, 0.5)
    w["model.norm.weight"] = rng.uniform(2.5, 4.0, H).astype(np.float32)
    for i, t in enumerate(types):
        p = f"model.layers.{i}."
        zc(p + "input_layernorm.weight", H)
        zc(p + "post_attention_layernorm.weight", H)
        mat(p + "mlp.gate_proj.weight", I, H)
        mat(p + "mlp.up_proj.weight", I, H)
        mat(p + "mlp.down_proj.weight", H, I)
        if t == "full_attention":
            a = p + "self_attn."
            mat(a + "q_proj.weight", nh * 2 * hd, H)
            mat(a + "k_proj.weight", nkv * hd, H)
            mat(a + "v_proj.weight", nkv * hd, H)
            mat(a + "o_proj.weight", H, nh * hd)
            zc(a + "q_norm.weight", hd)
            zc(a + "k_norm.weight", hd)
        else:
            a = p + "linear_attn."
            mat(a + "in_proj_qkv.weight", C, H)
            mat(a + "in_proj_z.weight", nv * dv, H)
            mat(a + "in_proj_b.weight", nv, H)
            mat(a + "in_proj_a.weight", nv, H)
            mat(a + "out_proj.weight", H, nv * dv)
            w[a + "conv1d.weight"] = rng.normal(0, 0.3, (C, 1, K)).astype(np.float32)
            w[a + "A_log"] = rng.uniform(-1, 1, nv).astype(np.float32)
            w[a + "dt_bias"] = rng.uniform(0, 1, nv).astype(np.float32)
            w[a + "norm.weight"] = (1 + rng.normal(0, 0.05, dv)).astype(np.float32)
    os.makedirs(d, exist_ok=True)
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"), indent=1)
    write_st(os.path.join(d, "model.safetensors"), {k: store(v, "BF16")[0] for k, v in w.items()})


def convert_mlx_lm(w, bits, group):
    mlx, deq = {}, {}
    for name, arr in w.items():
        if name.startswith("mtp.") or ".visual." in name:
            continue
        mname = "language_model." + name  # model.X -> language_model.model.X
        if (name.endswith(ZERO_CENTRED) or name == "model.norm.weight") and arr.ndim == 1:
            e, folded = store(arr + np.float32(1), "BF16")  # added in bf16
            mlx[mname] = e
            deq[name] = ("F32", (folded - np.float32(1)).astype(np.float32))
        elif name.endswith("conv1d.weight"):
            mlx[mname] = store(arr.transpose(0, 2, 1), "BF16")[0]
            deq[name] = ("F32", arr)
        elif name.endswith(QUANTIZABLE) and arr.ndim == 2 and arr.shape[1] % group == 0:
            words, s, b, d = quantized(arr, bits, group, "BF16")
            stem = mname[: -len(".weight")]
            mlx[mname] = ("U32", words)
            mlx[stem + ".scales"] = s
            mlx[stem + ".biases"] = b
            deq[name] = ("F32", d)
        else:
            e, v = store(arr, "BF16")
            mlx[mname] = e
            deq[name] = ("F32", v)
    return mlx, deq


def convert_app(w, bits, group):
    mlx, deq = {}, {}
    for name, arr in w.items():
        if ".visual." in name or name == "lm_head.weight":
            continue
        short = name[len("model."):] if name.startswith("model.") else name
        _, a16 = to_f16(arr)  # bf16 -> fp16 through torch
        if name.endswith(ZERO_CENTRED) and arr.ndim == 1:
            folded = (a16 + np.float32(1)).astype(np.float32)
            mlx[short] = ("F32", folded)
            deq[name] = ("F32", (folded - np.float32(1)).astype(np.float32))
        elif name.endswith("conv1d.weight"):
            e, v = store(a16.transpose(0, 2, 1), "BF16")
            mlx[short] = e
            deq[name] = ("F32", v.transpose(0, 2, 1).copy())
        elif name.endswith(QUANTIZABLE) and arr.ndim == 2 and arr.shape[1] % group == 0:
            words, s, b, d = quantized(a16, bits, group, "F16")
            stem = short[: -len(".weight")]
            mlx[short] = ("U32", words)
            mlx[stem + ".scales"] = s
            mlx[stem + ".biases"] = b
            deq[name] = ("F32", d)
        elif arr.ndim == 1:  # gated norm, final norm, A_log, dt_bias: fp16 as they are
            mlx[short] = ("F16", a16.astype(np.float16))
            deq[name] = ("F32", a16)
        else:
            e, v = store(a16, "BF16")
            mlx[short] = e
            deq[name] = ("F32", v)
    return mlx, deq


def app_config(cfg, bits, group, bits_keys):
    c = cfg.get("text_config", cfg)
    rp = c.get("rope_parameters", {})
    keys = ("hidden_size", "intermediate_size", "vocab_size", "num_hidden_layers",
            "num_attention_heads", "num_key_value_heads", "head_dim", "linear_num_key_heads",
            "linear_key_head_dim", "linear_num_value_heads", "linear_value_head_dim",
            "linear_conv_kernel_dim", "layer_types", "full_attention_interval", "rms_norm_eps")
    out = {k: c[k] for k in keys if k in c}
    out.update({"model_type": "qwen3_5_text",
                "rope_theta": rp.get("rope_theta", c.get("rope_theta", 1e7)),
                "partial_rotary_factor": rp.get("partial_rotary_factor",
                                                c.get("partial_rotary_factor", 0.25)),
                "max_seq_len": 2048, "eos_token_id": c.get("eos_token_id", 248046),
                "pad_token_id": 248044 if c.get("vocab_size", 0) > 248044 else 0,
                "quantization": f"int{bits}"})
    if bits_keys:
        out["quantization_bits"] = bits
        out["quantization_group_size"] = group
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("mlx_dir")
    ap.add_argument("deq_dir")
    ap.add_argument("--bits", type=int, default=4, choices=(2, 3, 4, 5, 6, 8))
    ap.add_argument("--group", type=int, default=64, choices=(32, 64, 128))
    ap.add_argument("--layout", default="mlx-lm", choices=("mlx-lm", "app"))
    ap.add_argument("--random", type=int, default=None, metavar="SEED")
    ap.add_argument("--app-bits-keys", action="store_true")
    ap.add_argument("--intermediate", type=int, default=256,
                    help="with --random: the MLP width (one not a multiple of the group leaves "
                    "down_proj unquantized)")
    a = ap.parse_args()
    if a.random is not None:
        random_checkpoint(a.src, a.random, a.intermediate)
    cfg = json.load(open(os.path.join(a.src, "config.json")))
    # the multimodal checkpoint's names (model.language_model.*) as the
    # causal LM's (model.*); vision tensors are not used
    w = {k.replace("model.language_model.", "model."): v
         for k, v in read_st(os.path.join(a.src, "model.safetensors")).items()
         if not k.startswith(("model.visual.", "visual."))}
    if a.layout == "mlx-lm":
        mlx, deq = convert_mlx_lm(w, a.bits, a.group)
        mcfg = dict(cfg)
        mcfg["quantization"] = {"group_size": a.group, "bits": a.bits}
    else:
        if a.group != 64 and not a.app_bits_keys:
            raise SystemExit("the app's label implies group 64: pass --app-bits-keys")
        mlx, deq = convert_app(w, a.bits, a.group)
        mcfg = app_config(cfg, a.bits, a.group, a.app_bits_keys)
    os.makedirs(a.mlx_dir, exist_ok=True)
    json.dump(mcfg, open(os.path.join(a.mlx_dir, "config.json"), "w"), indent=1)
    write_st(os.path.join(a.mlx_dir, "model.safetensors"), mlx)
    if a.deq_dir != "-":  # "-": no dequantized copy (full-size checkpoints)
        os.makedirs(a.deq_dir, exist_ok=True)
        json.dump(cfg, open(os.path.join(a.deq_dir, "config.json"), "w"), indent=1)
        write_st(os.path.join(a.deq_dir, "model.safetensors"), deq)


if __name__ == "__main__":
    main()
