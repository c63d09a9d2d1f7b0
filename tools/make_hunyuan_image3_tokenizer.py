#!/usr/bin/env python3
"""Writes tests/golden/hunyuan_image3_tiny/tokenizer.json: the tiny model's tokenizer in the tokenizer.json
format pdiff loads — the same character-level stand-in make_hunyuan_image3_goldens.py fed the reference
(special tokens matched first, any other printable ASCII character c -> 1 + ord(c) % 56) and the same special
tokens (the SPECIAL table of that script, read from its source, so the two cannot drift).
Run: python3 tools/make_hunyuan_image3_tokenizer.py   (no third-party packages)"""
import ast
import json
import os

here = os.path.dirname(os.path.abspath(__file__))
src = open(os.path.join(here, "make_hunyuan_image3_goldens.py")).read()
tree = ast.parse(src)
special = {}
for node in tree.body:  # SPECIAL = {...} and the <img_ratio_i> loop
    if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "SPECIAL":
        special.update(ast.literal_eval(node.value))
    if isinstance(node, ast.For) and "img_ratio" in ast.unparse(node):
        n = ast.literal_eval(node.iter.args[0])
        base = ast.literal_eval(node.body[0].value.left)
        special.update({f"<img_ratio_{i}>": base + i for i in range(n)})
assert special["<img>"] == 106 and special["<img_ratio_32>"] == 176, special

vocab = {chr(c): 1 + c % 56 for c in range(32, 127)}
tok = {
    "version": "1.0",
    "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                      "normalized": False, "special": True} for t, i in sorted(special.items(), key=lambda x: x[1])],
    "normalizer": None, "pre_tokenizer": None, "post_processor": None, "decoder": None,
    "model": {"type": "BPE", "vocab": vocab, "merges": []},
}
out = os.path.join(here, "..", "tests", "golden", "hunyuan_image3_tiny", "tokenizer.json")
with open(out, "w") as f:
    json.dump(tok, f, indent=1, ensure_ascii=False)
print("wrote", os.path.normpath(out), len(special), "special tokens")
