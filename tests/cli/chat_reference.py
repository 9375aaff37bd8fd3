"""chat_reference.py — the reference rendering of the Qwen3.5 chat template.

Renders golden/tokenizer/chat_template.qwen35.jinja with jinja2 set up the
way transformers' apply_chat_template sets it up (sandboxed environment,
trim_blocks + lstrip_blocks, loopcontrols, its own tojson filter that calls
json.dumps with ensure_ascii=False, raise_exception). It agrees with every
golden case (checked by check_goldens), so it can judge conversations the
goldens do not hold. Used by test_template_oracle.py and to make
tests/data/chat/jinja_cases.json.
"""
import json
import os


class TemplateError(Exception):
    pass


def load_template(golden_dir):
    import jinja2
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent,
                          separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    path = os.path.join(golden_dir, "tokenizer", "chat_template.qwen35.jinja")
    with open(path, encoding="utf-8") as f:
        return env.from_string(f.read())


def render(template, messages, tools=None, add_generation_prompt=True, enable_thinking=None):
    """The text, or raises TemplateError / another exception where
    transformers would fail."""
    kwargs = {}
    if enable_thinking is not None:
        kwargs["enable_thinking"] = enable_thinking
    return template.render(messages=messages, tools=tools, documents=None,
                           add_generation_prompt=add_generation_prompt, **kwargs)


def check_goldens(template, golden_dir):
    with open(os.path.join(golden_dir, "tokenizer", "chat_cases.json"), encoding="utf-8") as f:
        cases = json.load(f)["cases"]
    for c in cases:
        o = c["options"]
        got = render(template, c["messages"], o.get("tools"), o.get("add_generation_prompt", False),
                     o.get("enable_thinking"))
        if got != c["text"]:
            raise AssertionError("reference renderer disagrees with golden case " + c["name"])
    return len(cases)
