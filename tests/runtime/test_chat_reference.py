"""test_chat_reference.py — the chat rules of golden/README.md checked on
conversations and a model that no golden file holds, against an
independent reference built here from the reference pieces:
golden/ref_numpy.py (the float64 forward pass), tests/cli/chat_reference.py
(the chat template through jinja2, as transformers renders it), the HF
byte-level decoding written out below, and the rules themselves (greedy
over non-padding ids, repetition penalty over the last 64 context ids,
thinking budget forcing "\\n</think>\\n\\n", stop at eos or max_tokens,
thinking/answer split, earlier turns re-rendered with their answer).

Models: golden tiny-chat, and "tiny-chat-b", made here with other shapes
(hidden 48, 5 layers L,F,L,L,F, 3 query heads on 1 KV head of dim 16,
DeltaNet 2 key heads / 4 value heads of dims 8 / 12, untied lm_head, eos
listed twice in the config, the <|im_end|> row of lm_head scaled up so
replies do end at eos) and the same tokenizer.

For each turn, `q35 chat --jsonl` gives the ids; the reference renders the
turn's messages (earlier answers as q35 gave them), tokenizes the text with
`q35 tokenize` (HF's id-for-id, checked by the tokenizer's own tests), and
walks q35's ids teacher-forced: every sampled id must be the reference's
greedy choice (or within float32 distance of it, which must be rare), every
forced id where the rule puts one, the stop where the rule stops, and the
text, thinking and answer what the rule makes of the ids.

Needs numpy and jinja2 (Debian: python3-numpy, python3-jinja2)."""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

GOLDEN = os.environ["Q35_FIXTURES"]
Q35 = os.environ["Q35"]
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
sys.path.insert(0, os.path.join(HERE, "..", "cli"))
import ref_numpy  # noqa: E402
import chat_reference  # noqa: E402

TINY_CHAT = os.path.join(GOLDEN, "models", "tiny-chat")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)
    return cond


# ------------------------------------------------------------ tokenizer side

def byte_decoder():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


class Vocab:
    def __init__(self, model_dir):
        tj = json.load(open(os.path.join(model_dir, "tokenizer.json"), encoding="utf-8"))
        dec = byte_decoder()
        self.bytes = {}
        for piece, i in tj["model"]["vocab"].items():
            self.bytes[i] = bytes(dec[ch] for ch in piece)
        self.special = set()
        for a in tj["added_tokens"]:
            self.bytes[a["id"]] = a["content"].encode()
            if a["special"]:
                self.special.add(a["id"])
        self.size = max(self.bytes) + 1
        self.id = {a["content"]: a["id"] for a in tj["added_tokens"]}

    def decode(self, ids):
        """HF decode(skip_special_tokens=True): lossy UTF-8."""
        raw = b"".join(self.bytes[i] for i in ids if i not in self.special)
        return raw.decode("utf-8", errors="replace")


def tokenize(model_dir, text):
    out = subprocess.run([Q35, "tokenize", "-m", model_dir, "--text", text],
                         capture_output=True, check=True).stdout.split()
    return [int(x) for x in out]


# ------------------------------------------------------------- model side

def bf16(x):
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def make_tiny_chat_b(out):
    """A random Qwen3.5 checkpoint of other shapes, with tiny-chat's tokenizer."""
    V, H, I = 151936, 48, 80
    types = ["linear_attention", "full_attention", "linear_attention", "linear_attention",
             "full_attention"]
    NH, NKV, D = 3, 1, 16
    NK, NV, DK, DV, K = 2, 4, 8, 12, 4
    cfg = {"architectures": ["Qwen3_5ForCausalLM"], "model_type": "qwen3_5_text",
           "vocab_size": V, "hidden_size": H, "intermediate_size": I,
           "num_hidden_layers": len(types), "layer_types": types,
           "num_attention_heads": NH, "num_key_value_heads": NKV, "head_dim": D,
           "linear_num_key_heads": NK, "linear_num_value_heads": NV,
           "linear_key_head_dim": DK, "linear_value_head_dim": DV,
           "linear_conv_kernel_dim": K, "rms_norm_eps": 1e-5, "tie_word_embeddings": False,
           "max_position_embeddings": 2048, "eos_token_id": [151645, 151643],
           "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0,
                               "partial_rotary_factor": 0.5, "mrope_section": [2, 1, 1]}}
    rng = np.random.default_rng(2024)
    W = {}

    def mat(name, rows, cols, scale=1.5):
        W[name] = rng.standard_normal((rows, cols)) * scale / np.sqrt(cols)

    def vec(name, shape, lo, hi):
        W[name] = rng.uniform(lo, hi, shape)

    W["model.embed_tokens.weight"] = rng.standard_normal((V, H))
    mat("lm_head.weight", V, H)
    W["lm_head.weight"][151645] *= 2.5  # <|im_end|> likely enough to end replies
    vec("model.norm.weight", [H], -0.2, 0.2)
    C = 2 * NK * DK + NV * DV
    for i, t in enumerate(types):
        p = f"model.layers.{i}."
        vec(p + "input_layernorm.weight", [H], -0.2, 0.2)
        vec(p + "post_attention_layernorm.weight", [H], -0.2, 0.2)
        mat(p + "mlp.gate_proj.weight", I, H)
        mat(p + "mlp.up_proj.weight", I, H)
        mat(p + "mlp.down_proj.weight", H, I)
        if t == "linear_attention":
            a = p + "linear_attn."
            mat(a + "in_proj_qkv.weight", C, H)
            mat(a + "in_proj_z.weight", NV * DV, H)
            mat(a + "in_proj_a.weight", NV, H)
            mat(a + "in_proj_b.weight", NV, H)
            W[a + "conv1d.weight"] = rng.standard_normal((C, 1, K)) * 0.5
            vec(a + "A_log", [NV], -1, 2)
            vec(a + "dt_bias", [NV], -0.5, 0.5)
            vec(a + "norm.weight", [DV], 0.8, 1.2)
            mat(a + "out_proj.weight", H, NV * DV)
        else:
            a = p + "self_attn."
            mat(a + "q_proj.weight", NH * 2 * D, H)
            mat(a + "k_proj.weight", NKV * D, H)
            mat(a + "v_proj.weight", NKV * D, H)
            mat(a + "o_proj.weight", H, NH * D)
            vec(a + "q_norm.weight", [D], -0.2, 0.2)
            vec(a + "k_norm.weight", [D], -0.2, 0.2)
    hdr, off, blobs = {}, 0, []
    for name, x in W.items():
        b = bf16(x).tobytes()
        hdr[name] = {"dtype": "BF16", "shape": list(x.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    hb = json.dumps(hdr).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)
    json.dump(cfg, open(os.path.join(out, "config.json"), "w"))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        with open(os.path.join(TINY_CHAT, name), "rb") as src:
            open(os.path.join(out, name), "wb").write(src.read())


class Reference:
    def __init__(self, model_dir):
        self.m = ref_numpy.Model(model_dir)
        self.dir = model_dir
        self.vocab = Vocab(model_dir)
        c = self.m.c
        eos = c.get("eos_token_id")
        eos = eos if isinstance(eos, list) else [eos]
        self.eos = set(eos) | {self.vocab.id["<|im_end|>"], self.vocab.id["<|endoftext|>"]}
        self.think_close = self.vocab.id["</think>"]
        self.forced = tokenize(model_dir, "\n</think>\n\n")

    def hidden(self, ids):
        """Final normed hidden states (ref_numpy.Model.forward without the head)."""
        m, W, eps = self.m, self.m.W, self.m.eps
        x = W["model.embed_tokens.weight"][ids]
        for layer, t in enumerate(m.types):
            p = f"model.layers.{layer}."
            h = ref_numpy.rms(x, eps) * (1 + W[p + "input_layernorm.weight"])
            x = x + (m.gdn(h, p + "linear_attn.") if t == "linear_attention"
                     else m.attn(h, p + "self_attn."))
            h = ref_numpy.rms(x, eps) * (1 + W[p + "post_attention_layernorm.weight"])
            x = x + (ref_numpy.silu(h @ W[p + "mlp.gate_proj.weight"].T) *
                     (h @ W[p + "mlp.up_proj.weight"].T)) @ W[p + "mlp.down_proj.weight"].T
        return ref_numpy.rms(x, eps) * (1 + W["model.norm.weight"])

    def head(self):
        return self.m.W.get("lm_head.weight", self.m.W["model.embed_tokens.weight"])


# ---------------------------------------------------------------- the walk

def check_turn(ref, tag, prompt, got, opts, stats):
    gen = got["generated_ids"]
    thinking, budget, r = opts["thinking"], opts["budget"], opts["penalty"]
    check(got["prompt_tokens"] == len(prompt), f"{tag}: prompt is {got['prompt_tokens']} ids, "
          f"the reference renders {len(prompt)}")
    if not gen:
        return check(False, f"{tag}: nothing generated")
    x = ref.hidden(np.array(prompt + gen[:-1]))
    rows = x[len(prompt) - 1:] @ ref.head().T  # row i chooses gen[i]
    in_think, n_think, n_sampled, i, forced_at = thinking, 0, 0, 0, []
    must_force = thinking and budget == 0
    while i < len(gen):
        if must_force:
            check(gen[i:i + len(ref.forced)] == ref.forced, f"{tag}: forced ids at {i}")
            forced_at += list(range(i, i + len(ref.forced)))
            i += len(ref.forced)
            must_force, in_think = False, False
            continue
        row = rows[i].copy()
        row[ref.vocab.size:] = -np.inf
        if r != 1.0:
            for t in set((prompt + gen[:i])[-64:]):
                row[t] = row[t] / r if row[t] > 0 else row[t] * r
        best = int(np.argmax(row))
        tol = 5e-4 * np.abs(row[np.isfinite(row)]).max()
        if gen[i] != best:
            stats["near"] += 1
            check(row[gen[i]] >= row[best] - tol,
                  f"{tag}: id {i} is {gen[i]} (logit {row[gen[i]]:.5f}), the reference picks "
                  f"{best} ({row[best]:.5f})")
        stats["tokens"] += 1
        n_sampled += 1
        if gen[i] in ref.eos:
            check(i == len(gen) - 1 and got["stopped_at_eos"], f"{tag}: eos at {i} did not stop")
            stats["eos"] += 1
            break
        if in_think:
            n_think += 1
            if gen[i] == ref.think_close:
                in_think = False
            elif budget >= 0 and n_think == budget:
                must_force = True
        i += 1
    check(got["forced_positions"] == forced_at,
          f"{tag}: forced at {got['forced_positions']}, the rule forces at {forced_at}")
    if not got["stopped_at_eos"]:
        check(n_sampled == opts["max_tokens"], f"{tag}: stopped after {n_sampled} sampled ids")
    text = ref.vocab.decode([t for t in gen if t not in ref.eos])
    check(got["text"] == text, f"{tag}: text {got['text']!r} != {text!r}")
    if thinking:
        th, sep, ans = text.partition("</think>")
        want_th, want_ans = th.strip("\n"), ans.lstrip("\n") if sep else ""
    else:
        want_th, want_ans = "", text.lstrip("\n")
    check(got["thinking"] == want_th, f"{tag}: thinking {got['thinking']!r} != {want_th!r}")
    check(got["answer"] == want_ans, f"{tag}: answer {got['answer']!r} != {want_ans!r}")
    return got["answer"]


CONVERSATIONS = [
    {"name": "think3", "system": "You are a helpful assistant.",
     "users": ["Hello, who are you?", "Tell me about rivers.", "Thanks!"],
     "thinking": True, "budget": 4, "max_tokens": 14, "penalty": 1.1},
    {"name": "nothink", "system": None, "users": ["Write a poem about tea", "Shorter please"],
     "thinking": False, "budget": 100, "max_tokens": 20, "penalty": 1.3},
    {"name": "nobudget", "system": "Answer in French.", "users": ["Bonjour", "Comment ça va ?"],
     "thinking": True, "budget": -1, "max_tokens": 10, "penalty": 1.0},
    {"name": "budget0", "system": "  Be brief.  ", "users": ["Why is the sky blue?", "And at night?"],
     "thinking": True, "budget": 0, "max_tokens": 8, "penalty": 1.1},
]


def run_conversation(ref, model_dir, conv, stats):
    args = [Q35, "chat", "-m", model_dir, "--jsonl", "-q", "--temp", "0",
            "-n", str(conv["max_tokens"]), "--repeat-penalty", str(conv["penalty"]),
            "--think-budget", str(conv["budget"])]
    if not conv["thinking"]:
        args.append("--no-think")
    if conv["system"] is not None:
        args += ["-s", conv["system"]]
    stdin = "".join(json.dumps(u, ensure_ascii=False) + "\n" for u in conv["users"])
    p = subprocess.run(args, input=stdin.encode(), capture_output=True, timeout=600)
    if not check(p.returncode == 0, f"{conv['name']}: q35 chat failed: {p.stderr[-400:]!r}"):
        return
    replies = [json.loads(line) for line in p.stdout.decode().splitlines()]
    check(len(replies) == len(conv["users"]), f"{conv['name']}: {len(replies)} replies")
    messages = [{"role": "system", "content": conv["system"]}] if conv["system"] is not None else []
    for t, (user, got) in enumerate(zip(conv["users"], replies)):
        messages.append({"role": "user", "content": user})
        text = chat_reference.render(TEMPLATE, messages, None, True, conv["thinking"])
        prompt = tokenize(model_dir, text)
        tag = f"{os.path.basename(model_dir)} {conv['name']} turn {t}"
        answer = check_turn(ref, tag, prompt, got, conv, stats)
        if t:
            check(got["reused_tokens"] > 0, f"{tag}: the cache was not used")
        messages.append({"role": "assistant", "content": answer})


TEMPLATE = chat_reference.load_template(GOLDEN)

with tempfile.TemporaryDirectory() as tmp:
    model_b = os.path.join(tmp, "tiny-chat-b")
    make_tiny_chat_b(model_b)
    for model_dir in (TINY_CHAT, model_b):
        ref = Reference(model_dir)
        stats = {"tokens": 0, "near": 0, "eos": 0}
        for conv in CONVERSATIONS:
            run_conversation(ref, model_dir, conv, stats)
        print(f"{os.path.basename(model_dir)}: {stats['tokens']} sampled ids checked, "
              f"{stats['near']} within float32 distance of a tie, {stats['eos']} eos stops")
        check(stats["near"] * 50 <= stats["tokens"], "too many ids only near the reference's")
        if model_dir == model_b:
            check(stats["eos"] > 0, "no reply ended at eos: the eos path went untested")

if failures:
    sys.exit(f"{len(failures)} check(s) failed")
print("ok")
