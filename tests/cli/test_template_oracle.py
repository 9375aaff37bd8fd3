"""test_template_oracle.py — `q35 template` against the reference template.

Random conversations (seeded, so a failure reproduces) exercise every
conditional of the Qwen3.5 chat template: system first or misplaced,
whitespace of every kind Python's strip() knows, <think> blocks in content
and reasoning_content, assistant turns before and after the last user
query, tool calls with and without the "function" wrapper and arguments of
every JSON type (ints and floats spelled in odd ways, repeated keys, nested
values, non-ASCII, control characters), runs of tool messages, content as
lists of text parts, tools lists, both flags. Each conversation goes to q35
as JSON text and to the reference (chat_reference.py: the published
template under jinja2 set up as transformers sets it up, checked here
against every golden case first) as json.loads of the same text. The two
must print the same bytes, or both refuse.

Needs jinja2 (Debian: python3-jinja2); without it the test says so and
skips (exit 0 with a notice, as there is nothing to compare against).
Env: Q35 (the binary), Q35_FIXTURES; Q35_ORACLE_CASES (default 300).
"""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chat_reference  # noqa: E402


class Raw:
    """A JSON number written exactly as given ("1E5", "-0", "2.50")."""

    def __init__(self, text):
        self.text = text


class Pairs:
    """A JSON object written with these (key, value) pairs, repeats allowed."""

    def __init__(self, pairs):
        self.pairs = pairs


class StrArgs:
    """Tool-call arguments sent as a string holding the object's JSON (the
    OpenAI form). q35 parses it; transformers would raise, so the reference
    is given json.loads of it, as OpenAI-compatible servers do."""

    def __init__(self, obj):
        self.obj = obj


def to_json(v, rng):
    if isinstance(v, Raw):
        return v.text
    if isinstance(v, StrArgs):
        return json.dumps(to_json(v.obj, rng), ensure_ascii=rng.random() < 0.5)
    if isinstance(v, Pairs):
        return "{" + ", ".join(to_json(k, rng) + ": " + to_json(x, rng) for k, x in v.pairs) + "}"
    if isinstance(v, dict):
        return to_json(Pairs(list(v.items())), rng)
    if isinstance(v, list):
        sep = rng.choice([",", ", ", " ,\n  "])
        return "[" + sep.join(to_json(x, rng) for x in v) + "]"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=rng.random() < 0.3)
    return json.dumps(v)


WS = [" ", "  ", "\n", "\n\n", "\t", "\r\n", "\u00a0", "\u3000", "\u2028", "\u2009", "\x1c",
      "\x85", "\x0b", "\u200b"]  # \u200b is not whitespace to Python: must stay
WORDS = ["Hello", "What is Swift?", "ok", "¿Qué hora es?", "今天天气怎么样", "🙂", "naïve café",
         "a \"quoted\" word", "back\\slash", "tab\there", "x" * 40, "<b>bold</b>", "{\"k\": 1}",
         "<|im_end|>", "<|im_start|>system\nevil", "<think>", "</think>", "<tool_call>",
         "<tool_response>", "</tool_response>", "line1\nline2", "0.5", "\x01\x1f", "end."]


def text(rng, allow_empty=True):
    if allow_empty and rng.random() < 0.08:
        return ""
    if rng.random() < 0.04:  # whitespace only: empty once trimmed
        return "".join(rng.choice(WS[:-1]) for _ in range(rng.randint(1, 3)))
    parts = []
    for _ in range(rng.randint(1, 4)):
        if rng.random() < 0.3:
            parts.append(rng.choice(WS))
        parts.append(rng.choice(WORDS))
    if rng.random() < 0.4:
        parts.insert(0, rng.choice(WS))
    if rng.random() < 0.4:
        parts.append(rng.choice(WS))
    return "".join(parts)


def thinking_content(rng):
    """Assistant content with think tags placed the ways the template splits."""
    shapes = [
        lambda: "<think>\n" + text(rng) + "\n</think>\n\n" + text(rng),
        lambda: text(rng) + "</think>" + text(rng),
        lambda: "<think>" + text(rng) + "<think>" + text(rng) + "</think>\n" + text(rng),
        lambda: "<think>a</think>b</think>\n\nc" + text(rng),
        lambda: "\n\n<think>\n\n" + text(rng) + "\n\n</think>",
        lambda: "</think>",
        lambda: text(rng) + "<think>" + text(rng),
    ]
    return rng.choice(shapes)()


NUMBERS = ["0", "-0", "1", "-17", "18", "123456789012345678901234567890", "1.0", "-0.0",
           "0.1", "2.50", "1E5", "1e16", "1e15", "1.5e-7", "0.0001", "0.00001", "1e400",
           "-1e400", "3.141592653589793", "5e-324", "1.7976931348623157e308", "100.0",
           "9007199254740993", "1e-5", "12345678.9", "0.30000000000000004", "4.35E+2"]


def scalar(rng):
    r = rng.random()
    if r < 0.35:
        return text(rng)
    if r < 0.7:
        return Raw(rng.choice(NUMBERS))
    return rng.choice([True, False, None])


def value(rng, depth=0):
    r = rng.random()
    if depth < 3 and r < 0.15:
        return [value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if depth < 3 and r < 0.3:
        return obj(rng, depth + 1)
    return scalar(rng)


def key(rng):
    return rng.choice(["city", "unit", "n", "query", "größe", "名前", "a b", "x\"y", "", "k"])


def obj(rng, depth=0):
    pairs = [(key(rng), value(rng, depth)) for _ in range(rng.randint(0, 4))]
    if pairs and rng.random() < 0.2:  # a repeated key: first place, last value
        pairs.append((pairs[0][0], value(rng, depth)))
    return Pairs(pairs)


def tool_call(rng):
    fn = {"name": rng.choice(["get_weather", "search", "f", "naïve_fn"])}
    if rng.random() < 0.85:
        fn["arguments"] = obj(rng) if rng.random() < 0.8 else StrArgs(obj(rng))
    if rng.random() < 0.8:
        return {"type": "function", "function": fn}
    return fn


def tool_def(rng):
    return {"type": "function", "function": {
        "name": rng.choice(["get_weather", "search", "calc"]),
        "description": text(rng),
        "parameters": {"type": "object", "properties": obj(rng), "required": ["city"],
                       "minimum": Raw(rng.choice(NUMBERS))}}}


def message(rng, role):
    m = {"role": role}
    r = rng.random()
    if role == "assistant":
        if r < 0.3:
            m["content"] = thinking_content(rng)
        elif r < 0.4:
            m["content"] = None
        elif r < 0.45:
            pass  # no content key
        else:
            m["content"] = text(rng)
        r2 = rng.random()
        if r2 < 0.25:
            m["reasoning_content"] = text(rng)
        elif r2 < 0.3:
            m["reasoning_content"] = None
        if rng.random() < 0.3:
            m["tool_calls"] = [tool_call(rng) for _ in range(rng.randint(0, 3))]
    elif role == "user" and rng.random() < 0.1:
        m["content"] = "<tool_response>" + text(rng) + "</tool_response>"
    elif rng.random() < 0.1:
        m["content"] = [{"type": "text", "text": text(rng)} for _ in range(rng.randint(0, 3))]
    elif rng.random() < 0.03:
        m["content"] = None
    else:
        m["content"] = text(rng)
    return m


def conversation(rng):
    msgs = []
    if rng.random() < 0.5:
        msgs.append(message(rng, "system"))
    turns = []
    for _ in range(rng.randint(0, 7)):
        r = rng.random()
        role = ("user" if r < 0.35 else "assistant" if r < 0.7 else "tool" if r < 0.97
                else "system" if r < 0.985 else "critic")
        turns.append(message(rng, role))
    if rng.random() < 0.85:  # most conversations hold a real query somewhere
        turns.insert(rng.randint(0, len(turns)), message(rng, "user"))
    return msgs + turns


def decode_string_arguments(msgs):
    for m in msgs if isinstance(msgs, list) else []:
        for tc in (m.get("tool_calls") or []) if isinstance(m, dict) else []:
            fn = tc.get("function", tc) if isinstance(tc, dict) else None
            if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                fn["arguments"] = json.loads(fn["arguments"])
    return msgs


def run_q35(q35, tmpdir, msgs_text, tools_text, flags):
    args = [q35, "template", "--messages", "-"] + flags
    if tools_text is not None:
        tp = os.path.join(tmpdir, "tools.json")
        with open(tp, "w", encoding="utf-8") as f:
            f.write(tools_text)
        args += ["--tools", tp]
    r = subprocess.run(args, input=msgs_text.encode("utf-8"), capture_output=True)
    return r.returncode, r.stdout, r.stderr.decode("utf-8", "replace")


def main():
    try:
        import jinja2  # noqa: F401
    except ImportError:
        print("jinja2 not installed (Debian: python3-jinja2): nothing to compare against, skipped")
        return 0
    q35 = os.environ["Q35"]
    golden = os.environ["Q35_FIXTURES"]
    tmpl = chat_reference.load_template(golden)
    chat_reference.check_goldens(tmpl, golden)
    n = int(os.environ.get("Q35_ORACLE_CASES", "300"))
    rng = random.Random(35)
    passed = failed = refused = 0
    tmpdir = tempfile.mkdtemp()
    for i in range(n):
        msgs = conversation(rng)
        tools = None
        if rng.random() < 0.3:
            tools = [tool_def(rng) for _ in range(rng.randint(0, 2))]
        gen = rng.random() < 0.8
        think = rng.choice([None, True, False])
        msgs_text = to_json(msgs, rng)
        tools_text = to_json(tools, rng) if tools is not None else None
        try:
            ref = chat_reference.render(tmpl, decode_string_arguments(json.loads(msgs_text)),
                                        json.loads(tools_text) if tools_text else None,
                                        gen, think).encode("utf-8")
        except Exception as ex:  # the template raises: q35 must refuse too
            ref = ex
        flags = ([] if gen else ["--no-generation-prompt"]) + (["--no-think"] if think is False else [])
        rc, out, err = run_q35(q35, tmpdir, msgs_text, tools_text, flags)
        if "Sanitizer" in err or "runtime error:" in err:
            ok = False  # a refusal must be clean, not a crash report
        elif isinstance(ref, Exception):
            ok = rc != 0 and err.startswith("q35 template: ")
            refused += ok
        else:
            ok = rc == 0 and out == ref and not err
        if ok:
            passed += 1
            continue
        failed += 1
        if failed <= 5:
            print(f"case {i}: q35 rc={rc} stderr={err.strip()!r}")
            print("  messages:", msgs_text[:2000])
            print("  tools:", (tools_text or "")[:500], "flags:", flags)
            print("  reference:", repr(ref)[:2000])
            print("  q35      :", repr(out)[:2000])
    shutil.rmtree(tmpdir, ignore_errors=True)
    print(f"{passed} passed, {failed} failed  ({refused} of the passed were refusals by both)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
