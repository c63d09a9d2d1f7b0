#!/usr/bin/env python3
"""Independent re-implementation of SPEC.md in plain torch ops (no reference code imported), checked against the
goldens. It reads only config.json, model.safetensors and goldens.safetensors of this directory.

Run: PY=$(tools/refenv.sh); $PY tests/golden/hunyuan_image3_tiny/check_spec.py
"""
import json
import math
import os

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

D = os.path.dirname(os.path.abspath(__file__))
cfg = json.load(open(os.path.join(D, "config.json")))
W = {k: v.float() for k, v in load_file(os.path.join(D, "model.safetensors")).items()}
G = load_file(os.path.join(D, "goldens.safetensors"))
H, NH, KVH, HD = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["attention_head_dim"]
EPS = cfg["rms_norm_eps"]
GAPS = []


def lin(x, p, bias=True):
    y = x @ W[p + ".weight"].T
    return y + W[p + ".bias"] if bias and (p + ".bias") in W else y


def t_freq(t, dim=256, max_period=10000.0):  # SPEC 4.1
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    a = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(a), torch.sin(a)], -1)


def t_embedder(t, p):  # Linear -> GELU(erf) -> Linear
    return lin(F.gelu(lin(t_freq(t), p + ".mlp.0")), p + ".mlp.2")


def gn(x, p, groups=32, eps=1e-5):
    return F.group_norm(x, groups, W[p + ".weight"], W[p + ".bias"], eps)


def conv2d(x, p, pad=1):
    return F.conv2d(x, W[p + ".weight"], W[p + ".bias"], padding=pad)


def resblock(x, emb, p):  # SPEC 4.2
    h = conv2d(F.silu(gn(x, p + ".in_layers.0")), p + ".in_layers.2")
    e = lin(F.silu(emb), p + ".emb_layers.1")[:, :, None, None]
    scale, shift = e.chunk(2, dim=1)
    h = gn(h, p + ".out_layers.0") * (1 + scale) + shift
    h = conv2d(F.silu(h), p + ".out_layers.3")
    skip = conv2d(x, p + ".skip_connection", pad=0) if (p + ".skip_connection.weight") in W else x
    return skip + h


def rms(x, w):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS))


def rope_table(pos, n):  # SPEC 3: pos (S, 2) = (y, x)
    theta = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, n, 2).float() / n))  # n/2
    yx = torch.where(torch.arange(n // 2) % 2 == 0, pos[:, :1].float(), pos[:, 1:].float())  # even i: y, odd: x
    ang = yx * theta[None]
    ang = torch.cat([ang, ang], -1)
    return torch.cos(ang), torch.sin(ang)


def rot_half(x):
    a, b = x.chunk(2, -1)
    return torch.cat([-b, a], -1)


def attention(x, li, cos, sin, mask, kv_cache=None, cache_pos=None):  # SPEC 5
    p = f"model.layers.{li}.self_attn"
    B, S, _ = x.shape
    grp = NH // KVH
    qkv = lin(x, p + ".qkv_proj", bias=False).reshape(B, S, KVH, grp + 2, HD)
    q = qkv[:, :, :, :grp].reshape(B, S, NH, HD).transpose(1, 2)
    k = qkv[:, :, :, grp].transpose(1, 2)
    v = qkv[:, :, :, grp + 1].transpose(1, 2)
    c, s = cos[:, None], sin[:, None]
    q, k = q * c + rot_half(q) * s, k * c + rot_half(k) * s
    q, k = rms(q, W[p + ".query_layernorm.weight"]), rms(k, W[p + ".key_layernorm.weight"])
    if kv_cache is not None:  # write this step's K/V at their positions, attend over the whole cache
        kc, vc = kv_cache[li]
        for b in range(B):
            kc[b][:, cache_pos[b]] = k[b]
            vc[b][:, cache_pos[b]] = v[b]
        k, v = kc, vc
    k = k.repeat_interleave(grp, dim=1)
    v = v.repeat_interleave(grp, dim=1)
    sc = (q @ k.transpose(-1, -2)) / math.sqrt(HD)
    sc = sc.masked_fill(~mask, float("-inf"))
    o = (sc.softmax(-1) @ v).transpose(1, 2).reshape(B, S, NH * HD)
    return lin(o, p + ".o_proj", bias=False), (k[:, ::grp], v[:, ::grp])


def swiglu(x, p):  # first half = up (linear), second half = gate (silu)
    h = lin(x, p + ".gate_and_up_proj", bias=False)
    x1, x2 = h.chunk(2, -1)
    return lin(x1 * F.silu(x2), p + ".down_proj", bias=False)


def mlp(x, li):  # SPEC 6
    p = f"model.layers.{li}.mlp"
    if li < cfg["moe_layer_num_skipped"]:
        return swiglu(x, p)
    B, S, _ = x.shape
    t = x.reshape(-1, H)
    probs = (t @ W[p + ".gate.wg.weight"].T).softmax(-1)
    k = cfg["moe_topk"][li]
    srt = probs.sort(-1, descending=True).values  # the top-k set and its order must be unambiguous
    GAPS.append((srt[:, :k] - srt[:, 1:k + 1]).min().item())
    w, idx = probs.topk(k, -1)
    w = w / w.sum(-1, keepdim=True)
    out = torch.zeros_like(t)
    for e in range(cfg["num_experts"]):
        sel = (idx == e)
        rows = sel.any(-1)
        if rows.any():
            we = (w * sel).sum(-1)[rows][:, None]
            out[rows] += we * swiglu(t[rows][None], f"{p}.experts.{e}")[0]
    return swiglu(x, p + ".shared_mlp") + out.reshape(B, S, H)


def transformer(x, cos, sin, mask, kv_cache=None, cache_pos=None):
    hs = []
    for li in range(cfg["num_hidden_layers"]):
        a, _ = attention(rms(x, W[f"model.layers.{li}.input_layernorm.weight"]), li, cos, sin, mask, kv_cache,
                         cache_pos)
        x = x + a
        x = x + mlp(rms(x, W[f"model.layers.{li}.post_attention_layernorm.weight"]), li)
        hs.append(x)
    return x, hs  # NOTE: no ln_f in image generation


def patch_embed(lat, t):
    temb = t_embedder(t, "time_embed")
    h = conv2d(lat, "patch_embed.model.0")
    h = resblock(h, temb, "patch_embed.model.1")
    return h.flatten(2).transpose(1, 2), temb  # (B, h*w, H), row-major over (y, x)


def final_layer(xi, t, th, tw):
    temb2 = t_embedder(t, "time_embed_2")
    h = xi.transpose(1, 2).reshape(xi.shape[0], H, th, tw)
    h = resblock(h, temb2, "final_layer.model.0")
    return conv2d(F.silu(gn(h, "final_layer.model.1.0")), "final_layer.model.1.2")


def close(name, a, b, tol=2e-4):
    d = (a - b).abs().max().item()
    print(f"  {name:32s} max|diff| {d:.2e}")
    assert d <= tol, name


def main():
    torch.set_num_threads(1)
    ids, imask = G["input_ids"], G["image_mask"]
    B, S = ids.shape
    th, tw = map(int, (G["final_latents"].shape[2], G["final_latents"].shape[3]))
    ts_idx = G["gen_timestep_scatter_index"][:, 0]
    img0 = int(imask[0].nonzero()[0])
    # positions: text = index; image token (i, j) -> (L + (hw-h)/2 + i, L + (hw-w)/2 + j), truncated to int
    pos = torch.arange(S)[:, None].repeat(1, 2)
    yy = img0 + (th * tw - th) / 2 + torch.arange(th)
    xx = img0 + (th * tw - tw) / 2 + torch.arange(tw)
    pos[img0:img0 + th * tw, 0] = yy[:, None].expand(th, tw).reshape(-1).long()
    pos[img0:img0 + th * tw, 1] = xx[None, :].expand(th, tw).reshape(-1).long()
    assert torch.equal(pos, G["rope_pos"])
    cos, sin = rope_table(pos, HD)
    close("rope cos/sin", torch.cat([cos, sin]), torch.cat([G["rope_cos"], G["rope_sin"]]), 1e-5)
    mask = torch.ones(S, S, dtype=torch.bool).tril()
    mask[img0:img0 + th * tw, img0:img0 + th * tw] = True
    assert torch.equal(mask[None, None].expand(B, 1, S, S), G["step0_attention_mask"])

    kv = [(torch.zeros(B, KVH, S, HD), torch.zeros(B, KVH, S, HD)) for _ in range(cfg["num_hidden_layers"])]
    lat = G["step0_latents_in"]
    sig = G["sigmas"]
    scale = 5.0
    for step in range(len(G["timesteps"])):
        t = G["timesteps"][step].repeat(B)
        close(f"step{step} timestep", t, G[f"step{step}_timestep"], 0)
        tok, temb = patch_embed(torch.cat([lat, lat]), t)
        tsemb = t_embedder(t, "timestep_emb")
        if step == 0:  # full sequence
            x = W["model.wte.weight"][ids]
            x[imask] = tok.reshape(-1, H)
            x[torch.arange(B), ts_idx] = tsemb
            close("step0 inputs_embeds", x, G["step0_inputs_embeds"])
            close("step0 patch_embed", tok, G["step0_patch_embed_out"])
            qpos = torch.arange(S)[None].repeat(B, 1)
            m = mask[None, None].expand(B, 1, S, S)
        else:  # <timestep> + <img> rows only, text K/V from the cache
            x = torch.cat([tsemb[:, None], tok], 1)
            qpos = torch.cat([ts_idx[:, None], torch.arange(S)[imask[0]][None].repeat(B, 1)], 1)
            close("step1 position ids", qpos.float(), G["step1_position_ids"].float(), 0)
            m = mask[qpos[0]][None, None].expand(B, 1, -1, S)
            assert torch.equal(m, G["step1_attention_mask"])
        hid, hs = transformer(x, cos[qpos], sin[qpos], m, kv, qpos)
        if step == 0:
            for li, h in enumerate(hs):
                close(f"step0 layer{li} out", h, G[f"step0_layer{li}_out"])
            xi = hid[imask].reshape(B, th * tw, H)
        else:
            xi = hid[:, 1:]
        v = final_layer(xi, t, th, tw)
        vc, vu = v.chunk(2)
        close(f"step{step} v_cond", vc, G[f"step{step}_v_cond"])
        close(f"step{step} v_uncond", vu, G[f"step{step}_v_uncond"])
        guided = vu + scale * (vc - vu)
        lat = lat + guided * (sig[step + 1] - sig[step])
        close(f"step{step} latents out", lat, G[f"step{step}_latents_out"], 1e-3)
    close("final latents", lat, G["final_latents"], 1e-3)

    # VAE decoder (SPEC 9), from the golden's final latents
    z = (G["final_latents"] / cfg["vae"]["scaling_factor"]).unsqueeze(2)
    img = vae_decode(z)
    close("vae all frames", img, G["vae_decoder_out_all_frames"], 1e-3)
    close("image (last frame)", img[:, :, -1], G["image"], 1e-3)
    print(f"  smallest router-prob gap among ranks 1..k+1 (all MoE calls): {min(GAPS):.2e}")
    print("check_spec: all goldens reproduced")


def conv3d(x, p, pad=1):
    return F.conv3d(x, W[p + ".weight"], W[p + ".bias"], padding=pad)


def vgn(x, p):
    return F.group_norm(x, 32, W[p + ".weight"], W[p + ".bias"], 1e-6)


def vres(x, p):
    h = conv3d(F.silu(vgn(x, p + ".norm1")), p + ".conv1")
    h = conv3d(F.silu(vgn(h, p + ".norm2")), p + ".conv2")
    return (conv3d(x, p + ".nin_shortcut", 0) if (p + ".nin_shortcut.weight") in W else x) + h


def vattn(x, p):
    B, Cc, T, Hh, Ww = x.shape
    h = vgn(x, p + ".norm")
    q, k, v = (conv3d(h, p + "." + n, 0).flatten(2).transpose(1, 2) for n in "qkv")
    a = ((q @ k.transpose(1, 2)) / math.sqrt(Cc)).softmax(-1) @ v
    return x + conv3d(a.transpose(1, 2).reshape(B, Cc, T, Hh, Ww), p + ".proj_out", 0)


def dcae_up(x, p, cout, temporal):
    r1 = 2 if temporal else 1
    f = r1 * 4
    h = conv3d(x, p + ".conv")

    def d2s(y):  # b (r1 r2 r3 c) f h w -> b c (f r1) (h r2) (w r3)
        B, _, T, Hh, Ww = y.shape
        y = y.reshape(B, r1, 2, 2, cout, T, Hh, Ww).permute(0, 4, 5, 1, 6, 2, 7, 3)
        return y.reshape(B, cout, T * r1, Hh * 2, Ww * 2)
    return d2s(h) + d2s(x.repeat_interleave(f * cout // x.shape[1], dim=1))


def vae_decode(z):
    vc = cfg["vae"]
    ch = list(reversed(vc["block_out_channels"]))
    h = conv3d(z, "vae.decoder.conv_in") + z.repeat_interleave(ch[0] // vc["latent_channels"], dim=1)
    h = vres(h, "vae.decoder.mid.block_1")
    h = vattn(h, "vae.decoder.mid.attn_1")
    h = vres(h, "vae.decoder.mid.block_2")
    for i in range(len(ch)):
        for j in range(vc["layers_per_block"] + 1):
            h = vres(h, f"vae.decoder.up.{i}.block.{j}")
        sp = i < math.log2(vc["ffactor_spatial"])
        tp = i < math.log2(vc["ffactor_temporal"])
        if sp or tp:
            h = dcae_up(h, f"vae.decoder.up.{i}.upsample", ch[i + 1], tp)
    return conv3d(F.silu(vgn(h, "vae.decoder.norm_out")), "vae.decoder.conv_out")


if __name__ == "__main__":
    with torch.no_grad():
        main()
