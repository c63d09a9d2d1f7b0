#!/usr/bin/env python3
"""Makes the tiny Mistral3 text-encoder checkpoint and its goldens with transformers itself.

Run: PY=$(tools/refenv.sh); $PY tools/make_mistral_goldens.py
Writes tests/golden/mistral3_tiny/text_encoder/: config.json + model.safetensors (a real, randomly
initialised Mistral3ForConditionalGeneration saved by save_pretrained, vision tower included), and
tests/golden/mistral3_tiny/goldens.safetensors:
  ids_right/mask_right, ids_left/mask_left (B=2, right- and left-padded)
  hidden_right/hidden_left: hidden_states[1], [3], [4] stacked per token (B, S, 3*hidden), the way
      the FLUX.2 pipeline stacks hidden_states[10], [20], [30]
  prompt (1, n) and greedy (1, 10): model.generate(do_sample=False, max_new_tokens=10)
Versions are pinned in tools/refenv.sh.
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import Mistral3Config, Mistral3ForConditionalGeneration, MistralConfig, PixtralVisionConfig

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "golden", "mistral3_tiny")
LAYERS = [1, 3, 4]


def main():
    torch.manual_seed(0)
    text = MistralConfig(vocab_size=512, hidden_size=64, intermediate_size=160, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=512,
                         rms_norm_eps=1e-5, rope_theta=1_000_000.0, initializer_range=0.2, sliding_window=None,
                         bos_token_id=1, eos_token_id=2, pad_token_id=11, tie_word_embeddings=False)
    vision = PixtralVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                 image_size=32, patch_size=16, head_dim=16)
    cfg = Mistral3Config(text_config=text, vision_config=vision, spatial_merge_size=2)
    model = Mistral3ForConditionalGeneration(cfg).eval().to(torch.float32)
    # attention implementation: transformers' default (SDPA), as the FLUX.2 pipeline runs it
    os.makedirs(OUT, exist_ok=True)
    model.save_pretrained(os.path.join(OUT, "text_encoder"), safe_serialization=True)

    g = torch.Generator().manual_seed(1)
    B, S = 2, 12
    ids = torch.randint(3, 512, (B, S), generator=g)
    lengths = [S, 8]
    out = {}
    for side in ("right", "left"):
        x = ids.clone()
        m = torch.zeros(B, S, dtype=torch.int64)
        for b, n in enumerate(lengths):
            if side == "right":
                m[b, :n] = 1
                x[b, n:] = text.pad_token_id
            else:
                m[b, S - n:] = 1
                x[b, :S - n] = text.pad_token_id
        with torch.no_grad():
            hs = model(input_ids=x, attention_mask=m, output_hidden_states=True, use_cache=False).hidden_states
        stacked = torch.stack([hs[k] for k in LAYERS], dim=1)  # (B, 3, S, D)
        out[f"ids_{side}"] = x
        out[f"mask_{side}"] = m
        out[f"hidden_{side}"] = stacked.permute(0, 2, 1, 3).reshape(B, S, len(LAYERS) * text.hidden_size).contiguous()

    prompt = torch.randint(3, 512, (1, 7), generator=g)
    with torch.no_grad():
        gen = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=10,
                             do_sample=False, eos_token_id=None, pad_token_id=text.pad_token_id)
    out["prompt"] = prompt
    out["greedy"] = gen[:, prompt.shape[1]:].contiguous()
    out["layers"] = torch.tensor(LAYERS)
    save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(OUT, "goldens.safetensors"))
    with open(os.path.join(OUT, "versions.json"), "w") as f:
        import transformers
        json.dump({"torch": torch.__version__, "transformers": transformers.__version__}, f, indent=1)
    print("wrote", os.path.abspath(OUT), file=sys.stderr)


if __name__ == "__main__":
    main()
