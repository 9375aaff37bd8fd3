/* strbuf.h — a growable byte string (always NUL-terminated once written),
 * the runtime's one buffer type for reply text and held-back pieces. */
#ifndef Q35_RUNTIME_STRBUF_H
#define Q35_RUNTIME_STRBUF_H

#include <stddef.h>

typedef struct q35_strbuf {
    char *p;
    size_t n, cap;
} q35_strbuf;

/* Appends len bytes; Q35_OK or Q35_ENOMEM (buffer unchanged). */
int q35_strbuf_append(q35_strbuf *b, const char *s, size_t len);
/* Removes the first n bytes. */
void q35_strbuf_consume(q35_strbuf *b, size_t n);
void q35_strbuf_clear(q35_strbuf *b);
void q35_strbuf_free(q35_strbuf *b);
/* Hands the bytes over (NUL-terminated; never NULL unless out of memory)
 * and empties the buffer. Caller frees with free(). */
char *q35_strbuf_take(q35_strbuf *b, size_t *len);

#endif
