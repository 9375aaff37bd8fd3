/* json_doc.h — parsing a whole JSON document (config.json, a safetensors
 * header, an index) with an error that says where the text goes wrong. */
#ifndef Q35_FORMATS_JSON_DOC_H
#define Q35_FORMATS_JSON_DOC_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "core/err.h"

/* Parses `len` bytes of `text` (NUL-terminated or not). On failure returns
 * NULL and sets `e` to "<where>: [<what> is] not valid JSON at line L,
 * column C (byte B)" (Q35_EFORMAT); `what` (e.g. "header") may be NULL.
 * Caller frees the tree with cJSON_Delete. */
cJSON *q35_json_parse(const char *text, size_t len, const char *where, const char *what,
                      q35_err *e);

#endif
