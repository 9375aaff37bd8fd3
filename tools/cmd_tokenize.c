/* cmd_tokenize.c — `q35 tokenize` (text to ids) and `q35 detokenize` (ids
 * to text), SPEC §8. -m takes a model directory, a tokenizer.json, a .gguf
 * file or a hub id. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "text/tokenizer.h"

#define MAX_INPUT_BYTES ((size_t)1 << 30)

static void tokenize_usage(FILE *f) {
    fprintf(f, "usage: q35 tokenize -m MODEL [--no-special | --no-added]\n"
               "                    (--text S | --file F)\n"
               "  Prints the token ids of the text, separated by spaces. MODEL is a model\n"
               "  directory, a tokenizer.json, a .gguf file or a hub id.\n"
               "  --no-special  special added tokens (<|im_end|>, ...) are plain text\n"
               "                (HF split_special_tokens); <think> etc. still match\n"
               "  --no-added    no added token is matched at all\n"
               "  --file F      read the text from F ('-' for stdin), any bytes\n"
               "  --timing      print load time and encode speed to stderr\n"
               "  --pieces      print what BPE is given instead of ids: each pre-tokenized\n"
               "                piece as hex bytes, each added token as #ID\n");
}

static void detokenize_usage(FILE *f) {
    fprintf(f, "usage: q35 detokenize -m MODEL --ids 1,2,3 [--skip-special]\n"
               "  Prints the text of the ids, exactly (no newline added).\n");
}

/* -m: a model directory, a tokenizer.json, a .gguf, or a hub id (pulled
 * into the HF cache once, like `q35 run -m`). */
static q35_tokenizer *load_tokenizer(const char *model, q35_err *e) {
    char *local = NULL;
    if (q35_hub_resolve(model, NULL, &local, e)) return NULL;
    q35_tokenizer *t = q35_tokenizer_load(local, e);
    free(local);
    return t;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int print_piece(void *ud, const char *p, size_t len, int32_t added_id) {
    (void)ud;
    if (added_id >= 0) {
        printf("#%d ", added_id);
        return 0;
    }
    for (size_t i = 0; i < len; i++)
        printf("%02x", (unsigned char)p[i]);
    putchar(' ');
    return 0;
}

/* Reads all of a stream (stdin) into a heap buffer. */
static char *read_stream(FILE *fp, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, fp);
        if (n < cap) break;
        if (cap >= MAX_INPUT_BYTES) {
            free(buf);
            return NULL;
        }
        char *b = realloc(buf, cap *= 2);
        if (!b) free(buf);
        buf = b;
    }
    if (buf && ferror(fp)) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *text = NULL, *file = NULL;
    q35_added_mode mode = Q35_ADDED_MATCH;
    bool timing = false, pieces = false;
    static const struct option opts[] = {{"pieces", no_argument, 0, 'P'},
                                         {"model", required_argument, 0, 'm'},
                                         {"timing", no_argument, 0, 'T'},
                                         {"text", required_argument, 0, 't'},
                                         {"file", required_argument, 0, 'f'},
                                         {"no-special", no_argument, 0, 's'},
                                         {"no-added", no_argument, 0, 'a'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:t:f:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 't': text = optarg; break;
        case 'f': file = optarg; break;
        case 's': mode = Q35_ADDED_SPECIAL_AS_TEXT; break;
        case 'a': mode = Q35_ADDED_AS_TEXT; break;
        case 'T': timing = true; break;
        case 'P': pieces = true; break;
        case 'h': tokenize_usage(stdout); return 0;
        default: tokenize_usage(stderr); return 2;
        }
    }
    if (!model || !!text == !!file || optind != argc) {
        tokenize_usage(stderr);
        return 2;
    }
    q35_err e = {0};
    char *buf = NULL;
    size_t len;
    if (file) {
        if (!strcmp(file, "-")) {
            buf = read_stream(stdin, &len);
            if (!buf) return cli_fail("tokenize", "cannot read stdin");
        } else {
            FILE *fp = fopen(file, "rb");
            if (!fp) return cli_fail("tokenize", "%s: cannot open", file);
            buf = read_stream(fp, &len);
            fclose(fp);
            if (!buf) return cli_fail("tokenize", "%s: cannot read", file);
        }
        text = buf;
    } else {
        len = strlen(text);
    }
    double t0 = now_s();
    q35_tokenizer *tok = load_tokenizer(model, &e);
    if (!tok) {
        free(buf);
        return cli_fail_err("tokenize", &e);
    }
    double t1 = now_s();
    if (pieces) {
        int rc = q35_tok_pretokenize(tok, text, len, mode, print_piece, NULL, &e);
        putchar('\n');
        free(buf);
        q35_tokenizer_free(tok);
        if (rc) return cli_fail_err("tokenize", &e);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = q35_tokenize(tok, text, len, mode, &ids, &n, &e);
    double t2 = now_s();
    free(buf);
    if (timing)
        fprintf(stderr,
                "load %.1f ms (%zu ids); encode %zu bytes -> %zu tokens in %.1f ms (%.2f MB/s)\n",
                (t1 - t0) * 1e3, q35_tokenizer_n_vocab(tok), len, n, (t2 - t1) * 1e3,
                (double)len / 1e6 / (t2 - t1 > 0 ? t2 - t1 : 1e-9));
    q35_tokenizer_free(tok);
    if (rc) return cli_fail_err("tokenize", &e);
    for (size_t i = 0; i < n; i++)
        printf(i ? " %d" : "%d", ids[i]);
    putchar('\n');
    free(ids);
    return fflush(stdout) == 0 ? 0 : 1;
}

int cmd_detokenize(int argc, char **argv) {
    const char *model = NULL, *ids_arg = NULL;
    bool skip = false;
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"ids", required_argument, 0, 'i'},
                                         {"skip-special", no_argument, 0, 's'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:i:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'i': ids_arg = optarg; break;
        case 's': skip = true; break;
        case 'h': detokenize_usage(stdout); return 0;
        default: detokenize_usage(stderr); return 2;
        }
    }
    if (!model || !ids_arg || optind != argc) {
        detokenize_usage(stderr);
        return 2;
    }
    char msg[128];
    int n = 0;
    int32_t *ids = cli_parse_ids(ids_arg, &n, msg, sizeof msg);
    if (!ids) return cli_fail("detokenize", "--ids: %s", msg);
    q35_err e = {0};
    q35_tokenizer *tok = load_tokenizer(model, &e);
    if (!tok) {
        free(ids);
        return cli_fail_err("detokenize", &e);
    }
    char *out = NULL;
    size_t len = 0;
    int rc = q35_detokenize(tok, ids, (size_t)n, skip, &out, &len, &e);
    free(ids);
    q35_tokenizer_free(tok);
    if (rc) return cli_fail_err("detokenize", &e);
    fwrite(out, 1, len, stdout);
    free(out);
    return fflush(stdout) == 0 ? 0 : 1;
}
