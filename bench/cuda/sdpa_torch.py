#!/usr/bin/env python3
"""PyTorch's scaled_dot_product_attention on the shapes of bench_cuda_attention (the peer of pdiff's
flash attention, measured on the same machine in the same gpu-check run).

B=1, H in {24, 48}, D=128, S in {4096, 8192, 16384}, causal and not, bf16, q/k/v [B, H, S, D]
contiguous (SDPA's own layout). FLOPs = 4*B*H*S*S*D, halved for causal. Each case: SDPA's default
choice and, where PyTorch offers them, the flash and cuDNN backends forced. Timed with CUDA events:
3 warm-ups, then the median of 10 runs. Writes Google-Benchmark-like JSON ({"benchmarks": [...]})
so that gpu-check.json merges it like the C++ benchmarks.

    python3 bench/cuda/sdpa_torch.py --out sdpa_torch.json
"""
import argparse
import json
import statistics
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--reps", type=int, default=10)
    a = ap.parse_args()
    try:
        import torch
        import torch.nn.functional as F
    except ImportError as e:
        print(f"sdpa_torch: no PyTorch ({e})", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("sdpa_torch: PyTorch sees no CUDA device", file=sys.stderr)
        return 2
    backends = {"default": None}
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
        backends["flash"] = SDPBackend.FLASH_ATTENTION
        if hasattr(SDPBackend, "CUDNN_ATTENTION"):
            backends["cudnn"] = SDPBackend.CUDNN_ATTENTION
    except ImportError:
        sdpa_kernel = None
    rows = []
    dev = torch.device("cuda")
    for H in (24, 48):
        for S in (4096, 8192, 16384):
            g = torch.Generator(device=dev).manual_seed(0)
            q, k, v = (torch.randn(1, H, S, 128, device=dev, dtype=torch.bfloat16, generator=g) for _ in range(3))
            for causal in (0, 1):
                flops = 4.0 * H * S * S * 128 * (0.5 if causal else 1.0)
                for bname, be in backends.items():
                    def f():
                        return F.scaled_dot_product_attention(q, k, v, is_causal=bool(causal))
                    try:
                        if be is None:
                            run = f
                        else:
                            def run(be=be):
                                with sdpa_kernel([be]):
                                    return f()
                        for _ in range(3):
                            run()
                        torch.cuda.synchronize()
                        times = []
                        for _ in range(a.reps):
                            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                            s.record()
                            run()
                            e.record()
                            e.synchronize()
                            times.append(s.elapsed_time(e) * 1e-3)
                        t = statistics.median(times)
                        rows.append({"name": f"torch_sdpa/{bname}/H:{H}/S:{S}/causal:{causal}", "run_type": "iteration",
                                     "iterations": a.reps, "real_time": t * 1e3, "time_unit": "ms",
                                     "TFLOP/s": flops / t * 1e-12})
                        print(f"sdpa_torch: {bname:8s} H={H} S={S:5d} causal={causal}: {t*1e3:8.3f} ms  {flops/t*1e-12:6.1f} TFLOP/s")
                    except Exception as ex:  # a backend that refuses this shape or this GPU
                        rows.append({"name": f"torch_sdpa/{bname}/H:{H}/S:{S}/causal:{causal}", "error_occurred": True,
                                     "error_message": str(ex)[:300]})
                        print(f"sdpa_torch: {bname} H={H} S={S} causal={causal}: {str(ex)[:200]}")
            del q, k, v
            torch.cuda.empty_cache()
    ctx = {"torch": torch.__version__, "cuda": torch.version.cuda, "device": torch.cuda.get_device_name(0),
           "cudnn": torch.backends.cudnn.version()}
    with open(a.out, "w") as fh:
        json.dump({"context": ctx, "benchmarks": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
