/* cmd_template.c — `q35 template`: a conversation (OpenAI-style messages
 * JSON) rendered in the Qwen3.5 chat format, printed byte for byte as the
 * model will read it (SPEC §8), or as token ids with --ids.
 *
 * The renderer is native, so the model is needed only for --ids (its
 * tokenizer) and to warn when the model ships a chat template of another
 * format, in which case the Qwen3.5 rendering is probably not what it
 * expects. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "core/err.h"
#include "core/mapped_file.h"
#include "formats/file_kind.h"
#include "text/tokenizer_gguf.h"
#include "text/tokenizer_gguf_write.h"

#define MAX_JSON_BYTES ((size_t)64 << 20)

static void usage(FILE *f) {
    fprintf(f,
            "usage: q35 template -m MODEL --messages FILE.json [--tools FILE.json] [--no-think]\n"
            "                    [--no-generation-prompt] [--ids | --spans]\n"
            "  Prints the conversation rendered in the Qwen3.5 chat format, byte for byte\n"
            "  (no newline added).\n"
            "  -m MODEL                model dir, tokenizer.json or hub id: its tokenizer is used\n"
            "                          by --ids, and a chat template of another format is warned\n"
            "                          about\n"
            "  --messages FILE.json    a JSON array of messages, or an object with \"messages\"\n"
            "                          (and \"tools\"), as in a chat completions request; - reads\n"
            "                          stdin\n"
            "  --tools FILE.json       a JSON array of tool definitions\n"
            "  --no-think              generation prompt with an empty think block\n"
            "  --no-generation-prompt  stop after the last message\n"
            "  --ids                   print the token ids instead (content tokenized with added\n"
            "                          tokens as plain text), separated by spaces\n"
            "  --spans                 print the text's spans instead, one per line: 'template'\n"
            "                          or 'content', byte offset, length\n");
}

/* Reads a whole JSON input: a regular file, or a stream ("-" is stdin; a
 * pipe such as <(...) or /dev/stdin), up to MAX_JSON_BYTES. */
static char *read_input(const char *path, size_t *len, q35_err *e) {
    struct stat st;
    bool is_stdin = strcmp(path, "-") == 0;
    if (!is_stdin && (stat(path, &st) != 0 || S_ISREG(st.st_mode)))
        return q35_read_text_file(path, MAX_JSON_BYTES, len, e);
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) {
        q35_err_set(e, Q35_EIO, "%s: cannot open", path);
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1) break;
        if (cap > MAX_JSON_BYTES) {
            free(buf);
            if (!is_stdin) fclose(f);
            q35_err_set(e, Q35_EFORMAT, "%s: more than %zu bytes", path, MAX_JSON_BYTES);
            return NULL;
        }
        char *t = realloc(buf, cap *= 2);
        if (!t) free(buf);
        buf = t;
    }
    bool failed = ferror(f);
    if (!is_stdin) fclose(f);
    if (!buf || failed) {
        free(buf);
        q35_err_set(e, buf ? Q35_EIO : Q35_ENOMEM, "%s: %s", path,
                    buf ? "read error" : "out of memory");
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* The chat template a model ships: a .gguf file's tokenizer.chat_template;
 * else chat_template.jinja (what transformers reads first), else
 * tokenizer_config.json's "chat_template" (a string, or a list of {name,
 * template} of which "default" is used), in the model dir or beside a
 * tokenizer.json. NULL when there is none. */
static char *read_model_template(const char *path, size_t *len) {
    struct stat st;
    if (stat(path, &st) != 0) return NULL;
    size_t plen = strlen(path);
    if (S_ISREG(st.st_mode) && (q35_file_kind_of(path) == Q35_FILE_GGUF ||
                                (plen > 5 && !strcmp(path + plen - 5, ".gguf")))) {
        char *text = NULL;
        q35_tokenizer_free(q35_tokenizer_load_gguf(path, &text, NULL));
        if (text) *len = strlen(text);
        return text;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    if (!S_ISDIR(st.st_mode)) {
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = 0;
        else
            snprintf(dir, sizeof dir, ".");
    }
    char *text = NULL;
    if (q35_chat_template_of_dir(dir, &text, NULL) || !text) return NULL;
    *len = strlen(text);
    return text;
}

static int print_ids(const char *model, const q35_prompt *p) {
    q35_err e = {0};
    q35_tokenizer *tok = q35_tokenizer_load(model, &e);
    if (!tok) return cli_fail_err("template", &e);
    q35_tokens ids = {0};
    int rc = q35_prompt_encode(tok, p, &ids, &e);
    q35_tokenizer_free(tok);
    if (rc) return cli_fail_err("template", &e);
    for (size_t i = 0; i < ids.n; i++)
        printf(i ? " %d" : "%d", (int)ids.ids[i]);
    printf("\n");
    q35_tokens_free(&ids);
    return 0;
}

int cmd_template(int argc, char **argv) {
    const char *model = NULL, *messages_path = NULL, *tools_path = NULL;
    int no_think = 0, no_gen = 0, want_ids = 0, want_spans = 0;
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"messages", required_argument, 0, 'M'},
                                         {"tools", required_argument, 0, 'T'},
                                         {"no-think", no_argument, 0, 'n'},
                                         {"no-generation-prompt", no_argument, 0, 'g'},
                                         {"ids", no_argument, 0, 'i'},
                                         {"spans", no_argument, 0, 's'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'M': messages_path = optarg; break;
        case 'T': tools_path = optarg; break;
        case 'n': no_think = 1; break;
        case 'g': no_gen = 1; break;
        case 'i': want_ids = 1; break;
        case 's': want_spans = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!messages_path || optind != argc || (want_ids && want_spans) || (want_ids && !model)) {
        if (want_ids && !model) fprintf(stderr, "q35 template: --ids needs -m (the tokenizer)\n");
        usage(stderr);
        return 2;
    }

    q35_err e = {0};
    char *local = NULL;
    if (model) {
        if (q35_hub_resolve(model, NULL, &local, &e)) return cli_fail_err("template", &e);
        size_t tlen;
        char *tmpl = read_model_template(local, &tlen);
        if (tmpl && !q35_chat_template_is_native(tmpl, tlen))
            fprintf(stderr,
                    "q35 template: warning: %s ships a chat template that is not in the Qwen3.5 "
                    "format; printing the Qwen3.5 rendering anyway\n",
                    model);
        free(tmpl);
    }

    int status = 1;
    size_t len;
    char *json = read_input(messages_path, &len, &e), *tools = NULL;
    q35_message_list msgs = {0};
    q35_prompt prompt = {0};
    if (!json) goto fail;
    if (q35_messages_from_json(json, len, &msgs, &e)) {
        q35_err_prefix(&e, "%s", messages_path);
        goto fail;
    }
    if (tools_path && !(tools = read_input(tools_path, &len, &e))) goto fail;

    q35_chat_opts o = q35_chat_opts_default();
    o.add_generation_prompt = !no_gen;
    o.enable_thinking = !no_think;
    o.tools_json = tools ? tools : msgs.tools_json;
    if (q35_chat_render(msgs.items, msgs.n, &o, &prompt, &e)) goto fail;

    if (want_ids) {
        status = print_ids(local, &prompt);
    } else if (want_spans) {
        for (size_t i = 0; i < prompt.n_spans; i++)
            printf("%s %zu %zu\n",
                   prompt.spans[i].kind == Q35_TEXT_TEMPLATE ? "template" : "content",
                   prompt.spans[i].off, prompt.spans[i].len);
        status = 0;
    } else {
        status = fwrite(prompt.text, 1, prompt.len, stdout) == prompt.len ? 0 : 1;
    }
    if (fflush(stdout) != 0 || ferror(stdout)) status = cli_fail("template", "cannot write stdout");
    goto done;
fail:
    status = cli_fail_err("template", &e);
done:
    q35_prompt_free(&prompt);
    q35_message_list_free(&msgs);
    free(json);
    free(tools);
    free(local);
    return status;
}
