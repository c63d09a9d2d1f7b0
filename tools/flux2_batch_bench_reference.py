"""The reference side of pdiff's batch-throughput benchmark (bench/models/flux2_batch_bench.cpp): a
FLUX.2-klein pipeline folder with a transformer big enough that compute, not per-call overhead, sets
the time, and diffusers' Flux2KleinPipeline timed on PyTorch-CPU making batches of 1, 2, 4, 8 images
(num_images_per_prompt) from it.

Run through scripts/bench.sh --model flux2-batch (pinned env: tools/refenv.sh).
  $PY tools/flux2_batch_bench_reference.py DIR [--threads N] [--batches 1,2,4,8]
The folder: the committed tiny klein folder's tokenizer, Qwen3 text encoder, VAE and scheduler
(tests/golden/flux2_tiny/klein/e2e, copied) with a random Flux2Transformer2DModel of 8 heads x 64
(inner 512), 2 double + 4 single blocks, in_channels 16, joint_attention_dim 48 (the encoder's 3 x 16).
Inputs (written to DIR/bench_inputs.txt for the pdiff side): 256x256 images (256 image tokens),
4 steps, guidance 1 (one branch), max_sequence_length 64.
Prints one line per batch: reference batch=<b> threads=<N> seconds=<s> images_per_second=<x>.
"""
import argparse
import os
import shutil
import time

import torch
from diffusers import Flux2Transformer2DModel
from diffusers.pipelines.flux2.pipeline_flux2_klein import Flux2KleinPipeline

KLEIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden", "flux2_tiny", "klein", "e2e")
CONFIG = dict(patch_size=1, in_channels=16, out_channels=None, num_layers=2, num_single_layers=4, attention_head_dim=64,
              num_attention_heads=8, joint_attention_dim=48, timestep_guidance_channels=256, mlp_ratio=3.0,
              axes_dims_rope=(16, 16, 16, 16), rope_theta=2000, eps=1e-6, guidance_embeds=False)
SIZE, STEPS, MAXLEN = 256, 4, 64


def make(d):
    if os.path.exists(os.path.join(d, "model_index.json")):
        return
    os.makedirs(d, exist_ok=True)
    for part in ["model_index.json", "tokenizer", "text_encoder", "vae", "scheduler"]:
        src, dst = os.path.join(KLEIN, part), os.path.join(d, part)
        if os.path.isdir(src):
            shutil.copytree(src, dst, symlinks=False, dirs_exist_ok=True)
        else:
            shutil.copy(src, dst)
    torch.manual_seed(0)
    Flux2Transformer2DModel(**CONFIG).eval().save_pretrained(os.path.join(d, "transformer"), safe_serialization=True)
    with open(os.path.join(d, "bench_inputs.txt"), "w") as f:
        f.write(f"{SIZE} {STEPS} {MAXLEN}\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batches", default="1,2,4,8")
    a = ap.parse_args()
    make(a.dir)
    torch.set_num_threads(a.threads)
    pipe = Flux2KleinPipeline.from_pretrained(a.dir).to(torch.float32)
    pipe.set_progress_bar_config(disable=True)

    def run(b):
        gens = [torch.Generator().manual_seed(i) for i in range(b)]
        with torch.no_grad():
            return pipe(prompt="a red fox in the snow", num_images_per_prompt=b, height=SIZE, width=SIZE,
                        num_inference_steps=STEPS, guidance_scale=1.0, max_sequence_length=MAXLEN, generator=gens,
                        output_type="pt").images

    run(1)  # warm-up
    for b in [int(x) for x in a.batches.split(",")]:
        t0 = time.perf_counter()
        out = run(b)
        dt = time.perf_counter() - t0
        assert out.shape[0] == b
        print(f"reference batch={b} threads={a.threads} seconds={dt:.4f} images_per_second={b / dt:.3f}", flush=True)


if __name__ == "__main__":
    main()
