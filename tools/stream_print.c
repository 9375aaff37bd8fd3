/* stream_print.c — the CLI's printers of streamed pieces and phrases. */
#include "stream_print.h"

#include <stdio.h>

int cli_print_piece(void *ud, q35_piece_kind kind, const char *text, size_t len) {
    cli_piece_printer *s = ud;
    if (kind == Q35_PIECE_THINKING) {
        if (!s->show_thinking) return 0;
        if (!s->in_thinking) fputs("<think>\n", stdout);
        s->in_thinking = true;
    } else if (s->in_thinking) {
        fputs("\n</think>\n\n", stdout);
        s->in_thinking = false;
    }
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0;
}

int cli_print_phrase(void *ud, const q35_phrase *p) {
    (void)ud;
    fwrite(p->text, 1, p->len, stdout);
    putchar('\n');
    fflush(stdout);
    return 0;
}
