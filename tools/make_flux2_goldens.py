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


# --- the pipeline: tiny VAE + the dev transformer + FLUX.2's scheduler, text-to-image and image editing ---
from diffusers import AutoencoderKLFlux2, FlowMatchEulerDiscreteScheduler  # noqa: E402
from diffusers.pipelines.flux2.pipeline_flux2 import Flux2Pipeline as Pipe  # noqa: E402
import numpy as np  # noqa: E402
import PIL.Image  # noqa: E402

# FLUX.2-dev's scheduler/scheduler_config.json
SCHEDULER = dict(base_image_seq_len=256, base_shift=0.5, invert_sigmas=False, max_image_seq_len=4096, max_shift=1.15,
                 num_train_timesteps=1000, shift=3.0, shift_terminal=None, stochastic_sampling=False,
                 time_shift_type="exponential", use_beta_sigmas=False, use_dynamic_shifting=True,
                 use_exponential_sigmas=False, use_karras_sigmas=False)


def pipeline_goldens():
    torch.manual_seed(5)
    vae = AutoencoderKLFlux2(block_out_channels=(16, 16, 32, 32), layers_per_block=1, latent_channels=4,
                             norm_num_groups=8).eval()
    with torch.no_grad():
        vae.bn.running_mean.copy_(0.1 * torch.randn(16))
        vae.bn.running_var.copy_(0.5 + torch.rand(16))
    transformer = Flux2Transformer2DModel.from_pretrained(os.path.join(ROOT, "dev", "transformer")).eval()
    scheduler = FlowMatchEulerDiscreteScheduler(**SCHEDULER)
    pipe = Pipe(scheduler=scheduler, vae=vae, text_encoder=None, tokenizer=None, transformer=transformer)
    out_dir = os.path.join(ROOT, "dev", "pipeline")
    vae.save_pretrained(os.path.join(out_dir, "vae"), safe_serialization=True)
    scheduler.save_pretrained(os.path.join(out_dir, "scheduler"))

    g = torch.Generator().manual_seed(7)
    height, width, steps = 96, 128, 4
    prompt_embeds = torch.randn(1, 12, 48, generator=g)
    latents = torch.randn(1, 16, height // 16, width // 16, generator=g)
    ref = (torch.rand(height, width, 3, generator=g) * 255).to(torch.uint8).numpy()
    PIL.Image.fromarray(ref).save(os.path.join(out_dir, "reference.png"))
    results = {"prompt_embeds": prompt_embeds, "latents_init": latents}
    for mode in ("t2i", "i2i"):
        captured = {}

        def hook(_module, _args, output):
            captured.setdefault("first", output[0].detach().clone())

        handle = transformer.register_forward_hook(hook)

        def on_step(_pipe, i, t, kw):
            captured["latents"] = kw["latents"].detach().clone()
            return kw

        kwargs = dict(image=[PIL.Image.open(os.path.join(out_dir, "reference.png"))]) if mode == "i2i" else {}
        with torch.no_grad():
            image = pipe(prompt_embeds=prompt_embeds, latents=latents.clone(), height=height, width=width,
                         num_inference_steps=steps, guidance_scale=4.0, output_type="pt",
                         callback_on_step_end=on_step, **kwargs).images
        handle.remove()
        results[f"{mode}_sigmas"] = pipe.scheduler.sigmas.clone()
        results[f"{mode}_first_output"] = captured["first"]
        results[f"{mode}_final_latents"] = captured["latents"]
        results[f"{mode}_image"] = image  # (1, 3, H, W) in [0, 1]
    save_file({k: v.contiguous().float() for k, v in results.items()}, os.path.join(out_dir, "goldens.safetensors"))
    print("pipeline: sigmas", results["t2i_sigmas"].tolist())


def klein_cfg_goldens():
    """klein (not distilled): true CFG neg + s·(pos − neg) with a second transformer call per step."""
    from diffusers import Flux2KleinPipeline
    vae = AutoencoderKLFlux2.from_pretrained(os.path.join(ROOT, "dev", "pipeline", "vae")).eval()
    transformer = Flux2Transformer2DModel.from_pretrained(os.path.join(ROOT, "klein", "transformer")).eval()
    pipe = Flux2KleinPipeline(scheduler=FlowMatchEulerDiscreteScheduler(**SCHEDULER), vae=vae, text_encoder=None,
                              tokenizer=None, transformer=transformer, is_distilled=False)
    g = torch.Generator().manual_seed(11)
    height, width, steps = 96, 128, 4
    pos = torch.randn(1, 12, 48, generator=g)
    neg = torch.randn(1, 12, 48, generator=g)
    latents = torch.randn(1, 16, height // 16, width // 16, generator=g)
    captured = {}

    def on_step(_pipe, i, t, kw):
        captured["latents"] = kw["latents"].detach().clone()
        return kw

    with torch.no_grad():
        pipe(prompt_embeds=pos, negative_prompt_embeds=neg, latents=latents.clone(), height=height, width=width,
             num_inference_steps=steps, guidance_scale=3.0, output_type="latent", callback_on_step_end=on_step)
    save_file({"prompt_embeds": pos, "negative_prompt_embeds": neg, "latents_init": latents,
               "final_latents": captured["latents"].contiguous()},
              os.path.join(ROOT, "klein", "cfg_goldens.safetensors"))
    print("klein cfg: final latents", float(captured["latents"].abs().mean()))


if __name__ == "__main__":
    pipeline_goldens()
    klein_cfg_goldens()
