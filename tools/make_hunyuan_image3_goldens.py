#!/usr/bin/env python3
"""Makes goldens for HunyuanImage-3.0 text-to-image generation with the OFFICIAL modeling code, on CPU, fp32.

Run: PY=$(tools/refenv.sh); $PY tools/make_hunyuan_image3_goldens.py [/path/to/HunyuanImage-3.0 work tree]
The reference tree defaults to $HUNYUAN_REF or /tmp/hunyuan_ref (a checkout / `git archive` of
github.com/Tencent-Hunyuan/HunyuanImage-3.0; only hunyuan_image_3/ is needed).

What runs is the reference itself: HunyuanImage3ForCausalMM (tiny config, sdpa attention, eager MoE),
its prepare_model_inputs() (chat template, CFG batch, 2-D RoPE, position ids, KV cache), and its
HunyuanImage3Text2ImagePipeline.__call__ (attention mask, CFG, FlowMatchDiscreteScheduler, KV-cached steps,
VAE decode). Stubs, all for a CPU-only torch / newer transformers / no hub access (see _stubs() and _FakeTokenizer):
  * torch.cuda.set_device, torch.cuda.nvtx.range -> no-ops (hunyuan.py:1110, 1118);
  * transformers 5.x StaticLayer.lazy_initialization(key, value) is called by the reference (hunyuan.py:926)
    with the key only (transformers 4.56 API); the shim passes the key tensor's shape for the value buffer;
  * the tokenizer (hub unreachable): a tiny character-level stand-in with the special tokens the wrapper needs.
    The goldens therefore carry token ids, not text; the real ids are listed in SPEC.md.

Writes tests/golden/hunyuan_image3_tiny/: config.json, model.safetensors (real checkpoint names, bf16 values,
see README.md), goldens.safetensors, versions.json. Deterministic.
"""
import contextlib
import hashlib
import json
import os
import re
import subprocess
import sys

import torch
from safetensors.torch import save_file

REF = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("HUNYUAN_REF", "/tmp/hunyuan_ref")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden", "hunyuan_image3_tiny")

L = 3  # layers: layer 0 dense (moe_layer_num_skipped=1), layers 1, 2 MoE
# Field names as in the released config.json / configuration_hunyuan.py. Per-layer lists as released.
CONFIG = {
    "architectures": ["HunyuanImage3ForCausalMM"],
    "model_type": "Hunyuan",
    "vocab_size": 200,
    "hidden_size": 64,
    "intermediate_size": 48,
    "moe_intermediate_size": [32] * L,
    "num_hidden_layers": L,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "attention_head_dim": 16,
    "hidden_act": "silu",
    "rms_norm_eps": 1e-5,
    "norm_type": "hf_rms",
    "rope_theta": 10000.0,
    "rope_scaling": {"type": "custom", "factor": 1.0},
    "use_rotary_pos_emb": True,
    "use_qk_norm": True,
    "attention_bias": False,
    "mlp_bias": False,
    "use_cla": False,
    "use_mla": False,
    "num_experts": 8,
    "moe_topk": [2] * L,
    "num_shared_expert": [1] * L,
    "use_mixed_mlp_moe": True,
    "moe_layer_num_skipped": 1,
    "norm_topk_prob": True,
    "routed_scaling_factor": 1.0,
    "group_limited_greedy": False,
    "capacity_factor": 1.0,
    "moe_drop_tokens": False,
    "moe_impl": "eager",
    "max_position_embeddings": 256,
    "tie_word_embeddings": False,
    # tiny token ids: the released ids minus 127900 (see SPEC.md "Special tokens")
    "bos_token_id": 58,
    "eos_token_id": 57,
    "pad_token_id": 109,
    "pad_id": -1,
    "img_proj_type": "unet",
    "patch_size": 1,
    "patch_embed_hidden_dim": 32,
    "image_base_size": 64,
    "vae_downsample_factor": [16, 16],
    "vae": {
        "_class_name": "AutoencoderKLConv3D",
        "block_out_channels": [32, 32, 32, 32, 32],
        "in_channels": 3,
        "out_channels": 3,
        "latent_channels": 16,
        "layers_per_block": 0,
        "ffactor_spatial": 16,
        "ffactor_temporal": 4,
        "sample_size": 384,
        "sample_tsize": 96,
        "downsample_match_channel": True,
        "upsample_match_channel": True,
        "scaling_factor": 0.562679178327931,
        "shift_factor": None,
    },
    # The model always builds the SigLIP2 tower and aligner (hunyuan.py:1728-1729); they are not used for
    # text-to-image and their weights are not written. Tiny shapes only so that construction works.
    "vit": {"hidden_size": 32, "patch_size": 16, "num_channels": 3, "num_patches": 16, "num_attention_heads": 2,
            "attention_dropout": 0.0, "hidden_act": "gelu_pytorch_tanh", "intermediate_size": 64,
            "layer_norm_eps": 1e-6, "num_hidden_layers": 1, "_attn_implementation": "sdpa"},
    "vit_processor": {"patch_size": 16, "max_num_patches": 16, "image_mean": [0.5, 0.5, 0.5],
                      "image_std": [0.5, 0.5, 0.5]},
    "vit_aligner": {"projector_type": "mlp_gelu", "input_dim": 32, "n_embed": 64, "depth": 2},
}

# Generation settings (generation_config.json of the released base model; see SPEC.md).
FLOW_SHIFT = 3.0
GUIDANCE = 5.0
STEPS = 2
IMAGE_HW = (48, 80)  # pixels; in the tiny ResolutionGroup(base 64); latent 3 x 5 (= 768x1280 at base 1024)
PROMPT = "a red fox, snow"

# Tiny vocabulary. Ids 1..56 are plain "text" (character-level stand-in). Special ids = released id - 127900.
SPECIAL = {
    "<|endoftext|>": 57, "<|startoftext|>": 58,
    "<boi>": 100, "<eoi>": 101, "<img>": 106, "<pad>": 109, "<cfg>": 110,
    "<timestep>": 111,  # released id not known here (only its embedding slot is overwritten, see SPEC.md)
    "<guidance>": 112, "<joint_img_sep>": 113,
    "<recaption>": 118, "</recaption>": 119, "<think>": 123, "</think>": 124, "<answer>": 125, "</answer>": 126,
    "<img_size_64>": 137,  # slot of <img_size_1024> (128037); the tiny model's base size is 64
}
for _i in range(33):
    SPECIAL[f"<img_ratio_{_i}>"] = 144 + _i  # <img_ratio_0> = 128044 .. <img_ratio_32> = 128076 released


class _FakeTokenizer:
    """Character-level stand-in for the HunyuanImage-3.0 tokenizer (hub unreachable): special tokens are matched
    first, every other character c becomes 1 + (ord(c) % 56). Only the interface TokenizerWrapper uses."""
    bos_token_id = SPECIAL["<|startoftext|>"]
    eos_token_id = SPECIAL["<|endoftext|>"]
    pad_token_id = SPECIAL["<pad>"]
    unk_token_id = None

    def __init__(self):
        self.added_tokens_encoder = dict(SPECIAL)
        self._inv = {v: k for k, v in SPECIAL.items()}
        self._re = re.compile("|".join(re.escape(t) for t in sorted(SPECIAL, key=len, reverse=True)))

    def convert_tokens_to_ids(self, tok):
        return self.added_tokens_encoder[tok]

    def encode(self, text, add_special_tokens=False):
        ids, pos = [], 0
        for m in self._re.finditer(text):
            ids += [1 + (ord(c) % 56) for c in text[pos:m.start()]]
            ids.append(SPECIAL[m.group(0)])
            pos = m.end()
        return ids + [1 + (ord(c) % 56) for c in text[pos:]]

    def decode(self, ids, skip_special_tokens=False):
        return "".join(self._inv.get(int(i), "?") for i in ids)


def _stubs():
    torch.cuda.set_device = lambda *a, **k: None
    torch.cuda.nvtx.range = lambda *a, **k: contextlib.nullcontext()
    from transformers.cache_utils import StaticLayer
    orig = StaticLayer.lazy_initialization
    if "value_states" in orig.__code__.co_varnames[:orig.__code__.co_argcount]:
        def lazy(self, key_states, value_states=None):
            return orig(self, key_states, key_states if value_states is None else value_states)
        StaticLayer.lazy_initialization = lazy


def _ref_commit():
    if os.environ.get("HUNYUAN_REF_COMMIT"):
        return os.environ["HUNYUAN_REF_COMMIT"]
    try:
        return subprocess.check_output(["git", "-C", REF, "rev-parse", "HEAD"], stderr=subprocess.DEVNULL,
                                       text=True).strip()
    except Exception:
        return "unknown (set HUNYUAN_REF_COMMIT)"


def _init_weights(model):
    """Seeded, non-trivial weights, drawn in state_dict order, then rounded to bf16 (the values are exactly
    representable in bf16; they are stored as bf16 like the released checkpoint and used in fp32).
    Matrices / conv kernels: N(0, 1/fan_in); biases N(0, 0.05^2); norm scales (RMSNorm, GroupNorm) 1 + N(0, 0.1^2);
    wte N(0, 1). Zero-initialised modules of the reference (ResBlock out conv) get random values too."""
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in model.state_dict().items():
            if name == "model.wte.weight":
                p.normal_(0.0, 1.0)
            elif p.ndim >= 2:
                fan_in = p[0].numel()
                p.normal_(0.0, fan_in ** -0.5)
            elif name.endswith("bias"):
                p.normal_(0.0, 0.05)
            elif name.endswith("weight"):
                p.normal_(1.0, 0.1)
            else:
                raise ValueError(name)
            p.copy_(p.to(torch.bfloat16).to(torch.float32))


def _saved(name):
    return not name.startswith(("vision_model.", "vision_aligner.", "vae.encoder.", "lm_head."))


def main():
    _stubs()
    sys.path.insert(0, os.path.abspath(REF))
    from hunyuan_image_3.configuration_hunyuan import HunyuanImage3Config
    from hunyuan_image_3.hunyuan import HunyuanImage3ForCausalMM, build_2d_rope
    from hunyuan_image_3.tokenizer_wrapper import TokenizerWrapper

    torch.set_num_threads(1)
    cfg = HunyuanImage3Config(**CONFIG, attn_implementation="sdpa")
    model = HunyuanImage3ForCausalMM(cfg).eval().to(torch.float32)
    assert model.model.layers[0].self_attn.__class__.__name__ == "HunyuanImage3SDPAAttention"
    _init_weights(model)
    model._tkwrapper = TokenizerWrapper(_FakeTokenizer())
    gc = model.generation_config
    gc.flow_shift, gc.diff_infer_steps, gc.diff_guidance_scale = FLOW_SHIFT, STEPS, GUIDANCE
    gc.sequence_template, gc.drop_think, gc.use_system_prompt, gc.bot_task = "pretrain", False, "None", "image"
    gc.max_length = 256

    sd = model.state_dict()
    weights = {k: v.detach().to(torch.bfloat16).contiguous() for k, v in sd.items() if _saved(k)}

    # ---- reference input preparation (tokenizer wrapper, CFG batch, RoPE, cache, position ids) ----
    image_size = f"{IMAGE_HW[0]}x{IMAGE_HW[1]}"
    with torch.no_grad():
        mi = model.prepare_model_inputs(prompt=PROMPT, mode="gen_image", system_prompt=None, image_size=image_size,
                                        seed=0, bot_task="image")
    info = mi["batch_gen_image_info"][0]
    assert (info.image_height, info.image_width) == IMAGE_HW, (info.image_height, info.image_width)
    ids = mi["input_ids"]
    tok_h, tok_w = info.token_height, info.token_width
    S = ids.shape[1]
    cos_t, sin_t = mi["custom_pos_emb"]
    img_slice = mi["tokenizer_output"].gen_image_slices[0][0]
    _, _, all_pos = build_2d_rope(S, CONFIG["attention_head_dim"], image_infos=[(img_slice, (tok_h, tok_w))],
                                  base=CONFIG["rope_theta"], return_all_pos=True)
    print("tokens cond  :", ids[0].tolist())
    print("tokens uncond:", ids[1].tolist())
    print(f"S={S} image slice={img_slice} token grid {tok_h}x{tok_w} ratio_index={info.ratio_index}")

    # ---- capture every model forward and useful intermediates ----
    calls = []
    inter = {}

    def model_hook(mod, args, kwargs, out):
        calls.append({
            "input_ids": kwargs["input_ids"].clone(), "position_ids": kwargs["position_ids"].clone(),
            "attention_mask": kwargs["attention_mask"].clone(), "images": kwargs["images"].clone(),
            "timestep": kwargs["timestep"].clone(), "first_step": kwargs["first_step"],
            "gen_timestep_scatter_index": kwargs["gen_timestep_scatter_index"].clone(),
            "pred": out["diffusion_prediction"].detach().clone(),
        })

    def cap(name, fn=lambda o: o):
        def h(mod, args, out):
            if len(calls) == 0:  # first model forward only
                inter[name] = fn(out).detach().clone()
        return h

    hooks = [model.register_forward_hook(model_hook, with_kwargs=True),
             model.time_embed.register_forward_hook(cap("time_embed_out")),
             model.timestep_emb.register_forward_hook(cap("timestep_emb_out")),
             model.patch_embed.register_forward_hook(cap("patch_embed_out", lambda o: o[0])),
             model.time_embed_2.register_forward_hook(cap("time_embed_2_out"))]
    def embeds_hook(mod, args, kwargs, out):  # a forward hook must return None, or it replaces the output
        if len(calls) == 0:
            inter["inputs_embeds"] = kwargs["inputs_embeds"].detach().clone()
    hooks.append(model.model.register_forward_hook(embeds_hook, with_kwargs=True))
    for i, layer in enumerate(model.model.layers):
        hooks.append(layer.register_forward_hook(cap(f"layer{i}_out", lambda o: o[0])))
    dec_full = {}
    def dec_hook(mod, args, out):
        dec_full.setdefault("x", out.detach().clone())
    hooks.append(model.vae.decoder.register_forward_hook(dec_hook))

    lat_hw = (IMAGE_HW[0] // 16, IMAGE_HW[1] // 16)
    C = CONFIG["vae"]["latent_channels"]
    g = torch.Generator().manual_seed(1234)
    init_latents = torch.randn((1, C) + lat_hw, generator=g, dtype=torch.float32)
    step_latents = []

    def on_step(pipe, i, t, kw):
        step_latents.append(kw["latents"].detach().clone())
        return {}

    model_kwargs = dict(mi)
    with torch.no_grad():
        image = model.pipeline(batch_size=1, image_size=[info.image_height, info.image_width],
                               num_inference_steps=STEPS, guidance_scale=GUIDANCE, generator=None,
                               latents=init_latents.clone(), output_type="pt", model_kwargs=model_kwargs,
                               callback_on_step_end=on_step)[0]
    for h in hooks:
        h.remove()
    sched = model.scheduler
    assert len(calls) == STEPS and len(step_latents) == STEPS
    c0, c1 = calls[0], calls[1]
    # pipeline internals re-derived from the captured calls: CFG combine and Euler step
    sig = sched.sigmas
    lat = init_latents
    for i, c in enumerate(calls):
        pc, pu = c["pred"].float().chunk(2)
        guided = pu + GUIDANCE * (pc - pu)
        lat = lat.float() + guided * (sig[i + 1] - sig[i])
        assert torch.allclose(lat, step_latents[i], atol=1e-6, rtol=0), (lat - step_latents[i]).abs().max()
        c["guided"] = guided
    final_latents = step_latents[-1]

    # ---- VAE decode of the final latents, as the pipeline does (hunyuan_image_3_pipeline.py:857-874) ----
    with torch.no_grad():
        z = final_latents / CONFIG["vae"]["scaling_factor"]
        vae_out = model.vae.decode(z.unsqueeze(2), return_dict=False)[0]  # (1, 3, 1, H, W), unclamped, ~[-1, 1]
    assert torch.allclose(vae_out.squeeze(2), dec_full["x"][:, :, -1], atol=0, rtol=0)
    assert torch.allclose((vae_out.squeeze(2) / 2 + 0.5).clamp(0, 1), image, atol=1e-6)

    # ---- self-checks: the cached step equals a full (no-cache) forward; batch-1 branches equal batch rows ----
    with torch.no_grad():
        full = model(input_ids=ids, attention_mask=c0["attention_mask"], position_ids=c0["position_ids"],
                     past_key_values=None, use_cache=False, custom_pos_emb=mi["custom_pos_emb"], mode="gen_image",
                     first_step=True, images=c1["images"], image_mask=mi["image_mask"], timestep=c1["timestep"],
                     gen_timestep_scatter_index=mi["gen_timestep_scatter_index"])["diffusion_prediction"]
        d_cache = (full - c1["pred"]).abs().max().item()
        print(f"  step-1 KV-cached forward vs full-sequence forward: max |diff| {d_cache:.3e}")
        assert d_cache < 1e-4
        for b in range(2):
            one = model(input_ids=ids[b:b + 1], attention_mask=c0["attention_mask"][b:b + 1],
                        position_ids=c0["position_ids"][b:b + 1], past_key_values=None, use_cache=False,
                        custom_pos_emb=(cos_t[b:b + 1], sin_t[b:b + 1]), mode="gen_image", first_step=True,
                        images=c0["images"][b:b + 1], image_mask=mi["image_mask"][b:b + 1],
                        timestep=c0["timestep"][b:b + 1],
                        gen_timestep_scatter_index=mi["gen_timestep_scatter_index"][b:b + 1])["diffusion_prediction"]
            d = (one - c0["pred"][b:b + 1]).abs().max().item()
            print(f"  batch-1 forward of branch {b} vs CFG batch row: max |diff| {d:.3e}")
            assert d < 1e-4

    pc0, pu0 = c0["pred"].chunk(2)
    for name, t in [("v_cond", pc0), ("v_uncond", pu0), ("final", final_latents), ("image", vae_out)]:
        assert torch.isfinite(t).all(), name
        assert t.abs().max() > 1e-2, name
        print(f"  {name}: shape {tuple(t.shape)} mean {t.mean():.4f} std {t.std():.4f} max|.| {t.abs().max():.4f}")
    dcu = (pc0 - pu0).abs().max().item()
    print(f"  cond vs uncond velocity max |diff| {dcu:.4f}")
    assert dcu > 1e-2
    assert (ids[0] != ids[1]).any()

    goldens = {
        # sequence and layout
        "input_ids": ids.to(torch.int64),                      # (2, S): row 0 cond, row 1 uncond
        "image_mask": mi["image_mask"].to(torch.bool),          # (2, S): True at the <img> tokens
        "gen_timestep_scatter_index": mi["gen_timestep_scatter_index"].to(torch.int64),  # (2, 1)
        "rope_pos": all_pos.squeeze(1).to(torch.int64),         # (S, 2): (y, x) RoPE position of every token
        "rope_cos": cos_t[0].contiguous(), "rope_sin": sin_t[0].contiguous(),  # (S, head_dim)
        # step 0 (first_step=True, full sequence, no cached K/V)
        "step0_position_ids": c0["position_ids"].to(torch.int64),       # (2, S)
        "step0_attention_mask": c0["attention_mask"].to(torch.bool),    # (2, 1, S, S), True = may attend
        "step0_latents_in": c0["images"][:1].contiguous(),              # (1, C, h, w) = init_latents
        "step0_timestep": c0["timestep"].contiguous(),                  # (2,)
        "step0_v_cond": pc0.contiguous(), "step0_v_uncond": pu0.contiguous(),  # (1, C, h, w) each
        "step0_v_guided": c0["guided"].contiguous(),
        "step0_latents_out": step_latents[0],
        # step 1 (first_step=False: only <timestep> + <img> rows, K/V of the text from the cache)
        "step1_input_ids": c1["input_ids"].to(torch.int64),              # (2, 1+N)
        "step1_position_ids": c1["position_ids"].to(torch.int64),        # (2, 1+N)
        "step1_attention_mask": c1["attention_mask"].to(torch.bool),     # (2, 1, 1+N, S)
        "step1_latents_in": c1["images"][:1].contiguous(),
        "step1_timestep": c1["timestep"].contiguous(),
        "step1_v_cond": c1["pred"][:1].contiguous(), "step1_v_uncond": c1["pred"][1:].contiguous(),
        "step1_v_guided": c1["guided"].contiguous(),
        "step1_latents_out": step_latents[1],
        # scheduler
        "sigmas": sched.sigmas.to(torch.float32).contiguous(),           # (STEPS+1,)
        "timesteps": sched.timesteps.to(torch.float32).contiguous(),     # (STEPS,)
        # VAE
        "final_latents": final_latents.contiguous(),                     # (1, C, h, w)
        "vae_decoder_in": (final_latents / CONFIG["vae"]["scaling_factor"]).unsqueeze(2).contiguous(),
        "vae_decoder_out_all_frames": dec_full["x"].contiguous(),        # (1, 3, 4, H, W)
        "image": vae_out.squeeze(2).contiguous(),                        # (1, 3, H, W), last frame, unclamped
        "image_01": image.contiguous(),                                  # (1, 3, H, W), (x/2+0.5).clamp(0,1)
    }
    for k, v in inter.items():  # step-0 intermediates (CFG batch of 2)
        goldens["step0_" + k] = v.contiguous()
    goldens = {k: v.detach().clone().contiguous() for k, v in goldens.items()}

    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
        f.write("\n")
    save_file(weights, os.path.join(OUT, "model.safetensors"))
    save_file(goldens, os.path.join(OUT, "goldens.safetensors"))  # no metadata: its header order is not stable
    for fn in ("model.safetensors", "goldens.safetensors"):
        os.chmod(os.path.join(OUT, fn), 0o644)
    import transformers
    import diffusers
    shas = {}
    for fn in ("hunyuan.py", "hunyuan_image_3_pipeline.py", "autoencoder_kl_3d.py", "tokenizer_wrapper.py",
               "configuration_hunyuan.py"):
        with open(os.path.join(REF, "hunyuan_image_3", fn), "rb") as f:
            shas[fn] = hashlib.sha256(f.read()).hexdigest()
    with open(os.path.join(OUT, "versions.json"), "w") as f:
        json.dump({"torch": torch.__version__, "transformers": transformers.__version__,
                   "diffusers": diffusers.__version__,
                   "reference": "github.com/Tencent-Hunyuan/HunyuanImage-3.0", "reference_commit": _ref_commit(),
                   "sha256": shas}, f, indent=1)
        f.write("\n")
    for k, v in weights.items():
        print(f"  W {k}: {tuple(v.shape)}")
    for k, v in goldens.items():
        print(f"  G {k}: {tuple(v.shape)} {v.dtype}")
    print("wrote", os.path.normpath(OUT))


if __name__ == "__main__":
    main()
