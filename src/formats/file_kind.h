/* file_kind.h — what a model path holds, told from its content: a GGUF file
 * (magic "GGUF"), a safetensors file (an 8-byte little-endian header size,
 * then a JSON object that fits in the file), a directory, or something
 * else. Names are not trusted: `q35 convert SRC out` writes a GGUF called
 * `out`, and a .gguf name may hold anything. */
#ifndef Q35_FORMATS_FILE_KIND_H
#define Q35_FORMATS_FILE_KIND_H

typedef enum q35_file_kind {
    Q35_FILE_MISSING = 0, /* stat failed */
    Q35_FILE_DIR,
    Q35_FILE_GGUF,
    Q35_FILE_SAFETENSORS,
    Q35_FILE_OTHER, /* a readable or unreadable file of neither kind */
} q35_file_kind;

/* Reads at most the first 9 bytes of `path` (plus its size); never fails
 * loudly: anything unreadable is Q35_FILE_OTHER or Q35_FILE_MISSING. */
q35_file_kind q35_file_kind_of(const char *path);

/* "GGUF", "safetensors", "directory", ... for messages. */
const char *q35_file_kind_name(q35_file_kind k);

#endif
