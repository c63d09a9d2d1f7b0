#!/usr/bin/env python3
"""Times HunyuanImage-3.0's own MoE layer (HunyuanMoE, official code, eager) on PyTorch-CPU at bench_moe's
shape — hidden 1024, 16 experts top-4, intermediate 512, one shared expert, 2048 tokens — with 1 and 2
threads, to compare with bench_moe (serial vs 1 thread, TP<2> / EP layouts vs 2 threads).
Run: PY=$(tools/refenv.sh); $PY tools/moe_bench_reference.py /path/to/HunyuanImage-3.0   (default /tmp/hunyuan_ref)"""
import contextlib
import os
import sys
import time

import torch

REF = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("HUNYUAN_REF", "/tmp/hunyuan_ref")
torch.cuda.set_device = lambda *a, **k: None  # the reference's CUDA-only calls, no-ops on CPU
torch.cuda.nvtx.range = lambda *a, **k: contextlib.nullcontext()
sys.path.insert(0, os.path.abspath(REF))
from hunyuan_image_3.configuration_hunyuan import HunyuanImage3Config  # noqa: E402
from hunyuan_image_3.hunyuan import HunyuanMoE  # noqa: E402

cfg = HunyuanImage3Config(hidden_size=1024, hidden_act="silu", mlp_bias=False, num_hidden_layers=1, num_experts=16,
                          moe_topk=[4], moe_intermediate_size=[512], num_shared_expert=[1], use_mixed_mlp_moe=True,
                          moe_layer_num_skipped=0, norm_topk_prob=True, moe_drop_tokens=False, moe_impl="eager")
torch.manual_seed(0)
moe = HunyuanMoE(cfg, layer_idx=0).eval().float()
with torch.no_grad():
    for p in moe.parameters():
        p.normal_(0.0, 0.03)
x = torch.randn(1, 2048, 1024)
for threads in (1, 2):
    torch.set_num_threads(threads)
    with torch.no_grad():
        moe(x)  # warm-up
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            moe(x)
            times.append(time.perf_counter() - t0)
    print(f"HunyuanMoE eager, torch {torch.__version__}, {threads} thread(s): {min(times) * 1e3:.0f} ms (best of 3)")
