// pdiff/models/autoencoder_kl/blocks.hpp — the building blocks of diffusers' VAE Encoder/Decoder
// (models/autoencoders/vae.py, resnet.py, attention_processor.py), replicated on every rank.
//
// | block          | checkpoint names under `prefix`                 | forward, x: (B, C, H, W)           |
// |----------------|-------------------------------------------------|------------------------------------|
// | VaeConv        | weight (O, C, k, k), bias (O)                   | conv2d, padding k/2 (or explicit)  |
// | VaeResnet      | norm1, conv1, norm2, conv2, [conv_shortcut]     | x' + conv2(silu(gn2(conv1(silu(gn1(x)))))) |
// | VaeAttention   | group_norm, to_q, to_k, to_v, to_out.0 (biases) | x + out(sdpa over H·W tokens, 1 head) |
// | downsample     | VaeConv stride 2 after zero padding (0, 1, 0, 1) |                                    |
// | upsample       | nearest 2× then VaeConv 3×3                      |                                    |
// GroupNorm eps is 1e-6 everywhere in these blocks (the reference's resnet_eps).
#pragma once

#include <string>

#include "pdiff/backend/cpu/activation.hpp"
#include "pdiff/backend/cpu/attention.hpp"
#include "pdiff/backend/cpu/conv.hpp"
#include "pdiff/backend/cpu/gemm.hpp"
#include "pdiff/backend/cpu/norm.hpp"
#include "pdiff/io/checkpoint.hpp"
#include "pdiff/layers/linear_core.hpp"
#include "pdiff/layers/norm.hpp"

namespace pdiff {

struct VaeConv {
  Tensor<float, OnCpu> weight, bias;
  Conv2dArgs args;
  static VaeConv load(const Checkpoint& ck, const std::string& prefix, std::int64_t in, std::int64_t out, int k,
                      Conv2dArgs a) {
    VaeConv c;
    c.weight = ck.read(prefix + ".weight");
    PDIFF_CHECK(c.weight.rank() == 4 && c.weight.size(0) == out && c.weight.size(1) == in && c.weight.size(2) == k &&
                    c.weight.size(3) == k,
                "VAE: '", prefix, ".weight' in ", ck.dir(), " has shape ", c.weight.shape(), ", the config needs (", out,
                ", ", in, ", ", k, ", ", k, ")");
    c.bias = ck.read(prefix + ".bias");
    PDIFF_CHECK(c.bias.numel() == out, "VAE: '", prefix, ".bias' has ", c.bias.numel(), " elements, needs ", out);
    c.args = a;
    return c;
  }
  Tensor<float, OnCpu> operator()(const Tensor<float, OnCpu>& x) const { return conv2d(x, weight, bias, args); }
};

// GroupNorm (layers/norm.hpp) from the checkpoint's `prefix`.weight / .bias.
inline GroupNorm<HostCtx> load_vae_group_norm(const Checkpoint& ck, const std::string& prefix, std::int64_t ch, int groups) {
  auto w = ck.read(prefix + ".weight"), b = ck.read(prefix + ".bias");
  PDIFF_CHECK(w.numel() == ch && b.numel() == ch, "VAE: '", prefix, "' has ", w.numel(), " channels, the config needs ",
              ch);
  GroupNorm<HostCtx> n(groups, ch, 1e-6f);
  n.load(w, b);
  return n;
}

namespace detail {
inline void silu_(Tensor<float, OnCpu>& x) {
  for (auto& v : x.span()) v = silu(v);
}
}  // namespace detail

struct VaeResnet {
  GroupNorm<HostCtx> norm1, norm2;
  VaeConv conv1, conv2, shortcut;
  bool has_shortcut = false;
  static VaeResnet load(const Checkpoint& ck, const std::string& p, std::int64_t in, std::int64_t out, int groups) {
    VaeResnet r;
    r.norm1 = load_vae_group_norm(ck, p + ".norm1", in, groups);
    r.conv1 = VaeConv::load(ck, p + ".conv1", in, out, 3, Conv2dArgs::same(1));
    r.norm2 = load_vae_group_norm(ck, p + ".norm2", out, groups);
    r.conv2 = VaeConv::load(ck, p + ".conv2", out, out, 3, Conv2dArgs::same(1));
    r.has_shortcut = in != out;
    if (r.has_shortcut) r.shortcut = VaeConv::load(ck, p + ".conv_shortcut", in, out, 1, {});
    return r;
  }
  Tensor<float, OnCpu> operator()(const Tensor<float, OnCpu>& x) const {
    auto h = norm1(x);
    detail::silu_(h);
    h = conv1(h);
    h = norm2(h);
    detail::silu_(h);
    h = conv2(h);
    add_(h, has_shortcut ? shortcut(x) : x);
    return h;
  }
};

// A linear layer with bias from the checkpoint (the shared LinearCore of layers/).
struct VaeLinear {
  detail::LinearCore<HostCtx> core;
  static VaeLinear load(const Checkpoint& ck, const std::string& p, std::int64_t ch) {
    const auto w = ck.read(p + ".weight"), b = ck.read(p + ".bias");
    PDIFF_CHECK(w.rank() == 2 && w.size(0) == ch && w.size(1) == ch && b.numel() == ch, "VAE: '", p, "' has weight",
                w.shape(), " and bias", b.shape(), ", the config needs (", ch, ", ", ch, ") and (", ch, ")");
    VaeLinear l;
    l.core.set(w, &b);
    return l;
  }
  // x: (N, C) → (N, C)
  Tensor<float, OnCpu> operator()(const Tensor<float, OnCpu>& x) const {
    auto y = core.matmul(x);
    core.add_bias(y);
    return y;
  }
};

struct VaeAttention {
  GroupNorm<HostCtx> norm;
  VaeLinear q, k, v, out;
  static VaeAttention load(const Checkpoint& ck, const std::string& p, std::int64_t ch, int groups) {
    return {load_vae_group_norm(ck, p + ".group_norm", ch, groups), VaeLinear::load(ck, p + ".to_q", ch),
            VaeLinear::load(ck, p + ".to_k", ch), VaeLinear::load(ck, p + ".to_v", ch),
            VaeLinear::load(ck, p + ".to_out.0", ch)};
  }
  Tensor<float, OnCpu> operator()(const Tensor<float, OnCpu>& x) const {
    const std::int64_t B = x.size(0), C = x.size(1), N = x.size(2) * x.size(3);
    auto h = norm(x);
    Tensor<float, OnCpu> out_all({B, C, x.size(2), x.size(3)});
    for (std::int64_t b = 0; b < B; ++b) {
      // tokens: (N, C), the transpose of the channel-major image
      Tensor<float, OnCpu> t({N, C});
      const float* hb = h.data() + b * C * N;
      for (std::int64_t c = 0; c < C; ++c)
        for (std::int64_t i = 0; i < N; ++i) t(i * C + c) = hb[c * N + i];
      auto a = attention(q(t).view({1, N, 1, C}), k(t).view({1, N, 1, C}), v(t).view({1, N, 1, C}));
      auto o = out(a.view({N, C}));
      const float* xb = x.data() + b * C * N;
      float* ob = out_all.data() + b * C * N;
      for (std::int64_t c = 0; c < C; ++c)
        for (std::int64_t i = 0; i < N; ++i) ob[c * N + i] = o(i * C + c) + xb[c * N + i];
    }
    return out_all;
  }
};

// The mid block of encoder and decoder: resnet, [attention], resnet.
struct VaeMidBlock {
  VaeResnet r0, r1;
  VaeAttention attn;
  bool has_attn = true;
  static VaeMidBlock load(const Checkpoint& ck, const std::string& p, std::int64_t ch, int groups, bool with_attn) {
    VaeMidBlock m;
    m.r0 = VaeResnet::load(ck, p + ".resnets.0", ch, ch, groups);
    m.has_attn = with_attn;
    if (with_attn) m.attn = VaeAttention::load(ck, p + ".attentions.0", ch, groups);
    m.r1 = VaeResnet::load(ck, p + ".resnets.1", ch, ch, groups);
    return m;
  }
  Tensor<float, OnCpu> operator()(const Tensor<float, OnCpu>& x) const {
    auto h = r0(x);
    if (has_attn) h = attn(h);
    return r1(h);
  }
};

}  // namespace pdiff
