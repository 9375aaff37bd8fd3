/* cmd_serve.c — `q35 serve`: the OpenAI-compatible HTTP server (SPEC §8,
 * §9) until SIGINT or SIGTERM. The server itself is src/server/. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "server/server.h"

static const char USAGE[] =
    "usage: q35 serve -m MODEL [options]\n"
    "  -m, --model M          model directory, .gguf file or hub id\n"
    "      --host H           address to bind (default 127.0.0.1; 0.0.0.0 for all)\n"
    "      --port P           port (default 8080; 0 = any free port)\n"
    "      --api-key K        require 'Authorization: Bearer K'\n"
    "      --api-key-file F   the key, from the first line of F\n"
    "      --parallel N       requests decoding at once (default 4)\n"
    "      --queue N          requests waiting beyond them (default 16; then 503)\n"
    "  -c, --ctx N            context positions per request (default 4096)\n"
    "      --cache-mb N       prompt cache size in MiB (default 1024; 0 = off)\n"
    "  -t, --threads N        compute threads (default: all cores)\n"
    "      --model-name NAME  the model id clients use (default: the path's last part)\n"
    "      --max-tokens N     largest max_tokens a request may ask (default 4096)\n"
    "      --max-prompt N     largest prompt in tokens (default: context - 1)\n"
    "      --max-body BYTES   largest request body (default 4194304)\n"
    "      --timeout S        idle connection timeout in seconds (default 600)\n"
    "      --quiet            no request log\n" CLI_QUANT_HELP;

static char *read_key_file(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char line[4096];
    char *k = NULL;
    if (fgets(line, sizeof line, f)) {
        size_t n = strcspn(line, "\r\n");
        line[n] = 0;
        k = strdup(line);
    }
    fclose(f);
    return k;
}

int cmd_serve(int argc, char **argv) {
    q35_server_opts o = {.port = 8080};
    char *key_owned = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(USAGE, stdout);
            return 0;
        }
        if (!strcmp(a, "--quiet")) {
            o.quiet = true;
            continue;
        }
        if (!v) return cli_fail("serve", "%s needs a value\n%s", a, USAGE);
        i++;
        if (!strcmp(a, "-m") || !strcmp(a, "--model"))
            o.model_path = v;
        else if (!strcmp(a, "--host"))
            o.host = v;
        else if (!strcmp(a, "--api-key"))
            o.api_key = v;
        else if (!strcmp(a, "--api-key-file")) {
            free(key_owned);
            key_owned = read_key_file(v);
            if (!key_owned || !key_owned[0])
                return cli_fail("serve", "cannot read a key from %s", v);
            o.api_key = key_owned;
        } else if (!strcmp(a, "--model-name"))
            o.model_name = v;
        else if (!strcmp(a, "--quant")) {
            if (!cli_parse_quant(v, &o.weights)) return cli_fail("serve", "bad --quant %s", v);
        } else {
            long lo = 0, hi = 1L << 30;
            if (!cli_parse_int(v, lo, hi, &n))
                return cli_fail("serve", "bad value for %s: %s", a, v);
            if (!strcmp(a, "--port"))
                o.port = (int)n;
            else if (!strcmp(a, "--parallel"))
                o.parallel = (int)n;
            else if (!strcmp(a, "--queue"))
                o.queue = n ? (int)n : -1;
            else if (!strcmp(a, "-c") || !strcmp(a, "--ctx"))
                o.n_ctx = (int)n;
            else if (!strcmp(a, "--cache-mb"))
                o.cache_bytes = n ? (size_t)n << 20 : 1; /* 0: nothing fits, no cache */
            else if (!strcmp(a, "-t") || !strcmp(a, "--threads"))
                o.n_threads = (int)n;
            else if (!strcmp(a, "--max-tokens"))
                o.max_tokens = (int)n;
            else if (!strcmp(a, "--max-prompt"))
                o.max_prompt_tokens = (int)n;
            else if (!strcmp(a, "--max-body"))
                o.max_body = (size_t)n;
            else if (!strcmp(a, "--timeout"))
                o.timeout_s = (int)n;
            else
                return cli_fail("serve", "unknown option %s\n%s", a, USAGE);
        }
    }
    if (!o.model_path) return cli_fail("serve", "no model: -m MODEL\n%s", USAGE);
    if (o.port > 65535) return cli_fail("serve", "--port %d is outside 0..65535", o.port);

    /* the signals are taken synchronously, before any thread starts */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    q35_err e = {0};
    q35_server *s = q35_server_start(&o, &e);
    if (!s) {
        free(key_owned);
        return cli_fail_err("serve", &e);
    }
    fprintf(stderr, "q35 serve: listening on http://%s:%d/v1 (loading %s)%s\n",
            o.host ? o.host : "127.0.0.1", q35_server_port(s), o.model_path,
            o.api_key ? ", API key required" : "");
    fflush(stderr);
    /* until a signal, or a model that failed to load (nothing to serve) */
    int sig = -1, ready = 0;
    while (sig < 0) {
        struct timespec tick = {0, 100 * 1000 * 1000};
        sig = sigtimedwait(&set, NULL, &tick);
        if (sig < 0 && (ready = q35_server_ready(s, &e)) < 0) break;
    }
    if (sig >= 0) fprintf(stderr, "q35 serve: stopping (signal %d)\n", sig);
    ready = q35_server_ready(s, &e);
    q35_server_stop(s);
    free(key_owned);
    return ready < 0 ? 1 : 0;
}
