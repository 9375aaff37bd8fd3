/* stream_print.h — how the CLI prints what the chat streams: answer pieces
 * (with the thinking shown between <think> lines or left out) and
 * speakable phrases, one a line. Shared by `q35 run`, `q35 chat` and
 * `q35 phrases`, which must print the same stream the same way. */
#ifndef Q35_CLI_STREAM_PRINT_H
#define Q35_CLI_STREAM_PRINT_H

#include <stdbool.h>

#include "q35.h"

typedef struct cli_piece_printer {
    bool show_thinking;
    bool in_thinking; /* a "<think>" line was printed and not yet closed */
} cli_piece_printer;

/* A q35 piece callback: `ud` is a cli_piece_printer (the caller's, zeroed
 * but for show_thinking). Writes to stdout and flushes each piece. */
int cli_print_piece(void *ud, q35_piece_kind kind, const char *text, size_t len);

/* A q35_phraser callback: the phrase and a newline on stdout, flushed at
 * once (a pipeline reads each line as it comes). `ud` is unused. */
int cli_print_phrase(void *ud, const q35_phrase *p);

#endif
