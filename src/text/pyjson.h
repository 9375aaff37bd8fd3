/* pyjson.h — JSON read and printed the way Python's json module does it.
 *
 * The reference renderer of the chat format is transformers, which receives
 * messages and tools as Python objects (json.loads) and prints tools and
 * tool-call arguments with json.dumps(ensure_ascii=False) or str(). To print
 * the same bytes we must see the same objects, which a general JSON library
 * does not give us:
 *   - object keys keep the order they were written in; a repeated key keeps
 *     its first place and takes its last value (a Python dict);
 *   - a number stays an int (every digit kept) or a float (a double printed
 *     as Python's shortest repr), as decided by its spelling;
 *   - strings may hold NUL (lengths, not terminators);
 *   - the grammar is Python's: strict JSON plus NaN / Infinity / -Infinity.
 * Values point into a document that owns all their memory.
 */
#ifndef Q35_TEXT_PYJSON_H
#define Q35_TEXT_PYJSON_H

#include <stdbool.h>
#include <stddef.h>

#include "q35.h"

typedef enum q35_pyjson_type {
    Q35_PYJSON_NULL,
    Q35_PYJSON_FALSE,
    Q35_PYJSON_TRUE,
    Q35_PYJSON_INT,   /* Python int: `str` holds the digits as written */
    Q35_PYJSON_FLOAT, /* Python float: `num`, from `str` as written */
    Q35_PYJSON_STRING,
    Q35_PYJSON_ARRAY,
    Q35_PYJSON_OBJECT,
} q35_pyjson_type;

typedef struct q35_pyjson_key {
    const char *s; /* decoded UTF-8, NUL-terminated, may also hold NUL */
    size_t len;
} q35_pyjson_key;

typedef struct q35_pyjson q35_pyjson;
struct q35_pyjson {
    q35_pyjson_type type;
    size_t n;             /* ARRAY: items; OBJECT: members (after merging repeats) */
    const char *str;      /* STRING: decoded UTF-8; INT/FLOAT: the number's spelling.
                             NUL-terminated in both cases */
    size_t len;           /* bytes of str */
    double num;           /* FLOAT: the value (inf when the spelling overflows) */
    q35_pyjson *items;    /* ARRAY: the items; OBJECT: the values, in key order */
    q35_pyjson_key *keys; /* OBJECT: the keys */
    size_t src_off;       /* where the value's text starts in the parsed text */
    size_t src_len;       /* and how many bytes it spans */
};

typedef struct q35_pyjson_doc q35_pyjson_doc;

/* Parses `len` bytes of JSON text (UTF-8, an optional BOM is skipped). On
 * error returns NULL with a message that starts with `what` and gives the
 * line, column and byte offset. Caller frees with q35_pyjson_free. */
q35_pyjson_doc *q35_pyjson_parse(const char *text, size_t len, const char *what, q35_err *e);
const q35_pyjson *q35_pyjson_root(const q35_pyjson_doc *d);
void q35_pyjson_free(q35_pyjson_doc *d);

/* The value of member `key` of an object, NULL if absent or v is not an
 * object. */
const q35_pyjson *q35_pyjson_get(const q35_pyjson *v, const char *key);

/* "null", "int", "float", "string", "array", "object", "bool". */
const char *q35_pyjson_type_name(q35_pyjson_type t);

/* Receives printed bytes; returns 0, or non-zero to stop printing (the
 * printer then returns that value). */
typedef int (*q35_pyjson_sink)(void *ud, const char *s, size_t n);

/* Prints v as json.dumps(v, ensure_ascii=False) does: ", " and ": "
 * separators, non-ASCII as is, control characters escaped. */
int q35_pyjson_dump(const q35_pyjson *v, q35_pyjson_sink sink, void *ud);

/* Prints v as Python's str(v) does for the scalar types (None, True, 1,
 * 1.5, inf, the string itself); containers print as q35_pyjson_dump. */
int q35_pyjson_str(const q35_pyjson *v, q35_pyjson_sink sink, void *ud);

/* repr(x) of a Python float into buf (at least 32 bytes): the shortest
 * digits that read back as x, in Python's fixed or exponent layout
 * ("0.1", "1e+16", "1.5e-07", "100.0"). Non-finite values print as
 * "inf"/"-inf"/"nan" when `json` is false, else as json.dumps prints them
 * ("Infinity", "-Infinity", "NaN"). Returns the length. */
size_t q35_py_float_repr(double x, bool json, char *buf);

#endif
