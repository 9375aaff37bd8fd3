"""serve_util.py — starting `q35 serve` on the tiny chat model for the
scripted server tests, and small HTTP helpers (stdlib only). Every server
binds 127.0.0.1 on a free port, and every wait is bounded."""
import http.client
import json
import os
import subprocess
import threading
import time

Q35 = os.environ["Q35"]
MODEL = os.environ["Q35_TINY_CHAT"]


class Server:
    def __init__(self, *args):
        self.log = []
        self.p = subprocess.Popen(
            [Q35, "serve", "-m", MODEL, "--port", "0", "-t", "1", *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True)
        self.port = None
        deadline = time.time() + 30
        while self.port is None:
            line = self.p.stderr.readline()
            if not line:
                raise AssertionError("q35 serve exited: " + "".join(self.log))
            self.log.append(line)
            if "listening on http://127.0.0.1:" in line:
                self.port = int(line.split("127.0.0.1:")[1].split("/")[0])
            if time.time() > deadline:
                raise AssertionError("q35 serve did not start")
        threading.Thread(target=self._drain, daemon=True).start()
        while time.time() < deadline:
            st, _, _ = self.request("GET", "/health")
            if st == 200:
                return
            time.sleep(0.05)
        raise AssertionError("q35 serve did not become ready")

    def _drain(self):
        for line in self.p.stderr:
            self.log.append(line)

    def request(self, method, path, body=None, headers=None, timeout=120):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        out = r.read()
        c.close()
        return r.status, dict(r.getheaders()), out

    def json(self, method, path, body=None, headers=None):
        st, h, out = self.request(method, path, body, headers)
        return st, json.loads(out) if out else None

    def chat(self, body, headers=None):
        return self.json("POST", "/v1/chat/completions", body, headers)

    def stream(self, path, body, headers=None):
        """The SSE events of a streamed request: list of parsed JSON, and
        whether it ended with [DONE]."""
        st, h, out = self.request("POST", path, body, headers)
        assert st == 200, (st, out)
        assert h.get("Content-Type", "").startswith("text/event-stream"), h
        events, done = [], False
        for block in out.decode().split("\n\n"):
            if not block.strip():
                continue
            assert block.startswith("data: "), block
            payload = block[6:]
            assert not done, "data after [DONE]"
            if payload == "[DONE]":
                done = True
            else:
                events.append(json.loads(payload))
        return events, done

    def metrics(self):
        st, _, out = self.request("GET", "/metrics")
        assert st == 200
        m = {}
        for line in out.decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                m[k] = float(v)
        return m

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise AssertionError("q35 serve did not stop on SIGTERM")
        assert self.p.returncode == 0, (self.p.returncode, "".join(self.log[-20:]))


def assert_error(st, body, status, param=None, code=None):
    assert st == status, (st, body)
    e = body["error"]
    assert isinstance(e["message"], str) and e["message"], body
    assert isinstance(e["type"], str) and e["type"], body
    assert "param" in e and "code" in e, body
    if param is not None:
        assert e["param"] == param, body
    if code is not None:
        assert e["code"] == code, body


def run(tests):
    failed = 0
    for t in tests:
        t0 = time.time()
        try:
            t()
            print(f"ok   {t.__name__} ({time.time() - t0:.1f}s)", flush=True)
        except Exception as ex:  # report every failure, then fail
            failed += 1
            import traceback
            traceback.print_exc()
            print(f"FAIL {t.__name__}: {ex!r}", flush=True)
    return 1 if failed else 0
