// pdiff/models/hunyuan_image3/unet.hpp — the convolutional parts of HunyuanImage-3.0 around its
// transformer: the timestep embedders (host fp32: a (B, 256) → (B, H) MLP), UNetDown (`patch_embed`:
// latents → image tokens) and UNetUp (`final_layer`: image tokens → velocity), which run in the model's
// Ctx C like the transformer (their 3×3 convolutions over H = 4096 channels are TFLOPs per step at
// 1024²: on the GPU with it); the ResBlocks' scale/shift MLP on the host (fp32, one row per image). Official code: hunyuan_image_3/hunyuan.py (SPEC.md §4, §6
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
#include "pdiff/layers/norm.hpp"
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

// A k×k convolution with padding k/2 in C's backend and type; empty() when the checkpoint has none.
template <class C>
struct Conv {
  typename C::tensor w, b;
  int pad = 0;
  template <class Source>
  static Conv load(const Source& ck, const std::string& p) {
    const auto w = ck.read(p + ".weight");
    return {to_ctx<C>(w), to_ctx<C>(ck.read(p + ".bias")), int(w.size(2) / 2)};
  }
  bool empty() const { return w.empty(); }
  typename C::tensor operator()(const typename C::tensor& x) const { return conv2d(x, w, b, Conv2dArgs::same(pad)); }
};

// GroupNorm(32, eps 1e-5) in C.
template <class C, class Source>
GroupNorm<C> load_group_norm(const Source& ck, const std::string& p) {
  const auto w = ck.read(p + ".weight");
  GroupNorm<C> n(32, w.numel(), 1e-5f);
  n.load(w, ck.read(p + ".bias"));
  return n;
}

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

template <class C>
struct ResBlock {
  using tensor = typename C::tensor;
  GroupNorm<C> norm_in, norm_out;
  Conv<C> conv_in, conv_out;
  HostLinear emb;
  Conv<C> skip;  // empty: identity
  template <class Source>
  static ResBlock load(const Source& ck, const std::string& p) {
    ResBlock r{load_group_norm<C>(ck, p + ".in_layers.0"), load_group_norm<C>(ck, p + ".out_layers.0"),
               Conv<C>::load(ck, p + ".in_layers.2"), Conv<C>::load(ck, p + ".out_layers.3"),
               HostLinear::load(ck, p + ".emb_layers.1"), {}};
    if (ck.contains(p + ".skip_connection.weight")) r.skip = Conv<C>::load(ck, p + ".skip_connection");
    return r;
  }
  // x (B, Ci, h, w), e (B, E) on the host → (B, Co, h, w)
  tensor operator()(const tensor& x, const HostTensor& e) const {
    auto h = conv_in(silu(norm_in(x)));
    const auto ss = emb(silu(e));  // (B, 2·Co): [scale | shift], fp32
    h = norm_out(h);
    modulate_channels_(h, to<typename C::backend>(ss));
    h = conv_out(silu(h));
    add_(h, skip.empty() ? x : skip(x));
    return h;
  }
};

// (B, C, h, w) ↔ (B, h·w, C)
template <class T, class B>
Tensor<T, B> to_tokens(const Tensor<T, B>& x) {
  return transpose_last2(x.view({x.size(0), x.size(1), x.size(2) * x.size(3)}));
}
template <class T, class B>
Tensor<T, B> from_tokens(const Tensor<T, B>& t, std::int64_t h, std::int64_t w) {
  PDIFF_CHECK(t.rank() == 3 && t.size(1) == h * w, "HunyuanImage-3.0: tokens", t.shape(), " for a ", h, "x", w, " grid");
  return transpose_last2(t).view({t.size(0), t.size(2), h, w});
}

template <class C>
struct UNetDown {
  Conv<C> conv;
  ResBlock<C> block;
  template <class Source>
  static UNetDown load(const Source& ck, const std::string& p) {
    return {Conv<C>::load(ck, p + ".model.0"), ResBlock<C>::load(ck, p + ".model.1")};
  }
  // latents (B, C, h, w), emb (B, H) on the host → tokens (B, h·w, H)
  typename C::tensor operator()(const typename C::tensor& latents, const HostTensor& emb) const {
    return to_tokens(block(conv(latents), emb));
  }
};

template <class C>
struct UNetUp {
  ResBlock<C> block;
  GroupNorm<C> norm;
  Conv<C> conv;
  template <class Source>
  static UNetUp load(const Source& ck, const std::string& p) {
    return {ResBlock<C>::load(ck, p + ".model.0"), load_group_norm<C>(ck, p + ".model.1.0"),
            Conv<C>::load(ck, p + ".model.1.2")};
  }
  // tokens (B, h·w, H), emb (B, H) on the host → velocity (B, C, h, w)
  typename C::tensor operator()(const typename C::tensor& tokens, const HostTensor& emb, std::int64_t h,
                                std::int64_t w) const {
    return conv(silu(norm(block(from_tokens(tokens, h, w), emb))));
  }
};

}  // namespace pdiff::hunyuan_image3
