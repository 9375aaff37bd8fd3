/* json_mode.c — the GBNF of JSON mode (any JSON object) and the pieces of
 * JSON every schema grammar shares. Numbers have bounded digit runs and
 * whitespace between tokens is bounded (one space, or a newline and up to
 * 16 spaces), so a model cannot loop on either; \u escapes never name a
 * surrogate, so every string's length in code points is what the grammar
 * counted. */
#include "constraint/schema.h"

#define JSON_COMMON                                                                                \
    "value ::= object | array | string | number | \"true\" | \"false\" | \"null\"\n"               \
    "object ::= \"{\" ws ( member ( \",\" ws member )* )? \"}\"\n"                                 \
    "member ::= string ws \":\" ws value ws\n"                                                     \
    "array ::= \"[\" ws ( value ws ( \",\" ws value ws )* )? \"]\"\n"                              \
    "string ::= \"\\\"\" char* \"\\\"\"\n"                                                         \
    "char ::= [^\"\\\\\\x00-\\x1F] | \"\\\\\" ( [\"\\\\/bfnrt] | \"u\" hex4 )\n"                   \
    "hex4 ::= [0-9a-cA-Ce-fE-F] hex hex hex | [dD] [0-7] hex hex\n"                                \
    "hex ::= [0-9a-fA-F]\n"                                                                        \
    "number ::= \"-\"? ( \"0\" | [1-9] [0-9]{0,15} ) ( \".\" [0-9]{1,16} )? "                      \
    "( [eE] [-+]? [0-9]{1,3} )?\n"                                                                 \
    "ws ::= ( \" \" | \"\\n\" \" \"{0,16} )?\n"

const char q35_json_mode_gbnf[] = "root ::= object\n" JSON_COMMON;
const char q35_json_common_gbnf[] = JSON_COMMON;
