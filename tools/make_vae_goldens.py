"""Goldens for pdiff's VAEs, made with diffusers itself (pinned in tools/refenv.sh).

Run: PY=$(tools/refenv.sh); $PY tools/make_vae_goldens.py

1. FLUX.2's AutoencoderKLFlux2: the tiny checkpoint of tests/golden/flux2_tiny/dev/pipeline/vae
   (made by make_flux2_goldens.py). Saved: decode of random latents whole and tiled, encode (the
   posterior mode) of a random image whole and tiled, and the pipeline's _encode_vae_image
   (patchify + BatchNorm normalisation).
2. FLUX.1's AutoencoderKL as BAGEL uses it (16 latent channels, scaling 0.3611, shift 0.1159, no
   quant convs), tiny widths, saved to tests/golden/flux1_vae_tiny/vae with the same goldens.
Tiling uses a 64-pixel sample tile (8 latent pixels) so small inputs cover several tiles; the
reference computes its grid from tile_sample_min_size / tile_latent_min_size, set here.
"""
import os

import torch
from diffusers import AutoencoderKL, AutoencoderKLFlux2
from diffusers.pipelines.flux2.pipeline_flux2 import Flux2Pipeline
from safetensors.torch import save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden")
TILE_SAMPLE, TILE_LATENT = 64, 8


def run(vae, latent_channels, g):
    z = torch.randn(1, latent_channels, 20, 26, generator=g)
    img = torch.rand(1, 3, 160, 208, generator=g) * 2 - 1
    out = {"z": z, "image": img}
    with torch.no_grad():
        vae.disable_tiling()
        out["decoded"] = vae.decode(z).sample
        out["encoded"] = vae.encode(img).latent_dist.mode()
        vae.enable_tiling()
        vae.tile_sample_min_size, vae.tile_latent_min_size = TILE_SAMPLE, TILE_LATENT
        out["decoded_tiled"] = vae.decode(z).sample
        out["encoded_tiled"] = vae.encode(img).latent_dist.mode()
        vae.disable_tiling()
    return out


def main():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(3)
    flux2 = AutoencoderKLFlux2.from_pretrained(os.path.join(ROOT, "flux2_tiny", "dev", "pipeline", "vae")).eval()
    res = run(flux2, flux2.config.latent_channels, g)
    pipe = Flux2Pipeline(scheduler=None, vae=flux2, text_encoder=None, tokenizer=None, transformer=None)
    with torch.no_grad():
        res["image_latents"] = pipe._encode_vae_image(res["image"], generator=None)
    save_file({k: v.contiguous().float() for k, v in res.items()},
              os.path.join(ROOT, "flux2_tiny", "dev", "pipeline", "vae_goldens.safetensors"))
    print("flux2 vae:", {k: tuple(v.shape) for k, v in res.items()})

    torch.manual_seed(1)
    flux1 = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                          up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(16, 32, 32, 32),
                          layers_per_block=1, latent_channels=16, norm_num_groups=8, sample_size=1024,
                          scaling_factor=0.3611, shift_factor=0.1159, use_quant_conv=False,
                          use_post_quant_conv=False).eval()
    out_dir = os.path.join(ROOT, "flux1_vae_tiny")
    flux1.save_pretrained(os.path.join(out_dir, "vae"), safe_serialization=True)
    res = run(flux1, 16, g)
    save_file({k: v.contiguous().float() for k, v in res.items()}, os.path.join(out_dir, "vae_goldens.safetensors"))
    print("flux1 vae:", {k: tuple(v.shape) for k, v in res.items()})


if __name__ == "__main__":
    main()
