"""A complete tiny FLUX.2-dev pipeline folder, saved by diffusers' Flux2Pipeline.save_pretrained, and
the goldens of running it from a text prompt (and with a reference image), made with diffusers itself.

Run: PY=$(tools/refenv.sh); $PY tools/make_flux2_e2e_goldens.py   (versions pinned in tools/refenv.sh)

Components: the tiny dev transformer (tests/golden/flux2_tiny/dev/transformer, joint_attention_dim 48),
the tiny AutoencoderKLFlux2 (dev/pipeline/vae), FLUX.2-dev's scheduler config, the tiny Tekken-style
tokenizer (tests/golden/mistral3_tiny/tokenizer) and a new random Mistral3ForConditionalGeneration
with hidden 16 and 32 layers, so the pipeline's default hidden_states (10, 20, 30) stack to 48.
Writes tests/golden/flux2_tiny/dev/e2e/ (model_index.json + component folders) and
e2e_goldens.safetensors: input_ids/attention_mask of the prompt, prompt_embeds, latents_init, and for
t2i and i2i (reference.png) the final latents and the image in [0, 1].
"""
import os

import PIL.Image
import torch
from diffusers import AutoencoderKLFlux2, FlowMatchEulerDiscreteScheduler, Flux2Transformer2DModel
from diffusers.pipelines.flux2.pipeline_flux2 import Flux2Pipeline
from safetensors.torch import save_file
from transformers import (Mistral3Config, Mistral3ForConditionalGeneration, MistralConfig, PixtralVisionConfig,
                          PreTrainedTokenizerFast)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden")
DEV = os.path.join(ROOT, "flux2_tiny", "dev")
OUT = os.path.join(DEV, "e2e")
PROMPT = "A red fox sitting in fresh snow, morning light, 35mm photo."


def main():
    torch.manual_seed(0)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(os.path.join(ROOT, "mistral3_tiny", "tokenizer"))
    text = MistralConfig(vocab_size=512, hidden_size=16, intermediate_size=32, num_hidden_layers=32,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=8, max_position_embeddings=1024,
                         rms_norm_eps=1e-5, rope_theta=1_000_000_000.0, initializer_range=0.2, sliding_window=None,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False)
    vision = PixtralVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                 image_size=32, patch_size=16, head_dim=16)
    encoder = Mistral3ForConditionalGeneration(Mistral3Config(text_config=text, vision_config=vision,
                                                              spatial_merge_size=2)).eval().float()
    transformer = Flux2Transformer2DModel.from_pretrained(os.path.join(DEV, "transformer")).eval()
    vae = AutoencoderKLFlux2.from_pretrained(os.path.join(DEV, "pipeline", "vae")).eval()
    scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(os.path.join(DEV, "pipeline", "scheduler"))
    pipe = Flux2Pipeline(scheduler=scheduler, vae=vae, text_encoder=encoder, tokenizer=tokenizer,
                         transformer=transformer)
    pipe.save_pretrained(OUT, safe_serialization=True)

    g = torch.Generator().manual_seed(17)
    height, width, steps = 96, 128, 4
    latents = torch.randn(1, 16, height // 16, width // 16, generator=g)
    with torch.no_grad():
        embeds, _ = pipe.encode_prompt(prompt=PROMPT, device="cpu", max_sequence_length=512)
        inputs = tokenizer.apply_chat_template(
            [[{"role": "system", "content": [{"type": "text", "text": pipe.system_message}]},
              {"role": "user", "content": [{"type": "text", "text": PROMPT}]}]],
            add_generation_prompt=False, tokenize=True, return_dict=True, return_tensors="pt",
            padding="max_length", truncation=True, max_length=512)
    res = {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"], "prompt_embeds": embeds,
           "latents_init": latents}
    ref = PIL.Image.open(os.path.join(DEV, "pipeline", "reference.png"))
    for mode, kwargs in (("t2i", {}), ("i2i", {"image": [ref]})):
        captured = {}

        def on_step(_pipe, i, t, kw):
            captured["latents"] = kw["latents"].detach().clone()
            return kw

        with torch.no_grad():
            image = pipe(prompt=PROMPT, latents=latents.clone(), height=height, width=width,
                         num_inference_steps=steps, guidance_scale=4.0, output_type="pt",
                         callback_on_step_end=on_step, **kwargs).images
        res[f"{mode}_final_latents"] = captured["latents"]
        res[f"{mode}_image"] = image
    save_file({k: v.contiguous().float() for k, v in res.items()}, os.path.join(OUT, "e2e_goldens.safetensors"))
    print({k: tuple(v.shape) for k, v in res.items()})
    print("prompt tokens:", int(inputs["attention_mask"].sum()))


if __name__ == "__main__":
    main()
