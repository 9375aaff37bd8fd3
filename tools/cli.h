/* cli.h — the q35 command-line tool: one file per subcommand (cmd_*.c),
 * each exporting `int cmd_NAME(int argc, char **argv)` (argv[0] is the
 * subcommand's name) and returning the process exit status. */
#ifndef Q35_CLI_H
#define Q35_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "q35.h"

/* Subcommands are weak so the tool links while some are still being built;
 * main() reports a missing one instead of calling it. */
#define Q35_CMD(name) int cmd_##name(int argc, char **argv) __attribute__((weak))
Q35_CMD(run);
Q35_CMD(chat);
Q35_CMD(eval);
Q35_CMD(info);
Q35_CMD(bench);
Q35_CMD(tokenize);
Q35_CMD(detokenize);
Q35_CMD(template);
Q35_CMD(pull);
Q35_CMD(convert);
Q35_CMD(serve);
Q35_CMD(phrases);
#undef Q35_CMD

/* Prints "q35 CMD: message" to stderr; returns exit status 1. */
int cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, for a q35_err. */
int cli_fail_err(const char *cmd, const q35_err *e);

/* Parses "1,2,3" (commas and/or spaces) into a heap array; NULL on a bad
 * list (message in err). Caller frees. */
int32_t *cli_parse_ids(const char *s, int *n_out, char *err, size_t errlen);

/* Parses a non-negative int/float option value, false if malformed. */
int cli_parse_int(const char *s, long min, long max, long *out);
int cli_parse_float(const char *s, double *out);

/* Parses a --quant value: "q8" / "q8_0", "q4" / "q4_0", or "none" (the
 * weights as stored). False if unknown. */
int cli_parse_quant(const char *s, q35_weight_format *out);

#define CLI_QUANT_HELP                                                                             \
    "      --quant q8|q4      compute with weights converted to Q8_0 / Q4_0 at load\n"

#endif
