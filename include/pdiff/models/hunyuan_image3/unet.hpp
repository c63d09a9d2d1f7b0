// pdiff/models/hunyuan_image3/unet.hpp — the small convolutional parts of HunyuanImage-3.0 around its
// transformer, on the host in fp32 (they are a few convolutions per step; the transformer is where the
// time goes): the timestep embedders, UNetDown (`patch_embed`: latents → image tokens) and UNetUp
// (`final_layer`: image tokens → velocity). Official code: hunyuan_image_3/hunyuan.py (SPEC.md §4, §6
// in tests/golden/hunyuan_image3_tiny).
//
// | part              | computation                                                                    |
// |-------------------|--------------------------------------------------------------------------------|
// | TimestepEmbedder  | [cos, sin](t·f), f_k = e^(−ln 10⁴·k/128) (256) → Linear → GELU (erf) → Linear    |
// | ResBlock          | h = conv3(SiLU(GN(x))); scale, shift = Linear(SiLU(emb)); h = GN(h)(1 + scale) + shift; out = skip(x) + conv3(SiLU(h)) |
// | UNetDown          | conv3 C → P, ResBlock(P → H, emb = time_embed(t)), 'b c h w → b (h w) c'         |
// | UNetUp            | 'b (h w) c → b c h w', ResBlock(H → P, emb = time_embed_2(t)), GN, SiLU, conv3 P → C |
// GroupNorm: 32 groups, eps 1e-5; conv3 = 3×3, padding 1; skip = 1×1 conv when the channels change.
#pragma once

#include <cmath>
#include <string>

#include "pdiff/backend/cpu/conv.hpp"
#include "pdiff/backend/ops.hpp"
#include "pdiff/layers/ctx.hpp"
#include "pdiff/layers/linear_core.hpp"
#include "pdiff/layers/timestep.hpp"

namespace pdiff::hunyuan_image3 {

using HostTensor = Tensor<float, OnCpu>;

// y = x·Wᵀ + b on the host.
struct HostLinear {
  detail::LinearCore<HostCtx> core;
  template <class Source>
  static HostLinear load(const Source& ck, const std::string& p) {
    HostLinear l;
    const auto b = ck.read(p + ".bias");
    l.core.set(ck.read(p + ".weight"), &b);
    return l;
  }
  HostTensor operator()(const HostTensor& x) const {
    auto y = core.matmul(x);
    core.add_bias(y);
    return y;
  }
};

struct HostConv {
  HostTensor w, b;
  int pad = 0;
  template <class Source>
  static HostConv load(const Source& ck, const std::string& p) {
    HostConv c{ck.read(p + ".weight"), ck.read(p + ".bias"), 0};
    c.pad = int(c.w.size(2) / 2);
    return c;
  }
  HostTensor operator()(const HostTensor& x) const { return conv2d(x, w, b, Conv2dArgs::same(pad)); }
};

struct HostGroupNorm {
  HostTensor w, b;
  float eps = 1e-5f;
  template <class Source>
  static HostGroupNorm load(const Source& ck, const std::string& p) {
    return {ck.read(p + ".weight"), ck.read(p + ".bias")};
  }
  HostTensor operator()(const HostTensor& x) const { return group_norm(x, 32, w, b, eps); }
};

inline HostTensor gelu_erf(HostTensor x) {
  for (auto& v : x.span()) v = 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752f));
  return x;
}

struct TimestepEmbedder {
  HostLinear fc1, fc2;  // mlp.0, mlp.2
  template <class Source>
  static TimestepEmbedder load(const Source& ck, const std::string& p) {
    return {HostLinear::load(ck, p + ".mlp.0"), HostLinear::load(ck, p + ".mlp.2")};
  }
  // t: one value per batch row (σ·1000) → (B, H)
  HostTensor operator()(std::span<const float> t) const { return fc2(gelu_erf(fc1(timestep_features(t, 256, true)))); }
};

struct ResBlock {
  HostGroupNorm norm_in, norm_out;
  HostConv conv_in, conv_out;
  HostLinear emb;
  HostConv skip;  // empty weight: identity
  template <class Source>
  static ResBlock load(const Source& ck, const std::string& p) {
    ResBlock r{HostGroupNorm::load(ck, p + ".in_layers.0"), HostGroupNorm::load(ck, p + ".out_layers.0"),
               HostConv::load(ck, p + ".in_layers.2"), HostConv::load(ck, p + ".out_layers.3"),
               HostLinear::load(ck, p + ".emb_layers.1"), {}};
    if (ck.contains(p + ".skip_connection.weight")) r.skip = HostConv::load(ck, p + ".skip_connection");
    return r;
  }
  // x (B, Ci, h, w), e (B, E) → (B, Co, h, w)
  HostTensor operator()(const HostTensor& x, const HostTensor& e) const {
    auto h = conv_in(silu(norm_in(x)));
    const auto ss = emb(silu(e));  // (B, 2·Co): [scale | shift]
    h = norm_out(h);
    const std::int64_t B = h.size(0), Co = h.size(1), n = h.size(2) * h.size(3);
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t c = 0; c < Co; ++c) {
        const float scale = ss(b * 2 * Co + c), shift = ss(b * 2 * Co + Co + c);
        float* p = h.data() + (b * Co + c) * n;
        for (std::int64_t i = 0; i < n; ++i) p[i] = p[i] * (1.0f + scale) + shift;
      }
    h = conv_out(silu(h));
    add_(h, skip.w.numel() ? skip(x) : x);
    return h;
  }
};

// (B, C, h, w) ↔ (B, h·w, C)
inline HostTensor to_tokens(const HostTensor& x) {
  const std::int64_t B = x.size(0), C = x.size(1), n = x.size(2) * x.size(3);
  HostTensor t({B, n, C});
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t c = 0; c < C; ++c)
      for (std::int64_t i = 0; i < n; ++i) t((b * n + i) * C + c) = x((b * C + c) * n + i);
  return t;
}
inline HostTensor from_tokens(const HostTensor& t, std::int64_t h, std::int64_t w) {
  const std::int64_t B = t.size(0), n = t.size(1), C = t.size(2);
  PDIFF_CHECK(n == h * w, "HunyuanImage-3.0: ", n, " image tokens for a ", h, "x", w, " grid");
  HostTensor x({B, C, h, w});
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t c = 0; c < C; ++c)
      for (std::int64_t i = 0; i < n; ++i) x((b * C + c) * n + i) = t((b * n + i) * C + c);
  return x;
}

struct UNetDown {
  HostConv conv;
  ResBlock block;
  template <class Source>
  static UNetDown load(const Source& ck, const std::string& p) {
    return {HostConv::load(ck, p + ".model.0"), ResBlock::load(ck, p + ".model.1")};
  }
  // latents (B, C, h, w), emb (B, H) → tokens (B, h·w, H)
  HostTensor operator()(const HostTensor& latents, const HostTensor& emb) const {
    return to_tokens(block(conv(latents), emb));
  }
};

struct UNetUp {
  ResBlock block;
  HostGroupNorm norm;
  HostConv conv;
  template <class Source>
  static UNetUp load(const Source& ck, const std::string& p) {
    return {ResBlock::load(ck, p + ".model.0"), HostGroupNorm::load(ck, p + ".model.1.0"),
            HostConv::load(ck, p + ".model.1.2")};
  }
  // tokens (B, h·w, H), emb (B, H) → velocity (B, C, h, w)
  HostTensor operator()(const HostTensor& tokens, const HostTensor& emb, std::int64_t h, std::int64_t w) const {
    return conv(silu(norm(block(from_tokens(tokens, h, w), emb))));
  }
};

}  // namespace pdiff::hunyuan_image3
