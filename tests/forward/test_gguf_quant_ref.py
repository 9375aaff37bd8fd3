#!/usr/bin/env python3
"""Every GGUF tensor type q35 reads, end to end, against an independent
reading in numpy. For each type, the golden bf16 GGUF of a tiny model is
rewritten with its weight matrices stored in that type (random block bytes
with scales set so the weights keep their original spread: a random but
valid model), loaded by `q35 eval`, and compared with ref_numpy.py (float64)
run on weights that this script decodes itself from the same bytes and puts
back in HF layout (names, grouped value heads, A_log, norms without the +1).
So the loader's decoding, head reordering and dtype handling and the forward
pass on such weights are checked for every format, including those no golden
file uses (Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q5_K, Q8_K, IQ4_NL, IQ4_XS, F16,
F32).
Tolerance as for the goldens: max|ours - ref| / max|ref| <= 2e-3 and equal
argmax wherever the reference top-2 margin exceeds 1e-2.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
import ref_numpy  # noqa: E402

Q35 = os.environ.get("Q35", "q35")
GOLDEN = os.environ["Q35_FIXTURES"]
# The exact float path (reference mode): the 2e-3 tolerance is for float32
# activations; the integer path is tested in tests/kernels.
os.environ["Q35_EXACT"] = "1"

# ggml type: (number, elements per block, bytes per block)
TYPES = {"F32": (0, 1, 4), "F16": (1, 1, 2), "Q4_0": (2, 32, 18), "Q4_1": (3, 32, 20),
         "Q5_0": (6, 32, 22), "Q5_1": (7, 32, 24), "Q8_0": (8, 32, 34), "Q2_K": (10, 256, 84),
         "Q3_K": (11, 256, 110), "Q4_K": (12, 256, 144), "Q5_K": (13, 256, 176),
         "Q6_K": (14, 256, 210), "Q8_K": (15, 256, 292), "IQ4_NL": (20, 32, 18),
         "IQ4_XS": (23, 256, 136), "BF16": (30, 1, 2)}
BY_NUM = {v[0]: k for k, v in TYPES.items()}
# byte offsets of each block's scale fields (f16; Q8_K: f32)
SCALES = {"Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0],
          "Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208],
          "IQ4_NL": [0], "IQ4_XS": [0]}
IQ4_LEVELS = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113])


# ----------------------------------------------------------------- reading

def read_gguf(path):
    b = open(path, "rb").read()
    pos = 24
    ver, nt, nkv = struct.unpack_from("<IQQ", b, 4)
    assert b[:4] == b"GGUF" and ver == 3

    def string(p):
        n = struct.unpack_from("<Q", b, p)[0]
        return b[p + 8:p + 8 + n].decode(), p + 8 + n

    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

    def skip(t, p):
        if t == 8:
            return string(p)[1]
        if t == 9:
            at, n = struct.unpack_from("<IQ", b, p)
            p += 12
            for _ in range(n):
                p = skip(at, p)
            return p
        return p + sizes[t]

    kv_start = pos
    for _ in range(nkv):
        _, pos = string(pos)
        t = struct.unpack_from("<I", b, pos)[0]
        pos = skip(t, pos + 4)
    kv_bytes = b[kv_start:pos]
    tensors = []
    for _ in range(nt):
        name, pos = string(pos)
        nd = struct.unpack_from("<I", b, pos)[0]
        ne = list(struct.unpack_from(f"<{nd}Q", b, pos + 4))
        t, off = struct.unpack_from("<IQ", b, pos + 4 + 8 * nd)
        pos += 4 + 8 * nd + 12
        tensors.append([name, ne, t, off])
    data = (pos + 31) // 32 * 32
    out = []
    for name, ne, t, off in tensors:
        _, be, bb = TYPES[BY_NUM[t]]
        n = int(np.prod(ne)) // be * bb
        out.append((name, ne, BY_NUM[t], b[data + off:data + off + n]))
    return nkv, kv_bytes, out


def write_gguf(path, nkv, kv_bytes, tensors):
    infos, blobs, off = b"", [], 0
    for name, ne, tname, raw in tensors:
        nb = name.encode()
        infos += struct.pack("<Q", len(nb)) + nb + struct.pack("<I", len(ne))
        infos += struct.pack(f"<{len(ne)}Q", *ne) + struct.pack("<IQ", TYPES[tname][0], off)
        pad = (-len(raw)) % 32
        blobs.append(raw + b"\0" * pad)
        off += len(raw) + pad
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), nkv) + kv_bytes + infos
    head += b"\0" * ((-len(head)) % 32)
    with open(path, "wb") as f:
        f.write(head + b"".join(blobs))


# ---------------------------------------------------------------- decoding
# Element-wise statements of each layout, independent of the C decoders.

def f16(B, at):
    return B[:, at:at + 2].astype(np.uint8).view("<f2")[:, 0].astype(np.float64)


def nibbles32(qs):  # byte j: element j (low nibble), element j + 16 (high)
    return np.concatenate([qs & 15, qs >> 4], axis=1).astype(np.int64)


def bits32(B, at):  # 32 fifth bits, bit i of a little-endian u32
    qh = B[:, at:at + 4].astype(np.uint8).view("<u4")[:, 0].astype(np.int64)
    return (qh[:, None] >> np.arange(32)) & 1


def k4_scale_min(s, j):
    if j < 4:
        return s[:, j] & 63, s[:, j + 4] & 63
    return ((s[:, j + 4] & 15) | ((s[:, j - 4] >> 6) << 4),
            (s[:, j + 4] >> 4) | ((s[:, j] >> 6) << 4))


I256 = np.arange(256)
PLANE_BYTE = 32 * (I256 // 128) + I256 % 32  # Q2_K / Q3_K 2-bit planes
PLANE_SHIFT = 2 * ((I256 % 128) // 32)


def decode(tname, raw, n):
    if tname == "F32":
        return np.frombuffer(raw, "<f4").astype(np.float64)
    if tname == "F16":
        return np.frombuffer(raw, "<f2").astype(np.float64)
    if tname == "BF16":
        return (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    _, be, bb = TYPES[tname]
    B = np.frombuffer(raw, np.uint8).reshape(-1, bb).astype(np.int64)
    if tname == "Q4_0":
        w = f16(B, 0)[:, None] * (nibbles32(B[:, 2:18]) - 8)
    elif tname == "Q4_1":
        w = f16(B, 0)[:, None] * nibbles32(B[:, 4:20]) + f16(B, 2)[:, None]
    elif tname == "Q5_0":
        w = f16(B, 0)[:, None] * ((nibbles32(B[:, 6:22]) | (bits32(B, 2) << 4)) - 16)
    elif tname == "Q5_1":
        w = f16(B, 0)[:, None] * (nibbles32(B[:, 8:24]) | (bits32(B, 4) << 4)) + f16(B, 2)[:, None]
    elif tname == "Q8_0":
        w = f16(B, 0)[:, None] * B[:, 2:34].astype(np.uint8).view(np.int8)
    elif tname == "Q8_K":
        d = B[:, 0:4].astype(np.uint8).view("<f4")[:, 0].astype(np.float64)
        w = d[:, None] * B[:, 4:260].astype(np.uint8).view(np.int8)
    elif tname == "Q2_K":
        q = (B[:, 16 + PLANE_BYTE] >> PLANE_SHIFT) & 3
        sc = B[:, 0:16][:, I256 // 16]
        w = f16(B, 80)[:, None] * (sc & 15) * q - f16(B, 82)[:, None] * (sc >> 4)
    elif tname == "Q3_K":
        low = (B[:, 32 + PLANE_BYTE] >> PLANE_SHIFT) & 3
        hbit = (B[:, I256 % 32] >> (I256 // 32)) & 1
        s = B[:, 96:108]
        sc = np.stack([((s[:, k % 8] >> (4 if k >= 8 else 0)) & 15)
                       | (((s[:, 8 + k % 4] >> (2 * (k // 4))) & 3) << 4) for k in range(16)], 1) - 32
        w = f16(B, 108)[:, None] * sc[:, I256 // 16] * (low - 4 * (1 - hbit))
    elif tname in ("Q4_K", "Q5_K"):
        s = B[:, 4:16]
        pairs = [k4_scale_min(s, j) for j in range(8)]
        sc = np.stack([p[0] for p in pairs], 1)[:, I256 // 32]
        mn = np.stack([p[1] for p in pairs], 1)[:, I256 // 32]
        qs_at = 16 if tname == "Q4_K" else 48
        byte = B[:, qs_at + 32 * (I256 // 64) + I256 % 32]
        q = np.where((I256 % 64) >= 32, byte >> 4, byte & 15)
        if tname == "Q5_K":
            q = q | (((B[:, 16 + I256 % 32] >> (I256 // 32)) & 1) << 4)
        w = f16(B, 0)[:, None] * sc * q - f16(B, 2)[:, None] * mn
    elif tname == "Q6_K":
        half, quad, l = I256 // 128, (I256 % 128) // 32, I256 % 32
        byte = B[:, 64 * half + 32 * (quad & 1) + l]
        low = np.where(quad >= 2, byte >> 4, byte & 15)
        high = (B[:, 128 + 32 * half + l] >> (2 * quad)) & 3
        sc = B[:, 192:208].astype(np.uint8).view(np.int8)[:, I256 // 16]
        w = f16(B, 208)[:, None] * sc * ((low | (high << 4)) - 32)
    elif tname == "IQ4_NL":
        w = f16(B, 0)[:, None] * IQ4_LEVELS[nibbles32(B[:, 2:18])]
    elif tname == "IQ4_XS":
        sh = B[:, 2] | (B[:, 3] << 8)
        ib = I256 // 32
        ls = ((B[:, 4 + ib // 2] >> (4 * (ib % 2))) & 15) | (((sh[:, None] >> (2 * ib)) & 3) << 4)
        j = I256 % 32
        byte = B[:, 8 + 16 * ib + j % 16]
        q = np.where(j >= 16, byte >> 4, byte & 15)
        w = f16(B, 0)[:, None] * (ls - 32) * IQ4_LEVELS[q]
    else:
        raise ValueError(tname)
    return w.reshape(-1)[:n]


# ---------------------------------------------------- random blocks of a type

def random_blocks(tname, n, sigma, rng):
    """Random bytes as n/be blocks, scales set so the values have std sigma."""
    _, be, bb = TYPES[tname]
    if tname in ("F32", "F16"):
        x = rng.standard_normal(n) * sigma
        return x.astype("<f4" if tname == "F32" else "<f2").tobytes()
    B = rng.integers(0, 256, (n // be, bb), dtype=np.uint8)

    def set_scale(v):
        if tname == "Q8_K":
            B[:, 0:4] = np.frombuffer(np.float32(v).tobytes(), np.uint8)
        else:
            for at in SCALES[tname]:
                B[:, at:at + 2] = np.frombuffer(np.float16(v).tobytes(), np.uint8)

    set_scale(1.0)
    s = decode(tname, B.tobytes(), n).std()
    set_scale(sigma / s)
    return B.tobytes()


# ------------------------------------------------------------- HF layout

def to_hf(tensors, cfg):
    nk, nv = cfg["linear_num_key_heads"], cfg["linear_num_value_heads"]
    dk, dv = cfg["linear_key_head_dim"], cfg["linear_value_head_dim"]
    r = nv // nk
    # HF value head j = k*r + s is GGUF head s*nk + k
    perm = np.array([(j % r) * nk + j // r for j in range(nv)])

    def heads(x, unit, axis=0):
        x = np.moveaxis(x, axis, 0)
        y = x.reshape((nv, unit) + x.shape[1:])[perm].reshape(x.shape)
        return np.moveaxis(y, 0, axis)

    names = {"attn_norm.weight": "input_layernorm.weight",
             "post_attention_norm.weight": "post_attention_layernorm.weight",
             "ffn_gate.weight": "mlp.gate_proj.weight", "ffn_up.weight": "mlp.up_proj.weight",
             "ffn_down.weight": "mlp.down_proj.weight", "attn_q.weight": "self_attn.q_proj.weight",
             "attn_k.weight": "self_attn.k_proj.weight", "attn_v.weight": "self_attn.v_proj.weight",
             "attn_output.weight": "self_attn.o_proj.weight",
             "attn_q_norm.weight": "self_attn.q_norm.weight",
             "attn_k_norm.weight": "self_attn.k_norm.weight"}
    W = {}
    qk = 2 * nk * dk
    for name, ne, tname, raw in tensors:
        n = int(np.prod(ne))
        x = decode(tname, raw, n).reshape(ne[::-1])
        if name == "token_embd.weight":
            W["model.embed_tokens.weight"] = x
        elif name == "output.weight":
            W["lm_head.weight"] = x
        elif name == "output_norm.weight":
            W["model.norm.weight"] = x - 1
        else:
            _, layer, rest = name.split(".", 2)
            p = f"model.layers.{layer}."
            la = p + "linear_attn."
            if rest in names:
                W[p + names[rest]] = x - 1 if "norm" in rest else x
            elif rest == "attn_qkv.weight":
                W[la + "in_proj_qkv.weight"] = np.concatenate([x[:qk], heads(x[qk:], dv)])
            elif rest == "attn_gate.weight":
                W[la + "in_proj_z.weight"] = heads(x, dv)
            elif rest == "ssm_alpha.weight":
                W[la + "in_proj_a.weight"] = heads(x, 1)
            elif rest == "ssm_beta.weight":
                W[la + "in_proj_b.weight"] = heads(x, 1)
            elif rest == "ssm_out.weight":
                W[la + "out_proj.weight"] = heads(x, dv, axis=1)
            elif rest == "ssm_conv1d.weight":
                W[la + "conv1d.weight"] = np.concatenate([x[:qk], heads(x[qk:], dv)])[:, None, :]
            elif rest == "ssm_a":
                W[la + "A_log"] = np.log(-heads(x, 1))
            elif rest == "ssm_dt.bias":
                W[la + "dt_bias"] = heads(x, 1)
            elif rest == "ssm_norm.weight":
                W[la + "norm.weight"] = x
            else:
                raise KeyError(name)
    return W


def write_safetensors(path, W):
    header, blobs, off = {}, [], 0
    for k, a in W.items():
        raw = np.ascontiguousarray(a, "<f4").tobytes()
        header[k] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


# ------------------------------------------------------------------ the test

KEEP = ("norm", "ssm_a", "ssm_dt", "ssm_conv1d")  # vectors stay as converted


def compare(label, got, ref):
    got = got.reshape(ref.shape)
    err = np.abs(got - ref).max() / np.abs(ref).max()
    srt = np.sort(ref, -1)
    margin = srt[:, -1] - srt[:, -2]
    bad = [i for i in range(ref.shape[0]) if margin[i] > 1e-2 and got[i].argmax() != ref[i].argmax()]
    ok = err <= 2e-3 and not bad and np.isfinite(got).all()
    print(f"{'ok' if ok else 'FAIL'} - {label}: max rel err {err:.2e}, argmax mismatches {bad}")
    return ok


def main():
    rng = np.random.default_rng(35)
    runs = [("tiny-a", t) for t in ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "IQ4_NL", "F16", "F32")]
    runs += [("tiny-b", t) for t in ("Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ4_XS")]
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for model, tname in runs:
            cfg = json.load(open(os.path.join(GOLDEN, "models", model, "config.json")))
            nkv, kv, tensors = read_gguf(os.path.join(GOLDEN, "gguf", f"{model}-bf16.gguf"))
            _, be, _ = TYPES[tname]
            new = []
            for name, ne, t, raw in tensors:
                n = int(np.prod(ne))
                if len(ne) == 2 and ne[0] % be == 0 and not any(k in name for k in KEEP):
                    sigma = decode(t, raw, n).std()
                    new.append((name, ne, tname, random_blocks(tname, n, sigma, rng)))
                else:
                    new.append((name, ne, t, raw))
            n_typed = sum(t == tname for _, _, t, _ in new)
            gguf = os.path.join(tmp, f"{model}-{tname}.gguf")
            write_gguf(gguf, nkv, kv, new)
            d = os.path.join(tmp, f"{model}-{tname}")
            os.makedirs(d)
            shutil.copy(os.path.join(GOLDEN, "models", model, "config.json"), d)
            write_safetensors(os.path.join(d, "model.safetensors"), to_hf(new, cfg))
            ids = rng.integers(0, cfg["vocab_size"], 12)
            want = ref_numpy.Model(d).forward(ids)
            out = os.path.join(tmp, "logits.f32")
            subprocess.run([Q35, "eval", "-m", gguf, "--ids", ",".join(map(str, ids)),
                            "--logits-out", out, "--decode-from", "8", "--threads", "2"],
                           check=True)
            got = np.fromfile(out, "<f4")
            failed += not compare(f"{model} {tname} ({n_typed} tensors)", got, want[7:])
    print(f"{len(runs) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
