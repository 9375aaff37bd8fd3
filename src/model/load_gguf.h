/* load_gguf.h — building a q35_model from a llama.cpp GGUF file of
 * architecture `qwen35` (see load_gguf.c for the layout differences it
 * undoes). */
#ifndef Q35_MODEL_LOAD_GGUF_H
#define Q35_MODEL_LOAD_GGUF_H

#include "formats/gguf.h"
#include "model/model.h"

/* Loads the GGUF file at `path` into `m`, a model that holds no weights (new
 * or unloaded): config, every weight in compute form, m->format = "gguf".
 * F32/F16/BF16 matrices that need no reordering are used in place from the
 * file map (which m->files then owns); quantized ones are decoded into
 * float32 buffers owned by m. On failure returns an error naming the key,
 * tensor or offset; whatever was attached to m before the failure is left
 * for the caller to release with the rest of the model (load.c does). */
int q35_model_load_gguf(q35_model *m, const char *path, q35_err *e);

/* The same from an already parsed GGUF whose bytes the caller keeps alive
 * and unchanged for as long as m holds these weights (m takes no file).
 * For tests and fuzzing, which parse images built in memory. */
int q35_model_bind_gguf(q35_model *m, const q35_gguf *g, q35_err *e);

/* True when `path` is a GGUF file by its content (magic "GGUF", whatever
 * its name), or a file or missing path named *.gguf (any case) that is not
 * a directory, so that the GGUF parser reports what is wrong with it. */
bool q35_path_is_gguf(const char *path);

#endif
