"""Turns one scripts/bench.sh run into one JSON file and PNG plots (matplotlib, pinned in tools/refenv.sh).

  $PY tools/bench_report.py --model flux2 --raw RAW.json [--raw-mpi RAW2.json] --reference REF.txt --gemm-gflops G --out DIR
  $PY tools/bench_report.py --model flux2-batch --raw RAW.json --reference REF.txt --out DIR
RAW.json: Google Benchmark's --benchmark_out of bench_flux2 / bench_flux2_batch; REF.txt: the PyTorch-CPU
reference lines (tools/flux2_bench_reference.py / tools/flux2_batch_bench_reference.py output).
flux2: DIR/flux2.json (per layout: seconds per step, peak MiB per rank, bytes per rank per step measured
and from the advisor's formula, the advisor's predicted step time; PyTorch's step time on 1 and 2 threads;
Spearman's rank correlation of predicted vs measured step times) and DIR/flux2_{time,memory,comm}.png.
flux2-batch: DIR/flux2-batch.json (images/s per layout and batch size, PyTorch's) and DIR/flux2-batch_throughput.png.
"""
import argparse
import datetime
import json
import os
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def layout_name(bench_name):
    m = re.search(r"Layout<(.*)>>", bench_name)
    parts = [p.strip() for p in m.group(1).split(",") if p.strip() != "OnCpu"] if m else []
    return " x ".join(parts) if parts else "serial"


def ranks(values):
    order = sorted(range(len(values)), key=lambda i: values[i])
    r = [0.0] * len(values)
    for pos, i in enumerate(order):
        r[i] = pos + 1.0
    return r


def spearman(a, b):
    if len(a) < 2:
        return None
    ra, rb = ranks(a), ranks(b)
    n = len(a)
    mean = (n + 1) / 2
    num = sum((x - mean) * (y - mean) for x, y in zip(ra, rb))
    den = (sum((x - mean) ** 2 for x in ra) * sum((y - mean) ** 2 for y in rb)) ** 0.5
    return num / den if den else None


def read_reference(path):
    out = []
    for line in open(path):
        kv = dict(re.findall(r"(\w+)=([0-9.]+)", line))
        if kv:
            out.append({k: float(v) for k, v in kv.items()})
    return out


def bars(path, title, ylabel, labels, values, colors):
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(range(len(values)), values, color=colors)
    ax.set_xticks(range(len(values)), labels, rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    for i, v in enumerate(values):
        ax.annotate(f"{v:.3g}", (i, v), ha="center", va="bottom", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def flux2(a, raw, ref):
    rows = []
    runs = [(b, "") for b in raw["benchmarks"]]
    if a.raw_mpi:
        runs += [(b, " (mpirun)") for b in json.load(open(a.raw_mpi))["benchmarks"]]
    for b, how in runs:
        rows.append({"layout": layout_name(b["name"]) + how, "ranks": int(b["ranks"]), "processes": bool(how), "seconds_per_step": b["seconds_per_step"],
                     "peak_mib_per_rank": b["peak_mib_per_rank"], "bytes_per_step": b["bytes_per_step"],
                     "formula_bytes_per_step": b["formula_bytes_per_step"],
                     "predicted_seconds_per_step": b["predicted_seconds_per_step"]})
    torch = {f"pytorch_{int(r['threads'])}_thread_s": r["reference_seconds_per_step"] for r in ref}
    # the advisor models ranks on their own cores: layouts with more ranks than cores are left out
    fair = [r for r in rows if r["ranks"] <= os.cpu_count() and not r["processes"]]
    rho = spearman([r["predicted_seconds_per_step"] for r in fair], [r["seconds_per_step"] for r in fair])
    doc = {"model": "flux2", "config": a.config, "date": datetime.date.today().isoformat(), "cores": os.cpu_count(),
           "gemm_gflops_per_core": a.gemm_gflops, "reference": torch, "layouts": rows,
           "advisor_spearman_over_layouts_with_ranks_le_cores": rho}
    json.dump(doc, open(os.path.join(a.out, "flux2.json"), "w"), indent=2)
    labels = [r["layout"] for r in rows] + [f"PyTorch, {k.split('_')[1]} thread{'s' if k.split('_')[1] != '1' else ''}"
                                            for k in torch]
    colors = ["tab:blue"] * len(rows) + ["tab:orange"] * len(torch)
    bars(os.path.join(a.out, "flux2_time.png"), f"FLUX.2 transformer step ({a.config}), pdiff layouts vs PyTorch-CPU",
         "seconds per step", labels, [r["seconds_per_step"] for r in rows] + list(torch.values()), colors)
    bars(os.path.join(a.out, "flux2_memory.png"), "peak memory per rank (weights + activations)", "MiB",
         [r["layout"] for r in rows], [r["peak_mib_per_rank"] for r in rows], ["tab:green"] * len(rows))
    fig, ax = plt.subplots(figsize=(8, 4))
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], [r["bytes_per_step"] / 1e6 for r in rows], 0.4, label="measured")
    ax.bar([i + 0.2 for i in x], [r["formula_bytes_per_step"] / 1e6 for r in rows], 0.4, label="advisor formula")
    ax.set_xticks(list(x), [r["layout"] for r in rows], rotation=20, ha="right")
    ax.set_ylabel("MB sent per rank per step")
    ax.set_title("communication per step")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(a.out, "flux2_comm.png"), dpi=110)
    plt.close(fig)
    return doc


def flux2_batch(a, raw, ref):
    rows = []
    for b in raw["benchmarks"]:
        batch = int(re.search(r">>/(\d+)", b["name"]).group(1))
        rows.append({"layout": layout_name(b["name"]), "ranks": int(b["ranks"]), "batch": batch,
                     "images_per_second": b["images_per_second"], "seconds_per_batch": b["seconds_per_batch"]})
    torch = [{"threads": int(r["threads"]), "batch": int(r["batch"]), "images_per_second": r["images_per_second"],
              "seconds_per_batch": r["seconds"]} for r in ref]
    doc = {"model": "flux2-batch", "date": datetime.date.today().isoformat(), "cores": os.cpu_count(), "layouts": rows,
           "reference": torch}
    json.dump(doc, open(os.path.join(a.out, "flux2-batch.json"), "w"), indent=2)
    fig, ax = plt.subplots(figsize=(8, 4))
    for name in dict.fromkeys(r["layout"] for r in rows):
        pts = [(r["batch"], r["images_per_second"]) for r in rows if r["layout"] == name]
        ax.plot(*zip(*pts), marker="o", label=f"pdiff {name}")
    for t in sorted({r["threads"] for r in torch}):
        pts = [(r["batch"], r["images_per_second"]) for r in torch if r["threads"] == t]
        ax.plot(*zip(*pts), marker="s", linestyle="--", label=f"diffusers, {t} thread{'s' if t > 1 else ''}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("images per batch")
    ax.set_ylabel("images per second")
    ax.set_title("FLUX.2-klein pipeline throughput on this machine")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(a.out, "flux2-batch_throughput.png"), dpi=110)
    plt.close(fig)
    return doc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, choices=["flux2", "flux2-batch"])
    ap.add_argument("--raw", required=True)
    ap.add_argument("--reference", required=True)
    ap.add_argument("--raw-mpi", default="", help="flux2: the same benchmark under mpirun (rows named '... (mpirun)')")
    ap.add_argument("--gemm-gflops", type=float, default=0)
    ap.add_argument("--config", default="")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    raw, ref = json.load(open(a.raw)), read_reference(a.reference)
    doc = (flux2 if a.model == "flux2" else flux2_batch)(a, raw, ref)
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
