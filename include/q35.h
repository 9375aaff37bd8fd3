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

/* The form weight matrices are computed in. */
typedef enum q35_weight_format {
    Q35_WEIGHTS_AS_STORED = 0, /* bf16/f16/f32, GGUF Q8_0/Q4_0/Q4_K/Q5_K/Q6_K and MLX
                                * affine (2-8 bits, mlx-lm's or the reference app's
                                * files) as in the files (mapped); other quantized
                                * types (IQ*, Q2_K, ...) decoded to float32 */
    Q35_WEIGHTS_Q8_0,          /* every matrix converted to Q8_0 at load (8.5 bits/weight) */
    Q35_WEIGHTS_Q4_0,          /* every matrix converted to Q4_0 at load (4.5 bits/weight) */
} q35_weight_format;

/* ----------------------------------------------------------------- devices
 *
 * Q35_DEVICE_CUDA runs the whole forward pass of every state of the model on
 * the first CUDA GPU: the weights are uploaded once (by the first
 * q35_state_new) and the KV caches, conv windows and DeltaNet states stay
 * in device memory; snapshots are device-side copies. The same q35_state /
 * q35_chat API works unchanged. The environment variable Q35_DEVICE=cuda
 * (read by q35_state_new) moves a CPU-loaded model's states to the GPU, so
 * that any program or test runs there unchanged. */
typedef enum q35_device {
    Q35_DEVICE_CPU = 0,
    Q35_DEVICE_CUDA = 1,
} q35_device;

/* Number of CUDA devices visible: 0 when the library was built without
 * CUDA, no driver is installed or no GPU is visible. Any thread. */
int q35_cuda_device_count(void);

/* One greedy decode step: feeds `id` at the state's position (advancing
 * it) and sets *next to the argmax of the logits over ids [0, n_vocab)
 * (1 <= n_vocab <= vocab_size; the tokenizer's size keeps padding rows
 * out), lowest id on ties. On a CUDA state the step is one replayed CUDA
 * graph and only the chosen id comes back to the host; on the CPU it is
 * q35_state_eval and an argmax. Fails as q35_state_eval does. */
struct q35_state;
int q35_state_decode_greedy(const q35_model *m, struct q35_state *s, int32_t id, int n_vocab,
                            int32_t *next, q35_err *e);

/* One sampling decode step: feeds `id` (advancing the state) and samples
 * the next id with `smp` (its temperature, top_k, top_p and repetition
 * penalty over the last repetition_window of recent[0..n_recent), SPEC
 * §6) over ids [0, n_valid), with u (in [0, 1), the sampler's next
 * uniform) as the draw: the same id the runtime's sampler picks from the
 * same logits. On a CUDA state that is one replayed graph and only the id
 * comes back. *next = -1 when the caller must sample itself from the row
 * then in `logits` (vocab_size floats, not penalized): a CPU state, top_k
 * 0 or above 64, a window above 1024, or ties at the k-th logit the device
 * does not settle. Fails as q35_state_eval does. */
/* One greedy decode step of n conversations at once (a server's batch):
 * feeds ids[i] to states[i] (advancing each) and sets next[i] to the
 * argmax below n_vocab of that state's logits, as n calls of
 * q35_state_decode_greedy would (up to float32 summation order). On CUDA
 * states of one load that is one batched step (the weights read once for
 * all n; n <= 64 and <= the first state's n_ctx); otherwise, or for n = 1,
 * the states step one after the other. The states must be distinct and of
 * this load; on an error (checked before any state moves where it can be)
 * no position has advanced unless e says which state failed. */
int q35_states_decode_greedy(const q35_model *m, struct q35_state *const *states,
                             const int32_t *ids, int n, int n_vocab, int32_t *next, q35_err *e);

struct q35_sampling;
int q35_state_decode_sample(const q35_model *m, struct q35_state *s, int32_t id,
                            const struct q35_sampling *smp, int n_valid, const int32_t *recent,
                            int n_recent, double u, int32_t *next, float *logits, q35_err *e);

typedef struct q35_load_opts {
    int n_threads; /* compute threads for this model; 0 = all cores */
    /* Converting at load costs a pass over the weights each start (about a
     * second per GB); `q35 convert` writes the converted model once. A
     * matrix whose column count is not a multiple of 32 keeps its form. */
    q35_weight_format weights;
    /* How hub ids are fetched (see q35_hub_opts); NULL: environment defaults. */
    const struct q35_hub_opts *hub;
    /* Where states of this model evaluate (see "devices" above). */
    q35_device device;
    /* The exact float path, the reference mode: quantized weights times
     * float32 activations (each result the matmul over the dequantized
     * matrix, to float32 summation order). Default (false): the integer
     * kernels, which round activations to 8 bits per 32-element block and
     * multiply with integer dot products (ggml's Q8_0 scheme; faster where
     * decode is bound by arithmetic, e.g. AVX2 or NEON; logits move by about
     * what 8-bit weights would add). The environment variable Q35_EXACT=1
     * forces the exact path for every model. */
    bool exact_kernels;
} q35_load_opts;

/* The model `q35 run` and `q35 chat` use when none is named. */
#define Q35_DEFAULT_MODEL "Qwen/Qwen3.5-0.8B"

/* Loads a model from `path_or_repo`: a checkpoint directory (config.json +
 * safetensors, single or sharded; MLX-quantized safetensors too), a .gguf
 * file, or a hub id ("Qwen/Qwen3.5-0.8B[@REV]"), which is downloaded once
 * into the HF cache (see q35_hub_resolve). Weight files are mmapped, not
 * copied. Returns NULL and fills `e` on failure. Caller frees with
 * q35_model_free. `opts` may be NULL (defaults). */
q35_model *q35_model_load(const char *path_or_repo, const q35_load_opts *opts, q35_err *e);

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
    int vocab_size; /* rows of the output head (logits per position) */
    int hidden_size;
    int n_layers;
    int n_full_attn_layers;
    int n_threads;
    size_t weight_bytes; /* bytes of weights as held in memory */
    const char *path;
    const char *format;       /* "safetensors", ... */
    const char *dtype;        /* dominant weight type in memory: "bf16", "f32", ... */
    const char *quantization; /* as stored in the files: "none", "Q4_K_M" (GGUF
                               * file type), "MLX affine 4-bit, group 64" */
} q35_model_info;

void q35_model_get_info(const q35_model *m, q35_model_info *out);

/* ------------------------------------------- low-level: tokens in, logits out
 *
 * A q35_state is one sequence: conv windows and recurrent states of every
 * DeltaNet layer, the KV cache of every attention layer, and the position.
 * Each state owns its compute threads (the model's n_threads, the caller
 * included) and all scratch memory, sized at creation; evaluation allocates
 * nothing. Several states of one model may evaluate at once on different
 * threads. Results do not depend on the number of threads (bit for bit).
 * A state is tied to one load of its model: after q35_model_unload/reload
 * it refuses to evaluate (Q35_ESTATE) and should be freed.
 */
typedef struct q35_state q35_state;

/* A state able to hold `n_ctx` positions (1 .. 2^24). The KV cache is
 * reserved for n_ctx but only backed by memory as positions are used. It
 * holds f16 keys and values (2 bytes each); the environment variable
 * Q35_KV_CACHE=f32 (exact: what float32 references are compared with),
 * bf16 or q8 (Q8_0 blocks, ~1.06 bytes) picks another form for the states
 * made after it is set. Caller frees with q35_state_free. */
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
int q35_state_eval(const q35_model *m, q35_state *s, const int32_t *ids, int n, float *logits,
                   bool all_logits, q35_err *e);

/* A copy of the whole state (cheap: DeltaNet states are fixed-size, the KV
 * cache is copied only up to the position). Caller frees with
 * q35_snapshot_free. */
typedef struct q35_snapshot q35_snapshot;
q35_snapshot *q35_state_snapshot(const q35_state *s, q35_err *e);
/* Puts `s` back exactly as it was when `snap` was taken. The snapshot stays
 * valid and may be restored again. Fails if snap came from another model or
 * a state of a different n_ctx smaller than the snapshot's position. */
int q35_state_restore(q35_state *s, const q35_snapshot *snap, q35_err *e);

/* q35_state_eval that also takes snapshots inside the evaluation: snaps[i]
 * receives the state as it stands after the first at[i] of the n tokens
 * (1 <= at[i] <= n, strictly increasing, at most 64 points), as
 * q35_state_snapshot would between pieces fed separately — but the tokens
 * go through in one pass (each weight streamed once per chunk, not once
 * per piece). Caller frees each snapshot with q35_snapshot_free. On any
 * failure no snapshot is returned and the state is unchanged. */
int q35_state_eval_snapshots(const q35_model *m, q35_state *s, const int32_t *ids, int n,
                             float *logits, bool all_logits, const int *at, int n_at,
                             q35_snapshot **snaps, q35_err *e);
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
 * the path of a tokenizer.json file, or a .gguf file (its tokenizer.ggml.*
 * metadata). A tokenizer_config.json beside tokenizer.json, when present,
 * adds its added tokens and names eos/pad/bos. A compact binary image of
 * the built tables is cached under $XDG_CACHE_HOME/q35/tokenizers (or
 * ~/.cache/q35/tokenizers; Q35_NO_TOKENIZER_CACHE=1 turns it off), keyed by
 * a hash of the sources' bytes, so a second load skips JSON parsing (a
 * 248k vocabulary: ~15 ms instead of ~400). A damaged or stale image is
 * ignored. Unsupported tokenizer.json features (other models, normalizers,
 * pre-tokenizers or decoders than the byte-level BPE family uses) fail
 * with Q35_EFORMAT naming them. Returns NULL and fills `e` on failure.
 * Caller frees with q35_tokenizer_free. Thread-safe (distinct calls). */
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
int q35_tokenize_append(const q35_tokenizer *t, const char *text, size_t len, q35_added_mode mode,
                        q35_tokens *out, q35_err *e);

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
    const char *name; /* the function name (required) */
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
 * not a JSON object, tools_json that is not a JSON array); with
 * Q35_EFORMAT (and the line/column) where tools_json or arguments_json is
 * not JSON. Text is used as bytes: invalid UTF-8 passes through unchanged.
 * On success *out holds the result; on failure *out is zeroed. Caller frees
 * with q35_prompt_free. `opts` may be NULL (defaults). */
int q35_chat_render(const q35_message *msgs, size_t n, const q35_chat_opts *opts, q35_prompt *out,
                    q35_err *e);
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
 * (used when a string), "tool_calls" (null, or an array of {"function":
 * {"name", "arguments"}} or {"name", "arguments"}; "arguments" absent or
 * null for none, an object, or a string holding a JSON object as OpenAI
 * sends it — transformers itself would raise on the string form). Other
 * fields are ignored. Numbers, key order and repeated keys are kept as
 * Python's json reads them, so the renderer prints what transformers
 * prints. Errors (Q35_EFORMAT, Q35_EINVAL) name the line/column or the
 * message and field; images, audio and video parts are refused (text-only
 * engine), and so are strings holding NUL. The role's value is checked by
 * q35_chat_render. On failure *out is zeroed. Caller frees with
 * q35_message_list_free. */
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
typedef void (*q35_hub_progress_fn)(void *user, const char *file, uint64_t done, uint64_t total);

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

/* ------------------------------------------------------- structured output
 *
 * Constrained decoding (SPEC §6a): the answer is forced to be a valid
 * document of a language, token by token. Three sources compile to one
 * internal grammar (rules, alternatives, byte-set terminals, token
 * terminals):
 *  - JSON mode: any JSON object;
 *  - a JSON Schema (text; the subset the README lists). A keyword outside
 *    it fails with Q35_EINVAL naming the keyword and its JSON pointer
 *    ("unsupported keyword 'patternProperties' at /properties/a"), never
 *    a silently looser reply;
 *  - a grammar in llama.cpp's GBNF notation (rules `name ::= ...`, `|`,
 *    groups, `?` `*` `+` `{m}` `{m,}` `{m,n}`, "literals" and [classes]
 *    with escapes, ranges and `^`, `.`, `#` comments, `<[ID]>` for a token
 *    id and `<TEXT>` for the added token TEXT); `root` is the start.
 * The grammar runs as an Earley-style pushdown recognizer over bytes (a
 * set of stacks); each step's mask walks a byte trie of the vocabulary
 * against the recognizer, with the stack sets interned into states whose
 * transitions and masks are cached by the matcher.
 *
 * Objects and threads:
 *  - q35_constraint_vocab: a tokenizer's vocabulary as byte tries, built
 *    once per tokenizer (~0.2 s for 248k tokens) and shared by every
 *    constraint compiled against it. Immutable, any thread.
 *  - q35_constraint: a compiled constraint. Immutable: any number of
 *    conversations on any threads may use one at once (a server caches
 *    them). It keeps its vocab alive (reference counted).
 *  - q35_matcher: the state of one generation under a constraint (where
 *    the document is, cached states and masks). One thread at a time.
 * Put a constraint in q35_sampling.constraint and q35_chat_generate makes
 * and frees the matcher itself.
 */
typedef struct q35_constraint_vocab q35_constraint_vocab;
typedef struct q35_constraint q35_constraint;
typedef struct q35_matcher q35_matcher;

/* The vocabulary of `t` as the constraint layer reads it (the token bytes
 * are copied: `t` may be freed afterwards). Added tokens are left out of
 * the byte trie; a grammar admits them only through token terminals.
 * Caller frees with q35_constraint_vocab_free (constraints compiled
 * against it keep it alive until they are freed too). */
q35_constraint_vocab *q35_constraint_vocab_new(const q35_tokenizer *t, q35_err *e);
void q35_constraint_vocab_free(q35_constraint_vocab *v);

typedef enum q35_constraint_kind {
    Q35_CONSTRAINT_JSON = 1,        /* any JSON object; `text` is ignored (may be NULL) */
    Q35_CONSTRAINT_JSON_SCHEMA = 2, /* `text` is a JSON Schema */
    Q35_CONSTRAINT_GRAMMAR = 3,     /* `text` is GBNF */
} q35_constraint_kind;

/* Compiles `len` bytes of `text` of the given kind against `v`. Errors:
 * Q35_EINVAL naming the unsupported schema keyword and its JSON pointer,
 * or the GBNF line:column and what is wrong there (undefined rule, left
 * recursion, bad escape, no root); Q35_EFORMAT when a schema is not JSON.
 * Caller frees with q35_constraint_free. Thread-safe. */
q35_constraint *q35_constraint_compile(const q35_constraint_vocab *v, q35_constraint_kind kind,
                                       const char *text, size_t len, q35_err *e);

/* A Qwen3.5 tool call, as the chat template prints one:
 *   <tool_call>\n<function=NAME>\n<parameter=P>\nVALUE\n</parameter>\n
 *   ...</function>\n</tool_call>
 * (<tool_call> and </tool_call> as their added tokens), where NAME is the
 * function `name` of `tools_json` (an OpenAI-style tools array), or any of
 * them when `name` is NULL (tool_choice "required"); one or more calls,
 * separated by "\n". The parameters are those of the function's
 * "parameters" schema: required ones always, optional ones maybe, in the
 * schema's order; a string value is raw text without '<', any other value
 * JSON text satisfying its schema. Errors as q35_constraint_compile (the
 * pointer is into tools_json). Caller frees with q35_constraint_free. */
q35_constraint *q35_constraint_tool_call(const q35_constraint_vocab *v, const char *tools_json,
                                         size_t len, const char *name, q35_err *e);

void q35_constraint_free(q35_constraint *c); /* NULL: no-op */

/* The GBNF text a JSON Schema (kind JSON_SCHEMA) or JSON mode compiles
 * to, for inspection and tools. *gbnf: caller frees with free(). */
int q35_constraint_to_gbnf(q35_constraint_kind kind, const char *text, size_t len, char **gbnf,
                           q35_err *e);

/* A matcher at the start of the document. `after_think`: the document may
 * be preceded by up to two "\n" (the newlines after </think>). `eos` /
 * `n_eos`: the ids allowed where the document is complete (copied); NULL
 * uses the vocabulary's (<|im_end|>, <|endoftext|>, the tokenizer's eos).
 * Caller frees with q35_matcher_free. */
q35_matcher *q35_matcher_new(const q35_constraint *c, bool after_think, const int32_t *eos,
                             int n_eos, q35_err *e);
void q35_matcher_free(q35_matcher *m);

/* Back to the start of a new document, keeping the states and masks
 * learnt so far (a server slot or a test reusing one matcher). */
int q35_matcher_reset(q35_matcher *m, bool after_think, q35_err *e);

/* Sets logits[id] = -INFINITY for every id in [0, n) that may not come
 * next (ids outside the vocabulary included). Fails (Q35_ENOMEM,
 * Q35_EOVERFLOW when the grammar's state space grows past the matcher's
 * limits) leaving `logits` unchanged. */
int q35_matcher_mask(q35_matcher *m, float *logits, int n, q35_err *e);

/* True when `id` may come next (eos ids: where the document is complete). */
bool q35_matcher_allows(q35_matcher *m, int32_t id);

/* Advances over a token (not an eos id) / over raw bytes. Q35_EINVAL,
 * matcher unchanged, when they do not continue a valid prefix. */
int q35_matcher_accept(q35_matcher *m, int32_t id, q35_err *e);
int q35_matcher_accept_bytes(q35_matcher *m, const char *bytes, size_t n, q35_err *e);

/* The document so far is complete (an eos may come) / may still go on.
 * Complete and unable to go on: the reply must end now. */
bool q35_matcher_is_complete(const q35_matcher *m);
bool q35_matcher_can_continue(const q35_matcher *m);

/* Counters of a matcher, for benchmarks. */
typedef struct q35_matcher_stats {
    int n_states;    /* interned recognizer states */
    int n_masks;     /* masks computed (trie walks) */
    int n_mask_hits; /* masks served from the cache */
    double mask_ms;  /* time spent in q35_matcher_mask */
    size_t memory_bytes;
} q35_matcher_stats;
void q35_matcher_get_stats(const q35_matcher *m, q35_matcher_stats *out);

/* -------------------------------------------------------------------- chat
 *
 * A conversation with the model, as the reference app offers it: a system
 * prompt, a history of turns, a reply per call (whole or streamed piece by
 * piece), sampling settings, thinking control, cancel, reset. Each turn is
 * rendered with the Qwen3.5 chat template (user and system text tokenized
 * with added tokens as plain text, so no message can forge a control token);
 * earlier turns keep only their answer, as the template does.
 *
 * Prompt caching: a q35_chat keeps one q35_state and snapshots of it at
 * turn boundaries: the end of the system prompt, the start and the end of
 * the latest user message (taken inside the prefill's single pass, at no
 * extra cost in weight reads), and "the conversation so far" made by
 * q35_chat_prepare. A turn re-renders the whole conversation, restores the
 * snapshot with the longest token prefix of it and feeds only the rest, so
 * the reply is the one a from-scratch render would give, token for token,
 * while the system prompt is computed once per conversation. After a
 * reply, q35_chat_prepare computes the next
 * turn's starting point in idle time (the answer re-rendered into the
 * history); a prepared turn then prefills only its new message and the
 * generation prompt. Without it, the next turn starts from the end of the
 * previous user message and computes the re-rendered answer itself.
 *
 * Context overflow policy: a turn needs room for its prompt plus
 * max_tokens (plus the forced "\n</think>\n\n" when thinking with a budget).
 * While that does not fit in n_ctx, the oldest turn (user message and its
 * answer) is dropped from the history; the system prompt is never dropped.
 * If the prompt alone (system prompt + this message) still leaves no room
 * for one token, the call fails with Q35_EOVERFLOW and the conversation is
 * unchanged. A reply that fills the context stops with
 * Q35_STOP_CONTEXT_FULL and is kept; the next turn drops old turns.
 *
 * Threads: one thread at a time per q35_chat, except q35_chat_cancel (any
 * thread). Several chats on one model may generate at once on several
 * threads; each owns its state and compute threads. A chat notices that its
 * model was unloaded and reloaded (q35_model_reload) and rebuilds its state
 * from the history on the next turn; generating while the model is
 * unloaded fails with Q35_ESTATE.
 */

/* Sampling settings (SPEC §6). Logits go through, in this order: padding
 * rows (ids at or above the tokenizer's size) masked; repetition penalty
 * over the last `repetition_window` context tokens, prompt included (each
 * distinct id once: a positive logit is divided by the penalty, a negative
 * one multiplied); temperature (0 = argmax, first index on ties); top-k
 * (ties with the k-th logit kept); top-p (the smallest set of most likely
 * ids whose probability reaches top_p); a draw.
 * The draw: a xoshiro256** generator seeded with splitmix64(seed) at the
 * start of every reply gives u = (next() >> 11) * 2^-53 in [0, 1); the
 * chosen id is the first, in order of decreasing probability, whose
 * cumulative probability exceeds u times the kept mass (in id order
 * instead when neither top-k nor top-p cuts anything). The same seed,
 * settings and conversation give the same reply. */
typedef struct q35_sampling {
    float temperature;        /* 0.6; 0 = greedy */
    int top_k;                /* 50; 0 = no top-k cut */
    float top_p;              /* 0.95; 1 = no top-p cut */
    int max_tokens;           /* 512 sampled tokens per reply (forced ones not counted) */
    float repetition_penalty; /* 1.1; 1 = off */
    int repetition_window;    /* 64 */
    bool thinking;            /* true: the reply may start with a think block */
    /* 100: after this many tokens inside the think block without
     * "</think>", the tokens of "\n</think>\n\n" are appended (not sampled,
     * not counted in max_tokens). Negative = no budget. */
    int thinking_budget;
    uint64_t seed; /* 0 (any value is a valid seed) */
    /* NULL-terminated list of strings that end the reply when they appear
     * in the answer text (the answer stops before them); NULL = none. The
     * strings are not copied: they must live through the call. */
    const char *const *stop;
    /* Structured output (see "structured output" above): the answer must be
     * a document of this constraint (after </think> when thinking); NULL =
     * free text. Not copied: it must live through the call. */
    const q35_constraint *constraint;
} q35_sampling;

/* temperature 0.6, top_k 50, top_p 0.95, max_tokens 512, repetition
 * penalty 1.1 over 64 tokens, thinking on with a budget of 100, seed 0, no
 * stop strings. */
q35_sampling q35_sampling_default(void);

/* What a piece of streamed text is. */
typedef enum q35_piece_kind {
    Q35_PIECE_THINKING = 1, /* inside the think block */
    Q35_PIECE_ANSWER = 2,   /* the answer */
} q35_piece_kind;

/* Called on the generating thread for every piece of text as it comes:
 * complete UTF-8 only, never empty. The thinking pieces concatenate to
 * q35_reply.thinking and the answer pieces to q35_reply.answer ("</think>"
 * and the newlines around it are in neither). `text` is valid only during
 * the call. Return 0 to go on, non-zero to stop the reply as a cancel
 * would (Q35_STOP_CANCELLED). */
typedef int (*q35_piece_fn)(void *user, q35_piece_kind kind, const char *text, size_t len);

typedef enum q35_stop_reason {
    Q35_STOP_NONE = 0,
    Q35_STOP_EOS,          /* an end-of-sequence id was sampled */
    Q35_STOP_MAX_TOKENS,   /* max_tokens ids were sampled */
    Q35_STOP_STRING,       /* a stop string appeared in the answer */
    Q35_STOP_CANCELLED,    /* q35_chat_cancel, or the callback asked to stop */
    Q35_STOP_CONTEXT_FULL, /* the context (n_ctx) is full */
} q35_stop_reason;

/* A static name for a stop reason ("eos", "max_tokens", ...). */
const char *q35_stop_reason_name(q35_stop_reason r);

/* One reply. Filled by q35_chat_generate; caller frees with q35_reply_free
 * (which zeroes it). Strings are NUL-terminated and may hold NUL bytes: use
 * the lengths. */
typedef struct q35_reply {
    char *text; /* all generated text: thinking, "</think>", answer
                   (special tokens and the final eos not shown) */
    size_t text_len;
    char *thinking; /* the think block's text, newlines around it dropped */
    size_t thinking_len;
    char *answer; /* the answer, leading newlines dropped: what enters the
                     history */
    size_t answer_len;
    int32_t *ids; /* every id generated, forced ones and a final eos included */
    int n_ids;
    int *forced_positions; /* indices into ids of the forced ids, ascending */
    int n_forced;
    q35_stop_reason stop;
    bool stopped_at_eos;  /* stop == Q35_STOP_EOS */
    int n_sampled;        /* ids drawn by the sampler (n_ids - n_forced) */
    int prompt_tokens;    /* length of the rendered prompt */
    int reused_tokens;    /* prompt tokens restored from a snapshot */
    int prefilled_tokens; /* prompt tokens computed for this reply */
    int dropped_turns;    /* turns dropped from the history to make room */
    double prefill_ms;    /* from the call to the end of the prefill (render,
                             restore, prefill) */
    double ttft_ms;       /* from the call to the first sampled id */
    double decode_ms;     /* from the first sampled id to the end */
    double tok_s;         /* ids after the first / decode time */
} q35_reply;

void q35_reply_free(q35_reply *r);

typedef struct q35_chat q35_chat;

typedef enum q35_overflow_policy {
    Q35_OVERFLOW_DROP_OLDEST = 0, /* drop the oldest turns (see above) */
    Q35_OVERFLOW_ERROR = 1,       /* fail with Q35_EOVERFLOW instead */
} q35_overflow_policy;

typedef struct q35_chat_settings {
    int n_ctx;         /* context positions; 0 = 4096 (or the model's max) */
    int max_snapshots; /* turn snapshots kept besides the system prompt's;
                          0 = 3 (the last turn's start and end, and the
                          prepared conversation so far),
                          -1 = no caching at all: every turn prefills its
                          whole prompt (q35_chat_prepare does nothing) */
    q35_overflow_policy overflow;
} q35_chat_settings;

/* A new conversation on `m` with an optional system prompt (NULL or "" =
 * none; copied). `tok` is the model's tokenizer, borrowed (it must outlive
 * the chat; one tokenizer may serve many chats at once); NULL loads it from
 * the model's directory (tokenizer.json) and the chat owns it. `settings`
 * may be NULL (defaults). Nothing is computed yet (see q35_chat_prepare).
 * Returns NULL and fills `e` on failure. Caller frees with q35_chat_free
 * (before the model is freed). */
q35_chat *q35_chat_new(const q35_model *m, const q35_tokenizer *tok, const char *system_prompt,
                       const q35_chat_settings *settings, q35_err *e);
void q35_chat_free(q35_chat *c);

/* Computes and snapshots the conversation so far (system prompt and every
 * turn, each answer as the next turn will render it), so that the next
 * turn's time to first token covers only its own message. Meant for idle
 * time: at start-up, while an answer is being spoken, while the user
 * types. Optional (the next turn does the same work otherwise) and
 * cancellable with q35_chat_cancel (then Q35_ECANCELLED, nothing lost). A
 * no-op when there is nothing new to compute, when caching is off, or when
 * the history no longer fits the context (the next turn drops turns). */
int q35_chat_prepare(q35_chat *c, q35_err *e);

/* Adds the user message `user` (NUL-terminated, any bytes) and generates
 * the reply. `s` may be NULL (q35_sampling_default). `on_piece` may be
 * NULL; `reply` may be NULL, else it is filled (free with q35_reply_free).
 * On success (Q35_OK, whatever the stop reason) the turn is in the
 * history with the reply's answer, also after a cancel (partial answer;
 * q35_chat_undo removes the turn). On failure nothing was added. */
int q35_chat_generate(q35_chat *c, const char *user, const q35_sampling *s, q35_piece_fn on_piece,
                      void *ud, q35_reply *reply, q35_err *e);

/* One reply without keeping a conversation (SPEC §1's generate(prompt,
 * system_prompt, sampling)): a chat made for the call, with the same
 * arguments and results as q35_chat_new + q35_chat_generate. `tok` may be
 * NULL (loaded from the model's directory, which costs a tokenizer load per
 * call: pass one to call often). */
int q35_generate(const q35_model *m, const q35_tokenizer *tok, const char *system_prompt,
                 const char *user, const q35_sampling *s, q35_piece_fn on_piece, void *ud,
                 q35_reply *reply, q35_err *e);

/* Stops the reply being generated within one token, from any thread
 * (e.g. a voice app's barge-in), or a q35_chat_prepare in progress. It
 * affects the call running now; a call starting after it is not
 * cancelled. */
void q35_chat_cancel(q35_chat *c);

/* Clears the history and the cached state, except the system prompt's
 * snapshot, which stays valid. */
void q35_chat_reset(q35_chat *c);

/* Appends a finished turn without generating (e.g. a history restored from
 * disk or sent by a client). Both strings are copied. */
int q35_chat_add_turn(q35_chat *c, const char *user, const char *answer, q35_err *e);

/* Removes the last turn (to regenerate or edit it: the next turn reuses
 * the snapshot taken at that turn's start). Q35_ESTATE when empty. */
int q35_chat_undo(q35_chat *c, q35_err *e);

/* Replaces the last turn's answer, e.g. with the part a voice app managed
 * to speak before a barge-in. Copied. Q35_ESTATE when empty. */
int q35_chat_set_last_answer(q35_chat *c, const char *answer, size_t len, q35_err *e);

/* Number of turns, and turn i's texts (owned by the chat, valid until the
 * history changes). */
int q35_chat_n_turns(const q35_chat *c);
int q35_chat_turn(const q35_chat *c, int i, const char **user, const char **answer);

/* Frees the state and snapshots (the history stays); the next turn
 * recomputes them. For apps that free memory between turns. */
void q35_chat_drop_cache(q35_chat *c);

/* Counters since creation (reset does not clear them). */
typedef struct q35_chat_stats {
    int n_turns;              /* turns in the history */
    int n_ctx;                /* context positions */
    int context_tokens;       /* positions held by the state now */
    int n_snapshots;          /* snapshots held now */
    size_t memory_bytes;      /* state + snapshots held now */
    int64_t prefilled_tokens; /* prompt tokens computed (turns and prepare) */
    int64_t reused_tokens;    /* prompt tokens restored from snapshots */
    int64_t generated_tokens; /* ids generated (forced included) */
    int64_t dropped_turns;    /* turns dropped to fit the context */
    int last_prefilled;       /* the last turn's prefilled / reused tokens */
    int last_reused;
} q35_chat_stats;

void q35_chat_get_stats(const q35_chat *c, q35_chat_stats *out);

/* The prompt ids the next turn would feed for the user message `user`
 * (NULL: the history alone, no generation prompt), thinking on or off, as
 * rendered now (before any overflow drop). *ids: caller frees with free().
 * For tests and tools that check the rendering. */
int q35_chat_prompt_ids(const q35_chat *c, const char *user, bool thinking, int32_t **ids,
                        size_t *n_ids, q35_err *e);

/* The chat's tokenizer (borrowed or owned by the chat). */
const q35_tokenizer *q35_chat_tokenizer(const q35_chat *c);

/* ------------------------------------------- batched decode and reply steps
 *
 * For servers that run several replies at once (q35 serve): one token for
 * each of several sequences goes through one pass over the weights, and a
 * reply is driven one id at a time by the caller instead of a blocking
 * loop.
 */

/* Scratch and threads for decoding up to max_seqs (1 .. 128) sequences in
 * one step. One thread at a time. Caller frees with q35_batch_free (before
 * the model). */
typedef struct q35_batch q35_batch;
q35_batch *q35_batch_new(const q35_model *m, int max_seqs, q35_err *e);
void q35_batch_free(q35_batch *b);
int q35_batch_max_seqs(const q35_batch *b);

/* Feeds ids[i] to states[i] (n distinct states of b's model, each at its
 * own position) in one forward step: every weight matrix multiplies the n
 * rows at once; the DeltaNet recurrences and the attention run per
 * sequence. Each state advances by one, as q35_state_eval of that one id
 * would advance it (same operations per sequence; a kernel set may round a
 * matmul over n rows differently from one over 1 row). `logits` ([n,
 * vocab_size], row i for sequence i) may be NULL. Fails with nothing
 * changed on a bad id, a full or foreign state, or n outside 1..max_seqs. */
int q35_state_decode_batch(q35_batch *b, q35_state *const *states, const int32_t *ids, int n,
                           float *logits, q35_err *e);

/* One reply generated step by step: the caller owns the state and the
 * forward passes. Made for a prompt (`prompt`, its ids, copied: the
 * repetition penalty sees them) with settings `s` (NULL: defaults; stop
 * strings are copied). Caller frees with q35_reply_step_free. */
typedef struct q35_reply_step q35_reply_step;
q35_reply_step *q35_reply_step_new(const q35_model *m, const q35_tokenizer *tok,
                                   const q35_sampling *s, const int32_t *prompt, int n_prompt,
                                   q35_err *e);
void q35_reply_step_free(q35_reply_step *r);

/* Takes the next id: forced (thinking budget) or sampled from `logits`
 * (the row of the last fed position; modified in place), and passes its
 * text to on_piece as q35_chat_generate does. Returns 1 with *id set when
 * the caller must feed *id and call again with the new logits; 0 when the
 * reply has ended (eos, max_tokens, a stop string, the callback asked to
 * stop, or room < 1: `room` is the positions left in the caller's state);
 * negative on error. logits may be NULL when q35_reply_step_forcing. */
int q35_reply_step_next(q35_reply_step *r, float *logits, int room, q35_piece_fn on_piece, void *ud,
                        int32_t *id, q35_err *e);
/* True when the next id is forced (no logits needed). */
bool q35_reply_step_forcing(const q35_reply_step *r);
/* Ends the reply as cancelled at the next call. */
void q35_reply_step_cancel(q35_reply_step *r);
/* Flushes held-back text (through on_piece) and fills `out` (prompt and
 * timing fields left 0; free with q35_reply_free). Call once, at the end. */
int q35_reply_step_finish(q35_reply_step *r, q35_piece_fn on_piece, void *ud, q35_reply *out,
                          q35_err *e);
/* The ids the state holds if the caller fed each id handed out: the prompt
 * and the fed ids. Owned by r. */
const int32_t *q35_reply_step_context(const q35_reply_step *r, int *n);

/* ------------------------------------------------------------------- voice
 *
 * What a voice assistant needs between speech recognition and synthesis
 * (SPEC §10): the answer cut into speakable phrases as it streams, a
 * barge-in that keeps in the history only what was spoken, and prefill of
 * partial transcripts while the user is still speaking.
 *
 * The spoken form of an answer (what the phrases say, in full):
 *  1. Thinking is left out: pieces of kind Q35_PIECE_THINKING, and any
 *     "<think>...</think>" block in the text (an unclosed one up to the end).
 *  2. Lines are read as markdown:
 *     - a code block between fence lines (3+ '`' or '~') is left out with
 *       its fence lines; so are thematic breaks (---, ***, ___) and table
 *       rule lines (|---|:--|);
 *     - a line's indentation, heading marks ("# " to "###### "), quote marks
 *       ('>') and bullet ("- ", "* ", "+ ") are left out; a numbered list
 *       marker ("1.", "2)") stays: it is said;
 *     - inline: backticks are left out (code text stays); a link or image
 *       "[text](url)" / "![text](url)" becomes its text; runs of '*' are
 *       left out unless a lone run stands between spaces ("2 * 3"); runs of
 *       '_' are left out unless inside a word (snake_case); runs of 2+ '~'
 *       are left out; '|' becomes a space; "\X" (X punctuation) becomes X.
 *  3. Whitespace: every run of whitespace (newlines included) becomes one
 *     space; leading and trailing whitespace goes.
 * Everything else stays byte for byte (URLs, e-mail addresses, numbers,
 * invalid UTF-8). The phrases of an answer, in order, are the spoken form
 * cut into pieces: joined with one space at each cut made at a space, and
 * with nothing at a cut made after CJK punctuation or between two CJK
 * characters, they give the spoken form exactly. No phrase is empty or
 * starts or ends with a space.
 *
 * Where phrases end: at the end of every non-empty line of the answer
 * (headings, list items, paragraphs); at sentence ends (. ! ? 。！？ and
 * the closing quotes/brackets after them) and clause ends (, ; : … — ，、；：)
 * once the phrase has min_chars; when a phrase would pass max_chars, at its
 * latest clause or sentence end (else its latest space, or between CJK
 * characters). Never inside a token that holds no space — decimals (3.14),
 * times (10:30), amounts ($1,200.50), URLs, e-mail addresses, ellipses — and
 * never after an abbreviation (Dr., e.g., U.S., an initial J.) or after a
 * numbered list marker opening a phrase. A '.' before a lowercase word is
 * no sentence end. Lengths count code points, a CJK one twice. The first
 * phrase has its own bounds, so that speech can start early.
 *
 * Streaming: the phrases depend only on the text, never on how it was cut
 * into pieces; a phrase is handed over as soon as the text after it decides
 * its end (usually the next word's first character).
 */

typedef struct q35_phrase_opts {
    int min_chars;       /* 24: shortest phrase ended at a sentence/clause end */
    int max_chars;       /* 150: longest phrase, where a place to cut exists */
    int first_min_chars; /* 3: the same for the first phrase */
    int first_max_chars; /* 60 */
} q35_phrase_opts;

/* The defaults above (0 in a field also means its default). */
q35_phrase_opts q35_phrase_opts_default(void);

/* One phrase: text[0..len) (NUL-terminated too), valid during the
 * callback only; index counts the phrases of this text from 0;
 * after_space: the spoken form has a space between the previous phrase
 * and this one (false for the first, and after a CJK cut). */
typedef struct q35_phrase {
    const char *text;
    size_t len;
    int index;
    bool after_space;
} q35_phrase;

/* Called on the feeding thread for each phrase as it is ready. Return 0 to
 * go on, non-zero to stop (later feeds fail with Q35_ECANCELLED). */
typedef int (*q35_phrase_fn)(void *user, const q35_phrase *phrase);

typedef struct q35_phraser q35_phraser;

/* A phraser handing phrases to fn(user, ...). `opts` may be NULL. Fails
 * (Q35_EINVAL) when a minimum is < 1 or above its maximum. Caller frees
 * with q35_phraser_free. One thread at a time. */
q35_phraser *q35_phraser_new(const q35_phrase_opts *opts, q35_phrase_fn fn, void *user, q35_err *e);
void q35_phraser_free(q35_phraser *p);

/* Adds `len` bytes of answer text (any bytes; a UTF-8 character may be
 * split across calls). Phrases completed by it go to the callback now. */
int q35_phraser_feed(q35_phraser *p, const char *text, size_t len, q35_err *e);

/* The answer ended: the rest comes out as the last phrase(s), and the
 * phraser is ready for a new answer (index from 0 again). */
int q35_phraser_flush(q35_phraser *p, q35_err *e);

/* Forgets the text so far without emitting it (e.g. after a barge-in). */
void q35_phraser_reset(q35_phraser *p);

/* Phrases handed over since the text began. */
int q35_phraser_count(const q35_phraser *p);

/* A q35_piece_fn: pass it with the phraser as `ud` to q35_chat_generate.
 * Answer pieces are fed, thinking pieces dropped; a stop asked by the
 * phrase callback (or running out of memory) stops the reply. Call
 * q35_phraser_flush after the reply. */
int q35_phraser_on_piece(void *phraser, q35_piece_kind kind, const char *text, size_t len);

/* The spoken form of a whole text (definition above), computed without
 * cutting: *out is NUL-terminated, caller frees with free(). */
int q35_spoken_form(const char *text, size_t len, char **out, size_t *out_len, q35_err *e);

/* Barge-in: the user spoke over the reply. Stops the reply in progress
 * (as q35_chat_cancel) and makes that turn's answer in the history exactly
 * `spoken` (len bytes, copied): what reached the speaker. Called while
 * q35_chat_generate runs (from any thread, or from its callbacks), the cut
 * is applied when the call returns (the q35_reply still holds everything
 * generated); called after the reply (speech usually lags generation), it
 * replaces the last turn's answer at once. The next turn renders that
 * answer and restores the snapshot taken where the cut turn's reply began
 * (after its user message), so it computes only the answer actually
 * spoken and its own message. Fails with Q35_ESTATE when there is no turn.
 * Any thread, also while q35_chat_listen prefills. */
int q35_chat_barge_in(q35_chat *c, const char *spoken, size_t len, q35_err *e);

/* The same, keeping the first n_bytes of the answer as generated (for an
 * app that streams raw answer bytes to its synthesizer); clamped to the
 * answer and moved back to the start of a UTF-8 character. */
int q35_chat_barge_in_bytes(q35_chat *c, size_t n_bytes, q35_err *e);

/* Prefill while the user speaks: `partial` (copied) is the user's message
 * as recognized so far. Returns at once. A thread of the chat (started on
 * the first call) then prefills, on the chat's own compute threads, the
 * conversation so far and the partial's settled words — all but the last,
 * which the recognizer may still change — and keeps a snapshot of each
 * such prefix (the latest few). When the final transcript comes,
 * q35_chat_generate stops the listener (within one chunk of 32 tokens),
 * restores the longest cached prefix of its prompt and computes only the
 * rest: only what differs from the longest prefilled prefix. The reply is
 * the one a from-scratch render gives, token for token. A newer partial
 * replaces an older one not yet taken; every other call of the chat
 * (generate, prepare, reset, ...) waits for the listener to stop first.
 * Does nothing useful with caching off (max_snapshots -1). Any thread.
 *
 * Speculation: the listener then also feeds the newest partial as if it
 * were the final transcript (its whole text, <|im_end|> and the generation
 * prompt of the expected settings, see q35_chat_listen_expect) and keeps
 * the logits of its last position and a snapshot at the end of its text.
 * A final transcript whose prompt is exactly that one (the common case: the
 * final equals the last partial, nothing in the history changed since)
 * computes nothing before its first id (q35_reply.prefilled_tokens 0); any
 * other final restores the longest cached prefix as above. */
int q35_chat_listen(q35_chat *c, const char *partial, q35_err *e);

/* The sampling settings the final turn will use, for the speculation
 * (their thinking flag, thinking_budget and max_tokens decide its prompt;
 * nothing else is kept). Until it is called: those of the last
 * q35_chat_generate, or q35_sampling_default() before the first. NULL: no
 * speculation (only the settled prefixes are prefilled). A final turn
 * with other settings is still exact, only not sped up. Any thread. */
int q35_chat_listen_expect(q35_chat *c, const q35_sampling *s, q35_err *e);

/* Waits until the listener has taken and prefilled the last partial (for
 * tests and benchmarks). Any thread. */
void q35_chat_listen_wait(q35_chat *c);

/* ---------------------------------------------------------------- end voice */

#ifdef __cplusplus
}
#endif
#endif /* Q35_H */
