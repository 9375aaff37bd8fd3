"""gguf_llama_layout.py — writes an HF Qwen3.5 checkpoint (bf16 safetensors)
as a bf16 GGUF in llama.cpp's qwen35 layout, the way llama.cpp's
convert_hf_to_gguf.py lays it out (tensor names blk.N.*, the +1 of the
zero-centred RMSNorm weights folded in, ssm_a = -exp(A_log), value heads in
tiled order where they outnumber key heads, 1-D tensors and the conv kernel
in float32). The metadata comes from a template GGUF that llama.cpp wrote
for a model of the same shapes, with the keys the caller overrides.

Checked where it matters: on tiny-a (value heads reordered) it rebuilds
llama.cpp's tiny-a-bf16.gguf byte for byte (tests/data/derived.json), so the
GGUF forms of the generated fixtures are laid out as llama.cpp would.
"""
import json
import struct

import numpy as np

ALIGN = 32
# GGUF value types
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
SCALAR = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f",
          BOOL: "<?", U64: "<Q", I64: "<q", F64: "<d"}
GGML_F32, GGML_BF16 = 0, 30


def read_kvs(buf):
    """The metadata of a GGUF file as an ordered list of (key, type, value);
    arrays are (elem_type, [values])."""
    pos = 4 + 4

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, buf, pos)[0]
        pos += struct.calcsize(fmt)
        return v

    def string():
        nonlocal pos
        n = take("<Q")
        s = bytes(buf[pos:pos + n]).decode("utf-8")
        pos += n
        return s

    def value(t):
        if t in SCALAR:
            return take(SCALAR[t])
        if t == STR:
            return string()
        if t == ARR:
            et, n = take("<I"), take("<Q")
            return (et, [value(et) for _ in range(n)])
        raise ValueError("GGUF value type %d" % t)

    take("<Q")  # tensor count
    n_kv = take("<Q")
    out = []
    for _ in range(n_kv):
        k = string()
        t = take("<I")
        out.append([k, t, value(t)])
    return out


def pack_value(t, v):
    if t in SCALAR:
        return struct.pack(SCALAR[t], v)
    if t == STR:
        b = v.encode("utf-8")
        return struct.pack("<Q", len(b)) + b
    if t == ARR:
        et, vals = v
        return struct.pack("<IQ", et, len(vals)) + b"".join(pack_value(et, x) for x in vals)
    raise ValueError("GGUF value type %d" % t)


def load_safetensors_bf16(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack_from("<Q", raw, 0)
    hdr = json.loads(raw[8:8 + n])
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        if v["dtype"] != "BF16":
            raise ValueError("%s: %s (this writer reads BF16 only)" % (k, v["dtype"]))
        a, b = v["data_offsets"]
        bits = np.frombuffer(raw[8 + n + a: 8 + n + b], "<u2")
        out[k] = (bits.reshape(v["shape"]))
    return out


def bf16_to_f32(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def tiled(x, axis, nk, rep, hd):
    """Value heads from grouped (k0v0, k0v1, k1v0, ...) to tiled (k0v0,
    k1v0, k0v1, ...) order along `axis`."""
    x = np.moveaxis(x, axis, 0)
    shape = x.shape
    x = x.reshape((nk, rep, hd) + shape[1:]).swapaxes(0, 1).reshape(shape)
    return np.ascontiguousarray(np.moveaxis(x, 0, axis))


def llama_tensors(cfg, W):
    """(gguf name, ggml type, ne dims, bytes) in llama.cpp's order."""
    c = cfg.get("text_config", cfg)
    W = {k.replace("model.language_model.", "model."): v for k, v in W.items()}
    nk, nv = c["linear_num_key_heads"], c["linear_num_value_heads"]
    dk, dv = c["linear_key_head_dim"], c["linear_value_head_dim"]
    rep = nv // nk
    out = []

    def mat(name, bits):  # HF [rows, cols] -> ne [cols, rows], bf16 as stored
        out.append((name, GGML_BF16, [bits.shape[1], bits.shape[0]], bits.astype("<u2").tobytes()))

    def vec(name, x):  # float32
        x = np.asarray(x, np.float32)
        out.append((name, GGML_F32, list(x.shape[::-1]), x.astype("<f4").tobytes()))

    def plus1(bits):
        return bf16_to_f32(bits) + np.float32(1)

    if "lm_head.weight" in W:
        mat("output.weight", W["lm_head.weight"])
    mat("token_embd.weight", W["model.embed_tokens.weight"])
    types = c["layer_types"]
    for i, kind in enumerate(types):
        p, b = "model.layers.%d." % i, "blk.%d." % i
        vec(b + "attn_norm.weight", plus1(W[p + "input_layernorm.weight"]))
        if kind == "linear_attention":
            a = p + "linear_attn."
            A = bf16_to_f32(W[a + "A_log"])
            dt = bf16_to_f32(W[a + "dt_bias"])
            conv = bf16_to_f32(W[a + "conv1d.weight"])[:, 0, :]
            qkv, z = W[a + "in_proj_qkv.weight"], W[a + "in_proj_z.weight"]
            al, be, o = W[a + "in_proj_a.weight"], W[a + "in_proj_b.weight"], W[a + "out_proj.weight"]
            if rep > 1:
                qk = 2 * nk * dk
                qkv = np.concatenate([qkv[:qk], tiled(qkv[qk:], 0, nk, rep, dv)])
                conv = np.concatenate([conv[:qk], tiled(conv[qk:], 0, nk, rep, dv)])
                z = tiled(z, 0, nk, rep, dv)
                al, be = tiled(al, 0, nk, rep, 1), tiled(be, 0, nk, rep, 1)
                A, dt = tiled(A, 0, nk, rep, 1), tiled(dt, 0, nk, rep, 1)
                o = tiled(o, 1, nk, rep, dv)
            # exp in float64, rounded once: what torch writes for these values
            vec(b + "ssm_a", -np.exp(A.astype(np.float64)).astype(np.float32))
            vec(b + "ssm_conv1d.weight", conv)
            vec(b + "ssm_dt.bias", dt)
            mat(b + "ssm_alpha.weight", al)
            mat(b + "ssm_beta.weight", be)
            mat(b + "attn_qkv.weight", qkv)
            mat(b + "attn_gate.weight", z)
            vec(b + "ssm_norm.weight", bf16_to_f32(W[a + "norm.weight"]))
            mat(b + "ssm_out.weight", o)
        else:
            a = p + "self_attn."
            vec(b + "attn_k_norm.weight", plus1(W[a + "k_norm.weight"]))
            mat(b + "attn_k.weight", W[a + "k_proj.weight"])
            mat(b + "attn_output.weight", W[a + "o_proj.weight"])
            vec(b + "attn_q_norm.weight", plus1(W[a + "q_norm.weight"]))
            mat(b + "attn_q.weight", W[a + "q_proj.weight"])
            mat(b + "attn_v.weight", W[a + "v_proj.weight"])
        mat(b + "ffn_down.weight", W[p + "mlp.down_proj.weight"])
        mat(b + "ffn_gate.weight", W[p + "mlp.gate_proj.weight"])
        mat(b + "ffn_up.weight", W[p + "mlp.up_proj.weight"])
        vec(b + "post_attention_norm.weight", plus1(W[p + "post_attention_layernorm.weight"]))
    vec("output_norm.weight", plus1(W["model.norm.weight"]))
    return out


def write_gguf(cfg, W, template, overrides=None, order=None):
    """GGUF bytes: template's metadata (keys in overrides replaced: key ->
    (type, value)), then the tensors of llama_tensors(); `order` lists the
    tensor names in file order (default: llama.cpp's grouping)."""
    kvs = read_kvs(template)
    for kv in kvs:
        if overrides and kv[0] in overrides:
            kv[1], kv[2] = overrides[kv[0]]
    tensors = llama_tensors(cfg, W)
    if order is not None:
        by = {t[0]: t for t in tensors}
        tensors = [by[n] for n in order]
    head = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)))
    for k, t, v in kvs:
        head += pack_value(STR, k) + struct.pack("<I", t) + pack_value(t, v)
    off = 0
    for name, typ, ne, data in tensors:
        head += pack_value(STR, name) + struct.pack("<I", len(ne))
        head += b"".join(struct.pack("<Q", d) for d in ne)
        head += struct.pack("<IQ", typ, off)
        off += (len(data) + ALIGN - 1) // ALIGN * ALIGN
    head += b"\0" * (-len(head) % ALIGN)
    body = bytearray()
    for _, _, _, data in tensors:
        body += data + b"\0" * (-len(data) % ALIGN)
    return bytes(head) + bytes(body)
