/* cmd_convert.c — `q35 convert SRC DST --type q8|q4|bf16|f16|f32`: any model
 * q35 loads (checkpoint directory, MLX directory, .gguf file, hub id)
 * written as a GGUF file in llama.cpp's qwen35 layout, with its tokenizer
 * and chat template, readable by q35 and by llama.cpp without the source.
 * The file carries q35.convert.version and q35.convert.source. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "core/err.h"
#include "formats/gguf.h"
#include "model/load_gguf.h"
#include "model/save_gguf.h"
#include "text/tokenizer_gguf_write.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: q35 convert SRC DST --type q8|q4|bf16|f16|f32 [options]\n"
            "  Writes the model SRC (a checkpoint directory, an MLX directory, a .gguf file or\n"
            "  a hub id) to DST as a GGUF file in llama.cpp's qwen35 layout, with its tokenizer\n"
            "  and chat template; q35 and llama.cpp load it without the source.\n"
            "  --type T          matrices (embedding and output head included) as Q8_0, Q4_0\n"
            "                    (ggml's 32-weight blocks), BF16, F16 or F32; a matrix whose\n"
            "                    row length is not a multiple of 32 stays BF16 (F16 if stored\n"
            "                    so). Norms, conv taps and DeltaNet gates are always F32.\n"
            "  --output-type T   the output head (the embedding when tied) as T instead\n"
            "                    (e.g. q4 with --output-type q8 keeps the head more exact)\n"
            "  --embed-type T    the embedding of a model with an untied head as T instead\n"
            "  -q, --quiet       print nothing but errors\n"
            "  DST is written to a temporary file beside it and renamed when complete.\n");
}

static bool parse_type(const char *s, q35_dtype *out) {
    static const struct {
        const char *name;
        q35_dtype d;
    } names[] = {{"q8", Q35_DT_Q8_0},   {"q8_0", Q35_DT_Q8_0}, {"q4", Q35_DT_Q4_0},
                 {"q4_0", Q35_DT_Q4_0}, {"bf16", Q35_DT_BF16}, {"f16", Q35_DT_F16},
                 {"f32", Q35_DT_F32}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcasecmp(s, names[i].name)) {
            *out = names[i].d;
            return true;
        }
    return false;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Fails early, before the model is read, when DST cannot be written. */
static int check_destination(const char *dst) {
    struct stat st;
    if (stat(dst, &st) == 0 && S_ISDIR(st.st_mode))
        return cli_fail("convert", "%s: is a directory (give a file name, e.g. model-q8.gguf)",
                        dst);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", dst);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = 0;
    else
        *slash = 0;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return cli_fail("convert", "%s: the directory %s does not exist", dst, dir);
    if (access(dir, W_OK | X_OK) != 0)
        return cli_fail("convert", "%s: cannot write in %s: %s", dst, dir, strerror(errno));
    return 0;
}

/* general.name: SRC's last path component ("Qwen3.5-0.8B" of a hub id or
 * a directory, "model" of model.gguf), no revision or trailing slash. */
static void model_name(const char *src, char *out, size_t n) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", src);
    size_t len = strlen(buf);
    while (len > 1 && buf[len - 1] == '/')
        buf[--len] = 0;
    char *base = strrchr(buf, '/');
    base = base ? base + 1 : buf;
    char *at = strchr(base, '@');
    if (at) *at = 0;
    len = strlen(base);
    if (len > 5 && !strcasecmp(base + len - 5, ".gguf")) len -= 5;
    if (len >= n) len = n - 1;
    memcpy(out, base, len);
    out[len] = 0;
}

static bool file_exists(const char *dir, const char *name) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    return stat(path, &st) == 0;
}

/* The tokenizer.* (and general.*) metadata that travels with the weights. */
static int source_metadata(const char *local, const q35_model *m, bool quiet, q35_gguf_kvs *kvs,
                           q35_err *e) {
    if (q35_path_is_gguf(local)) {
        q35_gguf g;
        int rc = q35_gguf_open(&g, local, e);
        if (rc) return rc;
        rc = q35_gguf_kvs_carry_source(kvs, &g, e);
        if (!rc && !quiet && !q35_gguf_find(&g, "tokenizer.ggml.tokens"))
            fprintf(stderr, "q35 convert: warning: %s has no tokenizer; neither will the output\n",
                    local);
        q35_gguf_close(&g);
        return rc;
    }
    if (!file_exists(local, "tokenizer.json")) {
        if (!quiet)
            fprintf(stderr,
                    "q35 convert: warning: %s has no tokenizer.json; the GGUF will hold the "
                    "weights but no tokenizer\n",
                    local);
        return Q35_OK;
    }
    q35_tokenizer *tok = q35_tokenizer_load(local, e);
    if (!tok) return e->code;
    char *tmpl = NULL;
    int rc = q35_chat_template_of_dir(local, &tmpl, e);
    if (!rc) rc = q35_tokenizer_to_gguf_kvs(tok, (size_t)m->cfg.vocab_size, tmpl, kvs, e);
    if (rc && e->code == Q35_EINVAL) q35_err_prefix(e, "%s/tokenizer.json", local);
    if (!rc && !tmpl && !quiet)
        fprintf(stderr, "q35 convert: warning: %s has no chat template\n", local);
    free(tmpl);
    q35_tokenizer_free(tok);
    return rc;
}

static void progress(void *user, int done, int total) {
    (void)user;
    fprintf(stderr, "\rq35 convert: tensor %d/%d", done, total);
    if (done == total) fputc('\n', stderr);
}

static void print_summary(const char *dst, q35_dtype type, const q35_gguf_save_stats *st,
                          double secs) {
    printf("wrote %s: GGUF qwen35, %s, %d tensors, %.2f MiB in %.2f s\n", dst, q35_dtype_name(type),
           st->n_tensors, (double)st->file_bytes / 1048576.0, secs);
    for (int t = 0; t < Q35_DT_COUNT; t++)
        if (st->n_by_type[t])
            printf("  %-5s %5d tensors %10.2f MiB\n", q35_dtype_name((q35_dtype)t),
                   st->n_by_type[t], (double)st->bytes_by_type[t] / 1048576.0);
    if (st->n_fallbacks) {
        printf("  %d matri%s kept unquantized (row length not a multiple of 32):\n",
               st->n_fallbacks, st->n_fallbacks == 1 ? "x" : "ces");
        for (int i = 0; i < st->n_fallbacks && i < Q35_SAVE_MAX_FALLBACKS; i++)
            printf("    %s\n", st->fallbacks[i]);
        if (st->n_fallbacks > Q35_SAVE_MAX_FALLBACKS)
            printf("    ... and %d more\n", st->n_fallbacks - Q35_SAVE_MAX_FALLBACKS);
    }
    if (st->n_dropped)
        printf("  not written: %d mtp.* tensors (multi-token prediction; llama.cpp's qwen35 "
               "layout has no place for them)\n",
               st->n_dropped);
}

int cmd_convert(int argc, char **argv) {
    q35_gguf_save_opts so = {
        .type = Q35_DT_COUNT, .output_type = Q35_DT_SAME, .embed_type = Q35_DT_SAME};
    bool quiet = false, have_type = false;
    static const struct option opts[] = {{"type", required_argument, 0, 't'},
                                         {"output-type", required_argument, 0, 'o'},
                                         {"embed-type", required_argument, 0, 'E'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "t:qh", opts, NULL)) != -1) {
        q35_dtype *target = c == 't' ? &so.type : c == 'o' ? &so.output_type : &so.embed_type;
        switch (c) {
        case 't':
        case 'o':
        case 'E':
            if (!parse_type(optarg, target)) {
                fprintf(stderr, "q35 convert: unknown type '%s' (use q8, q4, bf16, f16 or f32)\n",
                        optarg);
                return 2;
            }
            have_type |= c == 't';
            break;
        case 'q': quiet = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (argc - optind != 2) {
        fprintf(stderr, "q35 convert: give SRC and DST\n");
        usage(stderr);
        return 2;
    }
    if (!have_type) {
        fprintf(stderr, "q35 convert: give --type q8|q4|bf16|f16|f32\n");
        return 2;
    }
    const char *src = argv[optind], *dst = argv[optind + 1];
    if (check_destination(dst)) return 1;

    double t0 = now_s();
    q35_err e = {0};
    char *local = NULL;
    if (q35_hub_resolve(src, NULL, &local, &e)) return cli_fail_err("convert", &e);
    q35_load_opts lo = {.n_threads = 1};
    q35_model *m = q35_model_load(local, &lo, &e);
    if (!m) {
        free(local);
        return cli_fail_err("convert", &e);
    }
    q35_gguf_kvs kvs = {0};
    char name[256];
    model_name(src, name, sizeof name);
    so.name = name;
    so.source = src;
    so.extra = &kvs;
    if (!quiet && isatty(fileno(stderr))) so.progress = progress;
    int rc = source_metadata(local, m, quiet, &kvs, &e);
    if (!rc) rc = q35_rope_sections_of_source(local, so.rope_sections, &so.n_rope_sections, &e);
    if (!rc && so.n_rope_sections == 0 && !quiet)
        fprintf(stderr,
                "q35 convert: warning: %s gives no M-RoPE sections "
                "(qwen35.rope.dimension_sections); llama.cpp needs them\n",
                src);
    if (q35_gguf_kvs_find(&kvs, "general.name")) so.name = NULL; /* the source's own */
    q35_gguf_save_stats st;
    if (!rc) rc = q35_model_save_gguf(m, dst, &so, &st, &e);
    q35_gguf_kvs_free(&kvs);
    q35_model_free(m);
    free(local);
    if (rc) return cli_fail_err("convert", &e);
    if (!quiet) print_summary(dst, so.type, &st, now_s() - t0);
    return 0;
}
