/* speakable.h — the first stage of the phrase chunker: answer text (markdown
 * as a chat model writes it) to the text a speech synthesizer should say,
 * streaming. The rules are the ones listed under "spoken form" in q35.h;
 * this filter keeps every newline that ends a non-empty line as a hard
 * break ('\n') for the phrase cutter, and leaves whitespace otherwise as
 * it came (the cutter collapses it).
 *
 * Streaming: input bytes that cannot be decided yet (a '*' whose
 * neighbour is unknown, a '[' that may open a link, a line start that may
 * be a fence) are held back until the next piece decides them, and every
 * decision looks only at the text seen so far, so the output never depends
 * on how the input was cut into pieces. */
#ifndef Q35_VOICE_SPEAKABLE_H
#define Q35_VOICE_SPEAKABLE_H

#include <stdbool.h>
#include <stddef.h>

#include "runtime/strbuf.h"

typedef enum speak_line {
    SPEAK_LINE_START = 0, /* at the start of a line: markers not decided yet */
    SPEAK_LINE_BODY,      /* inline text */
    SPEAK_LINE_SKIP,      /* drop to the end of the line (fence, rule) */
} speak_line;

typedef struct q35_speakable {
    q35_strbuf hold; /* input not decided yet */
    speak_line line;
    bool in_fence; /* inside a ``` / ~~~ code block */
    bool in_think; /* inside <think> ... </think> */
    int prev;      /* last byte emitted on this line (0 at a line start) */
} q35_speakable;

void q35_speakable_init(q35_speakable *f);
void q35_speakable_free(q35_speakable *f);

/* Adds `len` bytes of answer text; appends the speakable text now decided
 * to `out`. Q35_OK or Q35_ENOMEM. */
int q35_speakable_feed(q35_speakable *f, const char *text, size_t len, q35_strbuf *out);

/* End of the text: decides what was held back (as if the text ended
 * there), appends it and resets the filter for a new text. */
int q35_speakable_finish(q35_speakable *f, q35_strbuf *out);

#endif
