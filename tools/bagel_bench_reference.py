#!/usr/bin/env python3
"""BAGEL-7B-MoT at the released widths, few layers: makes the random model folder bench/models/bagel_bench.cpp
reads, and times the OFFICIAL reference (github ByteDance-Seed/Bagel) on PyTorch-CPU for the same work.

Run: PY=$(tools/refenv.sh); $PY tools/bagel_bench_reference.py [--layers 1] [--out /tmp/pdiff_bagel_bench]
     [--threads 1,2] [--repeats 2] [--json docs/bench/bagel_reference.json]
The reference tree is $BAGEL_REF or /tmp/bagel (see tools/make_bagel_goldens.py, whose machinery is imported:
flash_attn stand-in, bf16 -> fp32 patching of qwen2_navit.py / siglip_navit.py, transformers 5 shims).

Folder (released layout, released widths except the layer count and the vocabulary):
  llm_config.json  hidden 3584, FFN 18944, 28 heads / 4 KV heads (head dim 128), `--layers` layers, vocab 320
                   (the tiny tokenizer's; the embedding does not enter a denoising step's cost)
  ema.safetensors  every Bagel parameter in released names, bf16 (as released); no ViT (visual_und=False:
                   text-to-image needs none), latent_pos_embed (4096, 3584) the reference's sin-cos table
  ae.safetensors   FLUX.1 AutoEncoder at the released widths (ch 128, ch_mult [1, 2, 4, 4], 2 res blocks, z 16),
                   BFL names, fp32 (as released), ~335 MB; random weights
  tokenizer files  copied from tests/golden/bagel_tiny
  bench_io.safetensors  text_ids (the ~30-token gen context), x (1024, 64) latents of a 512x512 image, t, and
                   v_ref: the reference's one-branch velocity (_forward_flow, cfg scales 1) for pdiff to compare

Timed (torch.set_num_threads(n) for each n, one process): prefill of the text context
(Bagel.forward_cache_update_text) and one denoising step of ONE branch (Bagel._forward_flow with
cfg_text_scale = cfg_img_scale = 1: one language_model.forward_inference over [vision_start, 1024 latents,
vision_end] against the context). Best of `--repeats` after one warm-up.
"""
import argparse
import json
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))

ap = argparse.ArgumentParser()
ap.add_argument("--layers", type=int, default=1)
ap.add_argument("--out", default="/tmp/pdiff_bagel_bench")
ap.add_argument("--threads", default="1,2")
ap.add_argument("--repeats", type=int, default=2)
ap.add_argument("--side", type=int, default=512, help="image side in pixels (tokens per side = side / 16)")
ap.add_argument("--json", default=None)
ap.add_argument("--make-only", action="store_true")
args = ap.parse_args()

# make_bagel_goldens reads its reference path from argv[1] / $BAGEL_REF at import
os.environ.setdefault("BAGEL_REF", "/tmp/bagel")
_argv, sys.argv = sys.argv, sys.argv[:1]
sys.path.insert(0, HERE)
import make_bagel_goldens as mbg  # noqa: E402
sys.argv = _argv

import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

PROMPT_IDS = [65, 298, 68, 264, 73, 82, 67, 76, 69, 265, 257, 280, 259, 281, 261, 292, 68,
              221, 296, 291, 258, 84, 65, 82, 257, 285, 294, 283]  # 28 in-vocabulary ids: 30 tokens with bos/eos
BOS, EOS, SOI, EOI = 301, 300, 304, 305  # the tiny tokenizer's (tests/golden/bagel_tiny/README.md)
AE_RELEASED = dict(resolution=256, in_channels=3, downsample=8, ch=128, out_ch=3, ch_mult=[1, 2, 4, 4],
                   num_res_blocks=2, z_channels=16, scale_factor=0.3611, shift_factor=0.1159)


class _Ids:
    """prepare_prompts' tokenizer: the fixed prompt ids."""
    def encode(self, _):
        return list(PROMPT_IDS)


def main():
    mbg._install_stubs()
    torch.manual_seed(0)
    from modeling.autoencoder import AutoEncoder, AutoEncoderParams
    from modeling.bagel import Bagel, BagelConfig, Qwen2Config, Qwen2ForCausalLM, SiglipVisionConfig
    from modeling.bagel.qwen2_navit import NaiveCache

    out = args.out
    os.makedirs(out, exist_ok=True)
    cfg = dict(mbg.LLM_CONFIG)
    cfg.update(hidden_size=3584, intermediate_size=18944, num_attention_heads=28, num_key_value_heads=4,
               num_hidden_layers=args.layers, vocab_size=320, bos_token_id=0, eos_token_id=0)
    with open(os.path.join(out, "llm_config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    tiny = os.path.join(ROOT, "tests", "golden", "bagel_tiny")
    for fn in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"):
        shutil.copy(os.path.join(tiny, fn), out)
    llm_config = Qwen2Config.from_json_file(os.path.join(out, "llm_config.json"))
    llm_config.qk_norm, llm_config.tie_word_embeddings = True, False
    llm_config.layer_module = "Qwen2MoTDecoderLayer"
    if not hasattr(llm_config, "pad_token_id"):
        llm_config.pad_token_id = None
    vit_config = SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
    ae_params = AutoEncoderParams(**AE_RELEASED)

    def build():
        config = BagelConfig(visual_gen=True, visual_und=False, llm_config=llm_config, vit_config=vit_config,
                             vae_config=ae_params, vit_max_num_patch_per_side=70, latent_patch_size=2,
                             max_latent_size=64)
        return Bagel(Qwen2ForCausalLM(llm_config), None, config).eval().to(torch.float32)

    t0 = time.time()
    ema = os.path.join(out, "ema.safetensors")
    if not os.path.exists(ema):
        model = build()
        w = mbg._init_random(model.state_dict().items(), seed=1, keep=("pos_embed.pos_embed",))
        w = {k: v.to(torch.bfloat16).contiguous() for k, v in w.items()}
        save_file(w, ema)
        del model, w
        vae = AutoEncoder(ae_params)
        save_file(mbg._init_random(vae.state_dict().items(), seed=2), os.path.join(out, "ae.safetensors"))
        del vae
        print(f"folder written in {time.time() - t0:.1f} s", flush=True)
    model = build()
    sd = load_file(ema)
    model.load_state_dict(sd, strict=True)
    model.language_model.model.enable_taylorseer = False  # as generate_image sets it (no TaylorSeer cache)
    del sd
    n_params = sum(p.numel() for n, p in model.named_parameters() if ".layers." in n)
    print(f"model loaded ({n_params / 1e9:.3f} B decoder params) in {time.time() - t0:.1f} s", flush=True)

    side = args.side
    L = llm_config.num_hidden_layers

    def prefill():
        cache = NaiveCache(L)
        gi, lens, rope = model.prepare_prompts(curr_kvlens=[0], curr_rope=[0], prompts=["-"], tokenizer=_Ids(),
                                               new_token_ids=dict(bos_token_id=BOS, eos_token_id=EOS))
        cache = model.forward_cache_update_text(cache, **gi)
        return cache, lens, rope

    def step(cache, lens, rope, x, t):
        gi = model.prepare_vae_latent(curr_kvlens=lens, curr_rope=rope, image_sizes=[(side, side)],
                                      new_token_ids=dict(start_of_image=SOI, end_of_image=EOI))
        gi.pop("packed_init_noises")
        return model._forward_flow(x_t=x, timestep=torch.tensor([t]), past_key_values=cache,
                                   cfg_text_scale=1.0, cfg_img_scale=1.0, **gi)

    N = (side // 16) ** 2
    g = torch.Generator().manual_seed(7)
    x = torch.randn(N, 64, generator=g)
    t = 0.857143
    results = {}
    with torch.no_grad():
        for n in [int(s) for s in args.threads.split(",")]:
            torch.set_num_threads(n)
            cache, lens, rope = prefill()  # warm-up
            v = step(cache, lens, rope, x, t)
            pre, stp = [], []
            for _ in range(args.repeats):
                a = time.perf_counter()
                cache, lens, rope = prefill()
                b = time.perf_counter()
                v = step(cache, lens, rope, x, t)
                c = time.perf_counter()
                pre.append(b - a)
                stp.append(c - b)
            results[str(n)] = {"prefill_s": min(pre), "step_s": min(stp), "prefill_all_s": pre, "step_all_s": stp}
            print(f"torch threads {n}: prefill {min(pre):.3f} s, one-branch step {min(stp):.3f} s", flush=True)
            if args.make_only:
                break
    ids = torch.tensor([BOS] + PROMPT_IDS + [EOS], dtype=torch.int64)
    save_file({"text_ids": ids, "x": x.contiguous(), "t": torch.tensor([t]), "v_ref": v.contiguous()},
              os.path.join(out, "bench_io.safetensors"))
    doc = {
        "what": "official BAGEL reference (PyTorch CPU fp32, flash_attn stand-in = SDPA per sequence): prefill of the "
                "text context and one denoising step of ONE CFG branch (_forward_flow, cfg scales 1)",
        "date": time.strftime("%Y-%m-%d"), "torch": torch.__version__, "machine": os.uname().nodename,
        "cpus": os.cpu_count(), "layers": L, "hidden": 3584, "ffn": 18944, "heads": 28, "kv_heads": 4,
        "image_side": side, "latent_tokens": N, "text_tokens": len(ids), "decoder_params": n_params,
        "by_threads": results,
    }
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
    print(json.dumps(doc))


if __name__ == "__main__":
    main()
