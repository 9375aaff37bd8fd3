"""make_checkpoint.py — a random-weight checkpoint laid out exactly like
Qwen/Qwen3.5-0.8B (HF names, shapes and config; bf16 safetensors; tied
embeddings; vocab 248320; the MTP head included: 773M parameters, 1.5 GB),
for timing engines side by side. Speed does not depend on weight values, so
random values serve; the text such a model writes is noise.

    /usr/bin/python3 bench/make_checkpoint.py OUTDIR [TOKENIZER_JSON [TOKENIZER_CONFIG]]

The tokenizer files default to the ones in tests/data/tokenizer (the
Qwen3.5 pre-tokenizer over the 151k Qwen3 vocabulary); a .xz path is
decompressed. Values are drawn from a fixed seed, so two runs write the same
bytes. The file stays out of git.
"""
import json
import lzma
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TOKDATA = os.path.join(HERE, "..", "tests", "data", "tokenizer")

# Qwen3.5-0.8B's text model.
HIDDEN, FFN, LAYERS, VOCAB = 1024, 3584, 24, 248320
HEADS, KV_HEADS, HEAD_DIM = 8, 2, 256
LIN_K_HEADS, LIN_V_HEADS, LIN_K_DIM, LIN_V_DIM, CONV = 16, 16, 128, 128, 4
FULL_EVERY = 4


def layer_types():
    return ["full_attention" if i % FULL_EVERY == FULL_EVERY - 1 else "linear_attention"
            for i in range(LAYERS)]


def config():
    text = {
        "model_type": "qwen3_5_text",
        "vocab_size": VOCAB,
        "hidden_size": HIDDEN,
        "intermediate_size": FFN,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "head_dim": HEAD_DIM,
        "attention_bias": False,
        "attn_output_gate": True,
        "linear_num_key_heads": LIN_K_HEADS,
        "linear_num_value_heads": LIN_V_HEADS,
        "linear_key_head_dim": LIN_K_DIM,
        "linear_value_head_dim": LIN_V_DIM,
        "linear_conv_kernel_dim": CONV,
        "rms_norm_eps": 1e-6,
        "full_attention_interval": FULL_EVERY,
        "max_position_embeddings": 262144,
        "tie_word_embeddings": True,
        "mtp_num_hidden_layers": 1,
        "layer_types": layer_types(),
        "hidden_act": "silu",
        # the end-of-turn id of the 151k vocabulary this checkpoint ships with
        "eos_token_id": 151645,
        "dtype": "bfloat16",
        "rope_parameters": {"mrope_interleaved": True, "mrope_section": [11, 11, 10],
                            "rope_type": "default", "rope_theta": 10000000,
                            "partial_rotary_factor": 0.25},
    }
    return {"architectures": ["Qwen3_5ForConditionalGeneration"], "model_type": "qwen3_5",
            "tie_word_embeddings": True, "text_config": text,
            "image_token_id": 248056, "video_token_id": 248057,
            "vision_start_token_id": 248053, "vision_end_token_id": 248054}


def tensor_list():
    """(name, shape, std, mean) in file order; std None = 1/sqrt(fan_in)."""
    out = []

    def add(name, shape, std=None, mean=0.0):
        out.append((name, list(shape), std, mean))

    def mlp(p):
        add(p + "mlp.gate_proj.weight", (FFN, HIDDEN))
        add(p + "mlp.up_proj.weight", (FFN, HIDDEN))
        add(p + "mlp.down_proj.weight", (HIDDEN, FFN))

    def attention(p):
        add(p + "self_attn.q_proj.weight", (2 * HEADS * HEAD_DIM, HIDDEN))  # query and gate
        add(p + "self_attn.k_proj.weight", (KV_HEADS * HEAD_DIM, HIDDEN))
        add(p + "self_attn.v_proj.weight", (KV_HEADS * HEAD_DIM, HIDDEN))
        add(p + "self_attn.o_proj.weight", (HIDDEN, HEADS * HEAD_DIM))
        add(p + "self_attn.q_norm.weight", (HEAD_DIM,), 0.1)
        add(p + "self_attn.k_norm.weight", (HEAD_DIM,), 0.1)

    def deltanet(p):
        kd, vd = LIN_K_HEADS * LIN_K_DIM, LIN_V_HEADS * LIN_V_DIM
        add(p + "linear_attn.in_proj_qkv.weight", (2 * kd + vd, HIDDEN))
        add(p + "linear_attn.in_proj_z.weight", (vd, HIDDEN))
        add(p + "linear_attn.in_proj_a.weight", (LIN_V_HEADS, HIDDEN))
        add(p + "linear_attn.in_proj_b.weight", (LIN_V_HEADS, HIDDEN))
        add(p + "linear_attn.conv1d.weight", (2 * kd + vd, 1, CONV), 0.4)
        add(p + "linear_attn.A_log", (LIN_V_HEADS,), 0.5)
        add(p + "linear_attn.dt_bias", (LIN_V_HEADS,), 0.5)
        add(p + "linear_attn.norm.weight", (LIN_V_DIM,), 0.1, 1.0)  # not zero-centred
        add(p + "linear_attn.out_proj.weight", (HIDDEN, vd))

    lm = "model.language_model."
    add(lm + "embed_tokens.weight", (VOCAB, HIDDEN), 1.0)
    add(lm + "norm.weight", (HIDDEN,), 0.1)
    for i, kind in enumerate(layer_types()):
        p = "%slayers.%d." % (lm, i)
        add(p + "input_layernorm.weight", (HIDDEN,), 0.1)
        add(p + "post_attention_layernorm.weight", (HIDDEN,), 0.1)
        mlp(p)
        if kind == "linear_attention":
            deltanet(p)
        else:
            attention(p)
    # The multi-token-prediction head of the real checkpoint: one attention block.
    add("mtp.fc.weight", (HIDDEN, 2 * HIDDEN))
    add("mtp.norm.weight", (HIDDEN,), 0.1)
    add("mtp.pre_fc_norm_embedding.weight", (HIDDEN,), 0.1)
    add("mtp.pre_fc_norm_hidden.weight", (HIDDEN,), 0.1)
    p = "mtp.layers.0."
    add(p + "input_layernorm.weight", (HIDDEN,), 0.1)
    add(p + "post_attention_layernorm.weight", (HIDDEN,), 0.1)
    mlp(p)
    attention(p)
    return out


def to_bf16(x):
    """float32 -> bf16 bits, round to nearest even."""
    u = x.astype(np.float32).view(np.uint32)
    return ((u + np.uint32(0x7FFF) + ((u >> 16) & np.uint32(1))) >> 16).astype(np.uint16)


def read_maybe_xz(path):
    opener = lzma.open if path.endswith(".xz") else open
    with opener(path, "rb") as f:
        return f.read()


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    out_dir = argv[1]
    tok_json = argv[2] if len(argv) > 2 else os.path.join(TOKDATA, "tokenizer.qwen35.json.xz")
    tok_cfg = argv[3] if len(argv) > 3 else os.path.join(TOKDATA, "tokenizer_config.qwen3.json")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config(), f, indent=1)

    tensors = tensor_list()
    header, offset = {}, 0
    for name, shape, _, _ in tensors:
        size = int(np.prod(shape)) * 2
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    header["__metadata__"] = {"format": "pt"}
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    rng = np.random.default_rng(7)
    tmp = os.path.join(out_dir, "model.safetensors.part")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for name, shape, std, mean in tensors:
            n = int(np.prod(shape))
            if std is None:
                std = 1.0 / np.sqrt(shape[-1])
            x = rng.standard_normal(n, dtype=np.float32) * np.float32(std) + np.float32(mean)
            f.write(to_bf16(x).tobytes())
    os.replace(tmp, os.path.join(out_dir, "model.safetensors"))
    with open(os.path.join(out_dir, "tokenizer.json"), "wb") as f:
        f.write(read_maybe_xz(tok_json))
    with open(os.path.join(out_dir, "tokenizer_config.json"), "wb") as f:
        f.write(read_maybe_xz(tok_cfg))
    print("params", sum(int(np.prod(s)) for _, s, _, _ in tensors), "bytes", offset)


if __name__ == "__main__":
    main(sys.argv)
