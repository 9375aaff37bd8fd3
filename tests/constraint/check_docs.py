#!/usr/bin/env python3
"""check_docs.py FILE: validates documents sampled under constraints, one
JSON object per line: {"kind": "json"|"schema"|"regex", "schema": ...,
"regex": ..., "doc": "..."}. An independent check: Python's json, the
jsonschema package (Debian python3-jsonschema) with its format checker,
plus explicit checks of the formats it may skip (date-time and time need
optional packages), and re.fullmatch for grammars. Exit 0 when every
document is valid; otherwise prints each failure."""
import datetime
import json
import re
import sys
import uuid

import jsonschema

TIME = re.compile(r"([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|z|[+-]([01]\d|2[0-3]):[0-5]\d)\Z")


def check_formats(schema, value, root, path="$"):
    """Walks value with the schema, checking format: date/time/date-time/uuid."""
    errs = []
    if not isinstance(schema, dict):
        return errs
    if "$ref" in schema:
        ref = schema["$ref"]
        target = root
        for part in ref[2:].split("/") if ref != "#" else []:
            part = part.replace("~1", "/").replace("~0", "~")
            target = target[int(part)] if isinstance(target, list) else target[part]
        return check_formats(target, value, root, path)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            results = [check_formats(s, value, root, path) for s in schema[key]]
            # value is valid under at least one branch (jsonschema checked that); a
            # format error counts only if every valid branch has one
            return [] if any(not r for r in results) else results[0]
    fmt = schema.get("format")
    if fmt and isinstance(value, str):
        try:
            if fmt == "date":
                datetime.date.fromisoformat(value)
                assert re.fullmatch(r"\d{4}-\d\d-\d\d", value)
            elif fmt == "time":
                assert TIME.match(value)
            elif fmt == "date-time":
                d, t = value.split("T")
                datetime.date.fromisoformat(d)
                assert TIME.match(t)
            elif fmt == "uuid":
                uuid.UUID(value)
                assert all(value[i] == "-" for i in (8, 13, 18, 23)) and len(value) == 36
        except Exception as e:  # noqa: BLE001
            errs.append(f"{path}: {value!r} is not a {fmt} ({e!r})")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for k, v in value.items():
            if k in props:
                errs += check_formats(props[k], v, root, f"{path}.{k}")
            elif isinstance(schema.get("additionalProperties"), dict):
                errs += check_formats(schema["additionalProperties"], v, root, f"{path}.{k}")
    if isinstance(value, list):
        prefix = schema.get("prefixItems", [])
        for i, v in enumerate(value):
            s = prefix[i] if i < len(prefix) else schema.get("items")
            errs += check_formats(s, v, root, f"{path}[{i}]")
    return errs


CALL = re.compile(r"<tool_call>\n<function=([^>\n]+)>\n((?:<parameter=[^>\n]+>\n.*?\n</parameter>\n)*)"
                  r"</function>\n</tool_call>", re.S)
PARAM = re.compile(r"<parameter=([^>\n]+)>\n(.*?)\n</parameter>\n", re.S)


def check_tool_calls(doc, tools, name):
    """Parses Qwen3.5 tool calls the way a client would and validates each
    call's arguments against its function's parameters schema."""
    fns = {}
    for t in tools:
        f = t.get("function", t)
        fns[f["name"]] = f.get("parameters") or {"type": "object"}
    pos = 0
    while True:
        m = CALL.match(doc, pos)
        if not m:
            raise ValueError(f"not a tool call at offset {pos}")
        fname = m.group(1)
        if fname not in fns or (name and fname != name):
            raise ValueError(f"unexpected function {fname!r}")
        schema = fns[fname]
        props = schema.get("properties", {})
        args = {}
        for pm in PARAM.finditer(m.group(2)):
            key, raw = pm.group(1), pm.group(2)
            if key in args:
                raise ValueError(f"parameter {key!r} twice")
            ps = props.get(key, {})
            args[key] = raw if ps.get("type") == "string" else json.loads(raw)
        jsonschema.Draft202012Validator(
            schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER).validate(args)
        errs = check_formats(schema, args, schema)
        if errs:
            raise ValueError("; ".join(errs))
        pos = m.end()
        if pos == len(doc):
            return
        if doc[pos] != "\n":
            raise ValueError(f"junk after a call at offset {pos}")
        pos += 1


def main():
    bad = 0
    n = 0
    counts = {}
    with open(sys.argv[1], encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            case = json.loads(line)
            doc = case["doc"]
            n += 1
            counts[case["kind"]] = counts.get(case["kind"], 0) + 1
            try:
                if case["kind"] == "tools":
                    check_tool_calls(doc, case["tools"], case.get("name"))
                    continue
                if case["kind"] == "regex":
                    if not re.fullmatch(case["regex"], doc, re.S):
                        raise ValueError(f"does not match {case['regex']!r}")
                    continue
                value = json.loads(doc)
                if case["kind"] == "json":
                    if not isinstance(value, dict):
                        raise ValueError("not an object")
                    continue
                schema = case["schema"]
                jsonschema.Draft202012Validator(
                    schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER).validate(value)
                errs = check_formats(schema, value, schema)
                if errs:
                    raise ValueError("; ".join(errs))
            except Exception as e:  # noqa: BLE001
                bad += 1
                if bad <= 20:
                    print(f"line {line_no}: INVALID {doc!r}: {e}")
                    if "schema" in case:
                        print(f"  schema: {json.dumps(case['schema'])}")
    print(f"{n} documents checked ({counts}), {bad} invalid")
    sys.exit(1 if bad or n == 0 else 0)


if __name__ == "__main__":
    main()
