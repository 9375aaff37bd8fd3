/*
 * q35.h — the public API of libq35, an on-device chat engine for the
 * Qwen3.5 hybrid models (Gated DeltaNet + gated attention).
 *
 * Conventions that hold for every function below:
 *  - Errors are values. A function that can fail takes a `q35_err *` (may be
 *    NULL) and returns NULL / a negative q35_status; the q35_err then holds a
 *    code and a message naming the file, tensor, field or offset at fault.
 *    The library never exits or aborts on bad input.
 *  - Ownership is stated per function. "Caller frees with X" means exactly
 *    that; anything else stays owned by the library object it came from.
 *  - Threads: a q35_model is read-only after load and may be shared by any
 *    number of threads, each with its own q35_state / q35_chat. A q35_state,
 *    q35_chat or q35_tokenizer stream decoder is used by one thread at a
 *    time, except where a function says "any thread".
 */
#ifndef Q35_H
#define Q35_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ errors */

typedef enum q35_status {
    Q35_OK = 0,
    Q35_EINVAL = -1,    /* bad argument from the caller */
    Q35_EIO = -2,       /* a file could not be opened, read or mapped */
    Q35_EFORMAT = -3,   /* a file's content is malformed or inconsistent */
    Q35_ENOMEM = -4,    /* an allocation failed or would be unreasonable */
    Q35_ENOTFOUND = -5, /* a file, tensor, repo or revision does not exist */
    Q35_ENET = -6,      /* network failure */
    Q35_EAUTH = -7,     /* the hub refused access (401/403) */
    Q35_ECANCELLED = -8,
    Q35_EOVERFLOW = -9, /* a context or buffer limit was reached */
    Q35_ESTATE = -10,   /* the object is not in a state to do this */
} q35_status;

typedef struct q35_err {
    q35_status code;
    char msg[1024];
} q35_err;

/* A static string naming a status ("format error", ...). */
const char *q35_status_name(q35_status s);

/* ------------------------------------------------------------------ models */

typedef struct q35_model q35_model;

typedef struct q35_load_opts {
    int n_threads; /* compute threads for this model; 0 = all cores */
} q35_load_opts;

/* Loads a model from a local checkpoint directory (config.json +
 * safetensors, single or sharded). Weight files are mmapped, not copied.
 * Returns NULL and fills `e` on failure. Caller frees with q35_model_free.
 * `opts` may be NULL (defaults). */
q35_model *q35_model_load(const char *path, const q35_load_opts *opts, q35_err *e);

/* Frees everything the model holds. NULL is a no-op. No q35_state made from
 * the model may be used afterwards. */
void q35_model_free(q35_model *m);

/* Memory management (voice apps free the LLM around TTS):
 * - q35_model_is_loaded: false after q35_model_unload, true after load/reload.
 * - q35_model_memory_footprint: bytes the model holds now (mapped weight
 *   files + heap buffers); 0 once unloaded. States (KV caches) are owned and
 *   counted by their q35_state / q35_chat.
 * - q35_model_unload: releases weights and buffers but keeps the handle
 *   (path, options). No q35_state of the model may run until reload.
 * - q35_model_reload: loads the same path again into the same handle; a
 *   no-op returning Q35_OK when already loaded.
 * None of these may run concurrently with a forward pass on the model. */
bool q35_model_is_loaded(const q35_model *m);
size_t q35_model_memory_footprint(const q35_model *m);
void q35_model_unload(q35_model *m);
int q35_model_reload(q35_model *m, q35_err *e);

/* Static facts about a loaded model, for callers that drive the low-level
 * API. Pointers inside stay owned by the model. */
typedef struct q35_model_info {
    int vocab_size;  /* rows of the output head (logits per position) */
    int hidden_size;
    int n_layers;
    int n_full_attn_layers;
    int n_threads;
    size_t weight_bytes; /* bytes of weights as held in memory */
    const char *path;
    const char *format;  /* "safetensors", ... */
    const char *dtype;   /* dominant weight type: "bf16", "f32", ... */
} q35_model_info;

void q35_model_get_info(const q35_model *m, q35_model_info *out);

/* ------------------------------------------- low-level: tokens in, logits out
 *
 * A q35_state is one sequence: conv windows and recurrent states of every
 * DeltaNet layer, the KV cache of every attention layer, and the position.
 */
typedef struct q35_state q35_state;

/* A state able to hold `n_ctx` positions. Caller frees with q35_state_free. */
q35_state *q35_state_new(const q35_model *m, int n_ctx, q35_err *e);
void q35_state_free(q35_state *s);

/* Number of tokens the state has consumed (its next position). */
int q35_state_pos(const q35_state *s);
int q35_state_n_ctx(const q35_state *s);

/* Empties the state (position 0). */
void q35_state_clear(q35_state *s);

/* Feeds `n` tokens at the state's position and advances it. n > 1 uses the
 * prefill path, n == 1 the single-token decode path. `logits` receives
 * float32 rows of vocab_size: every position's row when `all_logits`, else
 * only the last position's; it may be NULL. Fails (state unchanged) with
 * Q35_EINVAL on an id outside the vocabulary and Q35_EOVERFLOW when the
 * tokens do not fit in n_ctx. */
int q35_state_eval(const q35_model *m, q35_state *s, const int32_t *ids, int n,
                   float *logits, bool all_logits, q35_err *e);

/* A copy of the whole state (cheap: DeltaNet states are fixed-size, the KV
 * cache is copied only up to the position). Caller frees with
 * q35_snapshot_free. */
typedef struct q35_snapshot q35_snapshot;
q35_snapshot *q35_state_snapshot(const q35_state *s, q35_err *e);
/* Puts `s` back exactly as it was when `snap` was taken. The snapshot stays
 * valid and may be restored again. Fails if snap came from another model or
 * a state of a different n_ctx smaller than the snapshot's position. */
int q35_state_restore(q35_state *s, const q35_snapshot *snap, q35_err *e);
int q35_snapshot_pos(const q35_snapshot *snap);
size_t q35_snapshot_bytes(const q35_snapshot *snap);
void q35_snapshot_free(q35_snapshot *snap);

/* --------------------------------------------------------------- tokenizer
 *
 * Byte-level BPE as in HF `tokenizers` (SPEC §4): added tokens are cut out
 * of the text first, every other stretch is normalized (NFC), split by the
 * pre-tokenizer regex of the file, mapped to the byte-level alphabet and
 * merged by rank. Ids equal HF's `encode(text, add_special_tokens=False)`.
 * A q35_tokenizer is read-only after load: any number of threads may use
 * one at once (each with its own q35_detok_stream).
 */
typedef struct q35_tokenizer q35_tokenizer;

/* Loads a tokenizer from `path`: a model directory holding tokenizer.json,
 * or the path of a tokenizer.json file. A tokenizer_config.json beside it,
 * when present, adds its added tokens and names eos/pad/bos. A compact
 * binary copy is cached under $XDG_CACHE_HOME/q35/tokenizers (or
 * ~/.cache/q35/tokenizers; Q35_NO_TOKENIZER_CACHE=1 turns it off), keyed by
 * a hash of the sources' bytes, so a second load skips JSON parsing.
 * Returns NULL and fills `e` on failure. Caller frees with
 * q35_tokenizer_free. */
q35_tokenizer *q35_tokenizer_load(const char *path, q35_err *e);
void q35_tokenizer_free(q35_tokenizer *t);

/* How added tokens (e.g. <|im_end|>, <think>) written in the text are read. */
typedef enum q35_added_mode {
    /* Every added token in the text becomes its id (HF's default). */
    Q35_ADDED_MATCH = 0,
    /* Special added tokens (<|im_start|>, <|im_end|>, ...) are plain text;
     * non-special ones (<think>, <tool_call>) still match. This is HF's
     * `split_special_tokens=True`, the goldens' `*_nospecial`. */
    Q35_ADDED_SPECIAL_AS_TEXT = 1,
    /* No added token is matched: the whole text goes through BPE. For
     * untrusted content that must not produce any control id. */
    Q35_ADDED_AS_TEXT = 2,
} q35_added_mode;

/* A growable list of token ids. Zero-initialize; free with q35_tokens_free. */
typedef struct q35_tokens {
    int32_t *ids;
    size_t n;
    size_t cap;
} q35_tokens;
void q35_tokens_free(q35_tokens *v); /* frees ids and zeroes *v */

/* Tokenizes `len` bytes of `text` (any bytes: NUL is a character, invalid
 * UTF-8 is kept as raw byte tokens so that decoding gives the bytes back)
 * and appends the ids to `out`. On failure `out` is left as it was. */
int q35_tokenize_append(const q35_tokenizer *t, const char *text, size_t len,
                        q35_added_mode mode, q35_tokens *out, q35_err *e);

/* Same, into a new array: *ids (caller frees with free(); NULL when
 * *n_ids == 0) and *n_ids. */
int q35_tokenize(const q35_tokenizer *t, const char *text, size_t len, q35_added_mode mode,
                 int32_t **ids, size_t *n_ids, q35_err *e);

/* Decodes ids to UTF-8 text exactly as HF `decode`: the bytes of every
 * token concatenated, then each maximal invalid UTF-8 subsequence replaced
 * by one U+FFFD. `skip_special` drops special added tokens. *out is
 * NUL-terminated (it may also contain NUL bytes: use *len); caller frees it
 * with free(). Fails with Q35_EINVAL on an id outside the vocabulary. */
int q35_detokenize(const q35_tokenizer *t, const int32_t *ids, size_t n, bool skip_special,
                   char **out, size_t *len, q35_err *e);

/* Number of ids the tokenizer knows: largest id + 1 (model vocabulary and
 * added tokens). Rows of a model's embedding at or above it are padding. */
size_t q35_tokenizer_n_vocab(const q35_tokenizer *t);

/* Id of the token whose piece is exactly `piece` (NUL-terminated): an added
 * token's content ("<|im_end|>") or a vocabulary entry in its byte-level
 * spelling ("Ġworld"). Added tokens win. -1 when there is none. */
int32_t q35_token_id(const q35_tokenizer *t, const char *piece);

/* The piece of `id` as stored (byte-level spelling for vocabulary tokens),
 * with its length in *len (may be NULL); NULL for an unknown id. Owned by t. */
const char *q35_token_piece(const q35_tokenizer *t, int32_t id, size_t *len);

/* The raw bytes `id` decodes to (not necessarily valid UTF-8 on its own:
 * a token may hold part of a character), length in *len; NULL for an
 * unknown id. Owned by t. */
const char *q35_token_bytes(const q35_tokenizer *t, int32_t id, size_t *len);

/* True for an added token marked special (skipped by skip_special). */
bool q35_token_is_special(const q35_tokenizer *t, int32_t id);
/* True for any added token (special or not: <think> is one). */
bool q35_token_is_added(const q35_tokenizer *t, int32_t id);

/* Ids named by tokenizer_config.json (eos_token, pad_token, bos_token);
 * -1 where not named. */
int32_t q35_tokenizer_eos(const q35_tokenizer *t);
int32_t q35_tokenizer_pad(const q35_tokenizer *t);
int32_t q35_tokenizer_bos(const q35_tokenizer *t);

/* Streaming decoder: feed ids one at a time, get text that never ends in
 * the middle of a UTF-8 character (incomplete sequences are held back until
 * they complete or prove invalid). The concatenation of every piece it
 * returns, flush included, equals q35_detokenize of all the ids. One thread
 * at a time; the tokenizer must outlive it. Caller frees with
 * q35_detok_stream_free. */
typedef struct q35_detok_stream q35_detok_stream;
q35_detok_stream *q35_detok_stream_new(const q35_tokenizer *t, bool skip_special, q35_err *e);
/* Adds one id. *text / *len receive the text completed by it (possibly
 * empty), valid until the next call on the stream. */
int q35_detok_stream_push(q35_detok_stream *s, int32_t id, const char **text, size_t *len,
                          q35_err *e);
/* Ends the stream: held-back bytes come out (as U+FFFD, being incomplete).
 * The stream is then empty and may be reused. */
void q35_detok_stream_flush(q35_detok_stream *s, const char **text, size_t *len);
/* Drops held-back bytes without emitting them. */
void q35_detok_stream_reset(q35_detok_stream *s);
void q35_detok_stream_free(q35_detok_stream *s);

/* ------------------------------------------------------------- chat format
 *
 * The Qwen3.5 chat format (SPEC §5), rendered natively: the logic of the
 * Jinja template published with Qwen3.5 checkpoints, written out in C, so a
 * conversation renders to the bytes transformers' apply_chat_template gives
 * (system first and trimmed, earlier assistant turns reduced to their
 * answer, <think> blocks after the last user query, tools, tool calls with
 * <parameter=...> blocks, consecutive tool responses under one user turn,
 * the generation prompt with thinking on or off). Every byte of the result
 * is labelled template text or message content, and q35_prompt_encode
 * tokenizes content with added tokens as plain text, so no message can
 * forge <|im_end|> or a role: only the renderer emits control tokens.
 *
 * Threads: these functions keep no state; any thread may call them.
 */

/* One call of a tool by the assistant. */
typedef struct q35_tool_call {
    const char *name;           /* the function name (required) */
    /* JSON text of an object; each member becomes a <parameter=KEY> block
     * holding the value as the template prints it (strings as they are,
     * numbers/true/false/null as Python's str(), objects and arrays as
     * json.dumps). NULL: no parameters. */
    const char *arguments_json;
} q35_tool_call;

/* One message, as the OpenAI-style messages list holds it. */
typedef struct q35_message {
    const char *role;    /* "system" (first message only), "user", "assistant", "tool" */
    const char *content; /* NULL renders as "" */
    /* Assistant only: the thinking of that turn. NULL: the template takes it
     * from a "<think>...</think>" in `content` instead (and the answer is
     * what follows the last </think>). Rendered only for assistant turns
     * after the last user query; earlier turns keep only their answer. */
    const char *reasoning_content;
    const q35_tool_call *tool_calls; /* assistant only; may be NULL when n_tool_calls == 0 */
    size_t n_tool_calls;
} q35_message;

typedef struct q35_chat_opts {
    bool add_generation_prompt; /* end with the opening of the assistant's turn */
    bool enable_thinking;       /* false: the generation prompt closes an empty think block */
    /* JSON array of tool definitions (OpenAI style, printed as given, one
     * per line, in the system turn), or NULL / "[]" for none. */
    const char *tools_json;
} q35_chat_opts;

/* Generation prompt on, thinking on, no tools. */
q35_chat_opts q35_chat_opts_default(void);

typedef enum q35_text_kind {
    Q35_TEXT_TEMPLATE = 0, /* written by the renderer: control tokens in it are read as such */
    Q35_TEXT_CONTENT = 1,  /* from a message or a tool definition: added tokens are plain text */
} q35_text_kind;

typedef struct q35_text_span {
    size_t off, len;
    q35_text_kind kind;
} q35_text_span;

/* A rendered conversation: the text and which of its bytes are content. */
typedef struct q35_prompt {
    char *text; /* NUL-terminated */
    size_t len;
    /* In order, non-empty, covering [0, len) exactly; neighbours differ in
     * kind. */
    q35_text_span *spans;
    size_t n_spans;
} q35_prompt;

/* Renders `n` messages. Fails with Q35_EINVAL, and a message naming the
 * message at fault, where the template raises an exception (no messages,
 * no user query, a system message that is not first, an unknown role) and
 * on input it cannot print (a tool call without a name, arguments that are
 * not a JSON object, tools_json that is not a JSON array). Text is used as
 * bytes: invalid UTF-8 passes through unchanged. On success *out holds the
 * result; caller frees with q35_prompt_free. `opts` may be NULL (defaults). */
int q35_chat_render(const q35_message *msgs, size_t n, const q35_chat_opts *opts,
                    q35_prompt *out, q35_err *e);
/* Frees the text and spans and zeroes *p. NULL or zeroed: no-op. */
void q35_prompt_free(q35_prompt *p);

/* Tokenizes a rendered prompt safely and appends the ids to `out`: added
 * tokens are matched only inside template spans (as HF would match them);
 * everything else is tokenized with Q35_ADDED_AS_TEXT. The text between
 * matched control tokens is tokenized in one piece, template and content
 * together, so wherever the content holds no added-token text the ids equal
 * HF's encoding of the same text. On failure `out` is left as it was. */
int q35_prompt_encode(const q35_tokenizer *t, const q35_prompt *p, q35_tokens *out, q35_err *e);

/* Messages (and tools) parsed from OpenAI-style JSON. */
typedef struct q35_message_list {
    q35_message *items;
    size_t n;
    char *tools_json; /* the "tools" array of an object input, NULL otherwise */
    void *priv;       /* storage of every string above */
} q35_message_list;

/* Parses `len` bytes of JSON: an array of messages, or an object with a
 * "messages" array (and optionally a "tools" array, as in a
 * /v1/chat/completions request). Each message is an object with "role"
 * (string), "content" (string, null/absent, or an array of
 * {"type":"text","text":...} parts, concatenated), "reasoning_content"
 * (used when a string), "tool_calls" (array of {"function": {"name",
 * "arguments"}} or {"name", "arguments"}; "arguments" an object or a
 * string holding a JSON object, as OpenAI sends it). Numbers, key order
 * and repeated keys are kept as Python's json reads them, so the renderer
 * prints what transformers prints. Errors (Q35_EFORMAT, Q35_EINVAL) name
 * the line/column or the message and field; images, audio and video parts
 * are refused (text-only engine). Strings holding NUL are refused. Caller
 * frees with q35_message_list_free. */
int q35_messages_from_json(const char *json, size_t len, q35_message_list *out, q35_err *e);
void q35_message_list_free(q35_message_list *l); /* zeroes *l; NULL/zeroed: no-op */

/* True when a chat template (Jinja text from tokenizer_config.json or
 * chat_template.jinja) has the markers of the Qwen3.5 format this renderer
 * speaks (<|im_start|>/<|im_end|> turns, <think>, <tool_call> with
 * <function=...>/<parameter=...>). False suggests the model expects another
 * format; callers may warn. */
bool q35_chat_template_is_native(const char *jinja, size_t len);

/* --------------------------------------------------------------------- hub
 *
 * Models on the Hugging Face hub, downloaded once into the HF cache that
 * the Python tools (huggingface_hub, transformers) use, so a model fetched
 * by either is reused by the other:
 *   {cache}/models--ORG--NAME/blobs/<sha256 of LFS files | git blob id>
 *   {cache}/models--ORG--NAME/snapshots/<commit>/<file> -> ../../blobs/<...>
 *   {cache}/models--ORG--NAME/refs/<revision>          (holds the commit)
 *   {cache}/.locks/models--ORG--NAME/<blob>.lock      (flock while fetching)
 * Downloads go to blobs/<blob>.incomplete (resumed with Range after a cut or
 * a crash), are checked (size; sha256 of LFS files, git blob id of others,
 * against the hub's listing), then renamed into place: the cache never
 * holds a partial or unverified blob. Concurrent pulls of the same repo,
 * from threads or processes (q35 or Python), are safe.
 *
 * Settings come from q35_hub_opts, else the environment, as in
 * huggingface_hub: HF_ENDPOINT (https://huggingface.co); HF_HUB_CACHE, else
 * $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
 * ~/.cache/huggingface/hub; HF_TOKEN, else the file $HF_TOKEN_PATH or
 * $HF_HOME/token; HF_HUB_OFFLINE=1 (cache only); HF_HUB_DOWNLOAD_TIMEOUT
 * (seconds without data before a transfer fails, default 10);
 * HF_HUB_DISABLE_PROGRESS_BARS=1.
 *
 * Threads: any thread. The first call initializes libcurl; a program that
 * also uses libcurl itself should call curl_global_init first.
 */

/* Download progress of one file: `done` of `total` bytes (total 0 when the
 * size is unknown; done starts at the resumed offset). Called on the
 * caller's thread, about 10 times a second at most, and once with done ==
 * total when the file is complete. */
typedef void (*q35_hub_progress_fn)(void *user, const char *file, uint64_t done,
                                    uint64_t total);

typedef struct q35_hub_opts {
    const char *endpoint;  /* NULL: $HF_ENDPOINT, else https://huggingface.co */
    const char *cache_dir; /* NULL: the HF hub cache (see above) */
    const char *token;     /* NULL: $HF_TOKEN or the token file; "" sends none */
    bool offline;          /* cache only (HF_HUB_OFFLINE=1 also turns it on) */
    /* NULL-terminated paths in the repo to fetch instead of the engine's set
     * (config.json, generation_config.json, tokenizer.json,
     * tokenizer_config.json, chat_template.jinja, *.safetensors and
     * model.safetensors.index.json at the top level); e.g. one .gguf. */
    const char *const *files;
    q35_hub_progress_fn progress; /* NULL: a bar on stderr if it is a terminal */
    void *progress_user;
    bool quiet; /* no built-in bar (a `progress` callback is still called) */
} q35_hub_opts;

/* What a pull did (all fields filled on success). */
typedef struct q35_hub_stats {
    char commit[41];           /* the snapshot's commit */
    int n_files;               /* files of the snapshot that were asked for */
    int n_downloaded;          /* of those, fetched over the network now */
    uint64_t bytes_downloaded; /* bytes received now (resumed parts excluded) */
    bool cache_only;           /* answered from the cache without the hub
                                  (offline mode, or the hub was unreachable) */
} q35_hub_stats;

/* Makes a hub repo's files present in the cache and returns its snapshot
 * directory. `repo` is "org/name", "org/name@REV" (branch, tag or commit;
 * default main), or "org/name[@REV]/path/file.gguf" to fetch that one file.
 * The file list and commit come from {endpoint}/api/models/{repo}/revision/
 * {rev}; files from {endpoint}/{repo}/resolve/{commit}/{file}. When the hub
 * cannot be reached (or in offline mode) a complete cached snapshot of the
 * revision is used instead. On success *snapshot_dir is set (caller frees
 * with free()) and `stats` (may be NULL) is filled. Errors: Q35_EINVAL (bad
 * id), Q35_EAUTH (401/403: private/gated repo, missing or refused token),
 * Q35_ENOTFOUND (repo, revision or file, or a cache miss offline), Q35_ENET
 * (network), Q35_EFORMAT (checksum or size mismatch, bad hub answer),
 * Q35_EIO (cache directory). The cache stays consistent on every error. */
int q35_hub_pull(const char *repo, const q35_hub_opts *opts, char **snapshot_dir,
                 q35_hub_stats *stats, q35_err *e);

/* What model loading calls on its `path_or_repo` argument: an existing local
 * file or directory is returned as is (a copy); otherwise a hub id as
 * accepted by q35_hub_pull is pulled (or found in the cache) and its
 * snapshot directory returned, or the path of the .gguf it names. A string
 * that is neither an existing path nor a hub id fails with Q35_ENOTFOUND.
 * On success *local_path is set; caller frees with free(). `opts` may be
 * NULL (environment defaults). */
int q35_hub_resolve(const char *path_or_repo, const q35_hub_opts *opts, char **local_path,
                    q35_err *e);

#ifdef __cplusplus
}
#endif
#endif /* Q35_H */
