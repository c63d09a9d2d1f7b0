#!/usr/bin/env python3
"""Makes goldens for one HunyuanImage-3.0 MoE layer (HunyuanMoE) with the OFFICIAL modeling code, on CPU.

Run: PY=$(tools/refenv.sh); $PY tools/make_hunyuan_moe_goldens.py [/path/to/HunyuanImage-3.0 work tree]
The reference tree defaults to $HUNYUAN_REF or /tmp/hunyuan_ref (a checkout / `git archive` of
github.com/Tencent-Hunyuan/HunyuanImage-3.0; only hunyuan_image_3/ is needed). The reference code is imported
as is; the only stubs (CPU-only torch) are torch.cuda.set_device and torch.cuda.nvtx.range, see _stub_cuda().

Writes tests/golden/hunyuan_moe_tiny/:
  config.json          the config fields the layer reads, with HunyuanImage-3.0 config.json field names
  model.safetensors    layer weights, real checkpoint names (model.layers.0.mlp.*)
  goldens.safetensors  x, out, ... (see README.md), plus the skew case (*_skew) and moe_drop_tokens=True variants
  versions.json        torch/transformers versions, reference commit and sha256 of hunyuan.py
See tests/golden/hunyuan_moe_tiny/README.md for the semantics.
"""
import hashlib
import json
import os
import subprocess
import sys

import torch
from safetensors.torch import save_file

REF = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("HUNYUAN_REF", "/tmp/hunyuan_ref")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden", "hunyuan_moe_tiny")
PREFIX = "model.layers.0.mlp."
B, S = 2, 24

# Field names as in the released HunyuanImage-3.0 config.json (which spells moe_intermediate_size, moe_topk and
# num_shared_expert as per-layer lists; here one layer, so one-element lists). The remaining fields are the
# reference configuration's defaults that the MoE code reads, written out explicitly.
CONFIG = {
    "hidden_size": 64,
    "hidden_act": "silu",
    "mlp_bias": False,
    "num_hidden_layers": 1,
    "num_experts": 8,
    "moe_topk": [2],
    "moe_intermediate_size": [32],
    "num_shared_expert": [1],
    "use_mixed_mlp_moe": True,
    "moe_layer_num_skipped": 0,
    "norm_topk_prob": True,
    "routed_scaling_factor": 1.0,
    "group_limited_greedy": False,
    "n_group": None,
    "topk_group": None,
    "capacity_factor": 1.0,
    "moe_drop_tokens": False,
    "moe_random_routing_dropped_token": False,
    "moe_impl": "eager",
}


def _stub_cuda():
    # HunyuanMoE.forward calls torch.cuda.set_device(hidden_states.device.index) (index is None on CPU) and
    # wraps the experts in torch.cuda.nvtx.range("MoE"); neither is usable without CUDA. No-op both.
    import contextlib
    torch.cuda.set_device = lambda *a, **k: None
    torch.cuda.nvtx.range = lambda *a, **k: contextlib.nullcontext()


def _ref_commit():
    if os.environ.get("HUNYUAN_REF_COMMIT"):
        return os.environ["HUNYUAN_REF_COMMIT"]
    try:
        return subprocess.check_output(["git", "-C", REF, "rev-parse", "HEAD"], stderr=subprocess.DEVNULL,
                                       text=True).strip()
    except Exception:
        return "unknown (set HUNYUAN_REF_COMMIT)"


def run_layer(moe, x):
    """Runs the reference layer; captures the router logits and the gate's outputs with forward hooks."""
    cap = {}
    h1 = moe.gate.wg.register_forward_hook(lambda m, i, o: cap.__setitem__("logits", o.detach().clone()))
    h2 = moe.gate.register_forward_hook(lambda m, i, o: cap.__setitem__("gate", o))
    h3 = moe.shared_mlp.register_forward_hook(lambda m, i, o: cap.__setitem__("shared", o.detach().clone()))
    with torch.no_grad():
        out = moe(x)
    for h in (h1, h2, h3):
        h.remove()
    _, combine_weights, dispatch_mask, exp_counts = cap["gate"]
    logits = cap["logits"]
    # The reference's own top-k helper (the flashinfer path's router): softmax, top-k, renormalise.
    topk_weight, topk_idx = type(moe.gate).easy_topk(logits, moe.gate.moe_topk)
    dense = combine_weights.sum(-1)  # (tokens, experts): the weight each expert's output gets, 0 if unused/dropped
    return {
        "out": out,
        "shared_out": cap["shared"],
        "router_logits": logits,
        "router_probs": torch.softmax(logits.float(), dim=1),
        "topk_idx": topk_idx.to(torch.int32),
        "topk_weight": topk_weight,
        "combine_weight": dense,
        "tokens_per_expert": exp_counts.to(torch.int32),
        "dispatched": dispatch_mask.any(-1),
    }


def main():
    _stub_cuda()
    sys.path.insert(0, os.path.abspath(REF))
    from hunyuan_image_3.configuration_hunyuan import HunyuanImage3Config
    from hunyuan_image_3.hunyuan import HunyuanMoE

    torch.set_num_threads(1)
    cfg = HunyuanImage3Config(**CONFIG)
    moe = HunyuanMoE(cfg, layer_idx=0).eval().to(torch.float32)
    cfg_drop = HunyuanImage3Config(**dict(CONFIG, moe_drop_tokens=True))
    moe_drop = HunyuanMoE(cfg_drop, layer_idx=0).eval().to(torch.float32)

    # Seeded, non-trivial weights: every parameter N(0, 0.05^2), in state_dict order.
    torch.manual_seed(0)
    sd = moe.state_dict()
    with torch.no_grad():
        for name in sd:
            sd[name].normal_(0.0, 0.05)
    moe_drop.load_state_dict(moe.state_dict())
    weights = {PREFIX + k: v.detach().clone().contiguous() for k, v in moe.state_dict().items()}
    for k, v in weights.items():
        print(f"  {k}: {tuple(v.shape)} {v.dtype}")

    torch.manual_seed(1)
    x = torch.randn(B, S, CONFIG["hidden_size"], dtype=torch.float32)

    # Skew case, same weights: push x along the part of router row 3 orthogonal to the other 7 rows, so only
    # expert 3's logit grows (by alpha * |d|) and every token ranks expert 3 first.
    wg = moe.gate.wg.weight.detach()
    others = torch.cat([wg[:3], wg[4:]]).T  # (hidden, 7)
    q, _ = torch.linalg.qr(others)
    d = wg[3] - q @ (q.T @ wg[3])
    torch.manual_seed(2)
    x_skew = torch.randn(B, S, CONFIG["hidden_size"]) + 20.0 * d / d.norm()

    r = run_layer(moe, x)
    rs = run_layer(moe, x_skew)
    rd = run_layer(moe_drop, x)
    rsd = run_layer(moe_drop, x_skew)

    # Self-checks: the reference's own pieces agree; routing is non-trivial; skew routes everything to expert 3.
    T, E, K = B * S, CONFIG["num_experts"], CONFIG["moe_topk"][0]
    for res in (r, rs):
        assert torch.allclose(res["combine_weight"].gather(1, res["topk_idx"].long()), res["topk_weight"], atol=1e-6)
        assert torch.allclose(res["combine_weight"].sum(1), torch.ones(T), atol=1e-6)  # no drops without drop_tokens
        assert int(res["tokens_per_expert"].sum()) == T * K
    assert r["out"].abs().max() > 1e-3 and (r["out"] - r["shared_out"]).abs().max() > 1e-3
    assert len(set(r["topk_idx"][:, 0].tolist())) >= 4, "top-1 choices should vary across tokens"
    assert (rs["topk_idx"][:, 0] == 3).all(), "skew case must rank expert 3 first for every token"
    assert torch.equal(rd["topk_idx"], r["topk_idx"]) and torch.equal(rsd["topk_idx"], rs["topk_idx"])
    for res in (r, rs):  # logit gaps between ranks 1..K+1: the top-k set and its order must be unambiguous in fp32
        lg = res["router_logits"].sort(dim=1, descending=True).values
        margin = (lg[:, :K] - lg[:, 1:K + 1]).min().item()
        print(f"  min router-logit gap among ranks 1..{K + 1}: {margin:.3e}")
        assert margin > 1e-3
    cap = int(max(K, K * T // E) * CONFIG["capacity_factor"])
    print(f"  drop_tokens capacity per expert: {cap}")
    print(f"  tokens_per_expert: {r['tokens_per_expert'].tolist()}  skew: {rs['tokens_per_expert'].tolist()}")
    print(f"  dispatched slots with drop: {int(rd['dispatched'].sum())}/{T*K}  skew: {int(rsd['dispatched'].sum())}/{T*K}")
    print(f"  |out| max {r['out'].abs().max():.4f}  |out_skew| max {rs['out'].abs().max():.4f}")
    print(f"  drop changes out by {(rd['out']-r['out']).abs().max():.4e}, skew by {(rsd['out']-rs['out']).abs().max():.4e}")

    goldens = {"x": x, "x_skew": x_skew}
    keys = ["out", "shared_out", "router_logits", "router_probs", "topk_idx", "topk_weight", "combine_weight",
            "tokens_per_expert"]
    for k in keys:
        goldens[k] = r[k]
        goldens[k + "_skew"] = rs[k]
    for k in ("out", "combine_weight"):
        goldens[k + "_drop"] = rd[k]
        goldens[k + "_skew_drop"] = rsd[k]
    goldens = {k: v.detach().contiguous() for k, v in goldens.items()}

    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
        f.write("\n")
    save_file(weights, os.path.join(OUT, "model.safetensors"))
    save_file(goldens, os.path.join(OUT, "goldens.safetensors"))
    import transformers
    with open(os.path.join(REF, "hunyuan_image_3", "hunyuan.py"), "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    with open(os.path.join(OUT, "versions.json"), "w") as f:
        json.dump({"torch": torch.__version__, "transformers": transformers.__version__,
                   "reference": "github.com/Tencent-Hunyuan/HunyuanImage-3.0", "reference_commit": _ref_commit(),
                   "hunyuan_py_sha256": sha}, f, indent=1)
    for k, v in goldens.items():
        print(f"  {k}: {tuple(v.shape)} {v.dtype}")
    print("wrote", os.path.normpath(OUT))


if __name__ == "__main__":
    main()
