/* test_gate.c — srv_gate_check_head, the check of a request head before
 * libmicrohttpd sees it: good heads pass at their exact length (also fed
 * one byte at a time: every prefix asks for more, never fails), each rule
 * gives its status and code, the size limits hold at their edges, and
 * random bytes never make it read past n (ASan) or crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/gate.h"

static const srv_gate_limits LIM = {
    .max_head = 1024, .max_line = 256, .max_body = 1000, .timeout_ms = 1000, .max_pending = 4};

/* The check over an exact copy of s (so that ASan sees reads past n). */
static int check(const char *s, size_t n, size_t *head, srv_error *err) {
    char *b = malloc(n ? n : 1);
    memcpy(b, s, n);
    int rc = srv_gate_check_head(b, n, &LIM, head, err);
    free(b);
    return rc;
}

static void passes_whole_and_in_pieces(void **st) {
    const char *good[] = {
        "GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /v1/chat/completions HTTP/1.0\r\nContent-Length: 1000\r\n\r\n",
        "\r\nGET / HTTP/1.1\nHost: x\n\n", /* leading empty line, bare LF */
        "GET / HTTP/1.1\r\nX-A: 1\r\n  folded\r\nTransfer-Encoding: Chunked\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        size_t n = strlen(good[i]), head = 0;
        srv_error err = {0};
        assert_int_equal(check(good[i], n, &head, &err), 0);
        assert_int_equal(head, n);
        /* a body after the head is not part of it */
        char buf[512];
        snprintf(buf, sizeof buf, "%s{\"a\":1}", good[i]);
        assert_int_equal(check(buf, strlen(buf), &head, &err), 0);
        assert_int_equal(head, n);
        for (size_t k = 0; k < n; k++)
            assert_int_equal(check(good[i], k, &head, &err), -1);
    }
}

static void each_rule(void **st) {
    struct {
        const char *head;
        int status;
        const char *code;
    } bad[] = {
        {"GARBAGE\r\n\r\n", 400, "bad_request"},
        {"GET /v1/models\r\n\r\n", 400, "bad_request"},
        {"GET  /v1/models HTTP/1.1\r\n\r\n", 400, "bad_request"},
        {"GE(T / HTTP/1.1\r\n\r\n", 400, "bad_request"},
        {"GET / HTTP/1.1 \r\n\r\n", 400, "bad_request"},
        {"GET / HTTX/1.1\r\n\r\n", 400, "bad_request"},
        {"GET / HTTP/2.0\r\n\r\n", 505, "http_version_not_supported"},
        {"GET / HTTP/1.2\r\n\r\n", 505, "http_version_not_supported"},
        {"GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400, "bad_request"},
        {"GET / HTTP/1.1\r\nBad Name: y\r\n\r\n", 400, "bad_request"},
        {"GET / HTTP/1.1\r\n: empty name\r\n\r\n", 400, "bad_request"},
        {"GET / HTTP/1.1\r\n folded first\r\n\r\n", 400, "bad_request"},
        {"GET / HTTP/1.1\r\nContent-Length: 12x\r\n\r\n", 400, "bad_request"},
        {"GET / HTTP/1.1\r\nContent-Length:\r\n\r\n", 400, "bad_request"},
        {"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400, "bad_request"},
        {"GET / HTTP/1.1\r\nContent-Length: 1001\r\n\r\n", 413, "request_too_large"},
        {"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999999\r\n\r\n", 413,
         "request_too_large"},
        {"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "not_implemented"},
        {"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n", 400,
         "bad_request"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        size_t head = 0;
        srv_error err = {0};
        int rc = check(bad[i].head, strlen(bad[i].head), &head, &err);
        if (rc != bad[i].status) fprintf(stderr, "case %zu: %s -> %d\n", i, bad[i].head, rc);
        assert_int_equal(rc, bad[i].status);
        assert_int_equal(err.status, bad[i].status);
        assert_string_equal(err.code, bad[i].code);
        assert_true(err.message[0] != 0);
    }
}

static void size_limits(void **st) {
    char buf[4096];
    size_t head = 0;
    srv_error err = {0};
    /* a request line of exactly max_line passes, one more is 414 */
    for (int extra = 0; extra < 2; extra++) {
        size_t line = LIM.max_line + (size_t)extra, t = line - strlen("GET  HTTP/1.1");
        memcpy(buf, "GET ", 4);
        buf[4] = '/';
        memset(buf + 5, 'a', t - 1);
        memcpy(buf + 4 + t, " HTTP/1.1\r\n\r\n", 13);
        size_t n = 4 + t + 13;
        assert_int_equal(n, line + 4);
        int rc = check(buf, n, &head, &err);
        assert_int_equal(rc, extra ? 414 : 0);
        if (extra) assert_string_equal(err.code, "uri_too_long");
    }
    /* an unfinished request line longer than max_line is 414 at once */
    memset(buf, 'a', 600);
    memcpy(buf, "GET /", 5);
    assert_int_equal(check(buf, 600, &head, &err), 414);
    /* headers: a head of exactly max_head passes, one byte more is 431,
     * and an unfinished head that reaches max_head is 431 */
    const char *start = "GET / HTTP/1.1\r\nX: ";
    size_t fill = LIM.max_head - strlen(start) - 4;
    memcpy(buf, start, strlen(start));
    memset(buf + strlen(start), 'v', fill);
    memcpy(buf + strlen(start) + fill, "\r\n\r\n", 4);
    assert_int_equal(check(buf, LIM.max_head, &head, &err), 0);
    assert_int_equal(head, LIM.max_head);
    memset(buf + strlen(start), 'v', fill + 1);
    memcpy(buf + strlen(start) + fill + 1, "\r\n\r\n", 4);
    assert_int_equal(check(buf, LIM.max_head + 1, &head, &err), 431);
    assert_string_equal(err.code, "headers_too_large");
    assert_int_equal(check(buf, LIM.max_head, &head, &err), 431);
    assert_int_equal(check(buf, LIM.max_head - 8, &head, &err), -1);
}

static void random_bytes(void **st) {
    uint32_t x = 12345;
    char buf[1500];
    const char *seed = "POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 10\r\n\r\n";
    for (int it = 0; it < 20000; it++) {
        size_t n = (size_t)(it % 1500);
        for (size_t i = 0; i < n; i++) {
            x = x * 1664525u + 1013904223u;
            buf[i] = (it & 1) && i < strlen(seed) && (x >> 28) ? seed[i] : (char)(x >> 24);
        }
        size_t head = 0;
        srv_error err = {0};
        int rc = check(buf, n, &head, &err);
        assert_true(rc == -1 || rc == 0 || (rc >= 400 && rc < 600));
        if (rc == 0) assert_true(head <= n && head <= LIM.max_head);
        if (rc > 0) assert_int_equal(err.status, rc);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(passes_whole_and_in_pieces),
        cmocka_unit_test(each_rule),
        cmocka_unit_test(size_limits),
        cmocka_unit_test(random_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
