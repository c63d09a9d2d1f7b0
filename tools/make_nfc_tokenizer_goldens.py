#!/usr/bin/env python3
"""Makes the goldens of pdiff's Unicode normalizers with `tokenizers` itself.

Run: PY=$(tools/refenv.sh); $PY tools/make_nfc_tokenizer_goldens.py
Writes tests/golden/qwen2_nfc_tokenizer/:
  tokenizer.json      a tiny byte-level BPE with the structure of the Qwen2/Qwen3 files: normalizer NFC, Split
                      with Qwen2's regex + ByteLevel pre-tokenizer, ByteLevel decoder, <|endoftext|> etc.
  goldens.json        "cases": ids (and the NFC text) of strings that need NFC: combining accents, Hangul jamo,
                      singletons (U+212B), marks out of canonical order, Vietnamese, emoji, text already NFC
  normalization.json  "strings": random strings of code points from blocks with combining marks, compatibility
                      characters and Hangul, with their NFC/NFD/NFKC/NFKD by the tokenizers normalizers; every
                      one of these equals Python's unicodedata.normalize (asserted here). "post9": strings of
                      characters Unicode added after 9.0 (new marks, decompositions), where tokenizers keeps
                      Unicode 9.0 behaviour and so differs from unicodedata (Unicode 14); expected = tokenizers.
Versions are pinned in tools/refenv.sh.
"""
import json
import os
import random
import unicodedata

import tokenizers
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "golden", "qwen2_nfc_tokenizer")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                 r"\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CORPUS = """A café in Hà Nội serves phở; the naïve Ångström measures a résumé.
Tiếng Việt có nhiều dấu: ă â ê ô ơ ư đ, và thanh điệu: à á ả ã ạ, ằ ắ ẳ ẵ ặ, ề ế ể ễ ệ, ờ ớ ở ỡ ợ.
한국어 문장: 각 글자는 자모로 이루어진다. 안녕하세요, 세계!
Ελληνικά: ᾅ ῷ ἀλήθεια. Français: élève, être, où. Deutsch: Größe, Übung.
Emoji 🙂 🎨 👩‍👩‍👧 and ﬁ ligatures, ① circled, ｆｕｌｌ width, ℌ and ẛ̣.
"""
STRINGS = [
    "cafe\u0301", "café", "e\u0301\u0301", "\u1100\u1161\u11a8", "\u1100\u1161", "\uac00\u11a8", "\u212b",
    "\u2126 ohm", "\u1e9b\u0323", "\u0071\u0307\u0323", "a\u0323\u0302", "a\u0302\u0323",
    "Tie\u0302\u0301ng Vie\u0323\u0302t", "Ti\u1ebfng Vi\u1ec7t", "pho\u031b\u0309", "Ha\u0300 No\u0323\u0302i",
    "\u1ea0\u0306", "o\u0308\u0304 u\u031b\u0303", "\u0958\u0959 \u0344 \u0340\u0341",
    "\u00c5 A\u030a \u212b", "\u1f00\u0345\u0301", "\u03b1\u0313\u0301\u0345",
    "\ufb01 \u2460 \uff46 \u210c \u00bd", "emoji 🙂 🎨 👩‍👩‍👧 👍🏽", "already NFC: déjà vu, Ångström",
    "<|im_start|>user\ncafe\u0301<|im_end|>", "\u0301leading mark", "x\u0316\u0301\u0300\u0315\u031b",
    "\u1100\u1100\u1161\u1161\u11a8\u11a8", "\ud55c\uad6d\uc5b4 \u1112\u1161\u11ab\u1100\u116e\u11a8", "", "plain ascii",
]


def build():
    tok = Tokenizer(models.BPE(byte_fallback=False, ignore_merges=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(vocab_size=600, min_frequency=1, special_tokens=SPECIAL, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([CORPUS] * 4, trainer=trainer)
    return tok


def old_pool():
    """Code points of blocks with combining marks, compatibility characters and Hangul that Unicode 3.2 already
    had (unicodedata.ucd_3_2_0), so that Unicode 9.0 (tokenizers) and 14.0 (unicodedata) must agree on them."""
    blocks = [(0x41, 0x5A), (0x61, 0x7A), (0xC0, 0x24F), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF),
              (0x591, 0x5C7), (0x610, 0x65F), (0x6D6, 0x6ED), (0x900, 0x97F), (0x9BC, 0x9D7), (0xB3C, 0xB57),
              (0xF00, 0xFBC), (0x1100, 0x11FF), (0x1E00, 0x1FFE), (0x20D0, 0x20F0), (0x2100, 0x218B),
              (0x2460, 0x24FF), (0x3040, 0x30FF), (0x3300, 0x33FF), (0xAC00, 0xAC40), (0xD7A0, 0xD7A3),
              (0xFB00, 0xFB4F), (0xFE20, 0xFE2F), (0xFF00, 0xFFEE), (0x1D15E, 0x1D1C0), (0x1D400, 0x1D47F)]
    return [cp for a, b in blocks for cp in range(a, b + 1) if unicodedata.ucd_3_2_0.category(chr(cp)) != "Cn"]


def forms(s):
    return {f.lower(): getattr(normalizers, f)().normalize_str(s) for f in ("NFC", "NFD", "NFKC", "NFKD")}


def main():
    os.makedirs(OUT, exist_ok=True)
    tok = build()
    path = os.path.join(OUT, "tokenizer.json")
    tok.save(path)
    tok = Tokenizer.from_file(path)
    assert json.load(open(path))["normalizer"] == {"type": "NFC"}
    cases = []
    for s in STRINGS:
        nfc = tok.normalizer.normalize_str(s)
        assert nfc == unicodedata.normalize("NFC", s), s
        cases.append({"text": s, "nfc": nfc, "ids": tok.encode(s).ids,
                      "pieces": [p for p, _ in tok.pre_tokenizer.pre_tokenize_str(nfc)]})

    rng = random.Random(20240601)
    pool = old_pool()
    marks = [cp for cp in pool if unicodedata.combining(chr(cp))]
    strings = []
    for _ in range(400):
        n = rng.randint(1, 12)
        s = "".join(chr(rng.choice(marks if rng.random() < 0.4 else pool)) for _ in range(n))
        f = forms(s)
        for k, v in f.items():
            assert v == unicodedata.normalize(k.upper(), s), (k, s)
        strings.append({"text": s, **f})
    # Characters Unicode added after 9.0: marks with a class since 10.0-14.0 and, for contrast, old ones.
    post9 = ["x\u0898\u0316", "a\u0301\u0d3b", "a\u1ace\u0316", "e\U00010eab\u0301\u0316", "\u0915\u093c\u1df9",
             "o\u1dfa\u0301", "a\U00016ff0\u0301"]
    post9_cases = [{"text": s, **forms(s)} for s in post9]
    assert any(c["nfc"] != unicodedata.normalize("NFC", c["text"]) for c in post9_cases)

    with open(os.path.join(OUT, "goldens.json"), "w") as f:
        json.dump({"versions": {"tokenizers": tokenizers.__version__}, "cases": cases}, f, ensure_ascii=False,
                  indent=0)
    with open(os.path.join(OUT, "normalization.json"), "w") as f:
        json.dump({"versions": {"tokenizers": tokenizers.__version__, "python_unicode": unicodedata.unidata_version,
                                "tokenizers_unicode": "9.0.0"},
                   "strings": strings, "post9": post9_cases}, f, ensure_ascii=True, indent=0)
    print("vocab", tok.get_vocab_size(), "cases", len(cases), "strings", len(strings), "post9", len(post9_cases),
          "changed by NFC", sum(c["nfc"] != c["text"] for c in strings))


if __name__ == "__main__":
    main()
