#!/usr/bin/env python3
"""Makes tiny FLUX.2 transformers (dev-style with embedded guidance, klein-style without) with
diffusers itself and saves their outputs as goldens.

Run: PY=$(tools/refenv.sh); $PY tools/make_flux2_goldens.py
Writes tests/golden/flux2_tiny/{dev,klein}/transformer/ (config.json + diffusion_pytorch_model.safetensors,
the real diffusers layout) and tests/golden/flux2_tiny/{dev,klein}/transformer_goldens.safetensors with
inputs x, context, timestep, guidance, img_ids, txt_ids and the output of one forward.
Versions are pinned in tools/refenv.sh.
"""
import os

import torch
from diffusers import Flux2Transformer2DModel
from diffusers.pipelines.flux2.pipeline_flux2 import Flux2Pipeline
from safetensors.torch import save_file

ROOT = os.path.join(os.path.dirname(__file__), "..", "tests", "golden", "flux2_tiny")


def tiny_transformer(guidance_embeds):
    return Flux2Transformer2DModel(
        patch_size=1, in_channels=16, out_channels=None, num_layers=2, num_single_layers=2, attention_head_dim=16,
        num_attention_heads=4, joint_attention_dim=48, timestep_guidance_channels=32, mlp_ratio=3.0,
        axes_dims_rope=(4, 4, 4, 4), rope_theta=2000, eps=1e-6, guidance_embeds=guidance_embeds)


def perturb(model, seed):
    """Random norm weights so that loading them is tested (diffusers initialises them to one)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(0.2 * torch.randn(p.shape, generator=g))


def main():
    for variant, guidance in (("dev", True), ("klein", False)):
        torch.manual_seed(0 if guidance else 1)
        model = tiny_transformer(guidance).eval()
        perturb(model, 2)
        out_dir = os.path.join(ROOT, variant)
        model.save_pretrained(os.path.join(out_dir, "transformer"), safe_serialization=True)

        g = torch.Generator().manual_seed(3)
        h, w, n_txt = 6, 8, 12  # 48 image tokens + 12 text tokens = 60 (divisible by 2, 3, 4)
        latents = torch.randn(1, 16, h, w, generator=g)
        x = Flux2Pipeline._pack_latents(latents)
        img_ids = Flux2Pipeline._prepare_latent_ids(latents)[0].float()
        context = torch.randn(1, n_txt, 48, generator=g)
        txt_ids = Flux2Pipeline._prepare_text_ids(context)[0].float()
        timestep = torch.tensor([0.7])
        gs = torch.tensor([4.0]) if guidance else None
        with torch.no_grad():
            out = model(hidden_states=x, encoder_hidden_states=context, timestep=timestep, img_ids=img_ids,
                        txt_ids=txt_ids, guidance=gs, return_dict=False)[0]
        tensors = {"x": x, "context": context, "timestep": timestep, "img_ids": img_ids, "txt_ids": txt_ids,
                   "out": out}
        if gs is not None:
            tensors["guidance"] = gs
        save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(out_dir, "transformer_goldens.safetensors"))
        print(variant, "out", tuple(out.shape), float(out.abs().mean()))


if __name__ == "__main__":
    main()
