"""Trains pdiff's demo model: a tiny FLUX.2-klein that draws the shape a prompt asks for.

Run: PY=$(tools/refenv.sh); $PY tools/train_demo_model.py      (versions pinned in tools/refenv.sh; seeded;
     about 35 minutes on 2 CPU cores; --quick: a 3-minute smoke run into /tmp, not a usable model)

Everything is the real FLUX.2-klein architecture, made and saved by diffusers/transformers, so pdiff loads it
through its normal path (`--model demo/flux2-klein-shapes`):
- data: procedurally drawn 64x64 scenes, one shape (circle, square, triangle, star, ring) of one colour and size
  at one of nine places on a plain background, captioned "a small red circle at the top left on a blue
  background". HELD_OUT (colour, shape, place) triples never occur in training; the quality check renders them.
- tokenizer: a Qwen2-style byte-level BPE trained on the captions (tools/make_flux2_klein_e2e_goldens.py);
- text encoder: a random, frozen Qwen3 (28 layers of 32: klein reads hidden states 9, 18, 27 -> 96 channels);
  embeddings of unit scale and small layer weights, so each token's hidden state keeps its identity;
- VAE: a tiny AutoencoderKLFlux2 (8x down, 8 latent channels, FLUX.2's 2x2 patchify -> 32 channels per token),
  trained as an autoencoder (L1 + MSE, small KL); its batch-norm statistics set to the latents' (the pipeline
  normalises latents with them);
- transformer: a tiny Flux2Transformer2DModel (2 double + 2 single blocks, 4 heads of 32) trained by flow matching
  (x_t = (1 - s) x0 + s n, target n - x0, as FlowMatchEulerDiscreteScheduler integrates) on the normalised latents,
  conditioned on the encoder's hidden states, with 10% of captions dropped to "" so klein's true CFG works;
  prompts padded to MAX_SEQ tokens as the pipeline pads them; an exponential moving average of the weights is saved.
Writes the folder (Flux2KleinPipeline.save_pretrained, transformer and VAE in bf16), `demo.json` (palette, places,
held-out captions, how to run), the quality check (held-out captions rendered by diffusers' pipeline, classified
from pixels) with its contact sheet in docs/demo/, and `demo_goldens.safetensors` for tests/models/flux2_demo_test.cpp.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_flux2_klein_e2e_goldens import make_tokenizer  # noqa: E402

from diffusers import AutoencoderKLFlux2, FlowMatchEulerDiscreteScheduler, Flux2Transformer2DModel  # noqa: E402
from diffusers.pipelines.flux2.pipeline_flux2_klein import Flux2KleinPipeline  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import Qwen3Config, Qwen3ForCausalLM  # noqa: E402

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SIZE = 64
VAE_LR = 2e-3
MAX_SEQ = 32
PALETTE = {  # name -> RGB; foreground colours first
    "red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (240, 210, 40),
    "purple": (140, 60, 180), "orange": (245, 140, 30), "white": (245, 245, 245), "black": (20, 20, 20),
    "gray": (128, 128, 128)}
COLOURS = ["red", "green", "blue", "yellow", "purple", "orange"]
BACKGROUNDS = ["white", "black", "gray", "blue", "green", "yellow"]
SHAPES = ["circle", "square", "triangle", "star", "ring"]
# phrase -> (column, row) on a 3x3 grid of the image
PLACES = {"at the top left": (0, 0), "at the top": (1, 0), "at the top right": (2, 0), "on the left": (0, 1),
          "in the centre": (1, 1), "on the right": (2, 1), "at the bottom left": (0, 2), "at the bottom": (1, 2),
          "at the bottom right": (2, 2)}
SIZES = {"small": 8.0, "large": 13.0}  # radius in pixels of 64
HELD_OUT = [  # (colour, shape, place): never drawn together in training
    ("red", "star", "at the bottom right"), ("green", "circle", "at the top left"), ("blue", "triangle", "in the centre"),
    ("yellow", "ring", "on the left"), ("purple", "square", "at the top"), ("orange", "circle", "at the bottom"),
    ("red", "ring", "on the right"), ("green", "star", "at the top right"), ("blue", "square", "at the bottom left"),
    ("yellow", "triangle", "at the top left"), ("purple", "circle", "on the right"), ("orange", "star", "on the left"),
    ("red", "triangle", "at the bottom"), ("green", "square", "in the centre"), ("blue", "ring", "at the top"),
    ("yellow", "star", "at the bottom left"), ("purple", "ring", "at the bottom right"),
    ("orange", "square", "at the top right"), ("red", "circle", "at the top left"), ("green", "triangle", "on the right")]


GOLDEN_PROMPTS = ["a large red circle at the top left on a blue background",
                  "a large yellow star at the bottom right on a black background",
                  "a small green square in the centre on a white background"]


def caption(size, colour, shape, place, bg):
    return f"a {size} {colour} {shape} {place} on a {bg} background"


def draw(size, colour, shape, place, bg, rng):
    """One 64x64 RGB scene (drawn at 4x and box-filtered: smooth edges), uint8."""
    s = 4
    img = Image.new("RGB", (SIZE * s, SIZE * s), PALETTE[bg])
    d = ImageDraw.Draw(img)
    col, row = PLACES[place]
    r = SIZES[size] * (1.0 + rng.uniform(-0.1, 0.1))
    cx = (col * 2 + 1) * SIZE / 6 + rng.uniform(-3, 3)
    cy = (row * 2 + 1) * SIZE / 6 + rng.uniform(-3, 3)
    cx, cy, r = cx * s, cy * s, r * s
    fill = PALETTE[colour]
    if shape == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "ring":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
        ri = 0.55 * r
        d.ellipse([cx - ri, cy - ri, cx + ri, cy + ri], fill=PALETTE[bg])
    elif shape == "square":
        h = 0.85 * r
        d.rectangle([cx - h, cy - h, cx + h, cy + h], fill=fill)
    elif shape == "triangle":
        d.polygon([(cx + r * math.cos(a), cy + r * math.sin(a)) for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)],
                  fill=fill)
    else:  # star
        pts = []
        for k in range(10):
            a = -math.pi / 2 + k * math.pi / 5
            rr = r if k % 2 == 0 else 0.45 * r
            pts.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
        d.polygon(pts, fill=fill)
    return np.asarray(img.resize((SIZE, SIZE), Image.BOX))


def training_scenes(n, rng):
    held = set(HELD_OUT)
    out = []
    while len(out) < n:
        colour, shape, place = rng.choice(COLOURS), rng.choice(SHAPES), rng.choice(list(PLACES))
        if (colour, shape, place) in held:
            continue
        bg = rng.choice([b for b in BACKGROUNDS if b != colour])
        out.append((rng.choice(list(SIZES)), colour, shape, place, bg))
    return out


def held_out_scenes(rng):
    return [(rng.choice(list(SIZES)), c, s, p, rng.choice([b for b in BACKGROUNDS if b != c])) for c, s, p in HELD_OUT]


def classify(image, bg):
    """From the pixels of an HxWx3 uint8 image: the dominant non-background palette colour and the 3x3 grid cell of
    its centre of mass (None when nothing is drawn). The same rule as tests/models/flux2_demo_test.cpp."""
    names = list(PALETTE)
    pal = np.array([PALETTE[k] for k in names], dtype=np.float32)
    px = image.reshape(-1, 3).astype(np.float32)
    nearest = np.argmin(((px[:, None, :] - pal[None]) ** 2).sum(-1), axis=1)
    counts = np.bincount(nearest, minlength=len(names))
    counts[names.index(bg)] = 0
    if counts.max() < 8:
        return None, None
    k = int(np.argmax(counts))
    ys, xs = np.divmod(np.nonzero(nearest == k)[0], image.shape[1])
    cell = (min(int(3 * (xs.mean() + 0.5) / image.shape[1]), 2), min(int(3 * (ys.mean() + 0.5) / image.shape[0]), 2))
    return names[k], cell


def make_encoder(tokenizer):
    cfg = Qwen3Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=28,
                      num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=1024,
                      rms_norm_eps=1e-6, rope_theta=1_000_000.0, initializer_range=0.05, tie_word_embeddings=True,
                      eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
                      pad_token_id=tokenizer.pad_token_id, bos_token_id=None)
    enc = Qwen3ForCausalLM(cfg).eval().float()
    with torch.no_grad():
        enc.model.embed_tokens.weight.normal_(0.0, 1.0)
    return enc.requires_grad_(False)


def make_vae():
    return AutoencoderKLFlux2(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 4,
                              up_block_types=["UpDecoderBlock2D"] * 4, block_out_channels=[16, 32, 32, 64],
                              layers_per_block=1, latent_channels=8, norm_num_groups=8, sample_size=SIZE,
                              patch_size=(2, 2), mid_block_add_attention=True)


def make_transformer():
    return Flux2Transformer2DModel(patch_size=1, in_channels=32, num_layers=2, num_single_layers=2,
                                   attention_head_dim=32, num_attention_heads=4, joint_attention_dim=96,
                                   timestep_guidance_channels=64, mlp_ratio=3.0, axes_dims_rope=(8, 8, 8, 8),
                                   rope_theta=2000, eps=1e-6, guidance_embeds=False)


def to_unit(images):  # uint8 NHWC -> float NCHW in [-1, 1]
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def foreground(images, scenes):
    """(N, 64, 64) float: 1 where a pixel is not the scene's background colour (the shape and its edge)."""
    bg = np.array([PALETTE[sc[4]] for sc in scenes], dtype=np.int16)[:, None, None, :]
    return (np.abs(images.astype(np.int16) - bg).sum(-1) > 45).astype(np.float32)


def train_vae(vae, images, masks, steps, batch, log):
    """A deterministic autoencoder on the posterior mean: L1 + MSE, pixels of the shape weighted 10x (the
    background fills most of a picture: unweighted, the shape's colour is learned last), a small KL term."""
    opt = torch.optim.AdamW(vae.parameters(), lr=VAE_LR, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=VAE_LR, total_steps=steps, pct_start=0.05)
    g = torch.Generator().manual_seed(1)
    vae.train()
    t0 = time.time()
    for step in range(steps):
        idx = torch.randint(0, len(images), (batch,), generator=g)
        x = to_unit(images[idx.numpy()])
        w = 1.0 + 10.0 * torch.from_numpy(masks[idx.numpy()])[:, None]
        post = vae.encode(x).latent_dist
        z = post.mean  # the pipeline encodes with the mode (argmax); sampling at the initial std 1 drowns the colours
        rec = vae.decode(z).sample
        kl = 0.5 * (post.mean ** 2 + post.var - 1.0 - post.logvar).mean()
        loss = ((rec - x).abs() * w).mean() / w.mean() + ((rec - x) ** 2 * w).mean() / w.mean() + 1e-4 * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0 or step == steps - 1:
            log(f"vae step {step}/{steps} loss {loss.item():.4f} kl {kl.item():.3f} ({time.time() - t0:.0f} s)")
    vae.eval()


@torch.no_grad()
def encode_latents(vae, images, batch=256):
    """Patchified latent means (N, 32, 4, 4), as Flux2KleinPipeline._encode_vae_image takes them (argmax)."""
    out = []
    for i in range(0, len(images), batch):
        z = vae.encode(to_unit(images[i:i + batch])).latent_dist.mode()
        out.append(Flux2KleinPipeline._patchify_latents(z))
    return torch.cat(out)


def train_transformer(tr, latents, weights, embeds, cap_index, empty, steps, batch, log):
    """Flow matching on packed tokens; `embeds[cap_index[i]]` conditions latent i (10% dropped to `empty`);
    `weights` (N, tokens): the tokens under the shape count more (1 + 8 x their shape fraction)."""
    opt = torch.optim.AdamW(tr.parameters(), lr=6e-4, weight_decay=0.01, betas=(0.9, 0.99))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=6e-4, total_steps=steps, pct_start=0.03)
    ema = {k: v.detach().clone() for k, v in tr.state_dict().items()}
    g = torch.Generator().manual_seed(2)
    ids = Flux2KleinPipeline._prepare_latent_ids(latents[:1])
    txt_ids = Flux2KleinPipeline._prepare_text_ids(embeds[:1])
    tr.train()
    t0 = time.time()
    avg = None
    for step in range(steps):
        idx = torch.randint(0, len(latents), (batch,), generator=g)
        x0 = Flux2KleinPipeline._pack_latents(latents[idx])
        cond = embeds[cap_index[idx]]
        drop = torch.rand(batch, generator=g) < 0.1
        cond = torch.where(drop[:, None, None], empty.expand_as(cond), cond)
        # sigmas: logit-normal around the middle, plus the high-noise end the shifted schedule spends steps on
        s = torch.sigmoid(torch.randn(batch, generator=g) * 1.2 + 0.5)
        noise = torch.randn(x0.shape, generator=g)
        xt = (1 - s[:, None, None]) * x0 + s[:, None, None] * noise
        pred = tr(hidden_states=xt, timestep=s, guidance=None, encoder_hidden_states=cond,
                  txt_ids=txt_ids.expand(batch, -1, -1), img_ids=ids.expand(batch, -1, -1), return_dict=False)[0]
        w = weights[idx][:, :, None]
        loss = (w * (pred - (noise - x0)) ** 2).mean() / w.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(tr.parameters(), 1.0)
        opt.step()
        sched.step()
        decay = min(0.999, (1 + step) / (10 + step))
        with torch.no_grad():
            for k, v in tr.state_dict().items():
                ema[k].mul_(decay).add_(v.detach(), alpha=1 - decay)
        avg = loss.item() if avg is None else 0.98 * avg + 0.02 * loss.item()
        if step % 200 == 0 or step == steps - 1:
            log(f"transformer step {step}/{steps} loss {avg:.4f} ({time.time() - t0:.0f} s)")
    tr.load_state_dict(ema)
    tr.eval()


def render(pipe, prompts, seed, steps=20, guidance=4.0):
    g = torch.Generator().manual_seed(seed)
    latents = torch.randn(len(prompts), 32, SIZE // 16, SIZE // 16, generator=g)
    with torch.no_grad():
        img = pipe(prompt=prompts, latents=latents, height=SIZE, width=SIZE, num_inference_steps=steps,
                   guidance_scale=guidance, max_sequence_length=MAX_SEQ, output_type="np").images
    return latents, img  # (B, H, W, 3) in [0, 1]


def to_uint8(img):
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def contact_sheet(images, scenes, oks, path):
    cols, cell = 5, 2 * SIZE
    rows = (len(images) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * (cell + 8), rows * (cell + 30)), (255, 255, 255))
    d = ImageDraw.Draw(sheet)
    for i, (im, (size, colour, shape, place, bg), ok) in enumerate(zip(images, scenes, oks)):
        x, y = (i % cols) * (cell + 8) + 4, (i // cols) * (cell + 30) + 4
        sheet.paste(Image.fromarray(im).resize((cell, cell), Image.NEAREST), (x, y))
        where = place.split(" the ")[-1]
        d.text((x, y + cell + 1), f"{size} {colour} {shape}", fill=(0, 0, 0))
        d.text((x, y + cell + 13), f"{'ok' if ok else 'WRONG'}: {where} / {bg}", fill=(0, 120, 0) if ok else (200, 0, 0))
    sheet.save(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(REPO, "demo", "flux2-klein-shapes"))
    ap.add_argument("--quick", action="store_true", help="a few minutes, into /tmp (checks the script, not the model)")
    ap.add_argument("--eval-only", action="store_true", help="only the quality check and goldens of the saved --out")
    args = ap.parse_args()
    if args.eval_only:
        with open(os.path.join(args.out, "demo.json")) as f:
            trained = json.load(f)["trained"]
        t0 = time.time()
        evaluate(args.out, os.path.join(REPO, "docs", "demo"), trained,
                 lambda m: print(f"[{time.time() - t0:6.0f} s] {m}", flush=True))
        return
    out = "/tmp/pdiff-demo-quick" if args.quick else args.out
    n_train, vae_steps, tr_steps = (3000, 60, 100) if args.quick else (30000, 2000, 5000)
    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 2)
    rng = np.random.default_rng(0)
    t_start = time.time()

    def log(msg):
        print(f"[{time.time() - t_start:6.0f} s] {msg}", flush=True)

    scenes = training_scenes(n_train, rng)
    images = np.stack([draw(*sc, rng) for sc in scenes])
    captions = sorted({caption(*sc) for sc in scenes})
    cap_pos = {c: i for i, c in enumerate(captions)}
    cap_index = torch.tensor([cap_pos[caption(*sc)] for sc in scenes])
    log(f"{len(scenes)} scenes, {len(captions)} captions")

    words = sorted({w for c in [caption(sz, c, s, p, b) for sz in SIZES for c in COLOURS for s in SHAPES
                                for p in PLACES for b in BACKGROUNDS] for w in c.split()})
    tokenizer = make_tokenizer(corpus=["user\nassistant\n\n\n", " ".join(words), "a " + " a ".join(words)] + captions[:200], vocab_size=600)
    encoder = make_encoder(tokenizer)
    vae = make_vae()
    transformer = make_transformer()
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=True,
                                                base_shift=0.5, max_shift=1.15, base_image_seq_len=256,
                                                max_image_seq_len=4096, time_shift_type="exponential")
    pipe = Flux2KleinPipeline(scheduler=scheduler, vae=vae, text_encoder=encoder, tokenizer=tokenizer,
                              transformer=transformer, is_distilled=False)
    longest = max(captions, key=len)
    chat = tokenizer.apply_chat_template([{"role": "user", "content": longest}], tokenize=False,
                                         add_generation_prompt=True, enable_thinking=False)
    n_tok = len(tokenizer(chat)["input_ids"])
    assert n_tok <= MAX_SEQ, (n_tok, longest)
    log(f"longest prompt {n_tok} tokens of {MAX_SEQ}; vocab {len(tokenizer)}; parameters: "
        f"vae {sum(p.numel() for p in vae.parameters())}, transformer {sum(p.numel() for p in transformer.parameters())}")

    masks = foreground(images, scenes)
    train_vae(vae, images, masks, vae_steps, 16, log)
    check = training_scenes(200, np.random.default_rng(5))
    check_images = np.stack([draw(*sc, np.random.default_rng(6)) for sc in check])
    with torch.no_grad():
        rec = vae.decode(vae.encode(to_unit(check_images)).latent_dist.mode()).sample
    rec = to_uint8((rec.permute(0, 2, 3, 1).numpy() + 1) / 2)
    right = sum(classify(r, sc[4]) == (sc[1], PLACES[sc[3]]) for r, sc in zip(rec, check))
    log(f"VAE reconstructions with the right colour and place: {right}/{len(check)}")
    # token weights: the shape's fraction of each 16x16 pixel cell (one latent token)
    cells = torch.from_numpy(masks).view(len(masks), SIZE // 16, 16, SIZE // 16, 16).mean(dim=(2, 4))
    weights = 1.0 + 8.0 * cells.reshape(len(masks), -1)
    latents = encode_latents(vae, images)
    with torch.no_grad():
        vae.bn.running_mean.copy_(latents.mean(dim=(0, 2, 3)))
        vae.bn.running_var.copy_(latents.var(dim=(0, 2, 3)))
    std = torch.sqrt(vae.bn.running_var + vae.config.batch_norm_eps)
    latents = (latents - vae.bn.running_mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
    with torch.no_grad():
        rec = vae.decode(Flux2KleinPipeline._unpatchify_latents(encode_latents(vae, images[:256]))).sample
    log(f"VAE reconstruction mean |error| {(rec - to_unit(images[:256])).abs().mean().item():.4f} (of 2)")

    with torch.no_grad():
        embeds = torch.cat([pipe.encode_prompt(captions[i:i + 512], device="cpu", max_sequence_length=MAX_SEQ)[0]
                            for i in range(0, len(captions), 512)])
        empty = pipe.encode_prompt("", device="cpu", max_sequence_length=MAX_SEQ)[0]
    log(f"text embeddings {tuple(embeds.shape)}, std {embeds.std().item():.3f}")
    train_transformer(transformer, latents, weights, embeds, cap_index, empty, tr_steps, 64, log)

    # The committed folder: transformer and VAE in bf16 (half the bytes; pdiff keeps bf16 weights on the CPU).
    pipe.transformer.to(torch.bfloat16)
    pipe.vae.to(torch.bfloat16)
    pipe.save_pretrained(out, safe_serialization=True)
    trained = {"scenes": n_train, "vae_steps": vae_steps, "transformer_steps": tr_steps,
               "seconds": round(time.time() - t_start)}
    evaluate(out, os.path.join(REPO, "docs", "demo") if not args.quick else out, trained, log)


def evaluate(out, docs, trained, log):
    """The quality check on the held-out captions (diffusers' pipeline on the saved folder, 20 steps, CFG 4,
    classified from the pixels), its contact sheet, the C++ test's goldens and demo.json."""
    pipe = Flux2KleinPipeline.from_pretrained(out).to(torch.float32)
    pipe.set_progress_bar_config(disable=True)
    held = held_out_scenes(np.random.default_rng(7))
    prompts = [caption(*sc) for sc in held]
    imgs = to_uint8(render(pipe, prompts, seed=11)[1])
    oks, report = [], []
    for sc, p, im in zip(held, prompts, imgs):
        colour, cell = classify(im, sc[4])
        ok = colour == sc[1] and cell == PLACES[sc[3]]
        oks.append(ok)
        report.append({"prompt": p, "colour": colour, "cell": cell, "ok": ok})
    score = sum(oks)
    log(f"held-out captions right (colour and place): {score}/{len(oks)}")
    os.makedirs(docs, exist_ok=True)
    contact_sheet(imgs, held, oks, os.path.join(docs, "held_out_contact_sheet.png"))

    # Goldens for the C++ test: diffusers' pipeline on this folder from given initial latents, one image at a time.
    gold = {}
    for i, p in enumerate(GOLDEN_PROMPTS):
        init, img = render(pipe, [p], seed=5 + i, steps=8, guidance=4.0)
        gold[f"latents_init_{i}"] = init.contiguous()
        gold[f"image_{i}"] = torch.from_numpy(img).permute(0, 3, 1, 2).float().contiguous()  # (1, 3, H, W)
    save_file(gold, os.path.join(out, "demo_goldens.safetensors"))
    with open(os.path.join(out, "demo.json"), "w") as f:
        json.dump({"size": SIZE, "max_sequence_length": MAX_SEQ, "steps": 20, "guidance": 4.0, "palette": PALETTE,
                   "colours": COLOURS, "backgrounds": BACKGROUNDS, "shapes": SHAPES, "sizes": list(SIZES),
                   "places": {k: list(v) for k, v in PLACES.items()}, "held_out": [list(h) for h in HELD_OUT],
                   "held_out_check": report, "held_out_score": score, "golden_prompts": GOLDEN_PROMPTS,
                   "golden_steps": 8, "golden_guidance": 4.0, "trained": trained}, f, indent=1)
    with open(os.path.join(out, "pdiff.json"), "w") as f:  # the CLI's defaults for this folder (examples/flux2.cpp)
        json.dump({"defaults": {"width": SIZE, "height": SIZE, "steps": 20, "guidance": 4.0,
                                "max_sequence_length": MAX_SEQ}}, f, indent=1)
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
