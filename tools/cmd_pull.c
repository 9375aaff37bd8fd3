/* cmd_pull.c — `q35 pull REPO[@REV] [FILE...]`: fetches a model from the
 * hub into the HF cache (see q35_hub_pull) and prints where it lies, so
 * `q35 run -m "$(q35 pull org/name)"` works in scripts. The progress bar
 * and the summary go to stderr; stdout gets only the path. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static void usage(FILE *f) {
    fprintf(f, "usage: q35 pull REPO[@REV] [FILE...] [options]\n"
               "  Downloads a model from the Hugging Face hub into the HF cache (shared with\n"
               "  the Python tools) and prints its snapshot directory (or the file, for one\n"
               "  named file). REPO is org/name; REV a branch, tag or commit (default main).\n"
               "  Without FILEs it fetches what q35 loads: config.json, generation_config.json,\n"
               "  tokenizer.json, tokenizer_config.json, chat_template.jinja and the\n"
               "  safetensors weights; name a file (e.g. model-Q4_0.gguf) to fetch just it,\n"
               "  or write REPO[@REV]/FILE.gguf.\n"
               "options:\n"
               "  --cache-dir DIR   the hub cache (default $HF_HUB_CACHE, $HF_HOME/hub,\n"
               "                    ~/.cache/huggingface/hub)\n"
               "  --endpoint URL    the hub (default $HF_ENDPOINT or https://huggingface.co)\n"
               "  --offline         use the cache only (as HF_HUB_OFFLINE=1)\n"
               "  -q, --quiet       no progress bar or summary\n"
               "environment: HF_TOKEN (private or gated repos), HF_HOME, HF_HUB_CACHE,\n"
               "  HF_ENDPOINT, HF_HUB_OFFLINE, HF_HUB_DOWNLOAD_TIMEOUT\n");
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void human_bytes(double b, char *buf, size_t len) {
    static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
    int u = 0;
    while (b >= 1000 && u < 4)
        b /= 1000, u++;
    snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", b, units[u]);
}

int cmd_pull(int argc, char **argv) {
    q35_hub_opts o = {0};
    static const struct option opts[] = {{"cache-dir", required_argument, 0, 'c'},
                                         {"endpoint", required_argument, 0, 'e'},
                                         {"offline", no_argument, 0, 'o'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': o.cache_dir = optarg; break;
        case 'e': o.endpoint = optarg; break;
        case 'o': o.offline = true; break;
        case 'q': o.quiet = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    const char *repo = argv[optind];
    int n_files = argc - optind - 1;
    const char **files = NULL;
    if (n_files > 0) {
        files = calloc((size_t)n_files + 1, sizeof *files);
        if (!files) return cli_fail("pull", "out of memory");
        for (int i = 0; i < n_files; i++)
            files[i] = argv[optind + 1 + i];
        o.files = files;
    }

    q35_err e = {0};
    q35_hub_stats st;
    char *dir = NULL;
    double t0 = now_s();
    int rc = q35_hub_pull(repo, &o, &dir, &st, &e);
    free(files);
    if (rc) return cli_fail_err("pull", &e);
    double dt = now_s() - t0;

    /* Exactly one file named (as an argument or as REPO/FILE.gguf): print
     * its path; otherwise the snapshot directory. */
    const char *one = NULL;
    size_t rl = strlen(repo);
    if (rl > 5 && !strcmp(repo + rl - 5, ".gguf")) {
        const char *at = strchr(repo, '@');
        const char *s1 = strchr(repo, '/');
        const char *s2 = s1 ? strchr(at ? at : s1 + 1, '/') : NULL;
        one = n_files == 0 && s2 ? s2 + 1 : NULL;
    } else if (n_files == 1) {
        one = argv[optind + 1];
    }
    if (one)
        printf("%s/%s\n", dir, one);
    else
        printf("%s\n", dir);
    if (!o.quiet) {
        char got[32], rate[32];
        human_bytes((double)st.bytes_downloaded, got, sizeof got);
        human_bytes(dt > 0 ? (double)st.bytes_downloaded / dt : 0, rate, sizeof rate);
        if (st.cache_only)
            fprintf(stderr,
                    "q35 pull: %s: commit %.12s from the cache (hub not used), %d file(s)\n", repo,
                    st.commit, st.n_files);
        else
            fprintf(stderr,
                    "q35 pull: %s: commit %.12s, %d file(s), %d downloaded (%s in %.1f s, %s/s)\n",
                    repo, st.commit, st.n_files, st.n_downloaded, got, dt, rate);
    }
    free(dir);
    return 0;
}
