/* chat_options.h — what `q35 run` and `q35 chat` share: their options
 * (model, system prompt, sampling, threads, context), loading the model and
 * the conversation, the timing summary, and Ctrl-C turned into a cancel of
 * the reply in progress. */
#ifndef Q35_CHAT_OPTIONS_H
#define Q35_CHAT_OPTIONS_H

#include <stdbool.h>

#include "q35.h"

#define CHAT_MAX_STOP 16

typedef struct chat_options {
    const char *model;
    const char *system;
    const char *prompt; /* run: -p */
    bool jsonl;         /* chat: --jsonl */
    bool show_thinking;
    bool phrases; /* run: --phrases, the answer as speakable phrases */
    bool quiet;   /* no timing summary */
    q35_sampling sampling;
    bool seed_given;
    const char *stop[CHAT_MAX_STOP + 1];
    int n_stop;
    int threads; /* 0: the library's default */
    q35_weight_format weights;
    q35_device device; /* --device cpu|cuda */
    int n_ctx;         /* 0: the chat's default */
    bool no_cache;
    bool warmup; /* chat: one throw-away token at start-up to page the model in */
    /* structured output: --json (kind JSON), --json-schema F, --grammar F */
    q35_constraint_kind constraint_kind; /* 0: none */
    const char *constraint_file;
    q35_constraint_vocab *cvocab; /* owned, made by chat_constraint_open */
    q35_constraint *constraint;
} chat_options;

/* Parses argv for command `cmd` ("run" or "chat"). Returns -1 when parsing
 * succeeded and the command should go on, else the exit status (0 after
 * --help, 2 on a usage error). */
int chat_options_parse(const char *cmd, int argc, char **argv, chat_options *o);

/* Loads the model and makes the conversation; prints errors. On success
 * returns 0 with *m and *c set (free c, then m). */
int chat_open(const char *cmd, const chat_options *o, q35_model **m, q35_chat **c);

/* Compiles the --json / --json-schema / --grammar constraint against the
 * chat's tokenizer into o->sampling.constraint (a no-op without one);
 * prints errors. chat_constraint_close frees it. */
int chat_constraint_open(const char *cmd, chat_options *o, const q35_chat *c);
void chat_constraint_close(chat_options *o);

/* One line on stderr: prompt/reuse/prefill, ttft, tokens, speed, stop. */
void chat_print_summary(const q35_reply *r);

/* Ctrl-C (SIGINT) cancels the reply of `c` in progress instead of ending
 * the program; chat_interrupted() tells whether one came since the last
 * call (and clears it). NULL restores the default action. */
void chat_catch_interrupt(q35_chat *c);
bool chat_interrupted(void);

#endif
