/* file_kind.c — telling GGUF and safetensors files by their first bytes
 * (see file_kind.h for why names are not enough). */
#include "formats/file_kind.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

q35_file_kind q35_file_kind_of(const char *path) {
    struct stat st;
    if (!path || stat(path, &st) != 0) return Q35_FILE_MISSING;
    if (S_ISDIR(st.st_mode)) return Q35_FILE_DIR;
    if (!S_ISREG(st.st_mode)) return Q35_FILE_OTHER;
    unsigned char b[9];
    FILE *f = fopen(path, "rb");
    if (!f) return Q35_FILE_OTHER;
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    if (n >= 4 && !memcmp(b, "GGUF", 4)) return Q35_FILE_GGUF;
    if (n == 9) {
        uint64_t hlen = 0;
        for (int i = 7; i >= 0; i--)
            hlen = hlen << 8 | b[i];
        /* the header is a JSON object ('{' first; serializers pad with
         * spaces at the end, never the start) inside the file */
        if (hlen >= 2 && hlen <= (uint64_t)st.st_size - 8 && b[8] == '{')
            return Q35_FILE_SAFETENSORS;
    }
    return Q35_FILE_OTHER;
}

const char *q35_file_kind_name(q35_file_kind k) {
    switch (k) {
    case Q35_FILE_MISSING: return "missing";
    case Q35_FILE_DIR: return "directory";
    case Q35_FILE_GGUF: return "GGUF";
    case Q35_FILE_SAFETENSORS: return "safetensors";
    case Q35_FILE_OTHER: break;
    }
    return "neither GGUF nor safetensors";
}
