"""Goldens for FLUX.2-dev caption upsampling (Flux2Pipeline.upsample_prompt, text-to-image), made with
transformers itself on the tiny dev folder of tests/golden/flux2_tiny/dev/e2e.

Run: PY=$(tools/refenv.sh); $PY tools/make_flux2_upsample_goldens.py   (versions pinned in tools/refenv.sh)

The pipeline samples (do_sample=True) with torch's generator, which pdiff does not reproduce; the
golden is the same chat input decoded greedily (do_sample=False), which pdiff's generate() with
temperature 0 must equal token for token, and the decoded text the pipeline would return for those
tokens (skip_special_tokens, clean_up_tokenization_spaces). The input is not padded (the pipeline pads
to 2048 with the tokenizer's padding side; pdiff generates from the unpadded prompt).
"""
import json
import os

import torch
from diffusers.pipelines.flux2.system_messages import SYSTEM_MESSAGE_UPSAMPLING_T2I
from transformers import Mistral3ForConditionalGeneration, PreTrainedTokenizerFast

E2E = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden", "flux2_tiny", "dev", "e2e")
PROMPTS = ["A red fox sitting in fresh snow, morning light, 35mm photo.", "a cat", "Neon sign reading 'OPEN' at night"]
NEW_TOKENS = 24


def main():
    tok = PreTrainedTokenizerFast.from_pretrained(os.path.join(E2E, "tokenizer"))
    model = Mistral3ForConditionalGeneration.from_pretrained(os.path.join(E2E, "text_encoder")).eval().float()
    out = []
    for p in PROMPTS:
        messages = [{"role": "system", "content": [{"type": "text", "text": SYSTEM_MESSAGE_UPSAMPLING_T2I}]},
                    {"role": "user", "content": [{"type": "text", "text": p.replace("[IMG]", "")}]}]
        inputs = tok.apply_chat_template([messages], add_generation_prompt=True, tokenize=True, return_dict=True,
                                         return_tensors="pt")
        with torch.no_grad():
            gen = model.generate(**inputs, max_new_tokens=NEW_TOKENS, do_sample=False, use_cache=True,
                                 pad_token_id=tok.pad_token_id)
        new = gen[:, inputs["input_ids"].shape[1]:]
        text = tok.batch_decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=True)[0]
        out.append({"prompt": p, "input_ids": inputs["input_ids"][0].tolist(), "generated": new[0].tolist(),
                    "text": text})
    with open(os.path.join(E2E, "upsample_goldens.json"), "w") as f:
        json.dump({"max_new_tokens": NEW_TOKENS, "cases": out}, f, indent=1, ensure_ascii=False)
    for c in out:
        print(len(c["input_ids"]), c["generated"][:8], repr(c["text"][:60]))


if __name__ == "__main__":
    main()
