/* chat_options.c — options and set-up shared by `q35 run` and `q35 chat`
 * (see chat_options.h). */
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chat_options.h"
#include "cli.h"

static void usage(FILE *f, const char *cmd) {
    bool run = !strcmp(cmd, "run");
    fprintf(
        f,
        "usage: q35 %s [-m MODEL] [-s SYSTEM] %s[options]\n"
        "%s"
        "  -m, --model M          model directory, .gguf file or hub id\n"
        "                         (" Q35_DEFAULT_MODEL ", downloaded once)\n"
        "  -s, --system S         system prompt\n"
        "%s"
        "sampling (defaults of the reference app):\n"
        "      --temp T           temperature, 0 = greedy (0.6)\n"
        "      --top-k K          0 = off (50)\n"
        "      --top-p P          1 = off (0.95)\n"
        "      --repeat-penalty R 1 = off (1.1)\n"
        "      --repeat-last-n N  tokens the penalty looks back on (64)\n"
        "  -n, --max-tokens N     sampled tokens per reply (512)\n"
        "      --seed S           PRNG seed (default: from the clock, printed)\n"
        "      --no-think         answer without thinking\n"
        "      --think-budget N   thinking tokens before </think> is forced;\n"
        "                         -1 = no budget (100)\n"
        "      --stop S           stop the answer at S (repeatable)\n"
        "      --show-thinking    print the thinking too (between <think> and </think>)\n"
        "%s"
        "structured output (the answer; after </think> when thinking):\n"
        "      --json             any JSON object\n"
        "      --json-schema F    JSON valid under the JSON Schema in file F\n"
        "      --grammar F        text of the GBNF grammar in file F (llama.cpp notation)\n"
        "other:\n"
        "  -t, --threads N        compute threads (default: all cores)\n" CLI_QUANT_HELP
        "      --device D         cpu (default) or cuda (the whole model on the GPU)\n"
        "  -c, --ctx N            context positions (4096)\n"
        "      --no-cache         no prompt caching (every turn prefills everything)\n"
        "  -q, --quiet            no timing summary on stderr\n",
        cmd, run ? "[-p PROMPT | stdin] " : "[--jsonl] ",
        run ? "  One reply to PROMPT (or all of stdin), streamed to stdout; timing on stderr.\n"
            : "  Interactive multi-turn chat. Commands: /reset, /think on|off, /stats, /quit.\n"
              "  Ctrl-C stops the reply, not the program.\n",
        run ? "  -p, --prompt P         the user message (default: read stdin)\n"
            : "      --jsonl            read one user message per line from stdin (a line\n"
              "                         holding a JSON string is that string), write one\n"
              "                         JSON object per reply to stdout\n"
              "      --warmup           generate one throw-away token at start-up (then\n"
              "                         forget it), so the first reply is as fast as the rest\n",
        run ? "      --phrases          print the answer one speakable phrase per line, each\n"
              "                         as soon as it is ready (the voice phrase chunker)\n"
            : "");
}

enum {
    OPT_TEMP = 1000,
    OPT_TOPK,
    OPT_TOPP,
    OPT_REPEAT,
    OPT_REPEAT_N,
    OPT_SEED,
    OPT_NO_THINK,
    OPT_BUDGET,
    OPT_STOP,
    OPT_SHOW_THINKING,
    OPT_JSONL,
    OPT_NO_CACHE,
    OPT_WARMUP,
    OPT_DEVICE,
    OPT_JSON,
    OPT_JSON_SCHEMA,
    OPT_GRAMMAR,
    OPT_PHRASES,
};

int chat_options_parse(const char *cmd, int argc, char **argv, chat_options *o) {
    memset(o, 0, sizeof *o);
    o->sampling = q35_sampling_default();
    bool run = !strcmp(cmd, "run");
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},
        {"system", required_argument, 0, 's'},
        {"prompt", required_argument, 0, 'p'},
        {"temp", required_argument, 0, OPT_TEMP},
        {"temperature", required_argument, 0, OPT_TEMP},
        {"top-k", required_argument, 0, OPT_TOPK},
        {"top-p", required_argument, 0, OPT_TOPP},
        {"repeat-penalty", required_argument, 0, OPT_REPEAT},
        {"repeat-last-n", required_argument, 0, OPT_REPEAT_N},
        {"max-tokens", required_argument, 0, 'n'},
        {"seed", required_argument, 0, OPT_SEED},
        {"no-think", no_argument, 0, OPT_NO_THINK},
        {"think-budget", required_argument, 0, OPT_BUDGET},
        {"stop", required_argument, 0, OPT_STOP},
        {"show-thinking", no_argument, 0, OPT_SHOW_THINKING},
        {"jsonl", no_argument, 0, OPT_JSONL},
        {"threads", required_argument, 0, 't'},
        {"quant", required_argument, 0, 'Q'},
        {"ctx", required_argument, 0, 'c'},
        {"no-cache", no_argument, 0, OPT_NO_CACHE},
        {"warmup", no_argument, 0, OPT_WARMUP},
        {"device", required_argument, 0, OPT_DEVICE},
        {"json", no_argument, 0, OPT_JSON},
        {"json-schema", required_argument, 0, OPT_JSON_SCHEMA},
        {"grammar", required_argument, 0, OPT_GRAMMAR},
        {"phrases", no_argument, 0, OPT_PHRASES},
        {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int ch;
    long v;
    double d;
    optind = 1;
    while ((ch = getopt_long(argc, argv, run ? "m:s:p:n:t:c:qh" : "m:s:n:t:c:qh", opts, NULL)) !=
           -1) {
        switch (ch) {
        case 'm': o->model = optarg; break;
        case 's': o->system = optarg; break;
        case 'p':
            if (!run) goto bad;
            o->prompt = optarg;
            break;
        case OPT_TEMP:
            if (!cli_parse_float(optarg, &d) || d < 0)
                return cli_fail(cmd, "bad --temp '%s'", optarg) + 1;
            o->sampling.temperature = (float)d;
            break;
        case OPT_TOPK:
            if (!cli_parse_int(optarg, 0, 1 << 30, &v))
                return cli_fail(cmd, "bad --top-k '%s'", optarg) + 1;
            o->sampling.top_k = (int)v;
            break;
        case OPT_TOPP:
            if (!cli_parse_float(optarg, &d) || d <= 0 || d > 1)
                return cli_fail(cmd, "bad --top-p '%s' (0 < P <= 1)", optarg) + 1;
            o->sampling.top_p = (float)d;
            break;
        case OPT_REPEAT:
            if (!cli_parse_float(optarg, &d) || d <= 0)
                return cli_fail(cmd, "bad --repeat-penalty '%s'", optarg) + 1;
            o->sampling.repetition_penalty = (float)d;
            break;
        case OPT_REPEAT_N:
            if (!cli_parse_int(optarg, 0, 1 << 20, &v))
                return cli_fail(cmd, "bad --repeat-last-n '%s'", optarg) + 1;
            o->sampling.repetition_window = (int)v;
            break;
        case 'n':
            if (!cli_parse_int(optarg, 0, 1 << 30, &v))
                return cli_fail(cmd, "bad -n '%s'", optarg) + 1;
            o->sampling.max_tokens = (int)v;
            break;
        case OPT_SEED: {
            char *end;
            unsigned long long s = strtoull(optarg, &end, 0);
            if (!*optarg || *end || *optarg == '-')
                return cli_fail(cmd, "bad --seed '%s'", optarg) + 1;
            o->sampling.seed = s;
            o->seed_given = true;
            break;
        }
        case OPT_NO_THINK: o->sampling.thinking = false; break;
        case OPT_BUDGET: {
            char *end;
            long b = strtol(optarg, &end, 10);
            if (!*optarg || *end || b < -1 || b > (1 << 30))
                return cli_fail(cmd, "bad --think-budget '%s'", optarg) + 1;
            o->sampling.thinking_budget = (int)b;
            break;
        }
        case OPT_STOP:
            if (o->n_stop == CHAT_MAX_STOP)
                return cli_fail(cmd, "at most %d --stop strings", CHAT_MAX_STOP) + 1;
            if (*optarg) o->stop[o->n_stop++] = optarg;
            break;
        case OPT_SHOW_THINKING: o->show_thinking = true; break;
        case OPT_PHRASES:
            if (!run) goto bad;
            o->phrases = true;
            break;
        case OPT_JSONL:
            if (run) goto bad;
            o->jsonl = true;
            break;
        case 'Q':
            if (!cli_parse_quant(optarg, &o->weights))
                return cli_fail(cmd, "bad --quant '%s' (q8, q4 or none)", optarg) + 1;
            break;
        case 't':
            if (!cli_parse_int(optarg, 1, 1024, &v))
                return cli_fail(cmd, "bad --threads '%s'", optarg) + 1;
            o->threads = (int)v;
            break;
        case 'c':
            if (!cli_parse_int(optarg, 1, 1 << 24, &v))
                return cli_fail(cmd, "bad --ctx '%s'", optarg) + 1;
            o->n_ctx = (int)v;
            break;
        case OPT_NO_CACHE: o->no_cache = true; break;
        case OPT_DEVICE:
            if (strcmp(optarg, "cpu") && strcmp(optarg, "cuda"))
                return cli_fail(cmd, "bad --device '%s' (cpu or cuda)", optarg) + 1;
            o->device = strcmp(optarg, "cuda") ? Q35_DEVICE_CPU : Q35_DEVICE_CUDA;
            break;
        case OPT_WARMUP:
            if (run) goto bad;
            o->warmup = true;
            break;
        case OPT_JSON:
        case OPT_JSON_SCHEMA:
        case OPT_GRAMMAR:
            if (o->constraint_kind)
                return cli_fail(cmd, "only one of --json, --json-schema, --grammar") + 1;
            o->constraint_kind = ch == OPT_JSON          ? Q35_CONSTRAINT_JSON
                                 : ch == OPT_JSON_SCHEMA ? Q35_CONSTRAINT_JSON_SCHEMA
                                                         : Q35_CONSTRAINT_GRAMMAR;
            o->constraint_file = ch == OPT_JSON ? NULL : optarg;
            break;
        case 'q': o->quiet = true; break;
        case 'h': usage(stdout, cmd); return 0;
        default: goto bad;
        }
    }
    if (optind != argc) goto bad;
    if (!o->model) o->model = Q35_DEFAULT_MODEL;
    o->stop[o->n_stop] = NULL;
    o->sampling.stop = o->n_stop ? o->stop : NULL;
    if (!o->seed_given)
        o->sampling.seed = (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid();
    return -1;
bad:
    usage(stderr, cmd);
    return 2;
}

int chat_open(const char *cmd, const chat_options *o, q35_model **m, q35_chat **c) {
    q35_err e = {0};
    q35_load_opts lo = {.n_threads = o->threads, .weights = o->weights, .device = o->device};
    *c = NULL;
    *m = q35_model_load(o->model, &lo, &e);
    if (!*m) return cli_fail_err(cmd, &e);
    q35_chat_settings st = {.n_ctx = o->n_ctx, .max_snapshots = o->no_cache ? -1 : 0};
    *c = q35_chat_new(*m, NULL, o->system, &st, &e);
    if (!*c) {
        q35_model_free(*m);
        *m = NULL;
        return cli_fail_err(cmd, &e);
    }
    return 0;
}

int chat_constraint_open(const char *cmd, chat_options *o, const q35_chat *c) {
    if (!o->constraint_kind) return 0;
    char *text = NULL;
    size_t len = 0;
    if (o->constraint_file) {
        FILE *f = fopen(o->constraint_file, "rb");
        if (!f) return cli_fail(cmd, "cannot open '%s'", o->constraint_file);
        size_t cap = 1 << 12;
        text = malloc(cap);
        while (text) {
            len += fread(text + len, 1, cap - len, f);
            if (len < cap) break;
            char *t = cap < ((size_t)16 << 20) ? realloc(text, cap *= 2) : NULL;
            if (!t) free(text);
            text = t;
        }
        bool bad = !text || ferror(f);
        fclose(f);
        if (bad) {
            free(text);
            return cli_fail(cmd, "cannot read '%s' (or it is over 16 MiB)", o->constraint_file);
        }
    }
    q35_err e = {0};
    o->cvocab = q35_constraint_vocab_new(q35_chat_tokenizer(c), &e);
    if (o->cvocab)
        o->constraint = q35_constraint_compile(o->cvocab, o->constraint_kind, text, len, &e);
    free(text);
    if (!o->constraint) {
        chat_constraint_close(o);
        if (o->constraint_file) return cli_fail(cmd, "%s: %s", o->constraint_file, e.msg);
        return cli_fail_err(cmd, &e);
    }
    o->sampling.constraint = o->constraint;
    return 0;
}

void chat_constraint_close(chat_options *o) {
    q35_constraint_free(o->constraint);
    q35_constraint_vocab_free(o->cvocab);
    o->constraint = NULL;
    o->cvocab = NULL;
    o->sampling.constraint = NULL;
}

void chat_print_summary(const q35_reply *r) {
    fprintf(stderr,
            "[prompt %d tokens (%d reused, %d prefilled) in %.1f ms | ttft %.1f ms | %d tokens "
            "(%d forced) at %.2f tok/s | stop: %s]\n",
            r->prompt_tokens, r->reused_tokens, r->prefilled_tokens, r->prefill_ms, r->ttft_ms,
            r->n_ids, r->n_forced, r->tok_s, q35_stop_reason_name(r->stop));
}

/* The chat a Ctrl-C cancels. A signal handler can reach nothing else, so
 * this is the CLI's one piece of global state; q35_chat_cancel is an atomic
 * store, which is safe in a handler. */
static q35_chat *volatile interrupt_target;
static volatile sig_atomic_t interrupt_seen;

static void on_sigint(int sig) {
    (void)sig;
    interrupt_seen = 1;
    q35_chat *c = interrupt_target;
    if (c) q35_chat_cancel(c);
}

void chat_catch_interrupt(q35_chat *c) {
    interrupt_target = c;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = c ? on_sigint : SIG_DFL;
    sa.sa_flags = 0; /* no SA_RESTART: a read at the prompt returns EINTR */
    sigaction(SIGINT, &sa, NULL);
}

bool chat_interrupted(void) {
    bool seen = interrupt_seen;
    interrupt_seen = 0;
    return seen;
}
