"""The reference side of pdiff's FLUX.2 step benchmark: makes a small random Flux2Transformer2DModel with
diffusers (saved to a folder pdiff's bench loads) and times its forward on PyTorch-CPU.

Run through scripts/bench_flux2.sh, which runs this and bench/models/bench_flux2 in one go.
  $PY tools/flux2_bench_reference.py DIR [--threads N] [--steps K] [--config small|real]
Prints one line: reference_seconds_per_step=<s> threads=<N>.
Configs (the folder's bench_inputs.txt tells bench_flux2 the inputs: image grid side, text tokens):
  small: 8 heads x 64 (inner 512), 2 double + 4 single blocks, in_channels 64, joint_attention_dim 192,
         axes (16,16,16,16), guidance embeds; inputs 256 image tokens (16x16) and 64 text tokens — per-call
         overhead dominates.
  real:  FLUX.2's head size, compute-bound (issue 13): 12 heads x 128 (inner 1536), 2 double + 4 single
         blocks, in_channels 128, joint_attention_dim 1536, axes (32,32,32,32); 1024 image tokens (32x32)
         and 256 text tokens.
"""
import argparse
import os
import time

import torch
from diffusers import Flux2Transformer2DModel

CONFIG = dict(patch_size=1, in_channels=64, out_channels=None, num_layers=2, num_single_layers=4,
              attention_head_dim=64, num_attention_heads=8, joint_attention_dim=192, timestep_guidance_channels=256,
              mlp_ratio=3.0, axes_dims_rope=(16, 16, 16, 16), rope_theta=2000, eps=1e-6, guidance_embeds=True)
CONFIG_REAL = dict(CONFIG, in_channels=128, attention_head_dim=128, num_attention_heads=12, joint_attention_dim=1536,
                   axes_dims_rope=(32, 32, 32, 32))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--config", choices=["small", "real"], default="small")
    a = ap.parse_args()
    config, side, TXT = (CONFIG, 16, 64) if a.config == "small" else (CONFIG_REAL, 32, 256)
    IMG = side * side
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    path = os.path.join(a.dir, "transformer")
    if not os.path.exists(os.path.join(path, "config.json")):
        Flux2Transformer2DModel(**config).eval().save_pretrained(path, safe_serialization=True)
        with open(os.path.join(a.dir, "bench_inputs.txt"), "w") as f:
            f.write(f"{side} {TXT}\n")
    model = Flux2Transformer2DModel.from_pretrained(path).eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, IMG, config["in_channels"], generator=g)
    ctx = torch.randn(1, TXT, config["joint_attention_dim"], generator=g)
    img_ids = torch.zeros(1, IMG, 4)
    img_ids[0, :, 1] = torch.arange(IMG) // side
    img_ids[0, :, 2] = torch.arange(IMG) % side
    txt_ids = torch.zeros(1, TXT, 4)
    txt_ids[0, :, 3] = torch.arange(TXT)
    kw = dict(hidden_states=x, encoder_hidden_states=ctx, timestep=torch.tensor([0.5]), guidance=torch.tensor([4.0]),
              img_ids=img_ids, txt_ids=txt_ids, return_dict=False)
    with torch.no_grad():
        model(**kw)  # warm-up
        t0 = time.perf_counter()
        for _ in range(a.steps):
            model(**kw)
        dt = (time.perf_counter() - t0) / a.steps
    print(f"reference_seconds_per_step={dt:.6f} threads={a.threads}")


if __name__ == "__main__":
    main()
