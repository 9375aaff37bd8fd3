/* byte_level.c — the byte-level alphabet of GPT-2-style BPE: each of the
 * 256 byte values is spelled as one printable Unicode character, so that
 * vocabulary pieces are text. Printable Latin-1 bytes stand for themselves;
 * the 68 others (controls, space, DEL, NBSP, soft hyphen) take U+0100 up,
 * in byte order. Computed, not tabulated: the rule is three ranges. */
#include "text/tokenizer_internal.h"

static bool byte_is_self(unsigned b) {
    return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
}

static unsigned byte_code_point(unsigned b) {
    if (byte_is_self(b)) return b;
    unsigned n = b <= 32 ? b : b <= 160 ? 33 + (b - 127) : 67; /* 67: byte 173 */
    return 256 + n;
}

/* The byte a code point of the alphabet stands for, or -1. */
static int code_point_byte(uint32_t cp) {
    if (cp < 256) return byte_is_self(cp) ? (int)cp : -1;
    if (cp >= 256 + 68) return -1;
    unsigned n = cp - 256;
    return n <= 32 ? (int)n : n <= 66 ? (int)(127 + n - 33) : 173;
}

int tok_byte_to_char(unsigned char b, char *dst) {
    unsigned cp = byte_code_point(b);
    if (cp < 0x80) {
        dst[0] = (char)cp;
        return 1;
    }
    dst[0] = (char)(0xC0 | (cp >> 6));
    dst[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

size_t tok_piece_to_bytes(const char *piece, size_t len, char *dst) {
    const unsigned char *s = (const unsigned char *)piece;
    size_t i = 0, o = 0;
    while (i < len) {
        /* The alphabet lies below U+0144: one or two bytes per character. */
        int b = -1;
        if (s[i] < 0x80) {
            b = code_point_byte(s[i]);
            i += 1;
        } else if ((s[i] & 0xE0) == 0xC0 && i + 1 < len && (s[i + 1] & 0xC0) == 0x80) {
            b = code_point_byte((uint32_t)(s[i] & 0x1F) << 6 | (s[i + 1] & 0x3F));
            i += 2;
        }
        if (b < 0) { /* not a byte-level piece: HF keeps its UTF-8 as is */
            for (size_t k = 0; k < len; k++)
                dst[k] = piece[k];
            return len;
        }
        dst[o++] = (char)b;
    }
    return o;
}
