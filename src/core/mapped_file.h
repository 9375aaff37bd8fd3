/* mapped_file.h — read-only memory maps of whole files. Weights are used
 * straight from the map, so a model costs page cache, not a copy. */
#ifndef Q35_CORE_MAPPED_FILE_H
#define Q35_CORE_MAPPED_FILE_H

#include <stddef.h>

#include "q35.h"

typedef struct q35_mapped_file {
    const unsigned char *data; /* NULL for an empty file */
    size_t size;
    char *path; /* owned copy */
    /* bytes of it whose pages the loader dropped for good (tensors that were
     * converted): not held, so memory footprints leave them out */
    size_t dropped;
} q35_mapped_file;

/* Maps `path` read-only. On failure returns an error and leaves f zeroed. */
int q35_mapped_file_open(q35_mapped_file *f, const char *path, q35_err *e);
/* Unmaps and frees; safe on a zeroed or already closed struct. */
void q35_mapped_file_close(q35_mapped_file *f);

/* Tells the kernel that [p, p+n) inside a read-only file map will not be
 * read again, so its resident pages can go (whole pages inside the range
 * only; advice, so it cannot fail). The map stays valid: a later read just
 * faults the page in again. */
void q35_mapped_file_drop_pages(const void *p, size_t n);

/* Reads a whole (small) file into a NUL-terminated heap buffer, refusing
 * files over max_bytes. Caller frees. */
char *q35_read_text_file(const char *path, size_t max_bytes, size_t *len_out, q35_err *e);

#endif
