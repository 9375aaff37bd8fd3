/* save_gguf.h — a loaded q35_model written as a GGUF file in llama.cpp's
 * `qwen35` layout: the exact inverse of load_gguf.c, so llama.cpp and q35
 * both read what `q35 convert` writes. See save_gguf.c for the mapping. */
#ifndef Q35_MODEL_SAVE_GGUF_H
#define Q35_MODEL_SAVE_GGUF_H

#include <stdbool.h>
#include <stdint.h>

#include "formats/gguf.h"
#include "formats/gguf_write.h"
#include "model/model.h"

/* Version of what q35 convert writes, stored as q35.convert.version:
 * bumped whenever the written layout or metadata change meaning. */
#define Q35_CONVERT_VERSION 1

/* Not a dtype: "as `type`" in q35_gguf_save_opts. */
#define Q35_DT_SAME Q35_DT_COUNT

typedef struct q35_gguf_save_opts {
    /* Matrices (2-D weights, embedding and output head included):
     * Q35_DT_F32, F16, BF16, Q8_0 or Q4_0. A matrix whose column count is
     * not a multiple of 32 cannot take Q8_0/Q4_0 and falls back to BF16
     * (F16 when it is stored as F16), as reported in the stats. Norms,
     * conv taps, A and dt_bias are always F32, as llama.cpp stores them. */
    q35_dtype type;
    q35_dtype output_type; /* output.weight, or token_embd when tied (the
                            * head); Q35_DT_SAME: as `type` */
    q35_dtype embed_type;  /* token_embd of an untied model; Q35_DT_SAME: as `type` */
    /* qwen35.rope.dimension_sections (M-RoPE sections; llama.cpp needs
     * them, q35 only checks they cover the rotary dims). n = 0: left out. */
    int32_t rope_sections[4];
    int n_rope_sections;
    const char *name;   /* general.name; NULL: left out */
    const char *source; /* q35.convert.source (what was converted); NULL: left out */
    /* Metadata added after the model's (tokenizer.*, general.*, ...); a key
     * the model's list has is replaced. NULL: none. Not kept. */
    const q35_gguf_kvs *extra;
    /* Called after each tensor is written (done of total); may be NULL. */
    void (*progress)(void *user, int done, int total);
    void *progress_user;
} q35_gguf_save_opts;

#define Q35_SAVE_MAX_FALLBACKS 8

typedef struct q35_gguf_save_stats {
    int n_tensors;
    int n_by_type[Q35_DT_COUNT]; /* tensors written as each dtype */
    uint64_t bytes_by_type[Q35_DT_COUNT];
    uint64_t file_bytes;
    int n_fallbacks; /* matrices that could not take the quantized type */
    char fallbacks[Q35_SAVE_MAX_FALLBACKS][64]; /* "blk.0.ssm_alpha.weight -> bf16" (first few) */
    int n_dropped; /* model tensors not written (mtp.*: not in llama.cpp's layout) */
} q35_gguf_save_stats;

/* Writes `m` to `path` (atomically: see gguf_write.h) with the options
 * above. `stats` may be NULL. Fails with Q35_EINVAL (a type that is not a
 * matrix type, a model whose dims do not fit the format), Q35_EIO naming
 * the file, or Q35_ENOMEM. Nothing is left at `path` on failure. */
int q35_model_save_gguf(const q35_model *m, const char *path, const q35_gguf_save_opts *opts,
                        q35_gguf_save_stats *stats, q35_err *e);

/* The M-RoPE sections of the model at local path `src` (a checkpoint
 * directory's config.json: rope_parameters / rope_scaling mrope_section,
 * flat or under text_config; or a .gguf file's
 * qwen35.rope.dimension_sections), padded to 4 entries with zeros as
 * llama.cpp writes them. *n = 0 when the source gives none. */
int q35_rope_sections_of_source(const char *src, int32_t sections[4], int *n, q35_err *e);

/* Copies to `out` the metadata of a source GGUF that a conversion keeps as
 * it is: tokenizer.* and general.* facts about the model (name, author,
 * license, ...), but not what the written file sets itself
 * (general.architecture, file_type, alignment, quantization_version). */
int q35_gguf_kvs_carry_source(q35_gguf_kvs *out, const q35_gguf *src, q35_err *e);

#endif
