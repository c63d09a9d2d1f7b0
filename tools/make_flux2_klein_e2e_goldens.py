"""A complete tiny FLUX.2-klein (base, not distilled) pipeline folder, saved by diffusers'
Flux2KleinPipeline.save_pretrained, and the goldens of running it from a text prompt with true CFG,
made with diffusers itself.

Run: PY=$(tools/refenv.sh); $PY tools/make_flux2_klein_e2e_goldens.py   (versions pinned in tools/refenv.sh)

Components:
- tokenizer: a real Qwen2-style byte-level BPE trained here with the `tokenizers` library on a small
  corpus (Qwen's pre-tokenizer regex, no BOS; no NFC normalizer, see make_tokenizer), wrapped as transformers' Qwen2TokenizerFast, with
  <|endoftext|> (pad), <|im_start|>, <|im_end|> (eos) special and <think>, </think> added, and a
  Qwen3 chat template (the parts klein uses: system/user/assistant turns, add_generation_prompt,
  enable_thinking=False → an empty think block);
- text encoder: a random Qwen3ForCausalLM, hidden 16 (3·16 = the tiny klein transformer's
  joint_attention_dim 48), 28 layers, 4 heads of 8 (head_dim·heads ≠ hidden), 2 kv heads, tied
  embeddings, every RMSNorm weight (q_norm/k_norm included) randomised so that they matter;
- the tiny klein transformer (tests/golden/flux2_tiny/klein/transformer), the tiny AutoencoderKLFlux2
  and FLUX.2's scheduler config (tests/golden/flux2_tiny/dev/pipeline).
The transformer and VAE weights in the saved folder are replaced by relative symlinks to those
sources (the same tensors; keeps the repository small); the goldens are made by the pipeline
reloaded from the saved folder, so they describe exactly what is committed.
Writes tests/golden/flux2_tiny/klein/e2e/ and its e2e_goldens.safetensors: input_ids/attention_mask
of the prompt and of the negative prompt "", prompt_embeds, negative_prompt_embeds, latents_init,
true-CFG (guidance 3.0) final latents and image in [0, 1], and the one-branch run (guidance 1.0).
"""
import filecmp
import json
import os

import torch
from diffusers import AutoencoderKLFlux2, FlowMatchEulerDiscreteScheduler, Flux2Transformer2DModel
from diffusers.pipelines.flux2.pipeline_flux2_klein import Flux2KleinPipeline
from safetensors.torch import load_file, save_file
from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors, trainers
from tokenizers.models import BPE
from transformers import Qwen2TokenizerFast, Qwen3Config, Qwen3ForCausalLM

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden")
TINY = os.path.join(ROOT, "flux2_tiny")
OUT = os.path.join(TINY, "klein", "e2e")
PROMPT = "A red fox sitting in fresh snow, morning light, 35mm photo. Ünïcödé — «quoted» 123456!"
QWEN_REGEX = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

# Qwen3's chat template, the parts a text-only conversation uses (no tools, no reasoning history).
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message.content is string %}{%- set content = message.content %}{%- else %}{%- set content = '' %}{%- endif %}"
    "{%- if message.role == 'user' or message.role == 'system' %}"
    "{{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>' + '\\n' }}"
    "{%- elif message.role == 'assistant' %}"
    "{{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>' + '\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
    "{%- endif %}")

CORPUS = [
    "A red fox sitting in fresh snow, morning light, 35mm photo.",
    "The quick brown fox jumps over the lazy dog. It's a dog's life; they'll say we're done.",
    "A photograph of an astronaut riding a horse on the moon, highly detailed, 8k, cinematic lighting.",
    "You are an AI that reasons about image descriptions.\nYou give structured responses.\n\n",
    "<think>\n\n</think>\n\n user assistant system",
    "Snowy mountains at sunrise; a lake reflects pink clouds. 1234567890 colours, naïve café, Ünïcödé «quoted» —",
    "    indented code(x) { return x + 1; }\r\n\tTabs and\r\nCRLF lines.",
]


def make_tokenizer(corpus=CORPUS, vocab_size=420):
    tok = Tokenizer(BPE(unk_token=None, continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False,
                        byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=1, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=["<|endoftext|>"])
    tok.train_from_iterator(corpus * 4, trainer)
    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    qwen = Qwen2TokenizerFast(vocab=model["vocab"], merges=merges, unk_token=None, bos_token=None,
                              eos_token="<|im_end|>", pad_token="<|endoftext|>",
                              additional_special_tokens=["<|im_start|>", "<|im_end|>"])
    qwen.add_tokens([AddedToken("<think>", special=False, normalized=False),
                     AddedToken("</think>", special=False, normalized=False)])
    # Qwen2TokenizerFast normalises with NFC, as the real Qwen3 files do (pdiff implements it).
    qwen.chat_template = CHAT_TEMPLATE
    qwen.model_max_length = 131072
    return qwen


def link(path, target):
    """Replaces `path` by a relative symlink to `target` (the same tensors)."""
    assert load_file(path).keys() == load_file(target).keys()
    for k, v in load_file(path).items():
        assert torch.equal(v, load_file(target)[k]), k
    os.remove(path)
    os.symlink(os.path.relpath(target, os.path.dirname(path)), path)


def main():
    torch.manual_seed(0)
    tokenizer = make_tokenizer()
    cfg = Qwen3Config(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=28,
                      num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=1024,
                      rms_norm_eps=1e-6, rope_theta=1_000_000.0, initializer_range=0.2, tie_word_embeddings=True,
                      eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
                      pad_token_id=tokenizer.pad_token_id, bos_token_id=None)
    encoder = Qwen3ForCausalLM(cfg).eval().float()
    with torch.no_grad():
        for name, p in encoder.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.3 * torch.randn_like(p))
    transformer = Flux2Transformer2DModel.from_pretrained(os.path.join(TINY, "klein", "transformer")).eval()
    vae = AutoencoderKLFlux2.from_pretrained(os.path.join(TINY, "dev", "pipeline", "vae")).eval()
    scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(os.path.join(TINY, "dev", "pipeline", "scheduler"))
    pipe = Flux2KleinPipeline(scheduler=scheduler, vae=vae, text_encoder=encoder, tokenizer=tokenizer,
                              transformer=transformer, is_distilled=False)
    pipe.save_pretrained(OUT, safe_serialization=True)
    link(os.path.join(OUT, "transformer", "diffusion_pytorch_model.safetensors"),
         os.path.join(TINY, "klein", "transformer", "diffusion_pytorch_model.safetensors"))
    link(os.path.join(OUT, "vae", "diffusion_pytorch_model.safetensors"),
         os.path.join(TINY, "dev", "pipeline", "vae", "diffusion_pytorch_model.safetensors"))

    pipe = Flux2KleinPipeline.from_pretrained(OUT).to(torch.float32)
    assert not pipe.config.is_distilled
    tok = pipe.tokenizer
    g = torch.Generator().manual_seed(17)
    height, width, steps = 96, 128, 4
    latents = torch.randn(1, 16, height // 16, width // 16, generator=g)
    res = {"latents_init": latents}
    with torch.no_grad():
        for name, text in (("", PROMPT), ("negative_", "")):
            chat = tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                           add_generation_prompt=True, enable_thinking=False)
            inputs = tok(chat, return_tensors="pt", padding="max_length", truncation=True, max_length=512)
            res[name + "input_ids"], res[name + "attention_mask"] = inputs["input_ids"], inputs["attention_mask"]
            res[name + "prompt_embeds"], _ = pipe.encode_prompt(prompt=text, device="cpu", max_sequence_length=512)
            if name == "":
                print("chat text:", repr(chat))
                print("prompt tokens:", int(inputs["attention_mask"].sum()))
    for mode, guidance in (("cfg", 3.0), ("nocfg", 1.0)):
        captured = {}

        def on_step(_pipe, i, t, kw):
            captured["latents"] = kw["latents"].detach().clone()
            return kw

        with torch.no_grad():
            image = pipe(prompt=PROMPT, latents=latents.clone(), height=height, width=width,
                         num_inference_steps=steps, guidance_scale=guidance, output_type="pt",
                         callback_on_step_end=on_step).images
        res[f"{mode}_final_latents"] = captured["latents"]
        res[f"{mode}_image"] = image
    save_file({k: v.contiguous().float() for k, v in res.items()}, os.path.join(OUT, "e2e_goldens.safetensors"))
    print({k: tuple(v.shape) for k, v in res.items()})


if __name__ == "__main__":
    main()
