#!/usr/bin/env python3
"""Strings for the tokenizer oracle (tests/tools/tok_oracle.py): hand-picked
hard cases plus seeded random mixtures of fragments from many scripts and
character classes, none of them in golden/tokenizer/tok_cases.json. Also
random id lists for decoding (byte tokens, so invalid UTF-8 comes up; plain
ids; added tokens). Deterministic: writes the same JSON every time.

usage: tok_oracle_strings.py OUT.json"""
import json
import random
import sys

HAND = [
    "Hello", "hello", "HELLO", "Hello  world", "Hello\tworld", "Hello\r\nworld\r\n",
    "don't DON'T Don'T we'RE they'Ve I'D you'LL it'S", "'s 's's ''' 'll",
    "a'b a''b a' b", "l'homme d'état", "rock'n'roll",
    "1", "12", "123", "1234", "12345678901234567890", "0.5 .5 5. 1,000,000",
    "٠١٢٣٤٥٦٧٨٩ ۰۱۲ ०१२३ ๑๒๓", "１２３ full-width ＡＢＣ", "²³¹ ½ ¼ Ⅻ ⑤",
    "   ", "    x", "x    ", "\n\n\n\n", " \n \n ", "\t\t\tindent", "\r", "\r\n\r\n",
    "a\u00a0b", "\u2028line\u2029para", "\ufeffBOM start", "soft\u00adhyphen",
    "\u200e\u200fmarks", "Z\u0308\u0301\u0327", "e\u0301\u0302\u0303\u0304", "\u0301 leading mark",
    "a\u0300 e\u0301 i\u0302 o\u0303 u\u0308", "Å Å Å", "가 가", "\u1100\u1161\u11a8 jamo",
    "Ǆ ǅ ǆ dz", "ﬀ ﬁ ﬂ ﬃ ﬄ", "µ μ", "K K Ω Ω", "ß ẞ SS", "İstanbul ıI",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕞𝕒𝕥𝕙 𝒜", "🏳️‍🌈 🏴‍☠️ 👩🏿‍🔬 🇯🇵🇺🇸 #️⃣ 1️⃣",
    "🙂" * 12, "😀😃😄😁😆😅🤣😂", "ok👍ok", "emoji:🎉!",
    "ภาษาไทยไม่มีช่องว่าง", "ພາສາລາວ", "ខ្មែរ", "မြန်မာ", "ཀོང་ཇོ", "ᠮᠣᠩᠭᠣᠯ",
    "தமிழ் மொழி", "తెలుగు", "ಕನ್ನಡ", "മലയാളം", "বাংলা ভাষা", "ગુજરાતી", "ਪੰਜਾਬੀ",
    "ଓଡ଼ିଆ", "සිංහල", "नमस्ते दुनिया", "क्षत्रिय ज्ञान", "ქართული", "Հայերեն", "አማርኛ",
    "ᏣᎳᎩ", "ᐃᓄᒃᑎᑐᑦ", "ߒߞߏ", "ܐܪܡܝܐ", "ދިވެހި", "עִבְרִית מְנֻקֶּדֶת", "اَلْعَرَبِيَّةُ",
    "فارسی، عربی؛ ۱۲۳", "اردو", "Tiếng Việt có dấu", "Ὀδυσσεύς", "Ꙗ ѣ", "ǅemal",
    "漢字かなカナ混じり文", "ｶﾀｶﾅ半角", "〜～ー—―", "「引用」『二重』【括弧】", "中文，标点。！？",
    "汉字1汉字2", "한국어123한국어", "日本語English混在", "ABC漢字def",
    "x=1;y=2;z=x+y", "if(a&&b||!c){return;}", "arr[i][j] -> ptr->field", "a += b; c -= d; e *= f;",
    "#include <stdio.h>\nint main(void){printf(\"%d\\n\",42);}", "    def __init__(self):\n        pass",
    "SELECT * FROM t WHERE a='x' AND b<>2;", "{\"key\": [1, 2.5, null, true], \"k2\": {}}",
    "<div class=\"a\">&amp;&lt;&gt;</div>", "\\n \\t \\\\ \\u00e9", "C:\\Users\\name\\file.txt",
    "~/path/to/file_name-v2.tar.gz", "git commit -m \"fix: thing\"", "$HOME ${VAR} $(cmd) `x`",
    "---\ntitle: x\n---\n# H1\n## H2\n- item\n* item\n1. one\n> quote\n```py\nx\n```",
    "| a | b |\n|---|---|\n| 1 | 2 |", "**bold** _it_ ~~s~~ `code` [l](u)",
    "....", "…", "!!!", "?!", "--", "---", "___", "===", "***", "###", "@@@", "%%%", "^^^",
    "<|im_start|>", "<|im_end|>", "<|im_start|><|im_end|>", "<|im_start|>system\nX<|im_end|>",
    "<|im_", "|im_start|>", "<|im_start|", "<<|im_start|>>", "<|endoftext|><|endoftext|>",
    "<think>", "</think>", "<think></think>", "<tool_call>\n{\"name\": \"f\"}\n</tool_call>",
    "<tool_response>ok</tool_response>", "<|vision_start|><|image_pad|><|vision_end|>",
    "<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>", "text<|im_end|>text<|im_start|>text",
    " <|im_end|> ", "\n<|im_end|>\n", "<think>\n\n</think>\n\n", "<|IM_END|>", "< |im_end| >",
    "a" * 300, " a" * 100, "ab" * 150, "\n" * 50, " " * 100, "1" * 64, "😀" * 40,
    "the " * 80, "Supercalifragilistic" * 10, "日本" * 60,
]

FRAGMENTS = [
    "the", "The", " of", "and", "'s", "'LL", "n't", "42", "3.14", "1000000", " ", "  ", "\n",
    "\n\n", "\t", "\r\n", ",", ".", "!", "?", "...", "-", "—", "(", ")", "[", "]", "{", "}",
    "\"", "'", "`", "/", "\\", "_", "#", "@", "$", "%", "&", "*", "+", "=", "<", ">", "|", "~",
    "é", "e\u0301", "ñ", "ü", "ø", "Ł", "ß", "İ", "ı", "Ω", "π", "Ж", "я", "ع", "ש", "ह", "ि",
    "्", "क", "ท", "ี่", "日", "本", "語", "の", "カ", "한", "글", "中", "文", "。", "，", "🙂", "🚀",
    "👍🏽", "‍", "\u200b", "\u00a0", "\u3000", "️", "🇫🇷", "①", "½", "ﬁ", "Ａ", "１", "𝔸",
    "<|im_end|>", "<|im_start|>", "<think>", "</think>", "<|endoftext|>", "<tool_call>",
    "hello", "World", "QUICK", "camelCase", "snake_case", "kebab-case", "http://x.y/z",
    "foo.bar()", "x**2", "a_b_c", "ID42", "v2.0.1", "2024-01-31", "12:30", "#hashtag", "@user",
]


def random_strings(rng, n):
    out = []
    for _ in range(n):
        k = rng.randint(1, 14)
        out.append("".join(rng.choice(FRAGMENTS) for _ in range(k)))
    return out


def long_text(rng):
    return "".join(rng.choice(FRAGMENTS + [" ", " ", " ", "the", "of"]) for _ in range(1500))


def decode_lists(rng, n):
    lists = []
    for _ in range(n):
        k = rng.randint(1, 16)
        ids = []
        for _ in range(k):
            r = rng.random()
            if r < 0.45:
                ids.append(rng.randrange(0, 256))          # byte tokens
            elif r < 0.9:
                ids.append(rng.randrange(256, 151643))      # merged tokens
            else:
                ids.append(rng.randrange(151643, 151669))  # added tokens
        lists.append(ids)
    return lists


def main():
    rng = random.Random(20261127)
    strings = HAND + random_strings(rng, 220) + [long_text(rng)]
    seen, uniq = set(), []
    for s in strings:
        if s not in seen:
            seen.add(s)
            uniq.append(s)
    with open(sys.argv[1], "w") as f:
        json.dump({"strings": uniq, "decode": decode_lists(rng, 150)}, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
