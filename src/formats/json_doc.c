/* json_doc.c — see json_doc.h. cJSON reports where it stopped; a person
 * fixing a hand-edited config wants a line and column, not just "invalid". */
#include "formats/json_doc.h"

cJSON *q35_json_parse(const char *text, size_t len, const char *where, const char *what,
                      q35_err *e) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (root) return root;
    size_t at = end && end >= text && (size_t)(end - text) <= len ? (size_t)(end - text) : len;
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at; i++) {
        if (text[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    if (what)
        q35_err_set(e, Q35_EFORMAT, "%s: %s is not valid JSON at line %zu, column %zu (byte %zu)",
                    where, what, line, col, at);
    else
        q35_err_set(e, Q35_EFORMAT, "%s: not valid JSON at line %zu, column %zu (byte %zu)", where,
                    line, col, at);
    return NULL;
}
