"""test_serve.py — q35 serve end to end on the tiny chat model, with a plain
HTTP client (stdlib): every endpoint, the OpenAI shapes (objects, SSE
chunks ending in [DONE], usage with cached_tokens), streamed == whole
answers, the prompt cache across requests (reuse reported, and the same
greedy answers as a server without a cache), each error case with the
OpenAI error shape, the API key, concurrent clients batched into shared
decode steps, a full queue (503 + Retry-After), and clients that hang up
(their generation stops and the slot serves the next request)."""
import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_util import Server, assert_error, run  # noqa: E402

USER = {"role": "user", "content": "Hello there"}
SYSTEM = {"role": "system", "content": "You are a terse assistant. " * 8}

srv = None
TOOLS = [{"type": "function", "function": {
    "name": "set_unit", "description": "Choose the temperature unit",
    "parameters": {"type": "object", "properties": {"unit": {"enum": ["celsius", "fahrenheit"]}},
                   "required": ["unit"], "additionalProperties": False}}}]


def test_health_models():
    st, b = srv.json("GET", "/health")
    assert st == 200 and b["status"] == "ok", b
    st, b = srv.json("GET", "/v1/models")
    assert st == 200 and b["object"] == "list" and b["data"][0]["id"] == "tiny-chat", b
    st, b = srv.json("GET", "/v1/models/tiny-chat")
    assert st == 200 and b["id"] == "tiny-chat"
    st, b = srv.json("GET", "/v1/models/other")
    assert_error(st, b, 404, code="model_not_found")


def test_chat_whole_and_streamed():
    req = {"model": "tiny-chat", "messages": [USER], "max_tokens": 24, "temperature": 0}
    st, b = srv.chat(req)
    assert st == 200, b
    assert b["object"] == "chat.completion" and b["id"].startswith("chatcmpl-")
    ch = b["choices"][0]
    assert ch["message"]["role"] == "assistant"
    assert ch["finish_reason"] in ("stop", "length"), ch
    u = b["usage"]
    assert u["prompt_tokens"] > 0 and 0 < u["completion_tokens"] <= 24 + 4
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]
    assert "cached_tokens" in u["prompt_tokens_details"]
    whole = (ch["message"].get("reasoning_content") or "", ch["message"]["content"] or "")

    events, done = srv.stream("/v1/chat/completions",
                              dict(req, stream=True, stream_options={"include_usage": True}))
    assert done
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    reasoning = content = ""
    finish = None
    for e in events:
        assert e["object"] == "chat.completion.chunk"
        if e["choices"]:
            d = e["choices"][0]["delta"]
            reasoning += d.get("reasoning_content") or ""
            content += d.get("content") or ""
            finish = e["choices"][0]["finish_reason"] or finish
    assert (reasoning, content) == whole, ((reasoning, content), whole)
    assert finish == ch["finish_reason"]
    usage = events[-1]
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] == u["completion_tokens"]
    # without include_usage there is no usage chunk
    events, done = srv.stream("/v1/chat/completions", dict(req, stream=True))
    assert done and all("usage" not in e for e in events)


def test_thinking_off():
    st, b = srv.chat({"messages": [USER], "max_tokens": 8, "temperature": 0,
                      "chat_template_kwargs": {"enable_thinking": False}})
    assert st == 200, b
    assert not b["choices"][0]["message"].get("reasoning_content"), b


def test_completions():
    req = {"prompt": "Once upon a time", "max_tokens": 10, "temperature": 0}
    st, b = srv.json("POST", "/v1/completions", req)
    assert st == 200 and b["object"] == "text_completion", b
    text = b["choices"][0]["text"]
    assert b["choices"][0]["finish_reason"] in ("stop", "length")
    events, done = srv.stream("/v1/completions", dict(req, stream=True))
    assert done
    assert "".join(e["choices"][0]["text"] for e in events if e["choices"]) == text


def test_tokenize_roundtrip():
    st, b = srv.json("POST", "/tokenize", {"content": "Hello, world! <|im_end|>"})
    assert st == 200 and len(b["tokens"]) > 3, b
    st2, b2 = srv.json("POST", "/detokenize", {"tokens": b["tokens"]})
    assert st2 == 200 and b2["content"] == "Hello, world! <|im_end|>", b2
    st, plain = srv.json("POST", "/tokenize",
                         {"content": "<|im_end|>", "parse_special": False})
    st, special = srv.json("POST", "/tokenize", {"content": "<|im_end|>"})
    assert len(special["tokens"]) == 1 and len(plain["tokens"]) > 1
    st, b = srv.json("POST", "/detokenize", {"tokens": [-1]})
    assert_error(st, b, 400, param="tokens")


def test_prompt_cache_and_equal_answers():
    nocache = Server("--cache-mb", "0", "--parallel", "1", "--quiet")
    try:
        history = [SYSTEM]
        answers = []
        prepared = srv.metrics()["q35_prepared_tokens_total"]
        for turn in range(3):
            history.append({"role": "user", "content": f"Question number {turn}"})
            req = {"messages": history, "max_tokens": 12, "temperature": 0}
            st, a = srv.chat(req)
            st2, b = nocache.chat(req)
            assert st == 200 and st2 == 200
            ma, mb = a["choices"][0]["message"], b["choices"][0]["message"]
            assert (ma["content"], ma.get("reasoning_content")) == \
                   (mb["content"], mb.get("reasoning_content")), (ma, mb)
            assert b["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
            cached = a["usage"]["prompt_tokens_details"]["cached_tokens"]
            if turn > 0:
                # the whole previous turn, its answer included (computed in
                # idle time), was restored: only the new message and the
                # generation prompt are computed
                st, t = srv.json("POST", "/tokenize", {"content": (
                    f"<|im_start|>user\nQuestion number {turn}<|im_end|>\n"
                    "<|im_start|>assistant\n<think>\n")})
                new = len(t["tokens"])
                assert cached == a["usage"]["prompt_tokens"] - new, (cached, new, a["usage"])
                assert cached >= prev_prompt - 8, (cached, prev_prompt)
            prev_prompt = a["usage"]["prompt_tokens"]
            answers.append(ma["content"])
            history.append({"role": "assistant", "content": ma["content"]})
            wait_for(lambda: srv.metrics()["q35_prepared_tokens_total"] > prepared,
                     "the next turn to be prepared")
            prepared = srv.metrics()["q35_prepared_tokens_total"]
        # another client with the same system prompt reuses its block
        st, c = srv.chat({"messages": [SYSTEM, {"role": "user", "content": "other"}],
                          "max_tokens": 4})
        assert c["usage"]["prompt_tokens_details"]["cached_tokens"] > 40, c["usage"]
        m = srv.metrics()
        assert m["q35_cache_hits_total"] > 0 and m["q35_cached_tokens_total"] > 0
    finally:
        nocache.stop()


def test_tool_messages_round_trip():
    tools = [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}}]
    msgs = [USER,
            {"role": "assistant", "content": None, "tool_calls": [{
                "id": "call_1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 C"}]
    st, b = srv.chat({"messages": msgs, "tools": tools, "max_tokens": 16})
    assert st == 200, b
    m = b["choices"][0]["message"]
    assert "<tool_call>" not in (m["content"] or "")
    assert b["choices"][0]["finish_reason"] in ("stop", "length", "tool_calls")
    if b["choices"][0]["finish_reason"] == "tool_calls":
        for tc in m["tool_calls"]:
            json.loads(tc["function"]["arguments"])
    st, b = srv.chat({"messages": msgs, "tools": tools, "tool_choice": "none", "max_tokens": 4})
    assert st == 200 and "tool_calls" not in b["choices"][0]["message"]


def test_structured_output():
    # a schema that leaves one document: the answer is exactly it
    schema = {"type": "object", "properties": {"answer": {"enum": ["yes", "no"]}},
              "required": ["answer"], "additionalProperties": False}
    for stream in (False, True):
        req = {"messages": [USER], "max_tokens": 60, "stream": stream,
               "chat_template_kwargs": {"enable_thinking": False},
               "response_format": {"type": "json_schema",
                                   "json_schema": {"name": "yn", "schema": schema}}}
        if stream:
            events, done = srv.stream("/v1/chat/completions", req)
            content = "".join(e["choices"][0]["delta"].get("content") or ""
                              for e in events if e["choices"])
            finish = [e["choices"][0]["finish_reason"] for e in events if e["choices"]][-1]
        else:
            st, b = srv.chat(req)
            assert st == 200, b
            content = b["choices"][0]["message"]["content"]
            finish = b["choices"][0]["finish_reason"]
        if finish == "stop":
            assert json.loads(content)["answer"] in ("yes", "no"), content
        else:  # cut off: still a prefix of the document
            assert content.lstrip().startswith("{"), content
    st, b = srv.chat({"messages": [USER], "max_tokens": 40, "response_format": {"type": "json_object"},
                      "chat_template_kwargs": {"enable_thinking": False}})
    assert st == 200, b
    c = b["choices"][0]
    if c["finish_reason"] == "stop":
        assert isinstance(json.loads(c["message"]["content"]), dict), c
    else:
        assert c["message"]["content"].lstrip().startswith("{"), c


def test_forced_tool_call():
    for choice in ("required", {"type": "function", "function": {"name": "set_unit"}}):
        for stream in (False, True):  # the whole answer first (it tells support)
            req = {"messages": [USER], "tools": TOOLS, "tool_choice": choice, "max_tokens": 120,
                   "stream": stream, "parallel_tool_calls": False,
                   "chat_template_kwargs": {"enable_thinking": False}}
            if stream:
                events, done = srv.stream("/v1/chat/completions", req)
                calls, content, finish = {}, "", None
                for e in events:
                    if not e["choices"]:
                        continue
                    d = e["choices"][0]["delta"]
                    content += d.get("content") or ""
                    for tc in d.get("tool_calls") or []:
                        c = calls.setdefault(tc["index"], {"name": "", "arguments": ""})
                        c["name"] += tc.get("function", {}).get("name") or ""
                        c["arguments"] += tc.get("function", {}).get("arguments") or ""
                    finish = e["choices"][0]["finish_reason"] or finish
                calls = [calls[i] for i in sorted(calls)]
            else:
                st, b = srv.chat(req)
                if st == 400 and "not yet supported" in b["error"]["message"]:
                    # the constraint layer has no tool-call grammar in this build:
                    # refused clearly, never ignored
                    assert_error(st, b, 400, param="tool_choice")
                    return
                assert st == 200, b
                m = b["choices"][0]["message"]
                content, finish = m["content"] or "", b["choices"][0]["finish_reason"]
                calls = [tc["function"] for tc in m.get("tool_calls") or []]
            assert finish == "tool_calls", (finish, content, calls)
            assert len(calls) == 1, calls  # parallel_tool_calls false
            assert calls[0]["name"] == "set_unit"
            assert json.loads(calls[0]["arguments"]) in ({"unit": "celsius"}, {"unit": "fahrenheit"})
            assert "<tool_call>" not in content and "<function" not in content


def test_errors():
    st, _, out = srv.request("POST", "/v1/chat/completions", b"{not json")
    assert_error(st, json.loads(out), 400)
    st, _, out = srv.request("POST", "/v1/chat/completions", b"")
    assert_error(st, json.loads(out), 400)
    st, b = srv.chat({"messages": [USER], "n": 2})
    assert_error(st, b, 400, param="n")
    st, b = srv.chat({"messages": [USER], "logprobs": True})
    assert_error(st, b, 400, param="logprobs")
    st, b = srv.chat({"messages": [USER], "temperature": "warm"})
    assert_error(st, b, 400, param="temperature")
    st, b = srv.chat({"messages": [USER], "top_p": 3})
    assert_error(st, b, 400, param="top_p")
    st, b = srv.chat({"messages": "hi"})
    assert_error(st, b, 400, param="messages")
    st, b = srv.chat({"messages": [{"role": "wizard", "content": "x"}]})
    assert_error(st, b, 400, param="messages")
    st, b = srv.chat({"model": "gpt-9", "messages": [USER]})
    assert_error(st, b, 404, param="model", code="model_not_found")
    st, b = srv.chat({"messages": [USER], "response_format": {"type": "json_schema", "json_schema": {
        "name": "x", "schema": {"type": "object", "not": {"required": ["a"]}}}}})
    assert_error(st, b, 400, param="response_format")  # an unsupported keyword, named
    assert "not" in b["error"]["message"], b
    st, b = srv.chat({"messages": [USER], "tool_choice": "required"})
    assert_error(st, b, 400, param="tool_choice")  # no tools to call
    st, b = srv.chat({"messages": [USER], "tools": TOOLS,
                      "tool_choice": {"type": "function", "function": {"name": "nope"}}})
    assert_error(st, b, 400, param="tool_choice")
    st, b = srv.chat({"messages": [USER], "max_tokens": 10 ** 9})
    assert_error(st, b, 400, param="max_tokens")
    st, b = srv.chat({"messages": [USER], "max_tokens": 2040})  # prompt + 2040 > ctx 2048
    assert_error(st, b, 400, param="max_tokens", code="context_length_exceeded")
    st, b = srv.chat({"messages": [{"role": "user", "content": "word " * 2100}]})
    assert_error(st, b, 400, code="context_length_exceeded")
    st, _, out = srv.request("POST", "/v1/chat/completions", b"x" * 70000)
    assert_error(st, json.loads(out), 413)
    st, b = srv.json("GET", "/v1/chat/completions")
    assert_error(st, b, 405)
    st, b = srv.json("GET", "/v2/nothing")
    assert_error(st, b, 404)
    # still serving
    st, b = srv.chat({"messages": [USER], "max_tokens": 2})
    assert st == 200


def test_api_key():
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"q35-key-{os.getpid()}")
    with open(path, "w") as f:
        f.write("s3cret-key\n")
    keyed = Server("--api-key-file", path, "--quiet")
    try:
        st, b = keyed.chat({"messages": [USER], "max_tokens": 2})
        assert_error(st, b, 401)
        st, b = keyed.chat({"messages": [USER], "max_tokens": 2},
                           {"Authorization": "Bearer s3cret-kez"})
        assert_error(st, b, 401)
        st, b = keyed.json("GET", "/v1/models", None, {"Authorization": "Bearer s3cret"})
        assert_error(st, b, 401)
        st, b = keyed.chat({"messages": [USER], "max_tokens": 2},
                           {"Authorization": "Bearer s3cret-key"})
        assert st == 200, b
        st, b = keyed.json("GET", "/health")
        assert st == 200
    finally:
        keyed.stop()
        os.unlink(path)


def test_concurrent_clients_batched():
    results = [None] * 6

    def client(i):
        try:
            events, done = srv.stream("/v1/chat/completions", {
                "messages": [{"role": "user", "content": f"client {i}"}],
                "max_tokens": 40, "stream": True, "seed": i})
            results[i] = done and len(events) > 2
        except Exception as ex:  # the assertion below reports it
            results[i] = repr(ex)

    before = srv.metrics()
    th = [threading.Thread(target=client, args=(i,)) for i in range(6)]
    for t in th:
        t.start()
    for t in th:
        t.join(120)
    assert results == [True] * 6, results
    m = srv.metrics()
    steps = m["q35_decode_batch_mean"]
    assert steps > 1.0, m  # some decode steps served several streams at once
    assert m["q35_jobs_completed_total"] - before["q35_jobs_completed_total"] >= 6


def raw_request(port, body):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    data = json.dumps(body).encode()
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
              b"Content-Type: application/json\r\nContent-Length: " +
              str(len(data)).encode() + b"\r\n\r\n" + data)
    return s


def wait_for(pred, what, limit=20):
    deadline = time.time() + limit
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def test_disconnect_cancels():
    long_req = {"messages": [USER], "max_tokens": 2000, "stream": True}
    before = srv.metrics()
    s = raw_request(srv.port, long_req)
    got = b""
    for _ in range(50):  # headers, then the first chunks
        got += s.recv(4096)
        if b"data:" in got:
            break
    assert b"data:" in got, got
    s.close()
    wait_for(lambda: srv.metrics()["q35_jobs_cancelled_total"] > before["q35_jobs_cancelled_total"],
             "the streamed job to be cancelled")
    wait_for(lambda: srv.metrics()["q35_slots_busy"] == 0, "the slot to be free")
    m = srv.metrics()
    assert m["q35_generated_tokens_total"] - before["q35_generated_tokens_total"] < 1500
    # a whole (non-streamed) request whose client leaves
    s = raw_request(srv.port, dict(long_req, stream=False))
    wait_for(lambda: srv.metrics()["q35_slots_busy"] > 0, "the job to start")
    s.close()
    wait_for(lambda: srv.metrics()["q35_jobs_cancelled_total"] >= m["q35_jobs_cancelled_total"] + 1,
             "the whole job to be cancelled")
    st, b = srv.chat({"messages": [USER], "max_tokens": 2})
    assert st == 200


def test_queue_full_503():
    small = Server("--parallel", "1", "--queue", "1", "--quiet", "-c", "32768",
                   "--max-tokens", "32000")
    try:  # replies long enough to still run when the third request comes
        socks = [raw_request(small.port, {"messages": [USER], "max_tokens": 32000,
                                          "stream": True}) for _ in range(2)]
        wait_for(lambda: small.metrics()["q35_queue_length"] == 1, "one queued request")
        st, h, out = small.request("POST", "/v1/chat/completions",
                                   {"messages": [USER], "max_tokens": 2})
        assert_error(st, json.loads(out), 503)
        assert h.get("Retry-After") == "1", h
        for s in socks:
            s.close()
        wait_for(lambda: small.metrics()["q35_slots_busy"] == 0 and
                 small.metrics()["q35_queue_length"] == 0, "the slot and queue to empty")
        st, b = small.chat({"messages": [USER], "max_tokens": 2})
        assert st == 200, b
    finally:
        small.stop()


if __name__ == "__main__":
    srv = Server("--parallel", "4", "--queue", "8", "-c", "2048", "--max-body", "65536",
                 "--quiet")
    try:
        rc = run([test_health_models, test_chat_whole_and_streamed, test_thinking_off,
                  test_completions, test_tokenize_roundtrip, test_prompt_cache_and_equal_answers,
                  test_tool_messages_round_trip, test_structured_output, test_forced_tool_call,
                  test_errors, test_api_key,
                  test_concurrent_clients_batched, test_disconnect_cancels, test_queue_full_503])
    finally:
        srv.stop()
    sys.exit(rc)
