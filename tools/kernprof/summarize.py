#!/usr/bin/env python3
"""Summarize a kernprof trace (tools/kernprof/kernprof.cpp): where a GPU step's time goes.

    tools/kernprof/summarize.py trace.csv [--gap-ms 1] [--min-span-ms 50] [--top 40]

The timeline is cut into segments at device idle gaps longer than --gap-ms (a benchmark synchronises
between steps, so each timed step is one segment); segments shorter than --min-span-ms (loading, warm-up
pieces) are listed only by count. For every step-sized segment: wall span, busy time (union of kernel,
memcpy and memset intervals), idle time, and kernel time by kind (GEMM, attention, copies, the rest). Then, for the fastest segment, time per operation (kernels
grouped by demangled name, memcpy by direction), largest first, with calls and share of the span.
"""
import argparse
import csv
import re
import shutil
import subprocess
import sys
from collections import defaultdict


def demangle(names):
    names = sorted(set(names))
    if not names or not shutil.which("c++filt"):
        return {n: n for n in names}
    out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True).stdout.split("\n")
    return {n: (out[i] if i < len(out) and out[i] else n) for i, n in enumerate(names)}


def short(name, width=110):
    # drop template arguments and parameter lists: "ns::kernel<...>(...)" -> "ns::kernel"
    s = name.replace("(anonymous namespace)", "{anon}")
    for _ in range(8):
        t = re.sub(r"<[^<>]*>", "", s)
        if t == s:
            break
        s = t
    s = re.sub(r"\(.*\)$", "", s)
    return s if len(s) <= width else s[: width - 1] + "…"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("trace")
    ap.add_argument("--gap-ms", type=float, default=1.0)
    ap.add_argument("--min-span-ms", type=float, default=50.0)
    ap.add_argument("--top", type=int, default=40)
    a = ap.parse_args()

    recs = []
    with open(a.trace, newline="") as f:
        for r in csv.DictReader(f):
            s, e = int(r["start_ns"]), int(r["end_ns"])
            if e > s:
                recs.append((s, e, r["kind"], r["name"], int(r["bytes"] or 0)))
    if not recs:
        sys.exit(f"{a.trace}: no records")
    recs.sort()
    names = demangle(n for _, _, k, n, _ in recs if k == "kernel")

    segs, cur, end = [], [], None
    for r in recs:
        if cur and r[0] - end > a.gap_ms * 1e6:
            segs.append(cur)
            cur = []
        cur.append(r)
        end = r[1] if end is None or not cur[:-1] else max(end, r[1])
    segs.append(cur)

    def busy(seg):
        tot, s0, e0 = 0, None, None
        for s, e, *_ in seg:
            if s0 is None or s > e0:
                if s0 is not None:
                    tot += e0 - s0
                s0, e0 = s, e
            else:
                e0 = max(e0, e)
        return tot + (e0 - s0)

    big = [sg for sg in segs if max(r[1] for r in sg) - sg[0][0] >= a.min_span_ms * 1e6]
    print(f"{len(recs)} records, {len(segs)} segments (gap > {a.gap_ms} ms), {len(big)} of them ≥ {a.min_span_ms} ms")
    if not big:
        return
    def kind(r):  # GEMM / attention / copies / the rest, by kernel name
        n = names.get(r[3], r[3]).lower()
        if r[2] != "kernel" or "copy" in n:
            return "copy"
        if any(w in n for w in ("nvjet", "gemm", "xmma", "cutlass", "splitkreduce")):
            return "gemm"
        if any(w in n for w in ("sdpa", "fmha", "flash", "attention")):
            return "attn"
        return "other"

    print(f"{'seg':>4} {'span ms':>9} {'busy ms':>9} {'idle ms':>8} {'gemm':>8} {'attn':>7} {'copy':>7} {'other':>7} "
          f"{'kernels':>8} {'memcpy':>7}")
    spans = []
    for i, sg in enumerate(big):
        span = (max(r[1] for r in sg) - sg[0][0]) / 1e6
        b = busy(sg) / 1e6
        spans.append(span)
        by = defaultdict(float)
        for r in sg:
            by[kind(r)] += (r[1] - r[0]) / 1e6
        print(f"{i:>4} {span:9.2f} {b:9.2f} {span - b:8.2f} {by['gemm']:8.1f} {by['attn']:7.1f} {by['copy']:7.1f} "
              f"{by['other']:7.1f} {sum(r[2] == 'kernel' for r in sg):>8} {sum(r[2] == 'memcpy' for r in sg):>7}")

    best = min(range(len(big)), key=lambda i: spans[i])
    sg = big[best]
    per = defaultdict(lambda: [0, 0, 0])  # ns, calls, bytes
    for s, e, k, n, by in sg:
        key = short(names.get(n, n)) if k == "kernel" else f"[{k} {n}]"
        per[key][0] += e - s
        per[key][1] += 1
        per[key][2] += by
    span = spans[best]
    print(f"\nsegment {best} (fastest, {span:.2f} ms): time per operation")
    print(f"{'ms':>9} {'share':>6} {'calls':>6} {'GB/s':>7}  name")
    for key, (ns, calls, by) in sorted(per.items(), key=lambda kv: -kv[1][0])[: a.top]:
        bw = f"{by / ns:7.0f}" if by else " " * 7
        print(f"{ns / 1e6:9.3f} {100 * ns / 1e6 / span:5.1f}% {calls:>6} {bw}  {key}")


if __name__ == "__main__":
    main()
