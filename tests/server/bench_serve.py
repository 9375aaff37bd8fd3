"""bench_serve.py — measures q35 serve (not a test: run by hand, numbers go
to BENCHMARKS.md):
  1. time to first token and decode tok/s per stream with 1, 4 and 16
     concurrent streams (client-side TTFT to the first streamed token;
     tok/s from the server's per-request timings), and the aggregate
     decode rate of the batched steps (/metrics);
  2. time to first token of turn 5 of a conversation, with the
     cross-request prompt cache and without it (--cache-mb 0); the client
     sends back each answer as it got it and waits for the server's
     idle-time preparation of the next turn (a user's reading time).
Usage: Q35=build/q35 python3 tests/server/bench_serve.py MODEL [THREADS] [TOKENS]
With ROUNDS=N in the environment it measures only the ratio of point 5 of
issue 11: 1 and 4 concurrent streams alternately, N times each, on one
server, and prints each round's decode-step rates, their ratio and the
medians (a shared machine's load shifts between runs; alternating keeps it
alike on both sides of each ratio). SERVE_ARGS adds server arguments
(e.g. "--quant q4").
Only 127.0.0.1; every loop is bounded."""
import json
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("Q35_TINY_CHAT", "")
import serve_util  # noqa: E402

MODEL = sys.argv[1]
THREADS = sys.argv[2] if len(sys.argv) > 2 else "2"
TOKENS = int(sys.argv[3]) if len(sys.argv) > 3 else 32
serve_util.MODEL = MODEL


def server(*extra):
    s = serve_util.Server.__new__(serve_util.Server)
    # the same start-up as the tests, with this model and thread count
    serve_util.Server.__init__(s, "-t", THREADS, "--quiet",
                               *os.environ.get("SERVE_ARGS", "").split(), *extra)
    return s


def stream_one(srv, i, out):
    body = {"messages": [{"role": "user", "content": f"Tell me about topic number {i}."}],
            "max_tokens": TOKENS, "stream": True, "stream_options": {"include_usage": True},
            "chat_template_kwargs": {"enable_thinking": False}, "seed": i}
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=600)
    t0 = time.perf_counter()
    c.request("POST", "/v1/chat/completions", json.dumps(body).encode(),
              {"Content-Type": "application/json"})
    r = c.getresponse()
    first, usage, buf = None, None, b""
    while True:
        chunk = r.read1(65536)
        if not chunk:
            break
        buf += chunk
        while b"\n\n" in buf:
            ev, buf = buf.split(b"\n\n", 1)
            payload = ev[6:]
            if payload == b"[DONE]":
                continue
            o = json.loads(payload)
            if o.get("choices") and first is None and o["choices"][0]["delta"].get("content"):
                first = time.perf_counter() - t0
            if o.get("usage"):
                usage = o
    # ttft: the server's, request arrival to the first sampled token (the
    # random checkpoint's tokens may decode to no visible text)
    out[i] = {"ttft_ms": usage["timings"]["ttft_ms"], "tok_s": usage["timings"]["decode_tok_s"],
              "tokens": usage["usage"]["completion_tokens"]}


def concurrency(srv, n):
    before = srv.metrics()
    out = [None] * n
    th = [threading.Thread(target=stream_one, args=(srv, i, out)) for i in range(n)]
    t0 = time.perf_counter()
    for t in th:
        t.start()
    for t in th:
        t.join(900)
    wall = time.perf_counter() - t0
    m = srv.metrics()
    rows = m["q35_generated_tokens_total"] - before["q35_generated_tokens_total"]
    drows = m["q35_decode_tokens_total"] - before["q35_decode_tokens_total"]
    dsec = m["q35_decode_seconds_total"] - before["q35_decode_seconds_total"]
    steps = m["q35_decode_steps_total"] - before["q35_decode_steps_total"]
    return {
        "streams": n,
        "ttft_ms_median": round(statistics.median(o["ttft_ms"] for o in out), 1),
        "ttft_ms_max": round(max(o["ttft_ms"] for o in out), 1),
        "tok_s_per_stream_median": round(statistics.median(o["tok_s"] for o in out), 2),
        "aggregate_tok_s_wall": round(rows / wall, 2),
        "decode_steps_tok_s": round(drows / dsec, 2) if dsec else None,
        "mean_batch": round(drows / steps, 2) if steps else None,
        "wall_s": round(wall, 1),
    }


def turn5(srv):
    system = {"role": "system", "content": "You are a helpful assistant for a kitchen. " * 12}
    history = [system]
    ttft = []
    for turn in range(5):
        history.append({"role": "user", "content": f"Turn {turn}: what should I cook with "
                        "potatoes, leeks and a little cream tonight? " * 3})
        out = {}
        body = {"messages": history, "max_tokens": 8, "stream": True,
                "stream_options": {"include_usage": True},
                "chat_template_kwargs": {"enable_thinking": False}}
        t0 = time.perf_counter()
        st, h, data = srv.request("POST", "/v1/chat/completions", body)
        # time to first token as the server measured it (first sampled id)
        for ev in data.decode().split("\n\n"):
            if ev.startswith("data: {") and '"usage"' in ev:
                o = json.loads(ev[6:])
                out = {"ttft_ms": o["timings"]["ttft_ms"], "prompt": o["usage"]["prompt_tokens"],
                       "cached": o["usage"]["prompt_tokens_details"]["cached_tokens"]}
        ttft.append(out)
        content = "".join(json.loads(ev[6:])["choices"][0]["delta"].get("content") or ""
                          for ev in data.decode().split("\n\n")
                          if ev.startswith("data: {") and '"choices":[{' in ev)
        # the client sends back what it got; the user takes a moment to
        # answer (the server prepares the next turn meanwhile, if it can)
        history.append({"role": "assistant", "content": content})
        before = srv.metrics()["q35_prepared_tokens_total"]
        deadline = time.time() + 60
        while time.time() < deadline and srv.metrics()["q35_prepared_tokens_total"] == before \
                and srv.metrics()["q35_cache_bytes"] > 1:
            time.sleep(0.1)
        del t0
    return ttft[-1]


def ratio_rounds(n_rounds):
    res = {"model": MODEL, "threads": THREADS, "tokens_per_stream": TOKENS,
           "serve_args": os.environ.get("SERVE_ARGS", ""), "rounds": []}
    srv = server("--parallel", "4", "--queue", "4", "-c", "1024")
    try:
        stream_one(srv, 999, {})  # warm-up
        for r in range(n_rounds):
            one, four = concurrency(srv, 1), concurrency(srv, 4)
            row = {"one": one["decode_steps_tok_s"], "four": four["decode_steps_tok_s"],
                   "four_mean_batch": four["mean_batch"],
                   "wall_one": one["aggregate_tok_s_wall"], "wall_four": four["aggregate_tok_s_wall"]}
            row["x"] = round(row["four"] / row["one"], 2)
            row["x_wall"] = round(row["wall_four"] / row["wall_one"], 2)
            print(json.dumps(row), file=sys.stderr, flush=True)
            res["rounds"].append(row)
    finally:
        srv.stop()
    res["median_x"] = statistics.median(r["x"] for r in res["rounds"])
    res["median_x_wall"] = statistics.median(r["x_wall"] for r in res["rounds"])
    print(json.dumps(res, indent=1))


def main():
    if os.environ.get("ROUNDS"):
        return ratio_rounds(int(os.environ["ROUNDS"]))
    res = {"model": MODEL, "threads": THREADS, "tokens_per_stream": TOKENS}
    srv = server("--parallel", "16", "--queue", "16", "-c", "1024")
    try:
        stream_one(srv, 999, {})  # warm-up
        res["concurrency"] = [concurrency(srv, n) for n in (1, 4, 16)]
        res["turn5_cached"] = turn5(srv)
    finally:
        srv.stop()
    srv = server("--parallel", "1", "-c", "1024", "--cache-mb", "0")
    try:
        res["turn5_uncached"] = turn5(srv)
    finally:
        srv.stop()
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
