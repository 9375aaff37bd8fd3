/* cmd_phrases.c — `q35 phrases`: text on stdin to speakable phrases on
 * stdout, one per line, each printed as soon as the input decides it (for
 * tests, and for pipelines that put their own TTS after q35). The rules
 * are q35.h's phrase chunker; phrases never hold a newline. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "stream_print.h"

static void usage(FILE *f) {
    q35_phrase_opts d = q35_phrase_opts_default();
    fprintf(f,
            "usage: q35 phrases [--min N] [--max N] [--first-min N] [--first-max N]\n"
            "  Reads answer text on stdin (markdown, thinking included or not) and prints\n"
            "  its speakable phrases, one per line, as soon as each is decided.\n"
            "      --min N        shortest phrase ended at a sentence or clause end (%d)\n"
            "      --max N        longest phrase where a place to cut exists (%d)\n"
            "      --first-min N  the same for the first phrase (%d)\n"
            "      --first-max N  (%d)\n"
            "      --spoken       print the spoken form of the whole input instead\n",
            d.min_chars, d.max_chars, d.first_min_chars, d.first_max_chars);
}

int cmd_phrases(int argc, char **argv) {
    q35_phrase_opts o = q35_phrase_opts_default();
    bool spoken = false;
    static const struct option opts[] = {
        {"min", required_argument, 0, 1},
        {"max", required_argument, 0, 2},
        {"first-min", required_argument, 0, 3},
        {"first-max", required_argument, 0, 4},
        {"spoken", no_argument, 0, 5},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int ch;
    long v;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (ch == 'h') {
            usage(stdout);
            return 0;
        }
        if (ch == 5) {
            spoken = true;
            continue;
        }
        if (ch < 1 || ch > 4 || !cli_parse_int(optarg, 1, 1 << 20, &v)) {
            usage(stderr);
            return 2;
        }
        int *field[] = {&o.min_chars, &o.max_chars, &o.first_min_chars, &o.first_max_chars};
        *field[ch - 1] = (int)v;
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    q35_err e = {0};
    q35_phraser *p = q35_phraser_new(&o, cli_print_phrase, NULL, &e);
    if (!p) return cli_fail_err("phrases", &e);
    char buf[4096];
    char *all = NULL;
    size_t n_all = 0;
    int rc = 0;
    for (;;) {
        ssize_t n = read(0, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            rc = cli_fail("phrases", "reading stdin: %s", strerror(errno));
            break;
        }
        if (n == 0) break;
        if (spoken) {
            char *a = realloc(all, n_all + (size_t)n);
            if (!a) {
                rc = cli_fail("phrases", "out of memory");
                break;
            }
            all = a;
            memcpy(all + n_all, buf, (size_t)n);
            n_all += (size_t)n;
        } else if (q35_phraser_feed(p, buf, (size_t)n, &e)) {
            rc = cli_fail_err("phrases", &e);
            break;
        }
    }
    if (!rc && spoken) {
        char *s;
        size_t n;
        if (q35_spoken_form(all ? all : "", n_all, &s, &n, &e)) {
            rc = cli_fail_err("phrases", &e);
        } else {
            fwrite(s, 1, n, stdout);
            putchar('\n');
            free(s);
        }
    } else if (!rc && q35_phraser_flush(p, &e)) {
        rc = cli_fail_err("phrases", &e);
    }
    free(all);
    q35_phraser_free(p);
    return rc;
}
