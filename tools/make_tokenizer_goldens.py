#!/usr/bin/env python3
"""Makes a tiny Tekken-style tokenizer and the goldens of pdiff's tokenizer with `tokenizers` itself.

Run: PY=$(tools/refenv.sh); $PY tools/make_tokenizer_goldens.py
Writes tests/golden/mistral3_tiny/tokenizer/:
  tokenizer.json         byte-level BPE trained here on a few paragraphs, with the structure of Mistral's
                         Tekken tokenizer.json (Split regex as the Mistral-Small-3.x files ship it + ByteLevel
                         pre-tokenizer, byte_fallback, ignore_merges, the first 20 Mistral control tokens with
                         <pad> = 11, a BOS template); goldens also hold the ids with transformers'
                         fix_mistral_regex=True ("ids_fixed": the Tekken regex)
  tokenizer_config.json  the special tokens, padding side and a chat template that renders the
                         Mistral-Small-3.x system + user turn: <s>[SYSTEM_PROMPT]sys[/SYSTEM_PROMPT][INST]user[/INST]
  goldens.json           ids of ~24 strings (with and without special tokens), and the FLUX.2 prompt
                         formatted by apply_chat_template, padded to max_length with its mask (right and left
                         padding), plus a prompt longer than max_length (truncated).
and tests/golden/mistral3_tiny/tokenizer_v1/tokenizer.json: the structure of Mistral's v1 (sentencepiece
converted) tokenizer.json — normalizer Prepend("▁") + Replace(" ", "▁"), no pre-tokenizer, <0xXX> byte
tokens in the vocab with byte_fallback (the alphabet leaves out rare characters so that fallback happens),
merges in the legacy "a b" string format, decoder Replace + ByteFallback + Fuse + Strip; its ids are in
goldens.json under "v1_cases".
The vocabulary is 512 entries, the vocab_size of the tiny Mistral3 text encoder next to it.
Versions are pinned in tools/refenv.sh.
"""
import json
import os

import tokenizers
import transformers
from diffusers.pipelines.flux2.pipeline_flux2 import format_input
from diffusers.pipelines.flux2.system_messages import SYSTEM_MESSAGE
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "golden", "mistral3_tiny", "tokenizer")

# The Split regex Mistral-Small-3.x tokenizer.json files ship (Llama-3 style, with a (?i:...) group);
# transformers calls it incorrect and, with fix_mistral_regex=True, replaces it by PATTERN_FIXED. The
# FLUX.2 pipeline loads without that flag, so the file's regex is the reference.
PATTERN_FILE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                r"\s*[\r\n]+|\s+(?!\S)|\s+")
# The Tekken regex (transformers' fix_mistral_regex=True).
PATTERN_FIXED = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|"
           r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|"
           r"\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")

SPECIAL = ["<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]",
           "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "[TOOL_CALLS]", "[IMG]", "<pad>", "[IMG_BREAK]", "[IMG_END]",
           "[PREFIX]", "[MIDDLE]", "[SUFFIX]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[TOOL_CONTENT]"]

CORPUS = """A red fox jumps over the lazy dog near the river bank, while three children watch from a wooden bridge.
The photograph shows 42 lanterns hanging above a narrow street in Kyoto; each lantern is painted with gold letters.
In the café on the corner, a naïve painter sketches the skyline of 東京 at dusk — neon signs, wet asphalt, reflections.
Numbers matter: 3.14159, 2,718, 1024x768 pixels, 50 steps, guidance 4.0, seed 12345 and the year 2025!
She said: "Don't move the camera; keep the horizon level." He replied, 'I won't.' Then they laughed :-)
Emoji are words too 🙂 🎨 🚀 and so are symbols like ©, ™, €, £, ±, ×, ÷, and arrows → ← ↑ ↓.
Über-detailed macro shot of a dragonfly's wing, iridescent blue-green veins, shallow depth of field, f/2.8.
A cozy cabin in snowy mountains at night, warm light from the windows, smoke rising from the chimney.
Ein kleines Haus am See. Une petite maison au bord du lac. Una casita junto al lago. Домик у озера.
    Indented lines, tabs\tand multiple   spaces   appear in prompts, as do blank lines.

The end of the first part. THE END, in capitals; CamelCaseWords and snake_case_words and kebab-case-words.
"""


def build():
    tok = Tokenizer(models.BPE(byte_fallback=True, ignore_merges=True, fuse_unk=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PATTERN_FILE), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    trainer = trainers.BpeTrainer(vocab_size=512, min_frequency=1, special_tokens=SPECIAL, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([CORPUS] * 4, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A $B",
                                                       special_tokens=[("<s>", 1)])
    return tok


CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if messages[0]['role'] == 'system' %}"
    "{%- if messages[0]['content'] is string %}{%- set system_message = messages[0]['content'] %}"
    "{%- else %}{%- set system_message = messages[0]['content'][0]['text'] %}{%- endif %}"
    "{%- set loop_messages = messages[1:] %}"
    "{{- '[SYSTEM_PROMPT]' + system_message + '[/SYSTEM_PROMPT]' }}"
    "{%- else %}{%- set loop_messages = messages %}{%- endif %}"
    "{%- for message in loop_messages %}"
    "{%- if message['role'] == 'user' %}"
    "{%- if message['content'] is string %}{{- '[INST]' + message['content'] + '[/INST]' }}"
    "{%- else %}{{- '[INST]' }}{%- for block in message['content'] %}"
    "{%- if block['type'] == 'text' %}{{- block['text'] }}{%- else %}{{- '[IMG]' }}{%- endif %}"
    "{%- endfor %}{{- '[/INST]' }}{%- endif %}"
    "{%- elif message['role'] == 'assistant' %}{{- message['content'] + eos_token }}"
    "{%- endif %}"
    "{%- endfor %}")

STRINGS = [
    "",
    " ",
    "     ",
    "\n",
    "\n\n\n",
    " \n \t\n  x",
    "Hello world",
    "A red fox jumps over the lazy dog.",
    "CamelCaseWords and snake_case_words",
    "Numbers: 3.14159, 2,718 and 1024x768 at 50 steps; year 2025!",
    "1234567890",
    "café, naïve, Über, 東京, Домик",
    "emoji 🙂 🎨🚀!",
    "tabs\tand   multiple   spaces   ",
    "trailing newline\n",
    "line one\r\nline two\rline three",
    "\"quoted\" 'single' (parens) [brackets] {braces} <angles>",
    "path/to/file.txt // comment /// more",
    "unseen: zxqv ŵŷ ǅungla ℌ ᾈ",
    "<s>[INST]hello[/INST]</s>",
    "[SYSTEM_PROMPT]sys[/SYSTEM_PROMPT][INST] prompt [/INST]",
    "a<pad>b [IMG] c",
    "[INST[/INST",
    "It's DON'T we'LL they'Ve I'M 'ſ 'S'D",
    "HTTPServer camelCase iPhone 12345678 3.14159265",
    "x\r\n/path//  \u00a0non-breaking\u3000ideographic",
    "A cozy cabin in snowy mountains at night, warm light from the windows.",
]

PROMPTS = ["A cozy cabin in snowy mountains at night, warm light from the windows, café 東京 🙂.", ""]


def build_v1():
    """A Llama/Mistral-v1 style tokenizer: ids 0-2 <unk> <s> </s>, 3-258 <0x00>..<0xFF>, then trained tokens."""
    tok = Tokenizer(models.BPE(byte_fallback=True, fuse_unk=True, unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    trainer = trainers.BpeTrainer(vocab_size=420, min_frequency=2, special_tokens=["<unk>", "<s>", "</s>"],
                                  show_progress=False, limit_alphabet=70)
    tok.train_from_iterator(CORPUS.splitlines() * 4, trainer=trainer)
    j = json.loads(tok.to_str())
    trained = sorted(((i, t) for t, i in j["model"]["vocab"].items() if i >= 3))
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for _, t in trained:
        vocab.setdefault(t, len(vocab))
    j["model"]["vocab"] = vocab
    j["model"]["merges"] = [f"{a} {b}" for a, b in j["model"]["merges"]]  # the legacy format
    for a in j["added_tokens"]:
        a["id"] = vocab[a["content"]]
    j["post_processor"] = {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                    {"Sequence": {"id": "B", "type_id": 0}}],
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}
    j["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"},
        {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    return j


def main():
    os.makedirs(OUT, exist_ok=True)
    tok = build()
    path = os.path.join(OUT, "tokenizer.json")
    tok.save(path)
    tok = Tokenizer.from_file(path)
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
        "padding_side": "right", "truncation_side": "right", "model_max_length": 131072,
        "chat_template": CHAT_TEMPLATE,
    }
    with open(os.path.join(OUT, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=1, ensure_ascii=False)

    fixed = Tokenizer.from_file(path)  # what transformers' fix_mistral_regex=True does to it
    fixed.pre_tokenizer[0] = pre_tokenizers.Split(pattern=Regex(PATTERN_FIXED), behavior="isolated")
    cases = []
    for s in STRINGS:
        with_special = tok.encode(s).ids
        raw = tok.encode(s, add_special_tokens=False).ids
        assert tok.decode(raw, skip_special_tokens=False) == s, s
        cases.append({"text": s, "ids": with_special, "ids_no_special": raw,
                      "ids_fixed": fixed.encode(s).ids,
                      "pieces": [p for p, _ in tok.pre_tokenizer.pre_tokenize_str(s)],
                      "pieces_fixed": [p for p, _ in fixed.pre_tokenizer.pre_tokenize_str(s)]})

    hf = PreTrainedTokenizerFast.from_pretrained(OUT)
    long_prompt = " ".join([CORPUS] * 6)
    chat = []
    for max_length, prompt in [(512, PROMPTS[0]), (512, PROMPTS[1]), (64, PROMPTS[0]), (512, long_prompt)]:
        messages = format_input(prompts=[prompt], system_message=SYSTEM_MESSAGE)
        text = hf.apply_chat_template(messages[0], add_generation_prompt=False, tokenize=False)
        entry = {"prompt": prompt, "max_length": max_length, "formatted": text}
        for side in ("right", "left"):
            hf.padding_side = side
            out = hf.apply_chat_template(messages, add_generation_prompt=False, tokenize=True, return_dict=True,
                                         padding="max_length", truncation=True, max_length=max_length)
            entry[f"ids_{side}"] = out["input_ids"][0]
            entry[f"mask_{side}"] = out["attention_mask"][0]
        entry["unpadded_length"] = len(tok.encode(text, add_special_tokens=False).ids)
        chat.append(entry)

    os.makedirs(OUT + "_v1", exist_ok=True)
    with open(os.path.join(OUT + "_v1", "tokenizer.json"), "w") as f:
        json.dump(build_v1(), f, ensure_ascii=False, indent=0)
    v1 = Tokenizer.from_file(os.path.join(OUT + "_v1", "tokenizer.json"))
    v1_cases = []
    for s in STRINGS:
        enc = v1.encode(s)
        v1_cases.append({"text": s, "ids": enc.ids, "ids_no_special": v1.encode(s, add_special_tokens=False).ids,
                         "decoded": v1.decode(enc.ids, skip_special_tokens=True)})

    golden = {
        "versions": {"tokenizers": tokenizers.__version__, "transformers": transformers.__version__},
        "system_message": SYSTEM_MESSAGE,
        "cases": cases,
        "chat": chat,
        "v1_cases": v1_cases,
    }
    with open(os.path.join(OUT, "goldens.json"), "w") as f:
        json.dump(golden, f, ensure_ascii=False, separators=(",", ":"))
    print("vocab", tok.get_vocab_size(), "cases", len(cases), "chat", len(chat))


if __name__ == "__main__":
    main()
