/* cmd_info.c — `q35 info -m M [--json]`: what a model is (shape, format,
 * weight types, sizes) and where its files live. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "model/model.h"

typedef struct source_file {
    const char *path;
    size_t bytes;
    bool mapped;
} source_file;

static void usage(FILE *f) {
    fprintf(f, "usage: q35 info -m MODEL [--json] [--threads N] [--quant q8|q4]\n"
               "  Prints the model's format, shape, weight types, sizes and files.\n");
}

/* Counts the matrices by type to report what the weights really are. */
static void count_types(q35_model *m, size_t bytes[Q35_DT_COUNT]) {
    memset(bytes, 0, sizeof(size_t) * Q35_DT_COUNT);
    q35_tensor *mats[Q35_MAX_MATRICES]; /* 24 KB */
    int n = q35_model_matrices(m, mats, NULL);
    for (int i = 0; i < n; i++)
        bytes[q35_dtype_x16_base(mats[i]->dtype)] += q35_tensor_bytes(mats[i]); /* as in the file */
}

int cmd_info(int argc, char **argv) {
    const char *model = NULL;
    int json = 0;
    long threads = 0;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},   {"json", no_argument, 0, 'j'},
        {"threads", required_argument, 0, 't'}, {"quant", required_argument, 0, 'Q'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    q35_weight_format quant = Q35_WEIGHTS_AS_STORED;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'j': json = 1; break;
        case 't':
            if (!cli_parse_int(optarg, 1, 1024, &threads)) return cli_fail("info", "bad --threads");
            break;
        case 'Q':
            if (!cli_parse_quant(optarg, &quant))
                return cli_fail("info", "bad --quant '%s' (q8, q4 or none)", optarg);
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!model) {
        usage(stderr);
        return 2;
    }
    q35_err e = {0};
    q35_load_opts lo = {.n_threads = (int)threads, .weights = quant};
    q35_model *m = q35_model_load(model, &lo, &e);
    if (!m) return cli_fail_err("info", &e);
    const q35_config *cf = &m->cfg;
    q35_model_info in;
    q35_model_get_info(m, &in);
    size_t bytes[Q35_DT_COUNT];
    count_types(m, bytes);
    /* Where the weights came from: the mapped files, or the one file that
     * was read and converted entirely at load (a quantized GGUF). */
    source_file one, *src = &one;
    int n_src = 0;
    if (m->n_files) {
        src = calloc((size_t)m->n_files, sizeof *src);
        if (!src) {
            q35_model_free(m);
            return cli_fail("info", "out of memory");
        }
        for (int i = 0; i < m->n_files; i++)
            src[i] = (source_file){m->files[i].path, m->files[i].size, true};
        n_src = m->n_files;
    } else {
        struct stat st;
        if (stat(in.path, &st) == 0 && S_ISREG(st.st_mode)) {
            one = (source_file){in.path, (size_t)st.st_size, false};
            n_src = 1;
        }
    }
    char pattern[Q35_MAX_LAYERS + 1];
    for (int i = 0; i < cf->n_layers; i++)
        pattern[i] = cf->layer_full[i] ? 'F' : 'L';
    pattern[cf->n_layers] = 0;
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "path", in.path);
        cJSON_AddStringToObject(o, "format", in.format);
        cJSON_AddStringToObject(o, "dtype", in.dtype);
        cJSON_AddStringToObject(o, "quantization", in.quantization);
        cJSON *stored = cJSON_AddArrayToObject(o, "stored");
        for (int i = 0; i < m->n_stored; i++) {
            cJSON *s = cJSON_CreateObject();
            cJSON_AddStringToObject(s, "type", m->stored[i].name);
            cJSON_AddNumberToObject(s, "tensors", m->stored[i].n_tensors);
            cJSON_AddNumberToObject(s, "bytes", (double)m->stored[i].bytes);
            cJSON_AddItemToArray(stored, s);
        }
        cJSON_AddNumberToObject(o, "vocab_size", cf->vocab_size);
        cJSON_AddNumberToObject(o, "hidden_size", cf->hidden_size);
        cJSON_AddNumberToObject(o, "intermediate_size", cf->intermediate_size);
        cJSON_AddNumberToObject(o, "n_layers", cf->n_layers);
        cJSON_AddStringToObject(o, "layers", pattern);
        if (cf->layers_from[0]) cJSON_AddStringToObject(o, "layers_from", cf->layers_from);
        cJSON_AddNumberToObject(o, "n_heads", cf->n_heads);
        cJSON_AddNumberToObject(o, "n_kv_heads", cf->n_kv_heads);
        cJSON_AddNumberToObject(o, "head_dim", cf->head_dim);
        cJSON_AddNumberToObject(o, "rotary_dim", cf->rotary_dim);
        cJSON_AddNumberToObject(o, "linear_k_heads", cf->lin_k_heads);
        cJSON_AddNumberToObject(o, "linear_v_heads", cf->lin_v_heads);
        cJSON_AddNumberToObject(o, "linear_k_dim", cf->lin_k_dim);
        cJSON_AddNumberToObject(o, "linear_v_dim", cf->lin_v_dim);
        cJSON_AddBoolToObject(o, "tied", cf->tie_embeddings);
        cJSON_AddNumberToObject(o, "weight_bytes", (double)in.weight_bytes);
        cJSON *types = cJSON_AddObjectToObject(o, "bytes_by_type");
        for (int t = 0; t < Q35_DT_COUNT; t++)
            if (bytes[t])
                cJSON_AddNumberToObject(types, q35_dtype_name((q35_dtype)t), (double)bytes[t]);
        cJSON *files = cJSON_AddArrayToObject(o, "files");
        for (int i = 0; i < n_src; i++) {
            cJSON *f = cJSON_CreateObject();
            cJSON_AddStringToObject(f, "path", src[i].path);
            cJSON_AddNumberToObject(f, "bytes", (double)src[i].bytes);
            cJSON_AddBoolToObject(f, "mapped", src[i].mapped);
            cJSON_AddItemToArray(files, f);
        }
        char *text = cJSON_PrintUnformatted(o);
        if (text) puts(text);
        cJSON_free(text);
        cJSON_Delete(o);
    } else {
        printf("path:          %s\n", in.path);
        printf("format:        %s\n", in.format);
        printf("quantization:  %s\n", in.quantization);
        printf("stored as:    ");
        for (int i = 0; i < m->n_stored; i++)
            printf("%s %s x%d %.1f MiB", i ? "," : "", m->stored[i].name, m->stored[i].n_tensors,
                   m->stored[i].bytes / 1048576.0);
        printf("\n");
        printf("computed as:  ");
        for (int t = 0; t < Q35_DT_COUNT; t++)
            if (bytes[t])
                printf(" %s %.1f MiB", q35_dtype_name((q35_dtype)t), bytes[t] / 1048576.0);
        printf("\n");
        printf("in memory:     %.1f MiB (mapped files + converted buffers)\n",
               in.weight_bytes / 1048576.0);
        printf("vocab:         %d%s\n", cf->vocab_size,
               cf->tie_embeddings ? " (tied output head)" : "");
        printf("hidden:        %d, intermediate %d\n", cf->hidden_size, cf->intermediate_size);
        printf("layers:        %d  %s (L = Gated DeltaNet, F = gated attention)\n", cf->n_layers,
               pattern);
        if (cf->layers_from[0]) printf("layer pattern: from %s\n", cf->layers_from);
        printf("attention:     %d heads, %d KV heads, head_dim %d, rotary %d, theta %g\n",
               cf->n_heads, cf->n_kv_heads, cf->head_dim, cf->rotary_dim, cf->rope_theta);
        printf("deltanet:      %d key heads x %d, %d value heads x %d, conv %d\n", cf->lin_k_heads,
               cf->lin_k_dim, cf->lin_v_heads, cf->lin_v_dim, cf->conv_kernel);
        printf("rms eps:       %g\n", cf->rms_eps);
        if (m->n_extra)
            printf("extra:         %d mtp.* tensors (multi-token prediction head)\n", m->n_extra);
        printf("files:\n");
        for (int i = 0; i < n_src; i++)
            printf("  %s (%.1f MiB%s)\n", src[i].path, src[i].bytes / 1048576.0,
                   src[i].mapped ? ", mapped" : ", read once at load");
        if (!n_src) printf("  (none kept open: the weights were converted at load)\n");
    }
    if (src != &one) free(src);
    q35_model_free(m);
    return 0;
}
