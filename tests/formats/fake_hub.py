"""fake_hub.py — a local stand-in for the Hugging Face hub, for the hub
client's tests (python3 standard library only).

Two threaded HTTP servers, as on the real hub:
  hub  (127.0.0.1:P)  GET /api/models/{org}/{name}[/revision/{rev}][?blobs=True]
                      GET|HEAD /{org}/{name}/resolve/{rev}/{path}
  cdn  (127.0.0.2:Q)  GET|HEAD /repos/{sha256}?expires=... (LFS blobs)
The hub answers like huggingface.co: the listing has siblings with
rfilename, size, blobId and lfs {sha256, size, pointerSize} (with
?blobs=True); resolve serves regular files itself (ETag = git blob id,
X-Repo-Commit) and redirects LFS files to the CDN (302, X-Linked-Etag =
sha256, X-Linked-Size); errors carry X-Error-Code (RepoNotFound,
RevisionNotFound, EntryNotFound) and X-Error-Message; a private repo answers
401 without a valid Bearer token, and so does a missing repo when no token is
sent (the hub does not reveal which repos exist). Both servers honour Range.

Knobs for failure tests (set on the FakeHub object between requests); a
blob is keyed by its sha256 (LFS files) or its git blob id (others):
  cut_once[key] = n       the next GET of that blob sends n bytes and drops
                          the connection
  corrupt.add(key)        serve that blob with one byte flipped
  slow[key] = seconds     pause between 16 KiB chunks of that blob
  unavailable.add(key)    the CDN answers 503 for that blob
  unavailable_after_cut   after a cut_once fires, its blob becomes unavailable
  ignore_range = True     answer 200 with the whole file to Range requests
  api_blobs = False       the listing ignores ?blobs=True (names only)
  resolve_404.add(name)   resolve answers 404 for a file that is listed
  api_status = 503        the listing answers this status
Every request is recorded in `log` (server, method, path, auth, range,
status) so tests can check what went over the wire.

Run alone (`python3 fake_hub.py`) it serves a small demo repo until Ctrl-C.
"""

import hashlib
import http.server
import json
import socket
import threading
import time
import urllib.parse

TOKEN = "hf_q35_test_token"
LFS_SUFFIXES = (".safetensors", ".gguf", ".bin", ".onnx")


def git_blob_id(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def lfs_pointer(data):
    """The small text git stores in place of an LFS file."""
    return b"version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n" % (
        sha256(data).encode(), len(data))


class FakeHub:
    def __init__(self, token=TOKEN):
        self.token = token
        self.repos = {}  # repo id -> {"private", "refs": {rev: commit}, "commits": {commit: files}}
        self.blobs = {}  # sha256 -> bytes (the CDN's store)
        self.log = []
        self.lock = threading.Lock()
        self.cut_once = {}
        self.corrupt = set()
        self.slow = {}
        self.unavailable = set()
        self.unavailable_after_cut = False
        self.ignore_range = False
        self.api_blobs = True
        self.resolve_404 = set()
        self.api_status = None
        self._servers = []

    # ---------------------------------------------------------------- repos
    def add_repo(self, repo_id, files, private=False, branch="main"):
        """files: {path: bytes}. Returns the commit the branch points to."""
        entries = {}
        for name, data in files.items():
            lfs = name.endswith(LFS_SUFFIXES)
            entries[name] = {"data": data, "lfs": lfs}
            if lfs:
                self.blobs[sha256(data)] = data
        digest = hashlib.sha1(repo_id.encode())
        for name in sorted(files):
            digest.update(name.encode() + b"\0" + hashlib.sha1(files[name]).digest())
        commit = digest.hexdigest()
        repo = self.repos.setdefault(repo_id, {"private": private, "refs": {}, "commits": {}})
        repo["private"] = private
        repo["commits"][commit] = entries
        repo["refs"][branch] = commit
        return commit

    def lfs_sha(self, repo_id, name, rev="main"):
        repo = self.repos[repo_id]
        return sha256(repo["commits"][repo["refs"][rev]][name]["data"])

    def requests(self, server=None, method=None, contains=None):
        with self.lock:
            return [r for r in self.log
                    if (server is None or r["server"] == server)
                    and (method is None or r["method"] == method)
                    and (contains is None or contains in r["path"])]

    def clear_log(self):
        with self.lock:
            self.log.clear()

    # -------------------------------------------------------------- servers
    def start(self):
        hub = _Server(("127.0.0.1", 0), _HubHandler, self)
        try:  # a second loopback address: a different host for the redirect
            cdn = _Server(("127.0.0.2", 0), _CdnHandler, self)
            self.cdn_host = "127.0.0.2"
        except OSError:
            cdn = _Server(("127.0.0.1", 0), _CdnHandler, self)
            self.cdn_host = "localhost"  # another host name, at least
        self.endpoint = "http://127.0.0.1:%d" % hub.server_address[1]
        self.cdn = "http://%s:%d" % (self.cdn_host, cdn.server_address[1])
        for s in (hub, cdn):
            t = threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05},
                                 daemon=True)
            t.start()
            self._servers.append(s)
        return self

    def stop(self):
        for s in self._servers:
            s.shutdown()
            s.server_close()
        self._servers = []

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, hub):
        self.hub = hub
        super().__init__(addr, handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_name_tag = "?"

    def log_message(self, fmt, *args):  # quiet; the log list says it all
        pass

    @property
    def hub(self):
        return self.server.hub

    def record(self, status):
        with self.hub.lock:
            self.hub.log.append({
                "server": self.server_name_tag, "method": self.command, "path": self.path,
                "auth": self.headers.get("Authorization"), "range": self.headers.get("Range"),
                "status": status})

    def reply(self, status, body=b"", headers=(), content_type="application/json"):
        self.record(status)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, status, code, message):
        body = json.dumps({"error": message}).encode()
        headers = [("X-Error-Message", message)]
        if code:
            headers.append(("X-Error-Code", code))
        self.reply(status, body, headers)

    def send_content(self, data, headers, key):
        """A file body with Range support and the failure knobs."""
        hub = self.hub
        sha = key
        if sha in hub.corrupt and data:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        start = 0
        rng = self.headers.get("Range")
        status = 200
        extra = list(headers) + [("Accept-Ranges", "bytes")]
        if rng and not hub.ignore_range:
            spec = rng.replace("bytes=", "", 1)
            first, _, last = spec.partition("-")
            start = int(first)
            end = int(last) if last else len(data) - 1
            if start >= len(data):
                self.reply(416, b"", extra + [("Content-Range", "bytes */%d" % len(data))])
                return
            data = data[start:end + 1]
            status = 206
            extra.append(("Content-Range", "bytes %d-%d/%d" % (start, start + len(data) - 1,
                                                                start + len(data))))
        cut = None
        with hub.lock:
            if sha in hub.cut_once and self.command == "GET":
                cut = hub.cut_once.pop(sha)
                if hub.unavailable_after_cut:
                    hub.unavailable.add(sha)
        self.record(status)
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if cut is not None:
            self.wfile.write(data[:cut])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        pause = hub.slow.get(sha)
        chunk = 16384
        for i in range(0, len(data), chunk):
            self.wfile.write(data[i:i + chunk])
            if pause:
                self.wfile.flush()
                time.sleep(pause)


class _HubHandler(_Handler):
    server_name_tag = "hub"

    def authorized(self):
        return self.headers.get("Authorization") == "Bearer " + self.hub.token

    def find_repo(self, repo_id):
        """The repo, or None after answering as the hub does."""
        repo = self.hub.repos.get(repo_id)
        sent = self.headers.get("Authorization")
        if sent and not self.authorized():
            self.error(401, None, "Invalid credentials in Authorization header")
            return None
        if repo is None or (repo["private"] and not self.authorized()):
            if not sent:  # no token: do not reveal whether the repo exists
                self.error(401, "RepoNotFound", "Repository not found")
            else:
                self.error(404, "RepoNotFound", "Repository not found")
            return None
        return repo

    def commit_for(self, repo, rev):
        if rev in repo["refs"]:
            return repo["refs"][rev]
        if rev in repo["commits"]:
            return rev
        self.error(404, "RevisionNotFound", "Invalid rev id: %s" % rev)
        return None

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        parts = url.path.split("/")
        if parts[1:3] == ["api", "models"] and len(parts) >= 5:
            return self.listing(parts, query)
        if len(parts) >= 6 and parts[3] == "resolve":
            return self.resolve(parts)
        self.error(404, None, "Not found")

    def listing(self, parts, query):
        hub = self.hub
        repo_id = "/".join(parts[3:5])
        rev = "main"
        if len(parts) >= 7 and parts[5] == "revision":
            rev = urllib.parse.unquote("/".join(parts[6:]))
        if hub.api_status:
            return self.error(hub.api_status, None, "Service unavailable")
        repo = self.find_repo(repo_id)
        if repo is None:
            return
        commit = self.commit_for(repo, rev)
        if commit is None:
            return
        blobs = hub.api_blobs and query.get("blobs", ["false"])[0].lower() == "true"
        siblings = []
        for name, f in sorted(repo["commits"][commit].items()):
            s = {"rfilename": name}
            if blobs:
                data = f["data"]
                s["size"] = len(data)
                s["blobId"] = git_blob_id(lfs_pointer(data) if f["lfs"] else data)
                if f["lfs"]:
                    s["lfs"] = {"sha256": sha256(data), "size": len(data), "pointerSize": 134}
            siblings.append(s)
        body = {"_id": "0" * 24, "id": repo_id, "modelId": repo_id, "author": parts[3],
                "sha": commit, "private": repo["private"], "gated": False, "disabled": False,
                "downloads": 0, "likes": 0, "library_name": "transformers", "tags": [],
                "pipeline_tag": "text-generation", "lastModified": "2026-01-01T00:00:00.000Z",
                "createdAt": "2026-01-01T00:00:00.000Z", "siblings": siblings, "spaces": []}
        self.reply(200, json.dumps(body).encode())

    def resolve(self, parts):
        hub = self.hub
        repo_id = "/".join(parts[1:3])
        repo = self.find_repo(repo_id)
        if repo is None:
            return
        commit = self.commit_for(repo, urllib.parse.unquote(parts[4]))
        if commit is None:
            return
        name = urllib.parse.unquote("/".join(parts[5:]))
        f = repo["commits"][commit].get(name)
        if f is None or name in hub.resolve_404:
            return self.error(404, "EntryNotFound", "Entry not found")
        data = f["data"]
        headers = [("X-Repo-Commit", commit)]
        if f["lfs"]:
            sha = sha256(data)
            headers += [("X-Linked-Etag", '"%s"' % sha), ("X-Linked-Size", str(len(data))),
                        ("ETag", '"%s"' % git_blob_id(data)),
                        ("Location", "%s/repos/%s?expires=9999999999" % (hub.cdn, sha))]
            return self.reply(302, b"", headers)
        headers.append(("ETag", '"%s"' % git_blob_id(data)))
        self.send_content(data, headers, key=git_blob_id(data))


class _CdnHandler(_Handler):
    server_name_tag = "cdn"

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        sha = path.rsplit("/", 1)[-1]
        data = self.hub.blobs.get(sha)
        if not path.startswith("/repos/") or data is None:
            return self.reply(404, b"<Error>NoSuchKey</Error>", content_type="application/xml")
        if sha in self.hub.unavailable:
            return self.reply(503, b"<Error>SlowDown</Error>", content_type="application/xml")
        self.send_content(data, [("ETag", '"%s"' % sha)], key=sha)


if __name__ == "__main__":
    hub = FakeHub()
    hub.add_repo("demo/tiny", {"config.json": b"{}\n", "model.safetensors": b"\0" * 100000,
                               "README.md": b"# demo\n"})
    hub.start()
    print("HF_ENDPOINT=%s  (token %s); Ctrl-C to stop" % (hub.endpoint, hub.token), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        hub.stop()
