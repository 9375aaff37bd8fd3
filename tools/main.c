/* main.c — dispatches `q35 SUBCOMMAND ...` to the cmd_*.c files. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

typedef struct command {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} command;

static void usage(FILE *f, const command *cmds) {
    fprintf(f,
            "usage: q35 COMMAND [options]   (q35 COMMAND --help for its options)\n\ncommands:\n");
    for (const command *c = cmds; c->name; c++)
        fprintf(f, "  %-11s %s%s\n", c->name, c->summary, c->fn ? "" : " (not in this build)");
}

int main(int argc, char **argv) {
    const command cmds[] = {
        {"chat", cmd_chat, "interactive multi-turn chat"},
        {"run", cmd_run, "one reply to a prompt, streamed"},
        {"pull", cmd_pull, "download a model from the hub into the HF cache"},
        {"convert", cmd_convert, "write a model as GGUF (q8 / q4 / bf16 / f16 / f32)"},
        {"bench", cmd_bench, "prefill and decode speed, time to first token, peak memory"},
        {"serve", cmd_serve, "OpenAI-compatible HTTP server"},
        {"info", cmd_info, "what a model is and where its files live"},
        {"eval", cmd_eval, "logits for a list of token ids"},
        {"tokenize", cmd_tokenize, "text to token ids"},
        {"detokenize", cmd_detokenize, "token ids to text"},
        {"template", cmd_template, "render a conversation with the chat template"},
        {"phrases", cmd_phrases, "stdin text to speakable phrases, one per line"},
        {NULL, NULL, NULL},
    };
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
        !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout, cmds);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("q35 0.1.0\n");
        return 0;
    }
    for (const command *c = cmds; c->name; c++) {
        if (strcmp(c->name, argv[1]) != 0) continue;
        if (!c->fn) {
            fprintf(stderr, "q35: '%s' is not available in this build\n", c->name);
            return 2;
        }
        return c->fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "q35: unknown command '%s'\n", argv[1]);
    usage(stderr, cmds);
    return 2;
}
