/* cmd_run.c — `q35 run`: one reply to one prompt, streamed to stdout
 * (answer only unless --show-thinking), timing on stderr (SPEC §8). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_options.h"
#include "cli.h"
#include "stream_print.h"

#define MAX_PROMPT_BYTES ((size_t)64 << 20)

/* Reads all of `f` as the prompt; NULL with *why set on failure. A NUL
 * byte is refused rather than silently ending the prompt there. */
static char *read_all(FILE *f, const char **why) {
    size_t cap = 1 << 12, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1) break;
        if (cap >= MAX_PROMPT_BYTES) {
            free(buf);
            *why = "the prompt on stdin is larger than 64 MiB";
            return NULL;
        }
        char *b = realloc(buf, cap *= 2);
        if (!b) free(buf);
        buf = b;
    }
    if (!buf) {
        *why = "out of memory reading the prompt";
        return NULL;
    }
    if (ferror(f)) {
        free(buf);
        *why = "cannot read the prompt from stdin";
        return NULL;
    }
    if (memchr(buf, 0, n)) {
        free(buf);
        *why = "the prompt on stdin holds a NUL byte (a prompt is text)";
        return NULL;
    }
    buf[n] = 0;
    return buf;
}

int cmd_run(int argc, char **argv) {
    chat_options o;
    int rc = chat_options_parse("run", argc, argv, &o);
    if (rc >= 0) return rc;
    char *owned = NULL;
    const char *prompt = o.prompt;
    if (!prompt) {
        const char *why = NULL;
        owned = read_all(stdin, &why);
        if (!owned) return cli_fail("run", "%s", why);
        prompt = owned;
    }
    q35_model *m;
    q35_chat *c;
    if ((rc = chat_open("run", &o, &m, &c)) || (rc = chat_constraint_open("run", &o, c))) {
        q35_chat_free(c);
        if (rc && c) q35_model_free(m);
        free(owned);
        return rc;
    }
    cli_piece_printer sc = {o.show_thinking, false};
    q35_reply r;
    q35_err e = {0};
    q35_phraser *ph = o.phrases ? q35_phraser_new(NULL, cli_print_phrase, NULL, &e) : NULL;
    chat_catch_interrupt(c);
    rc = o.phrases && !ph ? e.code
                          : q35_chat_generate(c, prompt, &o.sampling,
                                              ph ? q35_phraser_on_piece : cli_print_piece,
                                              ph ? (void *)ph : &sc, &r, &e);
    chat_catch_interrupt(NULL);
    if (!rc && ph) rc = q35_phraser_flush(ph, &e);
    q35_phraser_free(ph);
    if (sc.in_thinking) fputs("\n</think>\n", stdout);
    if (!rc) {
        if (!o.phrases) putchar('\n');
        fflush(stdout);
        if (!o.quiet) {
            if (!o.seed_given && o.sampling.temperature > 0)
                fprintf(stderr, "[seed %llu]\n", (unsigned long long)o.sampling.seed);
            chat_print_summary(&r);
        }
    } else {
        cli_fail_err("run", &e);
    }
    q35_reply_free(&r);
    q35_chat_free(c);
    chat_constraint_close(&o);
    q35_model_free(m);
    free(owned);
    return rc ? 1 : 0;
}
