"""test_hub.py — `q35 pull` against fake_hub.py (a local server that answers
like huggingface.co, with a second "CDN" host for LFS files).

Each test gets an empty cache directory and checks three things: what the
command said (exit status, stdout path, error message), what went over the
wire (the fake hub's request log), and what the cache holds — with the
layout rules of huggingface_hub's file_download.py checked by
assert_cache_consistent after every scenario, failures included.

Needs env Q35 (the q35 binary); Q35_FIXTURES supplies a real tiny checkpoint
(random bytes are used when it is missing). Every q35 run has a timeout.
"""

import hashlib
import os
import pty
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_hub  # noqa: E402

Q35 = os.environ.get("Q35", "q35")
GOLDEN = os.environ.get("Q35_FIXTURES", "")
RUN_TIMEOUT = 60

ENGINE_FILES = {"config.json", "generation_config.json", "tokenizer.json",
                "tokenizer_config.json", "chat_template.jinja", "model.safetensors"}

HUB = None
REPO = {}  # name -> files dict as served


def golden_or_random(name, size, seed):
    path = os.path.join(GOLDEN, "models", "tiny-a", name)
    if GOLDEN and os.path.exists(path):
        with open(path, "rb") as f:
            return f.read()
    return random_bytes(size, seed)


def random_bytes(n, seed):
    out = bytearray()
    block = hashlib.sha256(seed.encode()).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:n])


def setUpModule():
    global HUB
    HUB = fake_hub.FakeHub().start()
    tiny = {
        "config.json": golden_or_random("config.json", 1100, "config"),
        "generation_config.json": golden_or_random("generation_config.json", 170, "gen"),
        "model.safetensors": golden_or_random("model.safetensors", 520000, "weights"),
        "tokenizer.json": b'{"version": "1.0", "model": {"type": "BPE"}}' + b" " * 40000,
        "tokenizer_config.json": b'{"model_max_length": 4096}',
        "chat_template.jinja": b"{% for m in messages %}{{ m.content }}{% endfor %}",
        "README.md": b"# tiny\n",
        ".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n",
        "onnx/model.onnx": random_bytes(5000, "onnx"),
        "pytorch_model.bin": random_bytes(7000, "bin"),
        "model-q4.gguf": random_bytes(6000, "gguf-in-tiny"),
    }
    REPO["tiny"] = tiny
    HUB.add_repo("q35-test/tiny", tiny)
    tiny_v2 = dict(tiny, **{"config.json": tiny["config.json"] + b"\n"})
    REPO["tiny@v2"] = tiny_v2
    HUB.add_repo("q35-test/tiny", tiny_v2, branch="v2")

    # One repo per failure scenario, each with its own LFS bytes: the fake
    # CDN's knobs are keyed by sha256.
    for name in ("cut", "netfail", "resume", "restart", "corrupt", "concurrent", "private", "offline",
                 "head", "py", "tty", "r404"):
        files = {"config.json": b'{"name": "%s"}' % name.encode(),
                 "model.safetensors": random_bytes(1_500_000, name),
                 "tokenizer.json": b'{"tok": "%s"}' % name.encode(),
                 "README.md": b"not fetched"}
        REPO[name] = files
        HUB.add_repo("q35-test/" + name, files, private=(name == "private"))

    sharded = {"config.json": b"{}",
               "model-00001-of-00002.safetensors": random_bytes(30000, "s1"),
               "model-00002-of-00002.safetensors": random_bytes(20000, "s2"),
               "model.safetensors.index.json":
                   b'{"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors",'
                   b' "b": "model-00002-of-00002.safetensors"}}'}
    REPO["sharded"] = sharded
    HUB.add_repo("q35-test/sharded", sharded)

    gguf = {"README.md": b"ggufs", "model-Q4_0.gguf": random_bytes(40000, "q4"),
            "model-Q8_0.gguf": random_bytes(50000, "q8")}
    REPO["gguf"] = gguf
    HUB.add_repo("q35-test/gguf-only", gguf)

    # The default model's id, served with a real (tiny) chat checkpoint, so
    # `q35 run` without -m can be followed from download to reply.
    chat_dir = os.path.join(GOLDEN, "models", "tiny-chat")
    if GOLDEN and os.path.isdir(chat_dir):
        default = {}
        for name in os.listdir(chat_dir):
            with open(os.path.join(chat_dir, name), "rb") as f:
                default[name] = f.read()
        REPO["default"] = default
        HUB.add_repo("Qwen/Qwen3.5-0.8B", default)

    HUB.add_repo("q35-test/evil", {"config.json": b"{}", "../../escape.safetensors": b"x"})


def tearDownModule():
    HUB.stop()


def closed_port():
    """A local port nothing listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def git_blob_id(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class HubTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="q35hub-")
        self.cache = os.path.join(self.tmp, "hub")
        HUB.clear_log()
        HUB.cut_once.clear()
        HUB.corrupt.clear()
        HUB.slow.clear()
        HUB.unavailable.clear()
        HUB.unavailable_after_cut = False
        HUB.resolve_404.clear()
        HUB.ignore_range = False
        HUB.api_blobs = True
        HUB.api_status = None

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ------------------------------------------------------------- helpers
    def env(self, **extra):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("HF_", "HUGGING_FACE_", "TRANSFORMERS_"))}
        env.update(HOME=self.tmp, HF_HOME=os.path.join(self.tmp, "hf_home"),
                   HF_HUB_CACHE=self.cache, HF_ENDPOINT=HUB.endpoint,
                   HF_HUB_DOWNLOAD_TIMEOUT="5")
        env.update({k: v for k, v in extra.items() if v is not None})
        return env

    def pull(self, *args, **env):
        return subprocess.run([Q35, "pull", *args], env=self.env(**env), capture_output=True,
                              text=True, timeout=RUN_TIMEOUT)

    def ok(self, *args, **env):
        r = self.pull(*args, **env)
        self.assertEqual(r.returncode, 0, "q35 pull %s failed:\n%s" % (args, r.stderr))
        return r

    def fails(self, *args, **env):
        r = self.pull(*args, **env)
        self.assertNotEqual(r.returncode, 0, "q35 pull %s should fail" % (args,))
        self.assertEqual(r.stdout, "", "nothing on stdout on failure")
        self.assertIn("q35 pull:", r.stderr)
        return r

    def repo_dir(self, repo):
        return os.path.join(self.cache, "models--" + repo.replace("/", "--"))

    def commit(self, repo, rev="main"):
        return HUB.repos[repo]["refs"][rev]

    def snapshot(self, repo, rev="main"):
        return os.path.join(self.repo_dir(repo), "snapshots", self.commit(repo, rev))

    def blobs(self, repo):
        d = os.path.join(self.repo_dir(repo), "blobs")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def cdn_gets(self, sha):
        return HUB.requests(server="cdn", method="GET", contains=sha)

    def assert_cache_consistent(self):
        """huggingface_hub's layout rules, checked on everything present:
        blobs named by their content (sha256 or git blob id), nothing partial
        outside *.incomplete, snapshot entries relative symlinks
        ../(..)/blobs/<name> that resolve, refs holding a bare commit whose
        snapshot exists."""
        if not os.path.isdir(self.cache):
            return
        for repo in os.listdir(self.cache):
            if not repo.startswith("models--"):
                continue
            root = os.path.join(self.cache, repo)
            blobs = os.path.join(root, "blobs")
            for b in os.listdir(blobs) if os.path.isdir(blobs) else []:
                self.assertFalse(b.endswith(".incomplete"), "partial file left: " + b)
                with open(os.path.join(blobs, b), "rb") as f:
                    data = f.read()
                want = sha256(data) if len(b) == 64 else git_blob_id(data)
                self.assertEqual(b, want, "blob %s does not hold its own content" % b)
            snaps = os.path.join(root, "snapshots")
            for dirpath, _, files in os.walk(snaps):
                for name in files:
                    p = os.path.join(dirpath, name)
                    self.assertTrue(os.path.islink(p), p + " is not a symlink")
                    target = os.readlink(p)
                    depth = os.path.relpath(p, root).count(os.sep)
                    self.assertTrue(re.fullmatch(r"(\.\./){%d}blobs/[0-9a-f]+" % depth, target),
                                    "%s -> %s" % (p, target))
                    self.assertTrue(os.path.isfile(p), p + " dangles")
            refs = os.path.join(root, "refs")
            for dirpath, _, files in os.walk(refs):
                for name in files:
                    with open(os.path.join(dirpath, name)) as f:
                        c = f.read()
                    self.assertTrue(re.fullmatch(r"[0-9a-f]{40}", c), "ref holds %r" % c)
                    self.assertTrue(os.path.isdir(os.path.join(snaps, c)))

    def assert_snapshot_files(self, repo, key, names, rev="main"):
        snap = self.snapshot(repo, rev)
        found = set()
        for dirpath, _, files in os.walk(snap):
            found |= {os.path.relpath(os.path.join(dirpath, f), snap) for f in files}
        self.assertEqual(found, set(names))
        for n in names:
            with open(os.path.join(snap, n), "rb") as f:
                self.assertEqual(f.read(), REPO[key][n], n)

    # --------------------------------------------------------------- tests
    def test_happy_path_layout_and_second_pull_is_a_noop(self):
        r = self.ok("q35-test/tiny")
        snap = self.snapshot("q35-test/tiny")
        self.assertEqual(r.stdout.strip(), snap)
        self.assert_snapshot_files("q35-test/tiny", "tiny", ENGINE_FILES)
        tiny = REPO["tiny"]
        self.assertEqual(os.readlink(os.path.join(snap, "model.safetensors")),
                         "../../blobs/" + sha256(tiny["model.safetensors"]))
        self.assertEqual(os.readlink(os.path.join(snap, "config.json")),
                         "../../blobs/" + git_blob_id(tiny["config.json"]))
        with open(os.path.join(self.repo_dir("q35-test/tiny"), "refs", "main")) as f:
            self.assertEqual(f.read(), self.commit("q35-test/tiny"))
        self.assertTrue(os.path.exists(os.path.join(
            self.cache, ".locks", "models--q35-test--tiny",
            sha256(tiny["model.safetensors"]) + ".lock")))
        self.assert_cache_consistent()
        # Only the engine's files went over the wire.
        fetched = {p["path"].split("/resolve/")[1].split("/", 1)[1]
                   for p in HUB.requests(server="hub", contains="/resolve/")}
        self.assertEqual(fetched, ENGINE_FILES)
        self.assertNotIn("\r", r.stderr, "no progress bar when stderr is not a terminal")

        mtimes = {b: os.stat(os.path.join(self.repo_dir("q35-test/tiny"), "blobs", b)).st_mtime_ns
                  for b in self.blobs("q35-test/tiny")}
        HUB.clear_log()
        r2 = self.ok("q35-test/tiny")
        self.assertEqual(r2.stdout, r.stdout)
        self.assertEqual([x["path"].split("?")[0] for x in HUB.log],
                         ["/api/models/q35-test/tiny/revision/main"], "second pull: listing only")
        self.assertIn("0 downloaded", r2.stderr)
        self.assertEqual(mtimes, {b: os.stat(os.path.join(self.repo_dir("q35-test/tiny"),
                                                          "blobs", b)).st_mtime_ns
                                  for b in self.blobs("q35-test/tiny")})

    @unittest.skipUnless(GOLDEN and os.path.isdir(os.path.join(GOLDEN, "models", "tiny-a")),
                         "needs Q35_FIXTURES for a real checkpoint")
    def test_pulled_checkpoint_loads(self):
        def info(model, **env):
            r = subprocess.run([Q35, "info", "-m", model], capture_output=True, text=True,
                               env=self.env(**env), timeout=RUN_TIMEOUT)
            if r.returncode == 2 and "not available in this build" in r.stderr:
                self.skipTest("q35 info is not in this build")
            self.assertEqual(r.returncode, 0, "%s does not load:\n%s" % (model, r.stderr))
            return r.stdout
        snap = self.snapshot("q35-test/tiny")
        # A hub id where a model path goes: fetched by q35_model_load itself.
        self.assertIn(snap, info("q35-test/tiny"))
        self.assertIn(snap, info("q35-test/tiny", HF_HUB_OFFLINE="1"))
        self.assertIn(snap, info(self.ok("q35-test/tiny").stdout.strip()))
        self.assert_cache_consistent()

    @unittest.skipUnless(GOLDEN and os.path.isdir(os.path.join(GOLDEN, "models", "tiny-chat")),
                         "needs Q35_FIXTURES for the chat checkpoint")
    def test_run_without_model_downloads_the_default_once(self):
        def run(**env):
            return subprocess.run([Q35, "run", "-p", "Hello", "-n", "4", "--temp", "0"],
                                  capture_output=True, text=True, env=self.env(**env),
                                  timeout=RUN_TIMEOUT)
        r = run()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_snapshot_files("Qwen/Qwen3.5-0.8B", "default", set(REPO["default"]))
        first = r.stdout
        HUB.clear_log()
        r = run(HF_HUB_OFFLINE="1")  # the second start needs no network
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, first, "same greedy reply from the cached copy")
        self.assertEqual(HUB.log, [])
        self.assert_cache_consistent()

    def test_redirect_to_cdn_host_without_token(self):
        self.ok("q35-test/tiny", HF_TOKEN=fake_hub.TOKEN)
        sha = sha256(REPO["tiny"]["model.safetensors"])
        hub_hits = HUB.requests(server="hub", contains="model.safetensors")
        self.assertEqual([h["status"] for h in hub_hits], [302])
        self.assertEqual(hub_hits[0]["auth"], "Bearer " + fake_hub.TOKEN)
        cdn = self.cdn_gets(sha)
        self.assertEqual(len(cdn), 1)
        self.assertIsNone(cdn[0]["auth"], "the token must not follow the redirect to the CDN")
        self.assertNotEqual(HUB.cdn_host, "127.0.0.1")
        self.assert_cache_consistent()

    def test_cut_connection_is_resumed_with_range(self):
        sha = HUB.lfs_sha("q35-test/cut", "model.safetensors")
        HUB.cut_once[sha] = 400_000
        self.ok("q35-test/cut")
        gets = self.cdn_gets(sha)
        self.assertEqual([(g["range"], g["status"]) for g in gets],
                         [(None, 200), ("bytes=400000-", 206)])
        self.assert_snapshot_files("q35-test/cut", "cut", {"config.json", "model.safetensors",
                                                           "tokenizer.json"})
        self.assert_cache_consistent()

    def test_network_failure_mid_file_keeps_partial_for_next_pull(self):
        sha = HUB.lfs_sha("q35-test/netfail", "model.safetensors")
        HUB.cut_once[sha] = 500_000
        HUB.unavailable_after_cut = True
        r = self.fails("q35-test/netfail")
        self.assertIn("downloading model.safetensors", r.stderr)
        self.assertIn("503", r.stderr)
        self.assertIn("resumes", r.stderr)
        self.assertEqual([g["status"] for g in self.cdn_gets(sha)], [200, 503, 503, 503])
        blobs = self.blobs("q35-test/netfail")
        self.assertIn(sha + ".incomplete", blobs)
        self.assertNotIn(sha, blobs)
        self.assertFalse(os.path.exists(os.path.join(self.repo_dir("q35-test/netfail"), "refs")))
        part = os.path.join(self.repo_dir("q35-test/netfail"), "blobs", sha + ".incomplete")
        self.assertEqual(os.path.getsize(part), 500_000)
        # The network is back: the next pull fetches only the rest.
        HUB.unavailable.clear()
        HUB.clear_log()
        self.ok("q35-test/netfail")
        self.assertEqual([g["range"] for g in self.cdn_gets(sha)], ["bytes=500000-"])
        self.assert_snapshot_files("q35-test/netfail", "netfail", {"config.json",
                                                                   "model.safetensors",
                                                                   "tokenizer.json"})
        self.assert_cache_consistent()

    def test_leftover_incomplete_is_resumed(self):
        data = REPO["resume"]["model.safetensors"]
        sha = sha256(data)
        blobs = os.path.join(self.repo_dir("q35-test/resume"), "blobs")
        os.makedirs(blobs)
        with open(os.path.join(blobs, sha + ".incomplete"), "wb") as f:
            f.write(data[:1_000_000])  # what a killed pull leaves
        self.ok("q35-test/resume")
        self.assertEqual([g["range"] for g in self.cdn_gets(sha)], ["bytes=1000000-"])
        self.assert_snapshot_files("q35-test/resume", "resume", {"config.json",
                                                                 "model.safetensors",
                                                                 "tokenizer.json"})
        self.assert_cache_consistent()

    def test_bad_leftover_incomplete_restarts_from_zero(self):
        sha = HUB.lfs_sha("q35-test/restart", "model.safetensors")
        blobs = os.path.join(self.repo_dir("q35-test/restart"), "blobs")
        os.makedirs(blobs)
        with open(os.path.join(blobs, sha + ".incomplete"), "wb") as f:
            f.write(b"garbage" * 1000)
        self.ok("q35-test/restart")
        self.assertEqual([g["range"] for g in self.cdn_gets(sha)], ["bytes=7000-", None])
        self.assert_cache_consistent()

    def test_server_ignoring_range_restarts_cleanly(self):
        HUB.ignore_range = True
        sha = HUB.lfs_sha("q35-test/cut", "model.safetensors")
        HUB.cut_once[sha] = 300_000
        self.ok("q35-test/cut")
        self.assertEqual([g["status"] for g in self.cdn_gets(sha)], [200, 200])
        self.assert_snapshot_files("q35-test/cut", "cut", {"config.json", "model.safetensors",
                                                           "tokenizer.json"})
        self.assert_cache_consistent()

    def test_checksum_mismatch_leaves_nothing(self):
        sha = HUB.lfs_sha("q35-test/corrupt", "model.safetensors")
        HUB.corrupt.add(sha)
        r = self.fails("q35-test/corrupt")
        self.assertIn("checksum mismatch", r.stderr)
        self.assertIn("model.safetensors", r.stderr)
        self.assertIn(sha, r.stderr)
        root = self.repo_dir("q35-test/corrupt")
        self.assertNotIn(sha, self.blobs("q35-test/corrupt"))
        self.assertNotIn(sha + ".incomplete", self.blobs("q35-test/corrupt"))
        self.assertFalse(os.path.lexists(os.path.join(self.snapshot("q35-test/corrupt"),
                                                      "model.safetensors")))
        self.assertFalse(os.path.exists(os.path.join(root, "refs", "main")),
                         "no ref to an incomplete snapshot")
        self.assert_cache_consistent()
        # Offline, the half-pulled repo is a miss, not a broken model.
        self.fails("q35-test/corrupt", HF_HUB_OFFLINE="1")
        # Once the hub serves good bytes the same cache completes.
        HUB.corrupt.clear()
        self.ok("q35-test/corrupt")
        self.assert_cache_consistent()

    def test_corrupt_small_file_fails_git_blob_check(self):
        # A regular (non-LFS) file is checked against its git blob id.
        oid = git_blob_id(REPO["corrupt"]["tokenizer.json"])
        HUB.corrupt.add(oid)
        r = self.fails("q35-test/corrupt")
        self.assertIn("checksum mismatch for tokenizer.json", r.stderr)
        self.assertIn("git blob id " + oid, r.stderr)
        self.assertNotIn(oid, self.blobs("q35-test/corrupt"))
        self.assert_cache_consistent()

    def test_401_without_token_then_token(self):
        r = self.fails("q35-test/private")
        self.assertIn("401", r.stderr)
        self.assertIn("HF_TOKEN", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.repo_dir("q35-test/private"), "refs")))
        r = self.fails("q35-test/private", HF_TOKEN="hf_wrong")
        self.assertIn("refused HF_TOKEN", r.stderr)
        self.ok("q35-test/private", HF_TOKEN=fake_hub.TOKEN)
        self.assert_snapshot_files("q35-test/private", "private",
                                   {"config.json", "model.safetensors", "tokenizer.json"})
        self.assert_cache_consistent()

    def test_token_file_in_hf_home(self):
        home = os.path.join(self.tmp, "hf_home")
        os.makedirs(home)
        with open(os.path.join(home, "token"), "w") as f:
            f.write(fake_hub.TOKEN + "\n")
        self.ok("q35-test/private")

    def test_404_repo(self):
        r = self.fails("q35-test/does-not-exist", HF_TOKEN=fake_hub.TOKEN)
        self.assertIn("repository q35-test/does-not-exist not found", r.stderr)
        # Without a token the hub answers 401 for a missing repo too.
        r = self.fails("q35-test/does-not-exist")
        self.assertIn("does not exist", r.stderr)
        self.assertFalse(os.path.exists(self.repo_dir("q35-test/does-not-exist")))

    def test_404_revision(self):
        r = self.fails("q35-test/tiny@no-such-branch")
        self.assertIn("revision 'no-such-branch' not found", r.stderr)
        self.assertFalse(os.path.exists(self.repo_dir("q35-test/tiny")))

    def test_404_file(self):
        r = self.fails("q35-test/tiny", "missing.gguf")
        self.assertIn("missing.gguf not found in q35-test/tiny", r.stderr)
        # Listed, yet the hub answers 404 when it is fetched.
        HUB.resolve_404.add("tokenizer.json")
        r = self.fails("q35-test/r404")
        self.assertIn("tokenizer.json", r.stderr)
        self.assertIn("not found", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.repo_dir("q35-test/r404"), "refs")))
        self.assert_cache_consistent()

    def test_offline_hit_and_miss(self):
        self.ok("q35-test/offline")
        HUB.clear_log()
        dead = "http://127.0.0.1:%d" % closed_port()
        r = self.ok("q35-test/offline", HF_HUB_OFFLINE="1", HF_ENDPOINT=dead)
        self.assertEqual(r.stdout.strip(), self.snapshot("q35-test/offline"))
        self.assertIn("from the cache", r.stderr)
        r = self.ok("--offline", "q35-test/offline")
        self.assertEqual(HUB.log, [], "offline: no request at all")
        r = self.fails("q35-test/tiny", HF_HUB_OFFLINE="1")
        self.assertIn("offline", r.stderr)
        self.assertIn("not in the cache", r.stderr)
        r = self.fails("q35-test/offline@v9", HF_HUB_OFFLINE="1")
        self.assertIn("v9", r.stderr)
        self.assertEqual(HUB.log, [])

    def test_unreachable_hub_uses_cache_else_clear_error(self):
        dead = "http://127.0.0.1:%d" % closed_port()
        r = self.fails("q35-test/offline", HF_ENDPOINT=dead)
        self.assertIn("cannot reach the hub", r.stderr)
        self.ok("q35-test/offline")
        r = self.ok("q35-test/offline", HF_ENDPOINT=dead)
        self.assertEqual(r.stdout.strip(), self.snapshot("q35-test/offline"))
        HUB.api_status = 503
        r = self.ok("q35-test/offline")
        self.assertIn("from the cache", r.stderr)
        r = self.fails("q35-test/tiny")
        self.assertIn("503", r.stderr)

    def test_concurrent_pulls_share_one_download(self):
        sha = HUB.lfs_sha("q35-test/concurrent", "model.safetensors")
        HUB.slow[sha] = 0.015  # ~1.4 s for the file: the two pulls overlap
        cmd = [Q35, "pull", "q35-test/concurrent"]
        procs = [subprocess.Popen(cmd, env=self.env(), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outs = [p.communicate(timeout=RUN_TIMEOUT) for p in procs]
        for p, (out, err) in zip(procs, outs):
            self.assertEqual(p.returncode, 0, err)
            self.assertEqual(out.strip(), self.snapshot("q35-test/concurrent"))
        self.assertEqual(len(self.cdn_gets(sha)), 1, "the blob was downloaded once")
        files = REPO["concurrent"]
        self.assertEqual(self.blobs("q35-test/concurrent"),
                         sorted([sha, git_blob_id(files["config.json"]),
                                 git_blob_id(files["tokenizer.json"])]))
        self.assert_snapshot_files("q35-test/concurrent", "concurrent",
                                   {"config.json", "model.safetensors", "tokenizer.json"})
        self.assert_cache_consistent()

    def test_gguf_named_in_the_id_or_as_argument(self):
        r = self.ok("q35-test/gguf-only/model-Q4_0.gguf")
        path = os.path.join(self.snapshot("q35-test/gguf-only"), "model-Q4_0.gguf")
        self.assertEqual(r.stdout.strip(), path)
        self.assert_snapshot_files("q35-test/gguf-only", "gguf", {"model-Q4_0.gguf"})
        r = self.ok("q35-test/gguf-only@main", "model-Q8_0.gguf")
        self.assertEqual(r.stdout.strip(),
                         os.path.join(self.snapshot("q35-test/gguf-only"), "model-Q8_0.gguf"))
        # Both forms at once: both files, and the snapshot directory.
        shutil.rmtree(self.cache)
        r = self.ok("q35-test/gguf-only/model-Q4_0.gguf", "model-Q8_0.gguf")
        self.assertEqual(r.stdout.strip(), self.snapshot("q35-test/gguf-only"))
        self.assert_snapshot_files("q35-test/gguf-only", "gguf",
                                   {"model-Q4_0.gguf", "model-Q8_0.gguf"})
        r = self.fails("q35-test/gguf-only")
        self.assertIn("model-Q4_0.gguf", r.stderr, "the error names the GGUF files")
        self.assert_cache_consistent()

    def test_sharded_checkpoint_and_second_revision(self):
        self.ok("q35-test/sharded")
        self.assert_snapshot_files("q35-test/sharded", "sharded", set(REPO["sharded"]))
        self.ok("q35-test/tiny")
        n = len(self.blobs("q35-test/tiny"))
        r = self.ok("q35-test/tiny@v2")
        self.assertEqual(r.stdout.strip(), self.snapshot("q35-test/tiny", "v2"))
        self.assert_snapshot_files("q35-test/tiny", "tiny@v2", ENGINE_FILES, rev="v2")
        self.assertEqual(len(self.blobs("q35-test/tiny")), n + 1, "unchanged blobs are shared")
        with open(os.path.join(self.repo_dir("q35-test/tiny"), "refs", "v2")) as f:
            self.assertEqual(f.read(), self.commit("q35-test/tiny", "v2"))
        # By commit: no ref is written for a commit id.
        c = self.commit("q35-test/tiny")
        r = self.ok("q35-test/tiny@" + c, HF_HUB_OFFLINE="1")
        self.assertEqual(r.stdout.strip(), self.snapshot("q35-test/tiny"))
        self.assert_cache_consistent()

    def test_cache_written_like_huggingface_hub_is_reused(self):
        # Lay the files out as huggingface_hub's snapshot_download does.
        files = REPO["py"]
        root = self.repo_dir("q35-test/py")
        commit = self.commit("q35-test/py")
        os.makedirs(os.path.join(root, "blobs"))
        os.makedirs(os.path.join(root, "snapshots", commit))
        os.makedirs(os.path.join(root, "refs"))
        for name in ("config.json", "model.safetensors", "tokenizer.json"):
            data = files[name]
            blob = sha256(data) if name.endswith(".safetensors") else git_blob_id(data)
            with open(os.path.join(root, "blobs", blob), "wb") as f:
                f.write(data)
            os.symlink("../../blobs/" + blob, os.path.join(root, "snapshots", commit, name))
        with open(os.path.join(root, "refs", "main"), "w") as f:
            f.write(commit)
        r = self.ok("q35-test/py")
        self.assertEqual(r.stdout.strip(), self.snapshot("q35-test/py"))
        self.assertEqual(HUB.requests(contains="/resolve/"), [], "nothing downloaded again")
        # And with the snapshot links gone but the blobs kept: links only.
        shutil.rmtree(os.path.join(root, "snapshots"))
        HUB.clear_log()
        self.ok("q35-test/py")
        self.assertEqual(HUB.requests(contains="/resolve/"), [])
        self.assert_cache_consistent()

    def test_listing_without_blob_ids_falls_back_to_head(self):
        HUB.api_blobs = False
        self.ok("q35-test/head")
        heads = HUB.requests(server="hub", method="HEAD")
        self.assertEqual(len(heads), 3)
        self.assertEqual(HUB.requests(server="cdn", method="HEAD"), [],
                         "metadata comes from the hub, not the CDN")
        files = REPO["head"]
        self.assertEqual(self.blobs("q35-test/head"),
                         sorted([sha256(files["model.safetensors"]),
                                 git_blob_id(files["config.json"]),
                                 git_blob_id(files["tokenizer.json"])]))
        self.assert_cache_consistent()

    def test_progress_bar_on_a_terminal(self):
        sha = HUB.lfs_sha("q35-test/tty", "model.safetensors")
        HUB.slow[sha] = 0.005
        master, slave = pty.openpty()
        p = subprocess.Popen([Q35, "pull", "q35-test/tty"], env=self.env(),
                             stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        out = b""
        deadline = time.time() + RUN_TIMEOUT
        while time.time() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            elif p.poll() is not None:
                break
        p.communicate(timeout=RUN_TIMEOUT)
        os.close(master)
        self.assertEqual(p.returncode, 0, out)
        text = out.decode(errors="replace")
        self.assertIn("model.safetensors", text)
        self.assertIn("\r", text)
        self.assertIn("ETA", text)
        self.assertIn("100%", text)
        self.assertRegex(text, r"1\.5 MB/1\.5 MB")
        self.assertRegex(text, r"[0-9.]+ [kMG]?B/s")

    def test_bad_ids_and_hostile_listing(self):
        for bad in ("notarepo", "a/b/c", "org/name@", "org/../x", "org/name@../../etc",
                    "org/name@a..b", "org/name/../../x.gguf", "-org/name", "org/name@a b"):
            r = self.fails("--", bad)
            self.assertTrue("hub repo id" in r.stderr or "invalid" in r.stderr, r.stderr)
        r = self.fails("q35-test/evil")
        self.assertIn("unsafe file name", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "escape.safetensors")))
        self.assertFalse(os.path.exists(os.path.join(self.cache, "escape.safetensors")))


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors)
    skipped = len(result.skipped)
    print("%d passed, %d failed, %d skipped" % (result.testsRun - failed - skipped, failed, skipped))
    sys.exit(1 if failed else 0)
