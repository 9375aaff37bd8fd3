/* cmd_chat.c — `q35 chat`: an interactive multi-turn conversation (SPEC §8)
 * with /reset, /think on|off, /stats and /quit, where Ctrl-C stops the reply
 * and not the program; and `q35 chat --jsonl`, the same conversation driven
 * by programs: one user message per stdin line, one JSON object per reply
 * on stdout (ids, forced positions, cache counters and timings included). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chat_options.h"
#include "cli.h"
#include "stream_print.h"

/* ------------------------------------------------------------ interactive */

static void print_stats(const q35_chat *c) {
    q35_chat_stats st;
    q35_chat_get_stats(c, &st);
    fprintf(stderr,
            "turns %d | context %d of %d positions | %d snapshots, %.1f MiB cached\n"
            "prefilled %lld tokens, reused %lld from snapshots, generated %lld, dropped %lld "
            "turns | last turn: %d prefilled, %d reused\n",
            st.n_turns, st.context_tokens, st.n_ctx, st.n_snapshots,
            (double)st.memory_bytes / (1 << 20), (long long)st.prefilled_tokens,
            (long long)st.reused_tokens, (long long)st.generated_tokens,
            (long long)st.dropped_turns, st.last_prefilled, st.last_reused);
}

/* Handles a /command; returns 1 to quit, 0 otherwise. */
static int command(q35_chat *c, chat_options *o, const char *line) {
    if (!strcmp(line, "/quit") || !strcmp(line, "/exit")) return 1;
    if (!strcmp(line, "/reset")) {
        q35_chat_reset(c);
        fprintf(stderr, "[history cleared]\n");
    } else if (!strcmp(line, "/think on")) {
        o->sampling.thinking = true;
        fprintf(stderr, "[thinking on]\n");
    } else if (!strcmp(line, "/think off")) {
        o->sampling.thinking = false;
        fprintf(stderr, "[thinking off]\n");
    } else if (!strcmp(line, "/stats")) {
        print_stats(c);
    } else {
        fprintf(stderr, "commands: /reset, /think on|off, /stats, /quit (Ctrl-D also quits)\n");
    }
    return 0;
}

/* Idle-time work: the next turn's starting state (see q35_chat_prepare). A
 * failure here only costs speed; a Ctrl-C just stops it. */
static void prepare(q35_chat *c) {
    q35_err e = {0};
    if (q35_chat_prepare(c, &e) && e.code != Q35_ECANCELLED) cli_fail_err("chat", &e);
    chat_interrupted();
}

static int interactive(q35_chat *c, chat_options *o) {
    bool tty = isatty(STDIN_FILENO);
    if (tty)
        fprintf(stderr, "q35 chat — /reset, /think on|off, /stats, /quit; Ctrl-C stops a "
                        "reply\n");
    char *line = NULL;
    size_t cap = 0;
    int status = 0;
    chat_catch_interrupt(c);
    for (;;) {
        if (tty) {
            fputs("> ", stdout);
            fflush(stdout);
        }
        /* the user types while the conversation so far is computed */
        prepare(c);
        errno = 0;
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0) {
            if (errno == EINTR || chat_interrupted()) {
                clearerr(stdin);
                fprintf(stderr, "\n[Ctrl-C stops a reply; /quit or Ctrl-D leaves]\n");
                continue;
            }
            break;
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        if (!n) continue;
        if (strlen(line) != (size_t)n) {
            fprintf(stderr, "q35 chat: the line holds a NUL byte (a message is text)\n");
            status = 1;
            continue;
        }
        if (line[0] == '/') {
            if (command(c, o, line)) break;
            continue;
        }
        cli_piece_printer sc = {o->show_thinking, false};
        q35_reply r;
        q35_err e = {0};
        chat_interrupted();
        int rc = q35_chat_generate(c, line, &o->sampling, cli_print_piece, &sc, &r, &e);
        if (sc.in_thinking) fputs("\n</think>", stdout);
        putchar('\n');
        fflush(stdout);
        if (rc) {
            cli_fail_err("chat", &e);
            status = 1;
        } else {
            if (r.stop == Q35_STOP_CANCELLED) fprintf(stderr, "[stopped]\n");
            if (!o->quiet) chat_print_summary(&r);
        }
        q35_reply_free(&r);
    }
    chat_catch_interrupt(NULL);
    free(line);
    return status;
}

/* ------------------------------------------------------------------ jsonl */

/* Writes `s` as a JSON string (any bytes: control characters escaped, the
 * rest passed through; the runtime's text is valid UTF-8). */
static void json_string(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        switch (ch) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (ch < 0x20 || ch == 0x7f)
                fprintf(f, "\\u%04x", ch);
            else
                fputc(ch, f);
        }
    }
    fputc('"', f);
}

static void json_reply(FILE *f, int turn, const q35_reply *r) {
    fprintf(f, "{\"turn\":%d,\"text\":", turn);
    json_string(f, r->text, r->text_len);
    fputs(",\"thinking\":", f);
    json_string(f, r->thinking, r->thinking_len);
    fputs(",\"answer\":", f);
    json_string(f, r->answer, r->answer_len);
    fputs(",\"generated_ids\":[", f);
    for (int i = 0; i < r->n_ids; i++)
        fprintf(f, i ? ",%d" : "%d", r->ids[i]);
    fputs("],\"forced_positions\":[", f);
    for (int i = 0; i < r->n_forced; i++)
        fprintf(f, i ? ",%d" : "%d", r->forced_positions[i]);
    fprintf(f,
            "],\"stopped_at_eos\":%s,\"stop\":\"%s\",\"prompt_tokens\":%d,"
            "\"prefilled_tokens\":%d,\"reused_tokens\":%d,\"dropped_turns\":%d,"
            "\"prefill_ms\":%.3f,\"ttft_ms\":%.3f,\"decode_ms\":%.3f,\"tok_s\":%.3f}\n",
            r->stopped_at_eos ? "true" : "false", q35_stop_reason_name(r->stop), r->prompt_tokens,
            r->prefilled_tokens, r->reused_tokens, r->dropped_turns, r->prefill_ms, r->ttft_ms,
            r->decode_ms, r->tok_s);
    fflush(f);
}

/* True if a JSON text holds the escape \u0000 (cJSON would end the string
 * there without a word). */
static bool has_nul_escape(const char *s) {
    for (const char *p = s; (p = strstr(p, "\\u0000")) != NULL; p++) {
        size_t at = (size_t)(p - s), run = 1; /* backslashes ending at p, p's own included */
        while (run <= at && s[at - run] == '\\')
            run++;
        if (run % 2 == 1) return true; /* an odd run: p's backslash starts an escape */
    }
    return false;
}

/* A line holding a JSON string is that string (so messages can hold
 * newlines); any other line is the message as it is. NULL with *why set
 * when the line is not a usable message. Caller frees. */
static char *line_message(const char *line, size_t len, const char **why) {
    if (strlen(line) != len) {
        *why = "the line holds a NUL byte (a message is text)";
        return NULL;
    }
    if (line[0] == '"') {
        cJSON *j = cJSON_ParseWithLength(line, len);
        if (cJSON_IsString(j)) {
            bool nul = has_nul_escape(line);
            char *s = nul ? NULL : strdup(j->valuestring);
            cJSON_Delete(j);
            if (!s) *why = nul ? "the message holds \\u0000 (a message is text)" : "out of memory";
            return s;
        }
        cJSON_Delete(j);
    }
    char *s = strdup(line);
    if (!s) *why = "out of memory";
    return s;
}

static int jsonl(q35_chat *c, chat_options *o) {
    char *line = NULL;
    size_t cap = 0;
    int status = 0, turn = 0;
    ssize_t n;
    chat_catch_interrupt(c);
    for (;;) {
        prepare(c); /* before the next line: it may take a while to come */
        if ((n = getline(&line, &cap, stdin)) < 0) break;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        const char *why = NULL;
        char *msg = line_message(line, (size_t)n, &why);
        q35_reply r;
        q35_err e = {0};
        int rc;
        if (msg) {
            rc = q35_chat_generate(c, msg, &o->sampling, NULL, NULL, &r, &e);
            free(msg);
        } else { /* answered like any failed turn: the conversation goes on */
            memset(&r, 0, sizeof r);
            e.code = Q35_EINVAL;
            snprintf(e.msg, sizeof e.msg, "line %d: %s", turn + 1, why);
            rc = e.code;
        }
        if (rc) {
            fprintf(stdout, "{\"turn\":%d,\"error\":", turn);
            json_string(stdout, e.msg, strlen(e.msg));
            fprintf(stdout, ",\"status\":\"%s\"}\n", q35_status_name(e.code));
            fflush(stdout);
            status = 1;
        } else {
            json_reply(stdout, turn, &r);
            if (!o->quiet) chat_print_summary(&r);
        }
        q35_reply_free(&r);
        turn++;
    }
    chat_catch_interrupt(NULL);
    free(line);
    return status;
}

int cmd_chat(int argc, char **argv) {
    chat_options o;
    int rc = chat_options_parse("chat", argc, argv, &o);
    if (rc >= 0) return rc;
    q35_model *m;
    q35_chat *c;
    if ((rc = chat_open("chat", &o, &m, &c))) return rc;
    if ((rc = chat_constraint_open("chat", &o, c))) {
        q35_chat_free(c);
        q35_model_free(m);
        return rc;
    }
    if (o.warmup) { /* pages every weight in: the first reply then costs what the others do */
        q35_sampling s = o.sampling;
        s.max_tokens = 1;
        s.stop = NULL;
        q35_err e = {0};
        if (q35_chat_generate(c, "Hello", &s, NULL, NULL, NULL, &e)) cli_fail_err("chat", &e);
        q35_chat_reset(c);
    }
    rc = o.jsonl ? jsonl(c, &o) : interactive(c, &o);
    q35_chat_free(c);
    chat_constraint_close(&o);
    q35_model_free(m);
    return rc;
}
