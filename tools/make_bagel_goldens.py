#!/usr/bin/env python3
"""Makes goldens for BAGEL-7B-MoT (ByteDance-Seed/Bagel) image generation and editing with the OFFICIAL code, CPU, fp32.

Run: PY=$(tools/refenv.sh); $PY tools/make_bagel_goldens.py [/path/to/Bagel work tree]
The reference tree defaults to $BAGEL_REF or /tmp/bagel (a checkout / `git archive` of github.com/ByteDance-Seed/Bagel;
modeling/, inferencer.py, data/data_utils.py, data/transforms.py are needed). Nothing of it is copied here.

What runs is the reference itself: Bagel (modeling/bagel/bagel.py) with Qwen2ForCausalLM (qwen2_navit.py,
layer_module "Qwen2MoTDecoderLayer") and SiglipVisionModel (siglip_navit.py), built as app.py builds them
(qk_norm, untied embeddings, ViT depth - 1, rope False, conv patch embedding converted to Linear), the FLUX.1
AutoEncoder of modeling/autoencoder.py, data_utils.add_special_tokens, transforms.ImageTransform and
InterleaveInferencer.interleave_inference (contexts, CFG, flow Euler loop, VAE decode).

Stubs and in-memory patches (the reference files are never modified; see _install_stubs):
  * flash_attn (hard import in qwen2_navit.py and siglip_navit.py; not installable on CPU): a stand-in module whose
    flash_attn_varlen_func runs torch scaled_dot_product_attention per sequence of cu_seqlens_q / cu_seqlens_k,
    GQA by repeating each KV head num_heads / num_kv_heads times (query head h uses KV head h // group, as
    flash-attn), causal masks aligned bottom-right (query i of q_len may see key j <= i + k_len - q_len, as
    flash-attn >= 2.1), default scale 1/sqrt(head_dim). transformers.modeling_utils is imported before the stub is
    installed so that transformers' cached is_flash_attn_2_available() stays False.
  * cv2 (imported by data/transforms.py, used only by training augmentations): an empty module.
  * fp32: qwen2_navit.py and siglip_navit.py hard-cast to torch.bfloat16 (flash-attn inputs, the MoT "gen" path of
    PackedAttentionMoT.forward_inference and Qwen2MoTDecoderLayer.forward_inference, training paths). These two
    modules are imported through a loader that replaces every "torch.bfloat16" in their source text by
    "torch.float32" before compiling (19 occurrences in qwen2_navit.py, 3 in siglip_navit.py; counts asserted).
    Nothing else is changed. The `torch.autocast("cuda", bf16)` of inferencer.py is inert on CPU tensors.
  * transformers 5.x (the reference targets 4.x): (a) ROPE_INIT_FUNCTIONS no longer has "default", which the
    reference's modeling/qwen2/modeling_qwen2.py Qwen2RotaryEmbedding looks up: it is re-added as transformers
    4.x's _compute_default_rope_parameters (inv_freq = 1 / theta^(2i/head_dim), scaling 1; result asserted);
    (b) PretrainedConfig no longer defaults pad_token_id, which qwen2_navit.Qwen2Model reads: set to None (the
    4.x default). (c) The tokenizer's special_tokens_map no longer lists the additional special tokens, so
    data_utils.add_special_tokens re-adds "<|im_start|>" (already in the vocabulary: same id, flags become
    normalized/non-special); left as the reference does it.
  * torch.compile(flex_attention) at import of qwen2_navit.py is lazy and never called at inference: left alone.

Writes tests/golden/bagel_tiny/: llm_config.json, vit_config.json, ema.safetensors (released names, bf16),
ae.safetensors (BFL names, stored bf16 to save space; the released FLUX.1 ae is fp32), tokenizer.json,
tokenizer_config.json, vocab.json, merges.txt, edit_input.png, goldens.safetensors, goldens_meta.json (prompts,
token ids and strings), versions.json. Deterministic (byte-identical on re-run); ~5 s on one core.
"""
import copy
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import math
import os
import sys
import time
import types

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

REF = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("BAGEL_REF", "/tmp/bagel"))
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "tests", "golden", "bagel_tiny"))
MIRROR = "/work/.mirror/ByteDance-Seed+Bagel/repo"

# ---------------------------------------------------------------------------------------------------------------
# Tiny configs, released field names. llm_config.json: fields of the released BAGEL-7B-MoT llm_config.json
# (= Qwen2.5-7B's config.json), tiny sizes. vit_config.json: fields of the released SigLIP-so400m navit config.
LLM_CONFIG = {
    "architectures": ["Qwen2ForCausalLM"],
    "attention_dropout": 0.0,
    "bos_token_id": None,   # filled in: <|endoftext|> of the tiny tokenizer (Qwen2.5: 151643, unused by BAGEL)
    "eos_token_id": None,   # idem
    "hidden_act": "silu",
    "hidden_size": 64,
    "initializer_range": 0.02,
    "intermediate_size": 96,
    "max_position_embeddings": 32768,
    "max_window_layers": 28,
    "model_type": "qwen2",
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "num_key_value_heads": 2,
    "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0,
    "sliding_window": 131072,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.43.1",
    "use_cache": True,
    "use_sliding_window": False,
    "vocab_size": None,     # filled in: len(tokenizer) rounded up to a multiple of 16
}
VIT_CONFIG = {
    "architectures": ["SiglipVisionModel"],
    "attention_dropout": 0.0,
    "hidden_act": "gelu_pytorch_tanh",
    "hidden_size": 32,
    "image_size": 980,
    "intermediate_size": 64,
    "layer_norm_eps": 1e-06,
    "model_type": "siglip_vision_model",
    "num_attention_heads": 2,
    "num_channels": 3,
    "num_hidden_layers": 3,   # app.py subtracts 1: 2 layers are built and stored
    "patch_size": 14,
    "torch_dtype": "bfloat16",
}
# BagelConfig as app.py builds it (not a file in the release).
BAGEL_KW = dict(vit_max_num_patch_per_side=70, connector_act="gelu_pytorch_tanh", latent_patch_size=2,
                max_latent_size=64)
# FLUX.1 AutoEncoder, tiny (released: resolution 256, ch 128, ch_mult [1, 2, 4, 4], num_res_blocks 2; load_ae).
AE_PARAMS = dict(resolution=64, in_channels=3, downsample=8, ch=32, out_ch=3, ch_mult=[1, 1, 2, 2], num_res_blocks=1,
                 z_channels=16, scale_factor=0.3611, shift_factor=0.1159)

PROMPT_A = "a red circle on a blue background"
PROMPT_B = "a yellow star above green hills"
EDIT_PROMPT = "make it blue"
HW_A = (64, 64)
HW_B = (64, 96)
CORPUS = [
    PROMPT_A, PROMPT_B, EDIT_PROMPT,
    "a photo of a cat sitting on a red sofa in the sun",
    "a green square on a white background, flat colors",
    "a small boat on a calm lake at sunset, orange sky",
    "make the sky blue and add a white cloud above the hills",
    "a black dog running on green grass next to a yellow ball",
]
GEN_KW = dict(cfg_interval=[0.4, 1.0], timestep_shift=3.0, num_timesteps=4, cfg_renorm_min=0.0)


# ---------------------------------------------------------------------------------------------------------------
def flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q=None, max_seqlen_k=None,
                           dropout_p=0.0, softmax_scale=None, causal=False, **kwargs):
    """Stand-in for flash_attn.flash_attn_varlen_func: q (Nq, H, D), k/v (Nk, Hk, D) packed; per sequence SDPA."""
    assert dropout_p == 0.0 and not kwargs.get("return_attn_probs", False)
    H, Hk, D = q.shape[1], k.shape[1], q.shape[2]
    assert H % Hk == 0
    scale = softmax_scale if softmax_scale is not None else D ** -0.5
    cq, ck = cu_seqlens_q.tolist(), cu_seqlens_k.tolist()
    outs = []
    for i in range(len(cq) - 1):
        qi = q[cq[i]:cq[i + 1]].transpose(0, 1)                       # (H, Lq, D)
        ki = k[ck[i]:ck[i + 1]].transpose(0, 1).repeat_interleave(H // Hk, dim=0)
        vi = v[ck[i]:ck[i + 1]].transpose(0, 1).repeat_interleave(H // Hk, dim=0)
        lq, lk = qi.shape[1], ki.shape[1]
        mask = None
        if causal:
            mask = torch.arange(lk)[None, :] <= torch.arange(lq)[:, None] + (lk - lq)
        o = F.scaled_dot_product_attention(qi, ki, vi, attn_mask=mask, scale=scale)
        outs.append(o.transpose(0, 1))
    return torch.cat(outs, dim=0)


PATCHED = {"modeling.bagel.qwen2_navit": ("modeling/bagel/qwen2_navit.py", 19),
           "modeling.bagel.siglip_navit": ("modeling/bagel/siglip_navit.py", 3)}


class _Fp32Loader(importlib.abc.Loader):
    def __init__(self, path, count):
        self.path, self.count = path, count

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        with open(self.path, encoding="utf-8") as f:
            src = f.read()
        n = src.count("torch.bfloat16")
        assert n == self.count, (self.path, n)
        exec(compile(src.replace("torch.bfloat16", "torch.float32"), self.path, "exec"), module.__dict__)


class _Fp32Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name in PATCHED:
            rel, count = PATCHED[name]
            fn = os.path.join(REF, rel)
            return importlib.util.spec_from_file_location(name, fn, loader=_Fp32Loader(fn, count))
        return None


def _install_stubs():
    sys.dont_write_bytecode = True
    import transformers.modeling_utils  # noqa: F401  (caches is_flash_attn_2_available() == False first)
    fa = types.ModuleType("flash_attn")
    fa.__spec__ = importlib.machinery.ModuleSpec("flash_attn", None)
    fa.flash_attn_varlen_func = flash_attn_varlen_func
    sys.modules["flash_attn"] = fa
    cv2 = types.ModuleType("cv2")
    cv2.__spec__ = importlib.machinery.ModuleSpec("cv2", None)
    sys.modules["cv2"] = cv2
    sys.meta_path.insert(0, _Fp32Finder())
    # transformers 5.x removed ROPE_INIT_FUNCTIONS["default"], which modeling/qwen2/modeling_qwen2.py
    # Qwen2RotaryEmbedding looks up; re-add transformers 4.x's _compute_default_rope_parameters (plain RoPE).
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
    if "default" not in ROPE_INIT_FUNCTIONS:
        def _default_rope(config=None, device=None, seq_len=None, **rope_kwargs):
            if len(rope_kwargs) > 0:
                base, dim = rope_kwargs["base"], rope_kwargs["dim"]
            else:
                base = config.rope_theta
                partial = getattr(config, "partial_rotary_factor", 1.0)
                head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
                dim = int(head_dim * partial)
            inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).to(device=device, dtype=torch.float)
                                       / dim))
            return inv_freq, 1.0
        ROPE_INIT_FUNCTIONS["default"] = _default_rope
    sys.path.insert(0, REF)


def bf16(t):
    return t.detach().to(torch.bfloat16).to(torch.float32)


def _init_random(named, seed, keep=()):
    """Seeded weights drawn in state_dict order, rounded to bf16. Matrices / conv kernels N(0, 1/fan_in);
    embed_tokens N(0, 1); ViT position_embedding N(0, 0.5^2); biases N(0, 0.05^2); norm scales 1 + N(0, 0.1^2).
    Names in `keep` keep the reference's value (the sin-cos pos_embed tables), rounded to bf16."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, p in named:
        if any(name.endswith(k) for k in keep):
            v = p.detach().clone()
        elif name.endswith("embed_tokens.weight"):
            v = torch.randn(p.shape, generator=g)
        elif name.endswith("position_embedding.weight"):
            v = 0.5 * torch.randn(p.shape, generator=g)
        elif p.ndim >= 2:
            v = torch.randn(p.shape, generator=g) * (p[0].numel() ** -0.5)
        elif name.endswith("bias"):
            v = 0.05 * torch.randn(p.shape, generator=g)
        elif name.endswith("weight"):
            v = 1.0 + 0.1 * torch.randn(p.shape, generator=g)
        else:
            raise ValueError(name)
        out[name] = bf16(v)
    return out


def _sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Recorder:
    """Wraps reference methods on instances (no change to the reference) and records calls."""

    def __init__(self):
        self.calls = {}
        self._undo = []

    def wrap(self, obj, name, keep_out=True):
        orig = getattr(obj, name)
        calls = self.calls.setdefault(name, [])

        def w(*a, **k):
            out = orig(*a, **k)
            calls.append({"args": a, "kwargs": k, "out": out if keep_out else None})
            return out
        setattr(obj, name, w)
        self._undo.append((obj, name))

    def reset(self):
        for obj, name in self._undo:
            delattr(obj, name)
        self._undo = []
        self.calls = {}


def main():
    t0 = time.time()
    _install_stubs()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    from PIL import Image
    import transformers
    from modeling.autoencoder import AutoEncoder, AutoEncoderParams
    from modeling.bagel import (Bagel, BagelConfig, Qwen2Config, Qwen2ForCausalLM, SiglipVisionConfig,
                                SiglipVisionModel)
    from modeling.bagel.qwen2_navit import NaiveCache
    from data.data_utils import add_special_tokens
    from data.transforms import ImageTransform
    from inferencer import InterleaveInferencer
    sys.path.insert(0, HERE)
    from make_flux2_klein_e2e_goldens import make_tokenizer

    os.makedirs(OUT, exist_ok=True)

    # ---- tokenizer: tiny Qwen2-style byte-level BPE + the reference's add_special_tokens ----
    tokenizer = make_tokenizer(CORPUS, vocab_size=300)
    tokenizer, new_token_ids, num_new = add_special_tokens(tokenizer)
    tokenizer.save_pretrained(OUT)
    for fn in ("chat_template.jinja",):  # not part of BAGEL's tokenizer folder
        if os.path.exists(os.path.join(OUT, fn)):
            os.remove(os.path.join(OUT, fn))
    # vocab.json / merges.txt as in the released folder (the slow Qwen2Tokenizer of app.py reads these)
    tj = json.loads(tokenizer.backend_tokenizer.to_str())
    with open(os.path.join(OUT, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(tj["model"]["vocab"], f, ensure_ascii=False)
    with open(os.path.join(OUT, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for m in tj["model"]["merges"]:
            f.write((" ".join(m) if isinstance(m, list) else m) + "\n")
    vocab = len(tokenizer)
    LLM_CONFIG["vocab_size"] = (vocab + 15) // 16 * 16
    LLM_CONFIG["bos_token_id"] = LLM_CONFIG["eos_token_id"] = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    print("tokenizer:", vocab, "tokens, new_token_ids", new_token_ids, "added", num_new)

    # ---- configs written in the released layout, read back as app.py does ----
    for fn, cfg in (("llm_config.json", LLM_CONFIG), ("vit_config.json", VIT_CONFIG)):
        with open(os.path.join(OUT, fn), "w") as f:
            json.dump(cfg, f, indent=2)
            f.write("\n")
    llm_config = Qwen2Config.from_json_file(os.path.join(OUT, "llm_config.json"))
    llm_config.qk_norm = True
    llm_config.tie_word_embeddings = False
    llm_config.layer_module = "Qwen2MoTDecoderLayer"
    if not hasattr(llm_config, "pad_token_id"):  # transformers 5.x: PretrainedConfig no longer defaults it (4.x: None)
        llm_config.pad_token_id = None
    vit_config = SiglipVisionConfig.from_json_file(os.path.join(OUT, "vit_config.json"))
    vit_config.rope = False
    vit_config.num_hidden_layers -= 1
    ae_params = AutoEncoderParams(**AE_PARAMS)

    def build():
        torch.manual_seed(0)
        config = BagelConfig(visual_gen=True, visual_und=True, llm_config=llm_config, vit_config=vit_config,
                             vae_config=ae_params, **BAGEL_KW)
        language_model = Qwen2ForCausalLM(llm_config)
        vit_model = SiglipVisionModel(vit_config)
        model = Bagel(language_model, vit_model, config)
        model.vit_model.vision_model.embeddings.convert_conv2d_to_linear(vit_config)
        return model.eval().to(torch.float32)

    # ---- weights ----
    model = build()
    sd = model.state_dict()
    w = _init_random(sd.items(), seed=1, keep=("pos_embed.pos_embed",))
    save_file({k: v.to(torch.bfloat16).contiguous() for k, v in w.items()}, os.path.join(OUT, "ema.safetensors"))
    vae_model = AutoEncoder(ae_params).eval()
    wa = _init_random(vae_model.state_dict().items(), seed=2)
    save_file({k: v.to(torch.bfloat16).contiguous() for k, v in wa.items()}, os.path.join(OUT, "ae.safetensors"))

    # reload from the files (the run uses exactly what is stored), fp32 modules
    model = build()
    missing, unexpected = model.load_state_dict(load_file(os.path.join(OUT, "ema.safetensors")), strict=True)
    vae_model = AutoEncoder(ae_params).eval()
    vae_model.load_state_dict(load_file(os.path.join(OUT, "ae.safetensors")), strict=True)
    for n, p in model.named_parameters():
        assert p.dtype == torch.float32, n
        if "_moe_gen" in n:
            twin = dict(model.named_parameters())[n.replace("_moe_gen", "")]
            assert not torch.equal(p, twin), n
    assert model.llm2vae.weight.abs().max() > 0
    inv = model.language_model.model.rotary_emb.inv_freq
    assert torch.equal(inv, 1.0 / (1e6 ** (torch.arange(0, 16, 2, dtype=torch.int64).float() / 16))), inv

    vae_transform = ImageTransform(64, 32, 16)
    vit_transform = ImageTransform(56, 28, 14)
    inferencer = InterleaveInferencer(model=model, vae_model=vae_model, tokenizer=tokenizer,
                                      vae_transform=vae_transform, vit_transform=vit_transform,
                                      new_token_ids=new_token_ids)
    G = {}
    meta = {}

    # ---------------------------------------------------------------------------------------------------------
    def run_gen(tag, inputs, seed, **kw):
        """interleave_inference with recording wrappers; returns the recorder."""
        rec = Recorder()
        for name in ("prepare_prompts", "prepare_vae_latent", "prepare_vae_latent_cfg", "prepare_vit_images",
                     "prepare_vae_images", "generate_image", "_forward_flow", "forward_cache_update_vit"):
            rec.wrap(model, name)
        rec.wrap(inferencer, "gen_image")
        lm_in = []
        lm_fi = model.language_model.forward_inference

        def lm_wrap(**k):
            lm_in.append({"seq": k["packed_query_sequence"].detach().clone(), "mode": k.get("mode"),
                          "is_causal": k["is_causal"]})
            return lm_fi(**k)
        model.language_model.forward_inference = lm_wrap
        rec.wrap(vae_model, "encode")
        dec = []
        hdec = vae_model.decoder.register_forward_hook(lambda m, a, o: dec.append(o.detach().clone()))
        eps = []

        def reg_pre(m, a):
            st = torch.get_rng_state()
            mean, logvar = torch.chunk(a[0], 2, dim=m.chunk_dim)
            eps.append((torch.randn_like(mean), a[0].detach().clone()))
            torch.set_rng_state(st)
        hreg = vae_model.reg.register_forward_pre_hook(reg_pre)
        torch.manual_seed(seed)
        with torch.no_grad():
            outs = inferencer.interleave_inference(inputs, **kw)
        hdec.remove()
        hreg.remove()
        del model.language_model.forward_inference
        calls = rec.calls
        calls["lm_in"] = lm_in
        rec.reset()
        return outs, calls, dec, eps

    def record_t2i(tag, prompt, hw, renorm, seed, cfg_img_scale):
        outs, calls, dec, _ = run_gen(tag, [prompt], seed, cfg_text_scale=4.0, cfg_img_scale=cfg_img_scale,
                                      cfg_renorm_type=renorm, image_shapes=hw, **GEN_KW)
        img = outs[0]
        assert img.size == (hw[1], hw[0])
        gi = calls["generate_image"][0]["kwargs"]
        gctx = calls["gen_image"][0]
        gen_ctx = gctx["args"][1]
        pre = calls["prepare_prompts"][0]["out"][0]
        G[f"{tag}.text_ids"] = pre["packed_text_ids"].to(torch.int64)
        G[f"{tag}.text_position_ids"] = pre["packed_text_position_ids"].to(torch.int64)
        lat_in = calls["prepare_vae_latent"][0]["out"]
        G[f"{tag}.init_noise"] = lat_in["packed_init_noises"].clone()
        G[f"{tag}.query.text_ids"] = lat_in["packed_text_ids"].to(torch.int64)       # [vision_start, vision_end]
        G[f"{tag}.query.text_indexes"] = lat_in["packed_text_indexes"].to(torch.int64)
        G[f"{tag}.query.vae_token_indexes"] = lat_in["packed_vae_token_indexes"].to(torch.int64)
        G[f"{tag}.query.vae_position_ids"] = lat_in["packed_vae_position_ids"].to(torch.int64)
        G[f"{tag}.query.position_ids"] = lat_in["packed_position_ids"].to(torch.int64)
        G[f"{tag}.query.indexes"] = lat_in["packed_indexes"].to(torch.int64)
        for cname, cctx in (("gen", gen_ctx), ("cfg_text", gctx["kwargs"]["cfg_text_precontext"]),
                            ("cfg_img", gctx["kwargs"]["cfg_img_precontext"])):
            G[f"{tag}.{cname}.kv_len"] = torch.tensor(cctx["kv_lens"], dtype=torch.int64)
            G[f"{tag}.{cname}.rope"] = torch.tensor(cctx["ropes"], dtype=torch.int64)
        for cname, cctx in (("cfg_text", "cfg_text"), ("cfg_img", "cfg_img")):
            G[f"{tag}.{cname}.query_indexes"] = gi[f"{cctx}_packed_query_indexes"].to(torch.int64)
            G[f"{tag}.{cname}.position_ids"] = gi[f"{cctx}_packed_position_ids"].to(torch.int64)
        pkv = gi["past_key_values"]
        for l in range(llm_config.num_hidden_layers):
            G[f"{tag}.kv.{l}.k"] = pkv.key_cache[l].clone()
            G[f"{tag}.kv.{l}.v"] = pkv.value_cache[l].clone()
        ff = calls["_forward_flow"]
        G[f"{tag}.timesteps"] = torch.stack([c["kwargs"]["timestep"][0] for c in ff]).float()
        G[f"{tag}.steps.x"] = torch.stack([c["kwargs"]["x_t"] for c in ff])
        G[f"{tag}.steps.v"] = torch.stack([c["out"] for c in ff])
        G[f"{tag}.cfg_text_scale_per_step"] = torch.tensor([c["kwargs"]["cfg_text_scale"] for c in ff])
        latent = torch.cat(list(calls["generate_image"][0]["out"]), 0)
        G[f"{tag}.latent"] = latent.clone()
        # Euler check: x_{i+1} = x_i - v_i * (t_i - t_{i+1}); last t is 0
        ts = torch.cat([G[f"{tag}.timesteps"], torch.zeros(1)])
        x = G[f"{tag}.init_noise"]
        for i in range(len(ff)):
            assert torch.equal(x, G[f"{tag}.steps.x"][i])
            x = x - G[f"{tag}.steps.v"][i] * (ts[i] - ts[i + 1])
        assert (x - latent).abs().max() < 1e-5
        assert len(dec) == 1
        G[f"{tag}.image"] = dec[0][0].clone()                                          # [3, H, W] float, ~[-1, 1]
        G[f"{tag}.image_u8"] = torch.from_numpy(np.array(img)).permute(2, 0, 1).contiguous().to(torch.uint8)
        h, w = hw[0] // 16, hw[1] // 16
        z = latent.reshape(1, h, w, 2, 2, 16)
        z = torch.einsum("nhwpqc->nchpwq", z).reshape(1, 16, h * 2, w * 2)
        G[f"{tag}.decoder_in"] = z.clone()                                                   # before /scale + shift
        u8 = ((dec[0] * 0.5 + 0.5).clamp(0, 1)[0].permute(1, 2, 0) * 255).to(torch.uint8).permute(2, 0, 1)
        assert torch.equal(u8, G[f"{tag}.image_u8"])
        meta[tag] = dict(prompt=prompt, hw=list(hw), renorm=renorm, seed=seed, cfg_img_scale=cfg_img_scale,
                         text_ids=G[f"{tag}.text_ids"].tolist(),
                         tokens=tokenizer.convert_ids_to_tokens(G[f"{tag}.text_ids"].tolist()))
        return calls

    # ---- 1. text-to-image, prompt A, 64x64, renorm global ----
    calls = record_t2i("t2iA", PROMPT_A, HW_A, "global", seed=100, cfg_img_scale=1.5)
    ff0 = calls["_forward_flow"][0]["kwargs"]
    # one denoising step: the three branches (llm2vae outputs at the latent tokens, in call order gen, cfg_text,
    # cfg_img) and the combined velocity for each renorm type
    branch = []
    hb = model.llm2vae.register_forward_hook(lambda m, a, o: branch.append(o.detach().clone()))
    mot = {}

    def layer0_hook(m, args, kwargs, out):
        if "in" not in mot:
            mot["in"] = kwargs["packed_query_sequence"].detach().clone()
            mot["out"] = out[0].detach().clone()
            mot["mode"] = kwargs["mode"]
            mot["kv_lens"] = kwargs["key_values_lens"].clone()
    hl = model.language_model.model.layers[0].register_forward_hook(layer0_hook, with_kwargs=True)
    vs = {}
    with torch.no_grad():
        for renorm in ("global", "channel", "text_channel"):
            kw = dict(ff0)
            kw["cfg_renorm_type"] = renorm
            branch.clear()
            vs[renorm] = model._forward_flow(**kw)
            assert len(branch) == 3
    hb.remove()
    hl.remove()
    vi = ff0["packed_vae_token_indexes"]
    G["t2iA.step.x"] = ff0["x_t"].clone()
    G["t2iA.step.t"] = ff0["timestep"][:1].float().clone()
    G["t2iA.step.v_gen"] = branch[0][vi]
    G["t2iA.step.v_cfg_text"] = branch[1][vi]
    G["t2iA.step.v_cfg_img"] = branch[2][vi]
    for r in vs:
        G[f"t2iA.step.v_{r}"] = vs[r].clone()
    assert torch.equal(G["t2iA.step.v_global"], G["t2iA.steps.v"][0])
    # MoT layer 0, gen-mode query block (vision_start, latents, vision_end) of prompt A at step 0, main branch
    assert mot["mode"] == "gen"
    G["mot.in"] = mot["in"]
    G["mot.out"] = mot["out"]
    G["mot.kv_len"] = mot["kv_lens"].to(torch.int64)
    # no-CFG velocity (cfg scales 1) equals branch 0
    with torch.no_grad():
        kw = dict(ff0, cfg_text_scale=1.0, cfg_img_scale=1.0)
        v1 = model._forward_flow(**kw)
    assert torch.equal(v1, G["t2iA.step.v_gen"])

    # ---- 1b. text-to-image, prompt B, 64x96 (tokens 4x6), renorm channel ----
    record_t2i("t2iB", PROMPT_B, HW_B, "channel", seed=200, cfg_img_scale=1.5)

    # ---- 3. image editing ----
    arr = np.full((64, 64, 3), 255, dtype=np.uint8)
    arr[16:48, 20:44] = (0, 160, 0)
    edit_img = Image.fromarray(arr)
    edit_img.save(os.path.join(OUT, "edit_input.png"))
    edit_img = Image.open(os.path.join(OUT, "edit_input.png"))
    outs, ecalls, dec, eps = run_gen("edit", [edit_img, EDIT_PROMPT], 300, cfg_text_scale=4.0, cfg_img_scale=2.0,
                                     cfg_renorm_type="global", image_shapes=(64, 64), **GEN_KW)
    # (vit capture below needs the ViT forward: re-derived from recorded calls)
    eimg = outs[0]
    assert eimg.size == (64, 64)
    vae_in = ecalls["prepare_vae_images"][0]["out"][0]
    G["edit.vae_pixels"] = vae_in["padded_images"][0].clone()                      # [3, 64, 64] normalised
    G["edit.vae_position_ids"] = vae_in["packed_vae_position_ids"].to(torch.int64)
    assert len(eps) == 1
    G["edit.encode_eps"] = eps[0][0][0].clone()                                     # [16, 8, 8]
    G["edit.encode_moments"] = eps[0][1][0].clone()                                 # [32, 8, 8] mean | logvar
    G["edit.encoded_latent"] = ecalls["encode"][0]["out"][0].clone()               # [16, 8, 8], scaled/shifted
    mean, logvar = torch.chunk(eps[0][1], 2, dim=1)
    zz = 0.3611 * (mean + torch.exp(0.5 * logvar) * eps[0][0] - 0.1159)
    assert torch.allclose(zz[0], G["edit.encoded_latent"], atol=1e-6)
    vit_call = ecalls["forward_cache_update_vit"][0]["kwargs"]
    G["edit.vit_pixels"] = vit_call["packed_vit_tokens"].clone()                   # [16, 588] patchified
    G["edit.vit_position_ids"] = vit_call["packed_vit_position_ids"].to(torch.int64)
    # the LLM input of forward_cache_update_vit (the only und-mode, non-causal call): [vision_start, ViT tokens
    # (vit_model -> connector -> + vit_pos_embed), vision_end]
    vit_lm = [c for c in ecalls["lm_in"] if c["mode"] == "und" and not c["is_causal"]]
    assert len(vit_lm) == 1
    G["edit.vit_tokens"] = vit_lm[0]["seq"][vit_call["packed_vit_token_indexes"]].clone()
    G["edit.vit_block_in"] = vit_lm[0]["seq"].clone()
    G["edit.vit_text_ids"] = vit_call["packed_text_ids"].to(torch.int64)
    # the raw ViT output (post_layernorm), recomputed by the reference's vit_model on the recorded inputs
    with torch.no_grad():
        cu = torch.tensor([0, vit_call["packed_vit_tokens"].shape[0]], dtype=torch.int32)
        vit_out = model.vit_model(packed_pixel_values=vit_call["packed_vit_tokens"],
                                  packed_flattened_position_ids=vit_call["packed_vit_position_ids"],
                                  cu_seqlens=cu, max_seqlen=int(cu[1]))
        G["edit.vit_out"] = vit_out.clone()
        chk = model.connector(vit_out) + model.vit_pos_embed(vit_call["packed_vit_position_ids"])
    assert torch.equal(chk, G["edit.vit_tokens"])
    # the VAE block of the context: [vision_start, clean latent tokens (t = 0), vision_end], gen mode
    vae_lm = [c for c in ecalls["lm_in"] if c["mode"] == "gen" and c["seq"].shape[0] == 18]
    assert vae_lm[0] is ecalls["lm_in"][0]  # the first LLM call of the edit: VAE block of the gen context
    G["edit.vae_block_in"] = vae_lm[0]["seq"].clone()
    # one denoising step of the edit: the three branches and the combined velocity
    eff0 = ecalls["_forward_flow"][0]["kwargs"]
    branch = []
    hb = model.llm2vae.register_forward_hook(lambda m, a, o: branch.append(o.detach().clone()))
    with torch.no_grad():
        v = model._forward_flow(**eff0)
    hb.remove()
    assert len(branch) == 3 and torch.equal(v, ecalls["_forward_flow"][0]["out"])
    evi = eff0["packed_vae_token_indexes"]
    G["edit.step.v_gen"], G["edit.step.v_cfg_text"], G["edit.step.v_cfg_img"] = (b[evi] for b in branch)
    G["edit.step.v_global"] = v.clone()
    gctx = ecalls["gen_image"][0]
    for cname, cctx in (("gen", gctx["args"][1]), ("cfg_text", gctx["kwargs"]["cfg_text_precontext"]),
                        ("cfg_img", gctx["kwargs"]["cfg_img_precontext"])):
        G[f"edit.{cname}.kv_len"] = torch.tensor(cctx["kv_lens"], dtype=torch.int64)
        G[f"edit.{cname}.rope"] = torch.tensor(cctx["ropes"], dtype=torch.int64)
        for l in range(llm_config.num_hidden_layers):
            G[f"edit.{cname}.kv.{l}.k"] = cctx["past_key_values"].key_cache[l].clone()
            G[f"edit.{cname}.kv.{l}.v"] = cctx["past_key_values"].value_cache[l].clone()
    gi = ecalls["generate_image"][0]["kwargs"]
    lat_in = ecalls["prepare_vae_latent"][0]["out"]
    G["edit.init_noise"] = lat_in["packed_init_noises"].clone()
    G["edit.query.position_ids"] = lat_in["packed_position_ids"].to(torch.int64)
    G["edit.query.indexes"] = lat_in["packed_indexes"].to(torch.int64)
    for c in ("cfg_text", "cfg_img"):
        G[f"edit.{c}.query_indexes"] = gi[f"{c}_packed_query_indexes"].to(torch.int64)
        G[f"edit.{c}.position_ids"] = gi[f"{c}_packed_position_ids"].to(torch.int64)
    G["edit.text_ids"] = ecalls["prepare_prompts"][0]["out"][0]["packed_text_ids"].to(torch.int64)
    G["edit.text_position_ids"] = ecalls["prepare_prompts"][0]["out"][0]["packed_text_position_ids"].to(torch.int64)
    ff = ecalls["_forward_flow"]
    G["edit.timesteps"] = torch.stack([c["kwargs"]["timestep"][0] for c in ff]).float()
    G["edit.steps.x"] = torch.stack([c["kwargs"]["x_t"] for c in ff])
    G["edit.steps.v"] = torch.stack([c["out"] for c in ff])
    G["edit.latent"] = torch.cat(list(ecalls["generate_image"][0]["out"]), 0).clone()
    G["edit.image"] = dec[0][0].clone()
    G["edit.image_u8"] = torch.from_numpy(np.array(eimg)).permute(2, 0, 1).contiguous()
    meta["edit"] = dict(prompt=EDIT_PROMPT, text_ids=G["edit.text_ids"].tolist())

    # ---- 4. VAE alone ----
    g = torch.Generator().manual_seed(400)
    z = torch.randn(1, 16, 8, 8, generator=g)
    x = torch.rand(1, 3, 64, 64, generator=g) * 2 - 1
    with torch.no_grad():
        G["vae.decode_in"] = z
        G["vae.decode_out"] = vae_model.decode(z)               # decoder(z / 0.3611 + 0.1159)
        G["vae.encode_in"] = x
        G["vae.encode_moments"] = vae_model.encoder(x)          # [1, 32, 8, 8] = mean | logvar
        vae_model.reg.sample = False
        G["vae.encode_mean"] = vae_model.encode(x)              # 0.3611 * (mean - 0.1159)
        vae_model.reg.sample = True

    # ---- checks and stats ----
    for k, v in G.items():
        assert v is not None, k
        if v.is_floating_point():
            assert torch.isfinite(v).all(), k
    d = lambda a, b: (G[a] - G[b]).abs().max().item()
    print(f"  t2iA step0: |gen-cfg_text| {d('t2iA.step.v_gen', 't2iA.step.v_cfg_text'):.4f}  "
          f"|gen-cfg_img| {d('t2iA.step.v_gen', 't2iA.step.v_cfg_img'):.4g}  "
          f"|global-channel| {d('t2iA.step.v_global', 't2iA.step.v_channel'):.4f}  "
          f"|global-text_channel| {d('t2iA.step.v_global', 't2iA.step.v_text_channel'):.4f}")
    for k in ("t2iA.step.v_gen", "t2iA.latent", "t2iA.image", "t2iB.image", "edit.image", "mot.out",
              "edit.vit_tokens", "vae.decode_out"):
        v = G[k]
        print(f"  {k}: mean {v.mean():.4f} std {v.std():.4f} max|.| {v.abs().max():.4f}")

    G = {k: (v if v.dtype in (torch.int64, torch.uint8) else v.to(torch.float32)).detach().contiguous().clone()
         for k, v in G.items()}
    save_file(G, os.path.join(OUT, "goldens.safetensors"))
    with open(os.path.join(OUT, "goldens_meta.json"), "w") as f:
        json.dump({"new_token_ids": new_token_ids, "len_tokenizer": vocab, "runs": meta}, f, indent=1,
                  ensure_ascii=False)
        f.write("\n")

    # ---- versions ----
    import diffusers
    import tokenizers
    import torchvision
    import PIL
    commit = os.environ.get("BAGEL_REF_COMMIT")
    if not commit:
        try:
            import subprocess
            commit = subprocess.check_output(["git", "-C", MIRROR, "rev-parse", "HEAD"], text=True,
                                             stderr=subprocess.DEVNULL).strip()
        except Exception:
            commit = "unknown (set BAGEL_REF_COMMIT)"
    files = ["modeling/bagel/bagel.py", "modeling/bagel/qwen2_navit.py", "modeling/bagel/siglip_navit.py",
             "modeling/bagel/modeling_utils.py", "modeling/autoencoder.py", "modeling/qwen2/modeling_qwen2.py",
             "modeling/qwen2/configuration_qwen2.py", "modeling/siglip/modeling_siglip.py",
             "modeling/siglip/configuration_siglip.py", "inferencer.py", "data/data_utils.py", "data/transforms.py"]
    with open(os.path.join(OUT, "versions.json"), "w") as f:
        json.dump({"reference": "github.com/ByteDance-Seed/Bagel", "reference_commit": commit,
                   "sha256": {fn: _sha(os.path.join(REF, fn)) for fn in files},
                   "torch": torch.__version__, "transformers": transformers.__version__,
                   "tokenizers": tokenizers.__version__, "diffusers": diffusers.__version__,
                   "torchvision": torchvision.__version__, "pillow": PIL.__version__,
                   "numpy": np.__version__}, f, indent=1)
        f.write("\n")
    for fn in os.listdir(OUT):
        os.chmod(os.path.join(OUT, fn), 0o644)
    for k, v in G.items():
        print(f"  G {k}: {tuple(v.shape)} {v.dtype}")
    print(f"wrote {OUT} in {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
