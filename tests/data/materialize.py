"""materialize.py — lays the test fixtures out under the build directory.

    /usr/bin/python3 tests/data/materialize.py tests/data BUILD/fixtures

tests/data holds the fixtures as git keeps them best: big text files
compressed (*.xz), and files that other committed files fully determine
left out, with the recipe and the SHA-256 of the original bytes in
derived.json. This script writes OUT with the layout the tests read
(tokenizer/, models/, gguf/, chat/, configs/): *.xz decompressed, every
other committed file linked, each derived file rebuilt and checked against
its recorded SHA-256 (a mismatch is an error: the rebuilt file would not be
the reference any more). Files computed from a reference that lives in
tests/ (the float64 numpy reading, tests/tools/ref_numpy.py) are checked
against committed digests of the originals instead of bytes, since float64
sums may round differently from one numpy to the next.

It is idempotent: OUT/.stamp records the inputs' sizes and mtimes, and an
unchanged tree is left as it is. See tests/data/README.md for where each
fixture came from.
"""
import hashlib
import json
import lzma
import os
import shutil
import struct
import sys

import numpy as np

sys.dont_write_bytecode = True  # no __pycache__ in tests/tools when ref_numpy is imported

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))

# Files of tests/data that are not fixtures themselves.
NOT_FIXTURES = {"README.md", "materialize.py", "derived.json", "__pycache__", "recipes"}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_atomic(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".part"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


# ---------------------------------------------------------------- GGUF ---

GGUF_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
               10: "<Q", 11: "<q", 12: "<d"}
GGML_F32, GGML_F16, GGML_Q4_0, GGML_Q8_0, GGML_Q6_K, GGML_BF16 = 0, 1, 2, 8, 14, 30
BLOCK = {GGML_F32: (1, 4), GGML_F16: (1, 2), GGML_BF16: (1, 2), GGML_Q4_0: (32, 18),
         GGML_Q8_0: (32, 34), GGML_Q6_K: (256, 210)}


def gguf_layout(buf):
    """Tensor infos of a GGUF file (its header bytes are enough): a list of
    dicts (name, dims, type, offset, nbytes), the data section's start and
    the metadata as a dict of scalars and short arrays."""
    pos = 0

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
        if t in GGUF_SCALAR:
            return take(GGUF_SCALAR[t])
        if t == 8:
            return string()
        if t == 9:
            et, n = take("<I"), take("<Q")
            return [value(et) for _ in range(n)]
        raise ValueError("GGUF value type %d" % t)

    if bytes(buf[:4]) != b"GGUF":
        raise ValueError("not a GGUF file")
    pos = 4
    take("<I")  # version
    n_tensors, n_kv = take("<Q"), take("<Q")
    meta = {}
    for _ in range(n_kv):
        k = string()
        meta[k] = value(take("<I"))
    align = meta.get("general.alignment", 32)
    tensors = []
    for _ in range(n_tensors):
        name = string()
        dims = [take("<Q") for _ in range(take("<I"))]
        t, off = take("<I"), take("<Q")
        per, size = BLOCK[t]
        tensors.append({"name": name, "dims": dims, "type": t, "offset": off,
                        "nbytes": int(np.prod(dims)) // per * size})
    data = (pos + align - 1) // align * align
    return tensors, data, meta


def gguf_tensor_f32(buf, data, t):
    """A BF16 or F32 tensor of a GGUF file as float32, in file order."""
    raw = buf[data + t["offset"]: data + t["offset"] + t["nbytes"]]
    if t["type"] == GGML_F32:
        return np.frombuffer(raw, "<f4").copy()
    if t["type"] == GGML_BF16:
        return (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
    raise ValueError("%s: type %d is not float" % (t["name"], t["type"]))


def round_half_away(x):
    """C's roundf on float32 values, exactly (the +0.5 is done in float64)."""
    a = np.floor(np.abs(x).astype(np.float64) + 0.5)
    return np.copysign(a, x)


def quantize_q8_0(x):
    """ggml's reference Q8_0 (quantize_row_q8_0_ref): per 32 values, d =
    max|x| / 127 as fp16 and q = roundf(x / d); float32 arithmetic."""
    b = x.astype(np.float32).reshape(-1, 32)
    amax = np.abs(b).max(1)
    d = amax / np.float32(127)
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    q = round_half_away((b * inv[:, None]).astype(np.float32)).astype(np.int8)
    out = np.empty((b.shape[0], 34), np.uint8)
    out[:, :2] = d.astype(np.float16).view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q.view(np.uint8)
    return out.tobytes()


def quantize_q4_0(x):
    """ggml's reference Q4_0 (quantize_row_q4_0_ref): per 32 values, d =
    (the value of largest magnitude, first one on ties) / -8 as fp16,
    q = min(15, (int)(x / d + 8.5)); low nibbles hold values 0-15, high
    nibbles 16-31."""
    b = x.astype(np.float32).reshape(-1, 32)
    at = np.abs(b).argmax(1)
    mx = b[np.arange(b.shape[0]), at]
    d = (mx / np.float32(-8)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    v = ((b * inv[:, None]).astype(np.float32) + np.float32(8.5)).astype(np.float32)
    q = np.minimum(15, np.trunc(v)).astype(np.uint8)
    out = np.empty((b.shape[0], 18), np.uint8)
    out[:, :2] = d.astype(np.float16).view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q[:, :16] | (q[:, 16:] << 4)
    return out.tobytes()


def requantized_gguf(src_path, header_path, blobs_dir):
    """llama-quantize's output rebuilt from its input (a BF16/F32 GGUF) and
    its header: F32 tensors copied, Q8_0/Q4_0 ones quantized as ggml's
    reference quantizers do, any other type read from blobs_dir/<name>."""
    src = open(src_path, "rb").read()
    s_tensors, s_data, _ = gguf_layout(src)
    by_name = {t["name"]: t for t in s_tensors}
    header = open(header_path, "rb").read()
    tensors, data, _ = gguf_layout(header)
    if len(header) != data:
        raise ValueError("%s: %d header bytes, the data section starts at %d"
                         % (header_path, len(header), data))
    end = max(t["offset"] + t["nbytes"] for t in tensors)
    body = bytearray((end + 31) // 32 * 32)
    for t in tensors:
        s = by_name[t["name"]]
        if t["type"] == GGML_F32 and s["type"] == GGML_F32:
            raw = src[s_data + s["offset"]: s_data + s["offset"] + s["nbytes"]]
        elif t["type"] == GGML_Q8_0:
            raw = quantize_q8_0(gguf_tensor_f32(src, s_data, s))
        elif t["type"] == GGML_Q4_0:
            raw = quantize_q4_0(gguf_tensor_f32(src, s_data, s))
        else:
            raw = open(os.path.join(blobs_dir, t["name"] + ".bin"), "rb").read()
        if len(raw) != t["nbytes"]:
            raise ValueError("%s: %d bytes, expected %d" % (t["name"], len(raw), t["nbytes"]))
        body[t["offset"]: t["offset"] + len(raw)] = raw
    return header + bytes(body)


# --------------------------------------------------- HF from llama.cpp ---

def to_bf16_bits(x):
    u = np.asarray(x, np.float32).view(np.uint32)
    return ((u + np.uint32(0x7FFF) + ((u >> 16) & np.uint32(1))) >> 16).astype(np.uint16)


def hf_name_to_gguf(name):
    """(gguf tensor name, how to undo llama.cpp's conversion) for a
    Qwen3_5ForCausalLM tensor whose key and value head counts are equal
    (llama.cpp reorders value heads only where they outnumber key heads)."""
    fixed = {"lm_head.weight": "output.weight", "model.embed_tokens.weight": "token_embd.weight",
             "model.norm.weight": "output_norm.weight"}
    if name in fixed:
        return fixed[name], "minus1" if name == "model.norm.weight" else "copy"
    parts = name.split(".")
    blk = "blk.%s." % parts[2]
    rest = ".".join(parts[3:])
    table = {
        "input_layernorm.weight": ("attn_norm.weight", "minus1"),
        "post_attention_layernorm.weight": ("post_attention_norm.weight", "minus1"),
        "mlp.gate_proj.weight": ("ffn_gate.weight", "copy"),
        "mlp.up_proj.weight": ("ffn_up.weight", "copy"),
        "mlp.down_proj.weight": ("ffn_down.weight", "copy"),
        "linear_attn.in_proj_qkv.weight": ("attn_qkv.weight", "copy"),
        "linear_attn.in_proj_z.weight": ("attn_gate.weight", "copy"),
        "linear_attn.in_proj_a.weight": ("ssm_alpha.weight", "copy"),
        "linear_attn.in_proj_b.weight": ("ssm_beta.weight", "copy"),
        "linear_attn.conv1d.weight": ("ssm_conv1d.weight", "copy"),
        "linear_attn.A_log": ("ssm_a", "neglog"),
        "linear_attn.dt_bias": ("ssm_dt.bias", "copy"),
        "linear_attn.norm.weight": ("ssm_norm.weight", "copy"),
        "linear_attn.out_proj.weight": ("ssm_out.weight", "copy"),
        "self_attn.q_proj.weight": ("attn_q.weight", "copy"),
        "self_attn.k_proj.weight": ("attn_k.weight", "copy"),
        "self_attn.v_proj.weight": ("attn_v.weight", "copy"),
        "self_attn.o_proj.weight": ("attn_output.weight", "copy"),
        "self_attn.q_norm.weight": ("attn_q_norm.weight", "minus1"),
        "self_attn.k_norm.weight": ("attn_k_norm.weight", "minus1"),
    }
    g, how = table[rest]
    return blk + g, how


def safetensors_from_gguf(gguf_path, header_path):
    """The HF checkpoint that llama.cpp's converter turned into gguf_path,
    rebuilt from it and from the checkpoint's safetensors header (bf16)."""
    src = open(gguf_path, "rb").read()
    tensors, data, _ = gguf_layout(src)
    by_name = {t["name"]: t for t in tensors}
    header = open(header_path, "rb").read()
    (n,) = struct.unpack_from("<Q", header, 0)
    if len(header) != 8 + n:
        raise ValueError("%s: not a safetensors header" % header_path)
    infos = json.loads(header[8:])
    end = max(v["data_offsets"][1] for k, v in infos.items() if k != "__metadata__")
    body = bytearray(end)
    for name, v in infos.items():
        if name == "__metadata__":
            continue
        if v["dtype"] != "BF16":
            raise ValueError("%s: %s (only BF16 is rebuilt)" % (name, v["dtype"]))
        g, how = hf_name_to_gguf(name)
        x = gguf_tensor_f32(src, data, by_name[g])
        if how == "minus1":
            x = x - np.float32(1)
        elif how == "neglog":
            x = np.log(-x.astype(np.float64)).astype(np.float32)
        a, b = v["data_offsets"]
        raw = to_bf16_bits(x).tobytes()
        if len(raw) != b - a:
            raise ValueError("%s: %d bytes, expected %d" % (name, len(raw), b - a))
        body[a:b] = raw
    return header + bytes(body)


# -------------------------------------------------------- tokenizers ---

def tokenizer_with_regex(src_path, regex, compact):
    """The same tokenizer.json with another Split regex in its pre-tokenizer,
    serialized as HF does (compact, or with ", "/": " separators)."""
    with open(src_path, "rb") as f:
        tok = json.loads(f.read())
    tok["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = regex
    seps = (",", ":") if compact else (", ", ": ")
    return json.dumps(tok, ensure_ascii=False, separators=seps).encode("utf-8")


# ---------------------------------------------------------- logits ---

def row_digest(logits):
    """What the committed digests of a logits file hold: per row, argmax,
    max and L2 norm."""
    x = logits.astype(np.float64)
    return {"argmax": x.argmax(1).tolist(), "max": x.max(1).tolist(),
            "norm": np.sqrt((x * x).sum(1)).tolist()}


def check_digest(name, got, want, rel=1e-5):
    g = row_digest(got)
    bad = [i for i, (a, b) in enumerate(zip(g["max"], want["max"])) if abs(a - b) > rel * abs(b) + 1e-7]
    bad += [i for i, (a, b) in enumerate(zip(g["norm"], want["norm"])) if abs(a - b) > rel * abs(b)]
    if bad or len(g["max"]) != len(want["max"]):
        raise ValueError("%s: rows %s differ from the recorded float64 reference" % (name, sorted(set(bad))[:8]))
    flips = [i for i, (a, b) in enumerate(zip(g["argmax"], want["argmax"])) if a != b]
    if len(flips) > 0:
        raise ValueError("%s: argmax of rows %s differs from the recorded reference" % (name, flips[:8]))


def ref64_logits(model_dir, out_dir, digests=None):
    """*.ref64.f32 of every case in model_dir/cases.json, computed by the
    float64 numpy reading (tests/tools/ref_numpy.py)."""
    import ref_numpy
    m = ref_numpy.Model(model_dir)
    cases = json.load(open(os.path.join(model_dir, "cases.json")))["cases"]
    for cs in cases:
        ids = cs["input_ids"] if cs["kind"] == "prefill" else cs["prompt_ids"] + cs["greedy_ids"][:-1]
        got = m.forward(np.array(ids))
        if cs["kind"] == "decode":
            got = got[len(cs["prompt_ids"]) - 1:]
        got = got.astype(np.float32)
        if list(got.shape) != cs["shape"]:
            raise ValueError("%s: shape %s, cases.json says %s" % (cs["name"], got.shape, cs["shape"]))
        if digests is not None:
            check_digest(cs["name"], got, digests[cs["logits_f64"]])
        write_atomic(os.path.join(out_dir, cs["logits_f64"]), got.astype("<f4").tobytes())


# ------------------------------------------- generated checkpoints ---

def gguf_same_as(got, want, name):
    """got == want byte for byte, except ssm_a values within one float32
    ulp (-exp(A_log): torch's float32 exp is not numpy's)."""
    tg, dg, _ = gguf_layout(got)
    tw, dw, _ = gguf_layout(want)
    if got[:dg] != want[:dw]:
        raise ValueError("%s: the rebuilt GGUF header differs from llama.cpp's" % name)
    for a, b in zip(tg, tw):
        x = got[dg + a["offset"]: dg + a["offset"] + a["nbytes"]]
        y = want[dw + b["offset"]: dw + b["offset"] + b["nbytes"]]
        if x == y:
            continue
        if a["name"].endswith("ssm_a"):
            ux, uy = np.frombuffer(x, "<i4").astype(np.int64), np.frombuffer(y, "<i4").astype(np.int64)
            if np.abs(ux - uy).max() <= 1:
                continue
        raise ValueError("%s: tensor %s differs from llama.cpp's" % (name, a["name"]))


def bf16_bits(x):
    return to_bf16_bits(np.asarray(x, np.float32))


def random_checkpoint(base_cfg, base_header, layer_types, seed):
    """A random bf16 checkpoint with base_cfg's shapes and its own layer
    pattern: the weights drawn as the golden tiny models' were (matrices
    ~1.5/sqrt(fan_in), norm weights +-0.2 around their base, A_log in
    [-1, 2]), names and shapes taken from the base checkpoint's header."""
    rng = np.random.default_rng(seed)
    (n,) = struct.unpack_from("<Q", base_header, 0)
    infos = json.loads(base_header[8:8 + n])
    base_types = base_cfg["layer_types"]
    proto = {}  # layer kind -> [(suffix, shape)]
    for k, v in infos.items():
        if k.startswith("model.layers."):
            i, rest = k.split(".")[2], ".".join(k.split(".")[3:])
            proto.setdefault(base_types[int(i)], {})[rest] = v["shape"]
    names = [(k, v["shape"]) for k, v in infos.items()
             if k != "__metadata__" and not k.startswith("model.layers.")]
    for i, kind in enumerate(layer_types):
        names += [("model.layers.%d.%s" % (i, r), s) for r, s in sorted(proto[kind].items())]
    W = {}
    for name, shape in sorted(names):
        if name.endswith("A_log"):
            x = rng.uniform(-1, 2, shape)
        elif name.endswith("linear_attn.norm.weight"):
            x = 1 + rng.uniform(-0.2, 0.2, shape)
        elif len(shape) == 1:
            x = rng.uniform(-0.2, 0.2, shape)
        elif name.endswith("conv1d.weight"):
            x = rng.standard_normal(shape) * 0.5
        else:
            x = rng.standard_normal(shape) * 1.5 / np.sqrt(shape[-1])
        W[name] = bf16_bits(x.astype(np.float32)).reshape(shape)
    cfg = dict(base_cfg)
    cfg["num_hidden_layers"] = len(layer_types)
    cfg["layer_types"] = list(layer_types)
    return cfg, W


def safetensors_bytes(W):
    hdr, off = {"__metadata__": {"format": "pt"}}, 0
    for k in sorted(W):
        nb = W[k].size * 2
        hdr[k] = {"dtype": "BF16", "shape": list(W[k].shape), "data_offsets": [off, off + nb]}
        off += nb
    hb = json.dumps(hdr, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)
    return struct.pack("<Q", len(hb)) + hb + b"".join(W[k].astype("<u2").tobytes() for k in sorted(W))


def generated_model(src, out, r):
    """A checkpoint with an irregular layer pattern, in both forms: HF
    (config.json whose full_attention_interval disagrees with layer_types)
    and llama.cpp's GGUF (recurrent_layers beside a disagreeing
    full_attention_interval, as llama.cpp's converter writes them), with
    cases and their float64 reference logits."""
    import gguf_llama_layout as gl
    base = os.path.join(out, r["base"])
    base_cfg = json.load(open(os.path.join(base, "config.json")))
    base_header = open(os.path.join(base, "model.safetensors"), "rb").read(1 << 20)
    types = ["full_attention" if c == "F" else "linear_attention" for c in r["pattern"]]
    cfg, W = random_checkpoint(base_cfg, base_header, types, r["seed"])
    cfg["full_attention_interval"] = r["interval"]
    d = os.path.join(out, r["out"])
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    write_atomic(os.path.join(d, "model.safetensors"), safetensors_bytes(W))
    # the cases: random prompts, and a decode run on the reference's own
    # greedy choices
    import ref_numpy
    rng = np.random.default_rng(r["seed"] + 1)
    V = cfg["vocab_size"]
    cases = []
    for T in r["prefill"]:
        ids = rng.integers(0, V, T).tolist()
        cases.append({"kind": "prefill", "name": "prefill_%d" % T, "input_ids": ids,
                      "shape": [T, V], "logits_f64": "prefill_%d.ref64.f32" % T})
    m = ref_numpy.Model(d)
    prompt = rng.integers(0, V, r["decode"][0]).tolist()
    greedy = []
    for _ in range(r["decode"][1]):
        greedy.append(int(m.forward(np.array(prompt + greedy))[-1].argmax()))
    cases.append({"kind": "decode", "name": "decode", "prompt_ids": prompt, "greedy_ids": greedy,
                  "shape": [len(greedy), V], "logits_f64": "decode.ref64.f32"})
    with open(os.path.join(d, "cases.json"), "w") as f:
        json.dump({"model": r["out"], "reference": "tests/tools/ref_numpy.py (float64)",
                   "cases": cases}, f, indent=1)
    ref64_logits(d, d)
    # the GGUF form, metadata from llama.cpp's file of the base shapes
    template = open(os.path.join(out, r["gguf_template"]), "rb").read()
    recurrent = [t == "linear_attention" for t in types]
    g = gl.write_gguf(cfg, W, template, {
        "qwen35.block_count": (gl.U32, len(types)),
        "qwen35.attention.recurrent_layers": (gl.ARR, (gl.BOOL, recurrent)),
        "qwen35.full_attention_interval": (gl.U32, r["interval"]),
        "general.name": (gl.STR, r["out"].split("/")[-1])})
    write_atomic(os.path.join(out, r["gguf"]), g)


# -------------------------------------------------------------- main ---

def inputs_stamp(src):
    parts = []
    for root, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for f in sorted(files):
            p = os.path.join(root, f)
            st = os.stat(p)
            parts.append("%s %d %d" % (os.path.relpath(p, src), st.st_size, st.st_mtime_ns))
    for f in ("ref_numpy.py", "gguf_llama_layout.py"):
        p = os.path.join(HERE, "..", "tools", f)
        st = os.stat(p)
        parts.append("%s %d %d" % (f, st.st_size, st.st_mtime_ns))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def place_committed(src, out):
    """*.xz decompressed, everything else linked."""
    for root, dirs, files in os.walk(src):
        rel = os.path.relpath(root, src)
        if rel == ".":
            dirs[:] = [d for d in dirs if d not in NOT_FIXTURES]
            files = [f for f in files if f not in NOT_FIXTURES]
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for f in files:
            s = os.path.join(root, f)
            if f.endswith(".xz"):
                d = os.path.join(out, rel, f[:-3])
                with lzma.open(s, "rb") as z:
                    write_atomic(d, z.read())
            else:
                d = os.path.join(out, rel, f)
                os.makedirs(os.path.dirname(d), exist_ok=True)
                if os.path.lexists(d):
                    os.remove(d)
                os.symlink(os.path.abspath(s), d)


def build_derived(src, out, recipes):
    for r in recipes:
        dst = os.path.join(out, r["out"])
        kind = r["from"]
        if kind == "copy":
            data = open(os.path.join(out, r["src"]), "rb").read()
        elif kind == "tokenizer_regex":
            data = tokenizer_with_regex(os.path.join(out, r["src"]), r["regex"], r["compact"])
        elif kind == "requantize":
            data = requantized_gguf(os.path.join(out, r["src"]), os.path.join(src, r["header"]),
                                    os.path.join(src, r["blobs"]))
        elif kind == "safetensors_from_gguf":
            data = safetensors_from_gguf(os.path.join(out, r["src"]), os.path.join(src, r["header"]))
        elif kind == "llama_layout_check":
            # the GGUF writer of the generated fixtures, held to llama.cpp
            import gguf_llama_layout as gl
            want = open(os.path.join(out, r["gguf"]), "rb").read()
            t, _, _ = gguf_layout(want)
            m = os.path.join(out, r["model"])
            got = gl.write_gguf(json.load(open(os.path.join(m, "config.json"))),
                                gl.load_safetensors_bf16(os.path.join(m, "model.safetensors")),
                                want, order=[x["name"] for x in t])
            gguf_same_as(got, want, r["gguf"])
            continue
        elif kind == "generated_model":
            generated_model(src, out, r)
            continue
        elif kind == "ref64":
            digests = json.load(open(os.path.join(src, r["digests"])))
            ref64_logits(os.path.join(out, r["model"]), os.path.join(out, r["model"]), digests)
            continue
        else:
            raise ValueError("derived.json: unknown recipe %r" % kind)
        got = hashlib.sha256(data).hexdigest()
        if got != r["sha256"]:
            raise ValueError("%s: rebuilt bytes have sha256 %s, the original %s" % (r["out"], got, r["sha256"]))
        write_atomic(dst, data)


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    src, out = os.path.abspath(argv[1]), os.path.abspath(argv[2])
    stamp = inputs_stamp(src)
    stamp_path = os.path.join(out, ".stamp")
    if os.path.exists(stamp_path) and open(stamp_path).read() == stamp:
        return
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    place_committed(src, out)
    with open(os.path.join(src, "derived.json")) as f:
        build_derived(src, out, json.load(f)["files"])
    with open(stamp_path, "w") as f:
        f.write(stamp)


if __name__ == "__main__":
    try:
        main(sys.argv)
    except (OSError, ValueError, KeyError) as e:
        sys.exit("materialize.py: %s" % e)
