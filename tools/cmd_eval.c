/* cmd_eval.c — `q35 eval`: the logits of a list of token ids, as float32
 * little-endian rows of vocab_size (SPEC §8). Prefill by default; with
 * --decode-from N, ids[0:N] are prefilled and the rest go one at a time
 * through the decode path, and rows N-1 .. T-1 are written. Other tools and
 * checks compare these files with reference logits. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f) {
    fprintf(f, "usage: q35 eval -m MODEL --ids 1,2,3 --logits-out FILE [--decode-from N] "
               "[--threads N]\n"
               "  Writes the logits of every position as float32 little-endian [T, vocab].\n"
               "  --decode-from N  prefill ids[0:N], then feed the rest one token at a time\n"
               "                   through the decode path; writes rows N-1 .. T-1\n"
               "  --threads N      compute threads (default: all cores)\n"
               "  --quant q8|q4    weights converted to Q8_0 / Q4_0 at load\n");
}

/* Writes n floats as little-endian. */
static int write_f32le(FILE *f, const float *x, size_t n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (size_t i = 0; i < n; i++) {
        unsigned char b[4];
        memcpy(b, &x[i], 4);
        unsigned char r[4] = {b[3], b[2], b[1], b[0]};
        if (fwrite(r, 4, 1, f) != 1) return -1;
    }
    return 0;
#else
    return fwrite(x, sizeof *x, n, f) == n ? 0 : -1;
#endif
}

int cmd_eval(int argc, char **argv) {
    const char *model = NULL, *ids_arg = NULL, *out_path = NULL;
    long threads = 0, decode_from = -1;
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"ids", required_argument, 0, 'i'},
                                         {"logits-out", required_argument, 0, 'o'},
                                         {"decode-from", required_argument, 0, 'd'},
                                         {"threads", required_argument, 0, 't'},
                                         {"quant", required_argument, 0, 'Q'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    q35_weight_format quant = Q35_WEIGHTS_AS_STORED;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'i': ids_arg = optarg; break;
        case 'o': out_path = optarg; break;
        case 'd':
            if (!cli_parse_int(optarg, 1, 1L << 30, &decode_from))
                return cli_fail("eval", "bad --decode-from '%s'", optarg);
            break;
        case 't':
            if (!cli_parse_int(optarg, 1, 1024, &threads))
                return cli_fail("eval", "bad --threads '%s'", optarg);
            break;
        case 'Q':
            if (!cli_parse_quant(optarg, &quant))
                return cli_fail("eval", "bad --quant '%s' (q8, q4 or none)", optarg);
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!model || !ids_arg || !out_path || optind != argc) {
        usage(stderr);
        return 2;
    }
    char perr[128];
    int T = 0;
    int32_t *ids = cli_parse_ids(ids_arg, &T, perr, sizeof perr);
    if (!ids) return cli_fail("eval", "--ids: %s", perr);
    if (T == 0) {
        free(ids);
        return cli_fail("eval", "--ids: no token ids");
    }
    if (decode_from > T) {
        free(ids);
        return cli_fail("eval", "--decode-from %ld is past the %d ids", decode_from, T);
    }

    int status = 1;
    q35_err e = {0};
    q35_model *m = NULL;
    q35_state *s = NULL;
    float *logits = NULL;
    FILE *f = NULL;
    q35_load_opts lo = {.n_threads = (int)threads, .weights = quant};
    if (!(m = q35_model_load(model, &lo, &e)) || !(s = q35_state_new(m, T, &e))) {
        status = cli_fail_err("eval", &e);
        goto done;
    }
    q35_model_info info;
    q35_model_get_info(m, &info);
    size_t V = (size_t)info.vocab_size;
    int first_row = decode_from > 0 ? (int)decode_from - 1 : 0;
    size_t rows = (size_t)(T - first_row);
    if (!(logits = malloc(rows * V * sizeof *logits))) {
        status = cli_fail("eval", "out of memory for %zu x %zu logits", rows, V);
        goto done;
    }
    if (decode_from > 0) {
        /* prefill ids[0:N] (its last row), then one token at a time */
        if (q35_state_eval(m, s, ids, (int)decode_from, logits, false, &e)) {
            status = cli_fail_err("eval", &e);
            goto done;
        }
        for (int i = (int)decode_from; i < T; i++)
            if (q35_state_eval(m, s, ids + i, 1, logits + (size_t)(i - first_row) * V, false, &e)) {
                status = cli_fail_err("eval", &e);
                goto done;
            }
    } else if (q35_state_eval(m, s, ids, T, logits, true, &e)) {
        status = cli_fail_err("eval", &e);
        goto done;
    }
    if (!(f = fopen(out_path, "wb"))) {
        status = cli_fail("eval", "cannot write %s", out_path);
        goto done;
    }
    if (write_f32le(f, logits, rows * V) != 0 || fclose(f) != 0) {
        f = NULL;
        status = cli_fail("eval", "write to %s failed", out_path);
        goto done;
    }
    f = NULL;
    status = 0;
done:
    if (f) fclose(f);
    free(logits);
    q35_state_free(s);
    q35_model_free(m);
    free(ids);
    return status;
}
