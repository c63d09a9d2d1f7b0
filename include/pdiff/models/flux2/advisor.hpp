// pdiff/models/flux2/advisor.hpp — the layout advisor: every TP × Ulysses × Ring × CFG × DP layout of
// FLUX.2 on N devices, its predicted time per denoising step and memory per rank, ranked; the layouts
// that cannot run say why (heads not divisible, more CFG groups than guidance branches, does not fit).
//
// The model (per step, one image; B images on DP<d> take ceil(B/d) steps' time):
//   compute = branches per rank · FLOPs / (tp·ulysses·ring) / (peak · efficiency)
//     FLOPs = 2·S·(4D² + 3DM) + 4·S²·D per block (linears; QKᵀ and PV), S = image + text tokens
//   comm    = bytes per rank / link bandwidth + 10 µs per collective, summed (no overlap assumed):
//     TP      2 all-reduces per double block, 1 per single block, of (S/sp)·D: ring all-reduce 2(tp−1)/tp of it
//     Ulysses q, k, v before and the output after attention: 4·(S/sp)·(D/tp)·(u−1)/u per block
//     Ring    K and V of (S/sp)·(D/tp) passed ring−1 times per block
//     CFG     the fp32 prediction (image tokens · out_channels) all-gathered once per step
//   memory  = parameters per rank (flux2_param_plan + mistral_param_plan, TP-sharded, 2 bytes) +
//             activations (flux2_activation_bytes) · images per forward on the group, against 90% of the device.
// An estimate to choose a layout by, not a measurement: it ignores overlap, kernel efficiency per shape
// and the VAE; validated by the rank correlation with measured step times (docs/benchmarks.md).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "pdiff/models/flux2/plan.hpp"

namespace pdiff {

struct DeviceSpec {
  int count = 1;               // devices (ranks)
  double mem_gib = 80;         // memory per device
  double tflops = 989;         // dense bf16 peak per device (H100 SXM: 989)
  double efficiency = 0.5;     // fraction of the peak the GEMMs and attention reach
  double link_gbps = 450;      // per-direction bandwidth between devices, GB/s (NVLink 4: 450; PCIe 5: 50, 4: 25)
};

struct Flux2Workload {
  std::int64_t width = 1024, height = 1024, text_tokens = 512;
  int branches = 1;            // guidance branches per step: dev 1; klein base with true CFG 2
  int images = 1;              // images generated together (DP divides them)
  int bytes_per_element = 2;   // activations and communication: bf16
  int weight_bytes = 2;        // parameters: bf16 (on the CPU too: a bf16 checkpoint stays bf16)
};

struct LayoutPrediction {
  int tp = 1, ulysses = 1, ring = 1, cfg = 1, dp = 1;
  double compute_s = 0, comm_s = 0, step_s = 0;  // per step of one forward
  double batch_step_s = 0;                       // per step of the whole batch: ceil(images / dp) forwards
  double comm_bytes = 0;                         // sent per rank per step of one forward (the formula)
  double mem_gib = 0;                            // per rank
  std::string dropped;                           // why it cannot run; empty when it can
  std::string name() const {
    std::string s;
    auto add = [&](const char* n, int d) {
      if (d > 1) s += (s.empty() ? "" : " x ") + std::string(n) + "<" + std::to_string(d) + ">";
    };
    add("TP", tp), add("Ulysses", ulysses), add("Ring", ring), add("CFG", cfg), add("DP", dp);
    return s.empty() ? "serial" : s;
  }
};

inline LayoutPrediction flux2_predict(const Flux2Config& f, const MistralConfig& enc, const Flux2Workload& w,
                                      const DeviceSpec& d, int tp, int ulysses, int ring, int cfg, int dp) {
  LayoutPrediction p{tp, ulysses, ring, cfg, dp};
  const std::int64_t H = f.num_attention_heads;
  if (H % (tp * ulysses) != 0) {
    p.dropped = std::to_string(H) + " heads are not divisible by tp x ulysses = " + std::to_string(tp * ulysses);
    return p;
  }
  if (cfg > w.branches) {
    p.dropped = "CFG<" + std::to_string(cfg) + "> needs " + std::to_string(cfg) + " guidance branches, this model has " +
                std::to_string(w.branches);
    return p;
  }
  const int sp = ulysses * ring, e = w.bytes_per_element;
  const double D = double(f.inner_dim()), M = double(f.mlp_hidden());
  const double S = double((w.width / 16) * (w.height / 16) + w.text_tokens), s = double(sp_padded_length(std::int64_t(S), sp)) / sp;
  const double Ld = double(f.num_layers), Ls = double(f.num_single_layers), L = Ld + Ls;
  // weights one token passes per block: a double block's text and image streams each see their own
  // tokens (q, k, v, out: 4D², MLP in 2DM, out MD); a single block's [q|k|v|mlp_in] and to_out the same
  const double linear = L * (4 * D * D + 3 * D * M);
  const double flops = 2 * S * linear + 4 * S * S * D * L;
  const int branches_here = (w.branches + cfg - 1) / cfg;
  p.compute_s = branches_here * flops / (tp * sp) / (d.tflops * 1e12 * d.efficiency);
  double bytes = 0, calls = 0;
  if (tp > 1) bytes += (2 * Ld + Ls) * s * D * e * 2.0 * (tp - 1) / tp, calls += 2 * Ld + Ls;
  if (ulysses > 1) bytes += L * 4 * s * (D / tp) * e * double(ulysses - 1) / ulysses, calls += 4 * L;
  if (ring > 1) bytes += L * 2 * s * (D / tp) * e * (ring - 1), calls += 2 * L * (ring - 1);
  bytes *= branches_here;
  calls *= branches_here;
  if (cfg > 1) bytes += double((w.width / 16) * (w.height / 16) * f.out_channels) * 4 * (cfg - 1), calls += 1;
  p.comm_bytes = bytes;
  p.comm_s = bytes / (d.link_gbps * 1e9) + calls * 10e-6;
  p.step_s = p.compute_s + p.comm_s;
  const int per_group = (w.images + dp - 1) / dp;
  p.batch_step_s = p.step_s * per_group;
  const double gib = 1024.0 * 1024.0 * 1024.0;
  const double params =
      double(flux2_param_plan(f, tp).bytes(w.weight_bytes) + mistral_param_plan(enc, tp).bytes(w.weight_bytes));
  const double act = double(flux2_activation_bytes(f, w.width, w.height, w.text_tokens, tp, sp, e)) * per_group;
  p.mem_gib = (params + act) / gib;
  if (p.mem_gib > 0.9 * d.mem_gib) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "needs %.1f GiB per rank, more than 90%% of %.0f GiB", p.mem_gib, d.mem_gib);
    p.dropped = buf;
  }
  return p;
}

// Every layout of d.count ranks (tp in 1, 2, 4, 8; the other degrees any divisors), the runnable ones
// first by predicted batch step time (ties: fewer kinds of parallelism), then the dropped ones.
inline std::vector<LayoutPrediction> flux2_advise(const Flux2Config& f, const MistralConfig& enc, const Flux2Workload& w,
                                                  const DeviceSpec& d) {
  PDIFF_CHECK(d.count >= 1 && d.count <= 4096, "advisor: ", d.count, " devices; give 1 to 4096");
  PDIFF_CHECK(d.mem_gib > 0 && d.tflops > 0 && d.efficiency > 0 && d.efficiency <= 1 && d.link_gbps > 0,
              "advisor: device memory (", d.mem_gib, " GiB), peak (", d.tflops, " TFLOP/s), efficiency (",
              d.efficiency, ") and link bandwidth (", d.link_gbps, " GB/s) must be positive, efficiency at most 1");
  PDIFF_CHECK(w.width >= 16 && w.height >= 16 && w.width % 16 == 0 && w.height % 16 == 0, "advisor: ", w.width, "x",
              w.height, " must be multiples of 16");
  PDIFF_CHECK(w.images >= 1 && w.branches >= 1, "advisor: images (", w.images, ") and branches (", w.branches,
              ") must be >= 1");
  std::vector<LayoutPrediction> out;
  const int n = d.count;
  for (int tp : {1, 2, 4, 8})
    for (int u = 1; u <= n; ++u)
      for (int r = 1; r <= n; ++r)
        for (int c = 1; c <= n; ++c) {
          if (n % (tp * u * r * c) != 0) continue;
          out.push_back(flux2_predict(f, enc, w, d, tp, u, r, c, n / (tp * u * r * c)));
        }
  const auto kinds = [](const LayoutPrediction& p) { return (p.tp > 1) + (p.ulysses > 1) + (p.ring > 1) + (p.cfg > 1) + (p.dp > 1); };
  std::stable_sort(out.begin(), out.end(), [&](const LayoutPrediction& a, const LayoutPrediction& b) {
    if (a.dropped.empty() != b.dropped.empty()) return a.dropped.empty();
    if (a.batch_step_s != b.batch_step_s) return a.batch_step_s < b.batch_step_s;
    return kinds(a) < kinds(b);
  });
  return out;
}

// Spearman's rank correlation of two equally long series (no ties expected; ties get their mean rank).
inline double spearman(std::span<const double> a, std::span<const double> b) {
  PDIFF_CHECK(a.size() == b.size() && a.size() >= 2, "spearman: needs two series of the same length >= 2");
  auto ranks = [](std::span<const double> x) {
    std::vector<double> r(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
      double less = 0, equal = 0;
      for (double y : x) less += y < x[i], equal += y == x[i];
      r[i] = less + (equal + 1) / 2;
    }
    return r;
  };
  const auto ra = ranks(a), rb = ranks(b);
  const double n = double(a.size()), mean = (n + 1) / 2;
  double num = 0, da = 0, db = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    num += (ra[i] - mean) * (rb[i] - mean), da += (ra[i] - mean) * (ra[i] - mean), db += (rb[i] - mean) * (rb[i] - mean);
  return num / std::sqrt(da * db);
}

// Known models by name: the transformer and its text encoder.
struct Flux2ModelSpec {
  Flux2Config transformer;
  MistralConfig encoder;
  int branches = 1;
};
inline Flux2ModelSpec flux2_model_spec(const std::string& name) {
  Flux2ModelSpec m;
  // the pipeline loads the encoder up to the deepest hidden state FLUX.2 reads (dev 30 of 40 layers,
  // klein 27 of 36), so the plan counts those layers
  if (name == "flux2-dev") {
    m.transformer = flux2_dev(), m.encoder = mistral_small_3_1_24b();
    m.encoder.num_hidden_layers = 30;
    return m;
  }
  // klein: Qwen3 encoders (hidden 2560 / 4096, 36 layers, 32 heads / 8 kv of 128, vocab 151936), true CFG
  auto qwen3 = [](std::int64_t hidden, std::int64_t inter) {
    MistralConfig q;
    q.vocab_size = 151936, q.hidden_size = hidden, q.intermediate_size = inter;
    q.num_attention_heads = 32, q.num_key_value_heads = 8, q.head_dim = 128, q.rope_theta = 1e6, q.qk_norm = true;
    q.num_hidden_layers = 27;
    return q;
  };
  m.branches = 2;
  m.transformer = flux2_dev();
  m.transformer.guidance_embeds = false;
  if (name == "flux2-klein-4b") {
    m.transformer.num_layers = 5, m.transformer.num_single_layers = 20, m.transformer.num_attention_heads = 24;
    m.transformer.joint_attention_dim = 7680;
    m.encoder = qwen3(2560, 9728);
    return m;
  }
  if (name == "flux2-klein-9b") {
    m.transformer.num_layers = 8, m.transformer.num_single_layers = 24, m.transformer.num_attention_heads = 32;
    m.transformer.joint_attention_dim = 12288;
    m.encoder = qwen3(4096, 12288);
    return m;
  }
  throw Error(detail::cat("advisor: unknown model '", name, "'; known: flux2-dev, flux2-klein-4b, flux2-klein-9b, or a diffusers "
                  "FLUX.2 folder"));
}

}  // namespace pdiff
