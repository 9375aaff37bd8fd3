/* test_hub_units.c — the hub client's parts without a server: repo ids and
 * revisions (what is accepted, what could escape the cache), URL quoting
 * (Python's urllib.parse.quote results), hashes (published test vectors),
 * the hub listing parser on good and hostile answers, settings from the
 * environment, cache primitives (relative links, refs, locks), and
 * q35_hub_resolve on local paths and on a cache laid out by hand, offline
 * and with an unreachable hub. The wire protocol is tested by test_hub.py
 * against a fake hub. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "formats/hub_internal.h"

/* ------------------------------------------------------------ helpers */

static char *tmpdir_new(void) {
    char tmpl[] = "/tmp/q35hubunit-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static void rm_rf(const char *path) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    assert_int_equal(system(cmd), 0);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void mkdirs(const char *path) {
    q35_err e = {0};
    assert_int_equal(hub_mkdirs(path, &e), 0);
}

/* ------------------------------------------------------------ repo ids */

static void test_spec_accepts(void **state) {
    (void)state;
    hub_spec s;
    q35_err e = {0};
    assert_int_equal(hub_spec_parse("Qwen/Qwen3.5-0.8B", &s, &e), 0);
    assert_string_equal(s.repo, "Qwen/Qwen3.5-0.8B");
    assert_string_equal(s.revision, "main");
    assert_null(s.file);
    hub_spec_free(&s);

    assert_int_equal(hub_spec_parse("org/name@v1.0", &s, &e), 0);
    assert_string_equal(s.repo, "org/name");
    assert_string_equal(s.revision, "v1.0");
    hub_spec_free(&s);

    assert_int_equal(hub_spec_parse("org/name@refs/pr/1", &s, &e), 0);
    assert_string_equal(s.revision, "refs/pr/1");
    assert_null(s.file);
    hub_spec_free(&s);

    assert_int_equal(hub_spec_parse("org/name/model-Q4_0.gguf", &s, &e), 0);
    assert_string_equal(s.repo, "org/name");
    assert_string_equal(s.revision, "main");
    assert_string_equal(s.file, "model-Q4_0.gguf");
    hub_spec_free(&s);

    assert_int_equal(hub_spec_parse("org/name@dev/sub/m.gguf", &s, &e), 0);
    assert_string_equal(s.revision, "dev");
    assert_string_equal(s.file, "sub/m.gguf");
    hub_spec_free(&s);
}

static void test_spec_refuses(void **state) {
    (void)state;
    static const char *const bad[] = {
        "",
        "name",
        "a/b/c",
        "a/b@",
        "a//b",
        "/a/b",
        "a/b/",
        "a/b/../x.gguf",
        "a/b/./x.gguf",
        "a/b@../x",
        "a/b@a..b",
        "a/b@x y",
        "-a/b",
        "a-/b",
        "a/.b",
        "a--b/c",
        "a/b..c",
        "a/b/c.json", /* a file part must be a .gguf */
        "a/b@dev/x\n.gguf",
        "a/b\\c",
        "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghij/"
        "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghij", /* 101 > 96 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        hub_spec s;
        q35_err e = {0};
        if (hub_spec_parse(bad[i], &s, &e) == 0) fail_msg("accepted '%s'", bad[i]);
        assert_int_equal(e.code, Q35_EINVAL);
        assert_true(strlen(e.msg) > 0);
        assert_null(s.revision);
    }
}

static void test_names(void **state) {
    (void)state;
    assert_true(hub_filename_valid("config.json"));
    assert_true(hub_filename_valid("onnx/model.onnx"));
    assert_true(hub_filename_valid("a..b.safetensors"));
    assert_false(hub_filename_valid("../x"));
    assert_false(hub_filename_valid("a/../../x"));
    assert_false(hub_filename_valid("a/./b"));
    assert_false(hub_filename_valid("/etc/passwd"));
    assert_false(hub_filename_valid("a\\b"));
    assert_false(hub_filename_valid("a\nb"));
    assert_false(hub_filename_valid("a//b"));
    assert_false(hub_filename_valid(""));
    assert_true(hub_blob_name_valid("3ad856e469a6ffaaa3868142224198af61544e0a"));
    assert_false(hub_blob_name_valid("../x"));
    assert_false(hub_blob_name_valid("a.lock"));
    assert_false(hub_blob_name_valid(""));
    assert_true(hub_is_commit("0123456789abcdef0123456789abcdef01234567"));
    assert_false(hub_is_commit("0123456789ABCDEF0123456789abcdef01234567"));
    assert_false(hub_is_commit("main"));
}

static void test_url_quote(void **state) {
    (void)state;
    /* urllib.parse.quote("refs/pr/1", safe="") etc. */
    struct {
        const char *in, *keep, *out;
    } cases[] = {
        {"refs/pr/1", "", "refs%2Fpr%2F1"},
        {"main", "", "main"},
        {"a b/c~d_e.f-g", "/", "a%20b/c~d_e.f-g"},
        {"\xc3\xa9?#&%", "/", "%C3%A9%3F%23%26%25"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *q = hub_url_quote(cases[i].in, cases[i].keep);
        assert_string_equal(q, cases[i].out);
        free(q);
    }
}

/* ------------------------------------------------------------ hashes */

static void test_digests(void **state) {
    (void)state;
    q35_err e = {0};
    char hex[65];
    /* FIPS 180-2 test vector. */
    hub_digest *d = hub_digest_new(HUB_DIGEST_SHA256, 0, &e);
    assert_non_null(d);
    hub_digest_update(d, "a", 1);
    hub_digest_update(d, "bc", 2);
    hub_digest_final_hex(d, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    /* Final resets: the same input gives the same digest again. */
    hub_digest_update(d, "abc", 3);
    hub_digest_final_hex(d, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    hub_digest_update(d, "junk", 4);
    hub_digest_reset(d);
    hub_digest_final_hex(d, hex); /* sha256 of nothing */
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    hub_digest_free(d);

    /* `printf 'hello\n' | git hash-object --stdin` */
    d = hub_digest_new(HUB_DIGEST_GIT_BLOB, 6, &e);
    assert_non_null(d);
    hub_digest_update(d, "hello\n", 6);
    hub_digest_final_hex(d, hex);
    assert_string_equal(hex, "ce013625030ba8dba906f756967f9e9ca394464a");
    hub_digest_free(d);
    /* git's empty blob */
    d = hub_digest_new(HUB_DIGEST_GIT_BLOB, 0, &e);
    hub_digest_final_hex(d, hex);
    assert_string_equal(hex, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
    hub_digest_free(d);
}

/* ------------------------------------------------------------ listing */

#define SHA_A "2ca3d6e1a771df8c5760116b078ffac049934971132b30f8684fa02057646989"
#define OID_A "3ad856e469a6ffaaa3868142224198af61544e0a"
#define COMMIT "b71be8be01960e33e2733aeb507012fd964b2ebb"

static void test_listing_good(void **state) {
    (void)state;
    const char *json =
        "{\"id\":\"o/n\",\"sha\":\"" COMMIT "\",\"siblings\":["
        "{\"rfilename\":\"model.safetensors\",\"blobId\":\"" OID_A "\",\"size\":526136,"
        "\"lfs\":{\"sha256\":\"" SHA_A "\",\"size\":526136,\"pointerSize\":134}},"
        "{\"rfilename\":\"config.json\",\"blobId\":\"" OID_A "\",\"size\":1114},"
        "{\"rfilename\":\"README.md\"}]}";
    hub_listing l;
    q35_err e = {0};
    assert_int_equal(hub_listing_parse(json, strlen(json), &l, &e), 0);
    assert_string_equal(l.commit, COMMIT);
    assert_int_equal(l.n_files, 3);
    /* sorted by name */
    assert_string_equal(l.files[0].name, "README.md");
    assert_false(l.files[0].has_size);
    assert_string_equal(l.files[0].blob, "");
    assert_string_equal(l.files[1].name, "config.json");
    assert_string_equal(l.files[1].blob, OID_A);
    assert_string_equal(l.files[1].git_oid, OID_A);
    assert_string_equal(l.files[1].sha256, "");
    assert_int_equal(l.files[1].size, 1114);
    assert_string_equal(l.files[2].name, "model.safetensors");
    assert_string_equal(l.files[2].blob, SHA_A); /* LFS: named by sha256, not blobId */
    assert_string_equal(l.files[2].sha256, SHA_A);
    assert_string_equal(l.files[2].git_oid, "");
    assert_int_equal(l.files[2].size, 526136);
    hub_listing_free(&l);
}

static void test_listing_hostile(void **state) {
    (void)state;
    struct {
        const char *json, *msg;
    } cases[] = {
        {"not json", "not valid JSON"},
        {"[]", "commit"},
        {"{\"sha\":\"main\",\"siblings\":[]}", "commit"},
        {"{\"sha\":\"" COMMIT "\"}", "siblings"},
        {"{\"sha\":\"" COMMIT "\",\"siblings\":[1]}", "not an object"},
        {"{\"sha\":\"" COMMIT "\",\"siblings\":[{}]}", "rfilename"},
        {"{\"sha\":\"" COMMIT "\",\"siblings\":[{\"rfilename\":\"../../x\"}]}", "unsafe"},
        {"{\"sha\":\"" COMMIT "\",\"siblings\":[{\"rfilename\":\"/etc/x\"}]}", "unsafe"},
        {"{\"sha\":\"" COMMIT "\",\"siblings\":[{\"rfilename\":\"a\",\"size\":-1}]}", "bad size"},
        {"{\"sha\":\"" COMMIT "\",\"siblings\":[{\"rfilename\":\"a\",\"size\":1.5}]}", "bad size"},
        {"{\"sha\":\"" COMMIT "\",\"siblings\":[{\"rfilename\":\"a\",\"size\":1e300}]}",
         "bad size"},
        {"{\"sha\":\"" COMMIT "\",\"siblings\":[{\"rfilename\":\"a\",\"blobId\":\"../x\"}]}",
         "blobId"},
        {"{\"sha\":\"" COMMIT "\",\"siblings\":[{\"rfilename\":\"a\",\"lfs\":{\"sha256\":"
         "\"../../../../etc/passwd\"}}]}",
         "sha256"},
        {"{\"sha\":\"" COMMIT "\",\"siblings\":[{\"rfilename\":\"a\",\"lfs\":7}]}", "lfs"},
        {"{\"sha\":\"" COMMIT "\",\"siblings\":[{\"rfilename\":\"a\",\"size\":5,"
         "\"lfs\":{\"sha256\":\"" SHA_A "\",\"size\":6}}]}",
         "disagree"},
        {"{\"sha\":\"" COMMIT "\",\"siblings\":[{\"rfilename\":\"a\"},{\"rfilename\":\"a\"}]}",
         "twice"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        hub_listing l;
        q35_err e = {0};
        int rc = hub_listing_parse(cases[i].json, strlen(cases[i].json), &l, &e);
        if (rc != Q35_EFORMAT) fail_msg("case %zu accepted: %s", i, cases[i].json);
        if (!strstr(e.msg, cases[i].msg))
            fail_msg("case %zu: '%s' lacks '%s'", i, e.msg, cases[i].msg);
        assert_null(l.files);
    }
}

static void test_engine_files(void **state) {
    (void)state;
    assert_true(hub_listing_engine_file("config.json"));
    assert_true(hub_listing_engine_file("tokenizer.json"));
    assert_true(hub_listing_engine_file("chat_template.jinja"));
    assert_true(hub_listing_engine_file("model.safetensors.index.json"));
    assert_true(hub_listing_engine_file("model-00001-of-00002.safetensors"));
    assert_false(hub_listing_engine_file("onnx/model.safetensors"));
    assert_false(hub_listing_engine_file("README.md"));
    assert_false(hub_listing_engine_file("model-Q4_0.gguf"));
    assert_false(hub_listing_engine_file("pytorch_model.bin"));
    assert_false(hub_listing_engine_file(".gitattributes"));
}

/* ------------------------------------------------------------ settings */

static void clear_hf_env(void) {
    static const char *const vars[] = {"HF_ENDPOINT",
                                       "HF_HOME",
                                       "HF_HUB_CACHE",
                                       "HUGGINGFACE_HUB_CACHE",
                                       "HF_TOKEN",
                                       "HUGGING_FACE_HUB_TOKEN",
                                       "HF_TOKEN_PATH",
                                       "HF_HUB_OFFLINE",
                                       "TRANSFORMERS_OFFLINE",
                                       "HF_HUB_DOWNLOAD_TIMEOUT",
                                       "XDG_CACHE_HOME"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        unsetenv(vars[i]);
}

static void test_settings(void **state) {
    (void)state;
    char *dir = tmpdir_new();
    clear_hf_env();
    setenv("HOME", dir, 1);
    hub_settings s;
    q35_err e = {0};
    char want[512];

    assert_int_equal(hub_settings_load(&s, NULL, &e), 0);
    assert_string_equal(s.endpoint, "https://huggingface.co");
    snprintf(want, sizeof want, "%s/.cache/huggingface/hub", dir);
    assert_string_equal(s.cache_dir, want);
    assert_null(s.token);
    assert_false(s.offline);
    assert_int_equal(s.stall_timeout_s, 10);
    hub_settings_free(&s);

    /* HF_HOME moves both the cache and the token file. */
    snprintf(want, sizeof want, "%s/hf", dir);
    setenv("HF_HOME", want, 1);
    mkdirs(want);
    snprintf(want, sizeof want, "%s/hf/token", dir);
    write_file(want, "  hf_from_file\n");
    setenv("HF_ENDPOINT", "http://mirror.example/", 1);
    setenv("HF_HUB_OFFLINE", "yes", 1);
    setenv("HF_HUB_DOWNLOAD_TIMEOUT", "3", 1);
    assert_int_equal(hub_settings_load(&s, NULL, &e), 0);
    snprintf(want, sizeof want, "%s/hf/hub", dir);
    assert_string_equal(s.cache_dir, want);
    assert_string_equal(s.token, "hf_from_file");
    assert_string_equal(s.endpoint, "http://mirror.example");
    assert_true(s.offline);
    assert_int_equal(s.stall_timeout_s, 3);
    hub_settings_free(&s);

    /* HF_TOKEN beats the file, HF_HUB_CACHE beats HF_HOME, opts beat both. */
    setenv("HF_TOKEN", "hf_env", 1);
    setenv("HF_HUB_CACHE", "/somewhere/hub", 1);
    setenv("HF_HUB_OFFLINE", "0", 1);
    assert_int_equal(hub_settings_load(&s, NULL, &e), 0);
    assert_string_equal(s.token, "hf_env");
    assert_string_equal(s.cache_dir, "/somewhere/hub");
    assert_false(s.offline);
    hub_settings_free(&s);
    q35_hub_opts o = {.cache_dir = "/opt/c", .token = "", .endpoint = "https://h.example"};
    assert_int_equal(hub_settings_load(&s, &o, &e), 0);
    assert_null(s.token); /* "" sends none */
    assert_string_equal(s.cache_dir, "/opt/c");
    assert_string_equal(s.endpoint, "https://h.example");
    hub_settings_free(&s);

    /* A token that could inject a header line, a non-http endpoint. */
    setenv("HF_TOKEN", "hf_a\r\nX-Evil: 1", 1);
    assert_int_equal(hub_settings_load(&s, NULL, &e), Q35_EINVAL);
    assert_non_null(strstr(e.msg, "HF_TOKEN"));
    unsetenv("HF_TOKEN");
    setenv("HF_ENDPOINT", "file:///etc", 1);
    assert_int_equal(hub_settings_load(&s, NULL, &e), Q35_EINVAL);
    clear_hf_env();
    rm_rf(dir);
    free(dir);
}

/* ------------------------------------------------------------ cache */

static void test_cache_primitives(void **state) {
    (void)state;
    char *dir = tmpdir_new();
    hub_cache c;
    q35_err e = {0};
    assert_int_equal(hub_cache_open(&c, dir, "org/name", &e), 0);
    char want[512];
    snprintf(want, sizeof want, "%s/models--org--name", dir);
    assert_string_equal(c.repo_dir, want);
    snprintf(want, sizeof want, "%s/.locks/models--org--name", dir);
    assert_string_equal(c.lock_dir, want);

    /* Links: one "../" per directory between the link and the repo dir. */
    assert_int_equal(hub_cache_link(&c, COMMIT, "config.json", OID_A, &e), 0);
    assert_int_equal(hub_cache_link(&c, COMMIT, "a/b/c.json", OID_A, &e), 0);
    char path[600], target[256];
    snprintf(path, sizeof path, "%s/snapshots/" COMMIT "/config.json", c.repo_dir);
    ssize_t n = readlink(path, target, sizeof target - 1);
    assert_true(n > 0);
    target[n] = 0;
    assert_string_equal(target, "../../blobs/" OID_A);
    snprintf(path, sizeof path, "%s/snapshots/" COMMIT "/a/b/c.json", c.repo_dir);
    n = readlink(path, target, sizeof target - 1);
    target[n] = 0;
    assert_string_equal(target, "../../../../blobs/" OID_A);
    /* Relinking replaces. */
    assert_int_equal(hub_cache_link(&c, COMMIT, "config.json", SHA_A, &e), 0);
    snprintf(path, sizeof path, "%s/snapshots/" COMMIT "/config.json", c.repo_dir);
    n = readlink(path, target, sizeof target - 1);
    target[n] = 0;
    assert_string_equal(target, "../../blobs/" SHA_A);

    /* Refs: bare commit, nested names, read back; a commit needs no ref. */
    char commit[41];
    assert_int_equal(hub_cache_read_ref(&c, "main", commit, &e), Q35_ENOTFOUND);
    assert_int_equal(hub_cache_write_ref(&c, "refs/pr/1", COMMIT, &e), 0);
    assert_int_equal(hub_cache_read_ref(&c, "refs/pr/1", commit, &e), 0);
    assert_string_equal(commit, COMMIT);
    snprintf(path, sizeof path, "%s/refs/refs/pr/1", c.repo_dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 40);
    assert_int_equal(hub_cache_write_ref(&c, COMMIT, COMMIT, &e), 0);
    snprintf(path, sizeof path, "%s/refs/" COMMIT, c.repo_dir);
    assert_int_not_equal(stat(path, &st), 0);
    snprintf(path, sizeof path, "%s/refs/main", c.repo_dir);
    write_file(path, "not a commit");
    assert_int_equal(hub_cache_read_ref(&c, "main", commit, &e), Q35_EFORMAT);

    /* The blob lock is a real flock: another open file can't take it. */
    int fd = hub_cache_lock_blob(&c, SHA_A, &e);
    assert_true(fd >= 0);
    snprintf(path, sizeof path, "%s/" SHA_A ".lock", c.lock_dir);
    int other = open(path, O_RDWR);
    assert_true(other >= 0);
    assert_int_equal(flock(other, LOCK_EX | LOCK_NB), -1);
    assert_int_equal(errno, EWOULDBLOCK);
    hub_cache_unlock(fd);
    assert_int_equal(flock(other, LOCK_EX | LOCK_NB), 0);
    close(other);

    hub_cache_close(&c);
    rm_rf(dir);
    free(dir);
}

/* A cache as huggingface_hub leaves it, for org/name@main. */
static char *make_cache(const char *root, bool with_weights) {
    char p[600], q[600];
    snprintf(p, sizeof p, "%s/models--org--name/blobs", root);
    mkdirs(p);
    snprintf(p, sizeof p, "%s/models--org--name/snapshots/" COMMIT, root);
    mkdirs(p);
    snprintf(p, sizeof p, "%s/models--org--name/refs", root);
    mkdirs(p);
    snprintf(p, sizeof p, "%s/models--org--name/refs/main", root);
    write_file(p, COMMIT "\n"); /* tolerated, though hf writes none */
    const char *names[] = {"config.json", "model.safetensors", "m.gguf"};
    const char *blobs[] = {OID_A, SHA_A, "4a3b"};
    for (int i = 0; i < 3; i++) {
        if (!with_weights && i == 1) continue;
        snprintf(p, sizeof p, "%s/models--org--name/blobs/%s", root, blobs[i]);
        write_file(p, names[i]);
        snprintf(q, sizeof q, "%s/models--org--name/snapshots/" COMMIT "/%s", root, names[i]);
        snprintf(p, sizeof p, "../../blobs/%s", blobs[i]);
        assert_int_equal(symlink(p, q), 0);
    }
    snprintf(p, sizeof p, "%s/models--org--name/snapshots/" COMMIT, root);
    return strdup(p);
}

static void test_resolve_local_and_bad(void **state) {
    (void)state;
    char *dir = tmpdir_new();
    char *out = NULL;
    q35_err e = {0};
    assert_int_equal(q35_hub_resolve(dir, NULL, &out, &e), 0);
    assert_string_equal(out, dir); /* a local path comes back as is */
    free(out);
    char file[600];
    snprintf(file, sizeof file, "%s/x.gguf", dir);
    write_file(file, "GGUF");
    assert_int_equal(q35_hub_resolve(file, NULL, &out, &e), 0);
    assert_string_equal(out, file);
    free(out);

    assert_int_equal(q35_hub_resolve("./no/such/dir", NULL, &out, &e), Q35_ENOTFOUND);
    assert_non_null(strstr(e.msg, "no such file"));
    assert_null(out);
    assert_int_equal(q35_hub_resolve("just-a-name", NULL, &out, &e), Q35_ENOTFOUND);
    assert_non_null(strstr(e.msg, "hub repo id"));
    assert_int_equal(q35_hub_resolve("", NULL, &out, &e), Q35_EINVAL);
    assert_int_equal(q35_hub_resolve(NULL, NULL, &out, NULL), Q35_EINVAL);
    assert_int_equal(q35_hub_resolve(dir, NULL, NULL, &e), Q35_EINVAL);
    rm_rf(dir);
    free(dir);
}

static void test_resolve_from_cache(void **state) {
    (void)state;
    clear_hf_env();
    char *root = tmpdir_new();
    char *snap = make_cache(root, true);
    char *out = NULL;
    q35_err e = {0};
    q35_hub_opts o = {.cache_dir = root, .offline = true, .quiet = true};

    assert_int_equal(q35_hub_resolve("org/name", &o, &out, &e), 0);
    assert_string_equal(out, snap);
    free(out);
    assert_int_equal(q35_hub_resolve("org/name@" COMMIT, &o, &out, &e), 0);
    assert_string_equal(out, snap);
    free(out);
    assert_int_equal(q35_hub_resolve("org/name/m.gguf", &o, &out, &e), 0);
    char want[700];
    snprintf(want, sizeof want, "%s/m.gguf", snap);
    assert_string_equal(out, want);
    free(out);

    /* Misses: a revision never fetched, a file not there. */
    assert_int_equal(q35_hub_resolve("org/name@dev", &o, &out, &e), Q35_ENOTFOUND);
    assert_non_null(strstr(e.msg, "offline"));
    assert_int_equal(q35_hub_resolve("org/name/other.gguf", &o, &out, &e), Q35_ENOTFOUND);
    assert_non_null(strstr(e.msg, "other.gguf"));
    assert_int_equal(q35_hub_resolve("org/other", &o, &out, &e), Q35_ENOTFOUND);
    assert_null(out);

    /* Not offline, but the hub is unreachable: the cache answers. */
    q35_hub_opts on = {.cache_dir = root, .endpoint = "http://127.0.0.1:1", .quiet = true};
    q35_hub_stats st;
    assert_int_equal(q35_hub_pull("org/name", &on, &out, &st, &e), 0);
    assert_string_equal(out, snap);
    assert_true(st.cache_only);
    assert_string_equal(st.commit, COMMIT);
    assert_int_equal(st.n_files, 2); /* config.json, model.safetensors */
    free(out);
    assert_int_equal(q35_hub_pull("org/other", &on, &out, &st, &e), Q35_ENET);
    assert_non_null(strstr(e.msg, "cannot reach the hub"));
    assert_null(out);

    free(snap);
    rm_rf(root);
    free(root);
}

static void test_incomplete_snapshot_is_a_miss(void **state) {
    (void)state;
    clear_hf_env();
    char *root = tmpdir_new();
    char *snap = make_cache(root, false); /* config.json but no weights */
    char *out = NULL;
    q35_err e = {0};
    q35_hub_opts o = {.cache_dir = root, .offline = true, .quiet = true};
    assert_int_equal(q35_hub_resolve("org/name", &o, &out, &e), Q35_ENOTFOUND);
    assert_non_null(strstr(e.msg, "safetensors"));

    /* A sharded index naming a shard that is not there. */
    char p[700];
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", snap);
    write_file(p, "{\"weight_map\": {\"a\": \"m-1.safetensors\", \"b\": \"m-2.safetensors\"}}");
    snprintf(p, sizeof p, "%s/m-1.safetensors", snap);
    write_file(p, "x");
    assert_int_equal(q35_hub_resolve("org/name", &o, &out, &e), Q35_ENOTFOUND);
    assert_non_null(strstr(e.msg, "m-2.safetensors"));
    snprintf(p, sizeof p, "%s/m-2.safetensors", snap);
    write_file(p, "x");
    assert_int_equal(q35_hub_resolve("org/name", &o, &out, &e), 0);
    free(out);
    free(snap);
    rm_rf(root);
    free(root);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_accepts),
        cmocka_unit_test(test_spec_refuses),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_url_quote),
        cmocka_unit_test(test_digests),
        cmocka_unit_test(test_listing_good),
        cmocka_unit_test(test_listing_hostile),
        cmocka_unit_test(test_engine_files),
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_cache_primitives),
        cmocka_unit_test(test_resolve_local_and_bad),
        cmocka_unit_test(test_resolve_from_cache),
        cmocka_unit_test(test_incomplete_snapshot_is_a_miss),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
