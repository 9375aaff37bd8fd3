"""test_convert.py — `q35 convert SRC DST --type ...` from the command line.

Files are read back by a GGUF reader written here from the format's
description (independent of q35's parser):
  - tiny-chat (the real 151k Qwen3.5 tokenizer) converted to q8 and bf16:
    `q35 tokenize` (added tokens matched and as text) and `q35 template`
    (text and --ids) give the same output from the GGUF as from the
    checkpoint directory; `q35 info` reports a Q8_0 GGUF; the summary names
    the tensors by type;
  - tiny-a/b converted: the metadata equals llama.cpp's golden files key by
    key (value types included) but for the naming keys and q35's own
    (q35.convert.version = 1, q35.convert.source, general.alignment = 32);
    the tokenizer keys of tiny-chat's have llama.cpp's types; `q35 eval`
    logits of the bf16 file equal the checkpoint's byte for byte, those of
    the q8 file the golden Q8_0 file's; q4 with --output-type q8 gives
    llama-quantize's Q4_0 tensors exactly; an MLX 4-bit checkpoint converted
    to f32 gives its logits to float32 rounding;
  - a GGUF converted to GGUF keeps every tensor and metadata value;
  - errors (DST in a missing directory, under a file, a directory, not
    writable; bad or missing --type; SRC missing): exit status, a message
    naming the problem, and no file left behind (an existing DST untouched).
Env: Q35 (binary), Q35_FIXTURES.
"""
import array
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

Q35 = os.environ["Q35"]
GOLDEN = os.environ["Q35_FIXTURES"]
MODELS = os.path.join(GOLDEN, "models")
GG = os.path.join(GOLDEN, "gguf")

failures = 0


def check(name, cond, detail=""):
    global failures
    if cond:
        print(f"ok - {name}")
    else:
        failures += 1
        print(f"FAIL - {name} {detail}")


def run(*args, stdin=None):
    p = subprocess.run([Q35, *args], input=stdin, capture_output=True)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


# ------------------------------------------------------------- GGUF reader

SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
          10: "<Q", 11: "<q", 12: "<d"}
BLOCK = {0: (1, 4), 1: (1, 2), 30: (1, 2), 8: (32, 34), 2: (32, 18), 14: (256, 210),
         12: (256, 144)}


class Reader:
    def __init__(self, data):
        self.d, self.p = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.p)
        self.p += struct.calcsize(fmt)
        return v[0]

    def string(self):
        n = self.take("<Q")
        s = self.d[self.p:self.p + n]
        self.p += n
        return s

    def value(self, t):
        if t == 8:
            return self.string()
        if t == 9:
            at, n = self.take("<I"), self.take("<Q")
            return (at, [self.value(at) for _ in range(n)])
        return self.take(SCALAR[t])


def read_gguf(path):
    data = open(path, "rb").read()
    r = Reader(data)
    assert data[:4] == b"GGUF", path
    r.p = 4
    assert r.take("<I") == 3
    nt, nkv = r.take("<Q"), r.take("<Q")
    kv = {}
    for _ in range(nkv):
        k = r.string().decode()
        t = r.take("<I")
        kv[k] = (t, r.value(t))
    infos = []
    for _ in range(nt):
        name = r.string().decode()
        nd = r.take("<I")
        ne = tuple(r.take("<Q") for _ in range(nd))
        infos.append((name, ne, r.take("<I"), r.take("<Q")))
    align = kv.get("general.alignment", (4, 32))[1]
    start = (r.p + align - 1) // align * align
    tensors = {}
    for name, ne, t, off in infos:
        n = 1
        for x in ne:
            n *= x
        be, bb = BLOCK[t]
        tensors[name] = (ne, t, data[start + off:start + off + n // be * bb])
    return kv, tensors


# ------------------------------------------------------------------ checks

tmp = tempfile.mkdtemp(prefix="q35-convert-cli-")


def out(name):
    return os.path.join(tmp, name)


def leftovers():
    return [f for f in os.listdir(tmp) if ".tmp." in f]


chat_dir = os.path.join(MODELS, "tiny-chat")
for typ, want in (("q8", 7), ("bf16", 32)):
    dst = out(f"chat-{typ}.gguf")
    rc, so, se = run("convert", chat_dir, dst, "--type", typ)
    check(f"tiny-chat --type {typ}: exit 0", rc == 0, se)
    text = so.decode()
    check(f"tiny-chat --type {typ}: summary names the file and the types",
          dst in text and ("q8_0" if typ == "q8" else "bf16") in text and "f32" in text, text)
    kv, _ = read_gguf(dst)
    check(f"tiny-chat --type {typ}: general.file_type {want}",
          kv["general.file_type"] == (4, want), kv.get("general.file_type"))

    texts = ["Hello world", "<|im_start|>user\nhi<|im_end|>", "<think>\nx\n</think>",
             "caf\u00e9 \u0928\u092e\u0938\u094d\u0924\u0947 \U0001F600  \t\n12345",
             "def f(x):\n    return x**2  # sq"]
    same = True
    for t in texts:
        for extra in ([], ["--no-special"]):
            a = run("tokenize", "-m", chat_dir, "--text", t, *extra)
            b = run("tokenize", "-m", dst, "--text", t, *extra)
            if a[0] != 0 or a[:2] != b[:2]:
                same = False
                print(f"  tokenize {t!r} {extra}: {a[1]!r} vs {b[1]!r} {b[2]}")
    check(f"tiny-chat --type {typ}: q35 tokenize agrees with the checkpoint", same)

cases = json.load(open(os.path.join(GOLDEN, "tokenizer", "chat_cases.json"),
                       encoding="utf-8"))["cases"]
dst = out("chat-q8.gguf")
same = True
for c in cases[:6]:
    mf = out("messages.json")
    json.dump(c["messages"], open(mf, "w", encoding="utf-8"))
    for extra in ([], ["--ids"]):
        a = run("template", "-m", chat_dir, "--messages", mf, *extra)
        b = run("template", "-m", dst, "--messages", mf, *extra)
        if a[0] != 0 or a[:2] != b[:2] or "warning" in b[2]:
            same = False
            print(f"  template {c['name']} {extra}: {a[1][:80]!r} vs {b[1][:80]!r} {b[2]}")
check("tiny-chat: q35 template (text and ids) agrees with the checkpoint, no warning", same)

rc, so, se = run("info", "-m", dst, "--json")
info = json.loads(so) if rc == 0 else {}
check("q35 info: a Q8_0 GGUF", info.get("format") == "gguf" and info.get("quantization") == "Q8_0",
      info)

# tokenizer keys and types as llama.cpp writes them
gold_kv, _ = read_gguf(os.path.join(GG, "tiny-a-bf16.gguf"))
chat_kv, _ = read_gguf(dst)
bad = [k for k in gold_kv if k.startswith("tokenizer.") and k != "tokenizer.ggml.bos_token_id"
       and (k not in chat_kv or chat_kv[k][0] != gold_kv[k][0]
            or (gold_kv[k][0] == 9 and chat_kv[k][1][0] != gold_kv[k][1][0]))]
check("tiny-chat: tokenizer keys and types are llama.cpp's", not bad, bad)
check("tiny-chat: the chat template travels",
      chat_kv.get("tokenizer.chat_template", (0, b""))[1]
      == open(os.path.join(chat_dir, "chat_template.jinja"), "rb").read())

# metadata key by key against llama.cpp's files
NAMING = {"general.name", "general.size_label"}
OWN = {"general.alignment": (4, 32), "q35.convert.version": (4, 1)}
for model in ("tiny-a", "tiny-b"):
    src = os.path.join(MODELS, model)
    for typ, golden in (("bf16", "bf16"), ("q8", "Q8_0")):
        dst = out(f"{model}-{typ}.gguf")
        rc, so, se = run("convert", src, dst, "--type", typ, "-q")
        check(f"{model} --type {typ}: exit 0, quiet", rc == 0 and so == b"", se)
        kv, tensors = read_gguf(dst)
        gkv, gtensors = read_gguf(os.path.join(GG, f"{model}-{golden}.gguf"))
        diff = [k for k in gkv if not k.startswith("tokenizer.") and k not in NAMING
                and kv.get(k) != gkv[k]]
        extra = [k for k in kv if k not in gkv and k not in NAMING and k not in OWN
                 and k != "q35.convert.source" and not k.startswith("tokenizer.")]
        check(f"{model} --type {typ}: metadata equals llama.cpp's key by key", not diff and not extra,
              f"differ {diff} extra {extra}")
        check(f"{model} --type {typ}: q35.convert.* and general.alignment",
              all(kv.get(k) == v for k, v in OWN.items())
              and kv.get("q35.convert.source") == (8, src.encode()), kv.get("q35.convert.source"))
        check(f"{model} --type {typ}: same tensor names, shapes and types as llama.cpp's",
              {n: t[:2] for n, t in tensors.items()} == {n: t[:2] for n, t in gtensors.items()})

ids = "1,2,3,4,5,100,200,300,7,9"
for model in ("tiny-a", "tiny-b"):
    a = run("eval", "-m", os.path.join(MODELS, model), "--ids", ids, "--logits-out", out("s.f32"))
    b = run("eval", "-m", out(f"{model}-bf16.gguf"), "--ids", ids, "--logits-out", out("c.f32"))
    check(f"{model}: q35 eval of the bf16 GGUF equals the checkpoint's byte for byte",
          a[0] == 0 and b[0] == 0
          and open(out("s.f32"), "rb").read() == open(out("c.f32"), "rb").read(), a[2] + b[2])
a = run("eval", "-m", os.path.join(GG, "tiny-a-Q8_0.gguf"), "--ids", ids, "--logits-out", out("g.f32"))
b = run("eval", "-m", out("tiny-a-q8.gguf"), "--ids", ids, "--logits-out", out("c.f32"))
check("tiny-a: q35 eval of the q8 GGUF equals llama-quantize's Q8_0 file's",
      a[0] == 0 and b[0] == 0
      and open(out("g.f32"), "rb").read() == open(out("c.f32"), "rb").read(), a[2] + b[2])

rc, so, se = run("convert", os.path.join(MODELS, "tiny-a"), out("a-q4.gguf"), "--type", "q4",
                 "--output-type", "q8", "-q")
_, t = read_gguf(out("a-q4.gguf"))
_, g = read_gguf(os.path.join(GG, "tiny-a-Q4_0.gguf"))
check("tiny-a --type q4 --output-type q8: llama-quantize's Q4_0 file, tensor for tensor",
      rc == 0 and t == g, se)

# MLX affine 4-bit checkpoint (decoded to float32 at load)
mlx, deq = out("mlx"), out("mlx-deq")
p = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "..", "tools",
                                                 "make_mlx.py"),
                    os.path.join(MODELS, "tiny-b"), mlx, deq, "--bits", "4", "--group", "32"],
                   capture_output=True)
if p.returncode == 0:
    rc, so, se = run("convert", mlx, out("mlx.gguf"), "--type", "f32", "-q")
    # both on the exact float path (MLX weights otherwise take the integer one)
    os.environ["Q35_EXACT"] = "1"
    a = run("eval", "-m", mlx, "--ids", ids, "--logits-out", out("s.f32"))
    b = run("eval", "-m", out("mlx.gguf"), "--ids", ids, "--logits-out", out("c.f32"))
    del os.environ["Q35_EXACT"]
    # its bf16-stored matrices become f32 here: float32 rounding apart
    x, y = array.array("f"), array.array("f")
    if a[0] == 0 and b[0] == 0:
        x.frombytes(open(out("s.f32"), "rb").read())
        y.frombytes(open(out("c.f32"), "rb").read())
    rel = (max(abs(u - v) for u, v in zip(x, y)) / max(abs(u) for u in x)
           if x and len(x) == len(y) else 1)
    check(f"MLX 4-bit tiny-b --type f32: q35 eval agrees with the MLX checkpoint (rel {rel:.2g})",
          rc == 0 and rel <= 1e-4, se + a[2] + b[2])
else:
    check("make_mlx.py wrote the MLX copy", False, p.stderr.decode())

# GGUF to GGUF
src = os.path.join(GG, "tiny-b-bf16.gguf")
rc, so, se = run("convert", src, out("rt.gguf"), "--type", "bf16", "-q")
kv, t = read_gguf(out("rt.gguf"))
gkv, g = read_gguf(src)
check("GGUF -> GGUF: every tensor the same", rc == 0 and t == g, se)
check("GGUF -> GGUF: every metadata value kept", all(kv.get(k) == v for k, v in gkv.items()),
      [k for k, v in gkv.items() if kv.get(k) != v])

# ------------------------------------------------------------------ errors

src = os.path.join(MODELS, "tiny-a")
rc, so, se = run("convert", src, out("x.gguf"), "--type", "q5")
check("bad --type: exit 2 naming it", rc == 2 and "q5" in se, se)
rc, so, se = run("convert", src, out("x.gguf"))
check("no --type: exit 2", rc == 2 and "--type" in se, se)
rc, so, se = run("convert", src)
check("no DST: exit 2", rc == 2, se)
missing = os.path.join(tmp, "no-such-model")
rc, so, se = run("convert", missing, out("x.gguf"), "--type", "q8")
check("SRC missing: exit 1 naming it", rc == 1 and "no-such-model" in se, se)
check("SRC missing: nothing written", not os.path.exists(out("x.gguf")) and not leftovers())
dst = out("keep.gguf")
open(dst, "wb").write(b"keep")
rc, so, se = run("convert", missing, dst, "--type", "q8")
check("failed conversion leaves an existing DST untouched",
      rc == 1 and open(dst, "rb").read() == b"keep" and not leftovers(), se)
for bad_dst, what in ((os.path.join(tmp, "no", "dir", "x.gguf"), "does not exist"),
                      (os.path.join(dst, "x.gguf"), "does not exist"),
                      (tmp, "directory")):
    rc, so, se = run("convert", src, bad_dst, "--type", "q8")
    check(f"unwritable DST {bad_dst}: exit 1, message", rc == 1 and what in se and bad_dst in se, se)
check("unwritable DST: nothing left behind", not leftovers())
if os.geteuid() != 0:
    ro = os.path.join(tmp, "ro")
    os.mkdir(ro, 0o500)
    rc, so, se = run("convert", src, os.path.join(ro, "x.gguf"), "--type", "q8")
    check("read-only directory: exit 1, message", rc == 1 and "cannot write" in se, se)
    check("read-only directory: nothing written", os.listdir(ro) == [])
    os.chmod(ro, 0o700)
else:
    print("ok - read-only directory: skipped (root may write anywhere)")

shutil.rmtree(tmp)
print(f"{failures} failure(s)")
sys.exit(1 if failures else 0)
