"""test_health_loading.py — issue 11 point 1: GET /health answers 503 while
the model is loading (and the other endpoints refuse in the OpenAI error
shape with Retry-After), then the server stops when the load fails.

The load is held open deterministically: the model path is a FIFO, whose
open() for reading blocks until a writer comes, so the server is "loading"
for as long as the test wants. Opening the FIFO for writing and closing it
then lets the load go on, and fail (not a regular file). Only 127.0.0.1;
every wait is bounded."""
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time

Q35 = os.environ["Q35"]


def get(port, path, method="GET", body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path, body, {"Content-Type": "application/json"} if body else {})
    r = c.getresponse()
    return r.status, dict(r.getheaders()), r.read()


def main():
    with tempfile.TemporaryDirectory() as d:
        fifo = os.path.join(d, "model.gguf")
        os.mkfifo(fifo)
        p = subprocess.Popen([Q35, "serve", "-m", fifo, "--port", "0", "-t", "1"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        try:
            port, deadline = None, time.time() + 30
            while port is None and time.time() < deadline:
                line = p.stderr.readline()
                if not line:
                    raise AssertionError("q35 serve exited before listening")
                if "listening on http://127.0.0.1:" in line:
                    port = int(line.split("127.0.0.1:")[1].split("/")[0])
            assert port, "q35 serve did not start"
            st, h, b = get(port, "/health")
            assert st == 503, (st, b)
            err = json.loads(b)["error"]
            assert err["code"] == "model_loading", err
            assert "Retry-After" in h, h
            body = json.dumps({"messages": [{"role": "user", "content": "hi"}]})
            st, h, b = get(port, "/v1/chat/completions", "POST", body)
            assert st == 503 and json.loads(b)["error"]["code"] == "model_loading", (st, b)
            # still loading a moment later: nothing was ready by chance
            time.sleep(0.3)
            assert get(port, "/health")[0] == 503
            # let the load go on: it fails (a FIFO is no model file)
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
            rc = p.wait(timeout=30)
            rest = p.stderr.read()
            assert rc != 0 and "loading failed" in rest, (rc, rest)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
