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
// GroupNorm eps is 1e-6 everywhere in these blocks (the reference's resnet_eps). Every block is a
// template on the Ctx it runs in (HostCtx: fp32 on the CPU; Ctx<Layout<OnCuda>, bf16>: on the GPU);
// the ops are the backend's (conv2d, group_norm, silu, upsample_nearest2x, transpose_last2, attention).
#pragma once

#include <string>

#include "pdiff/backend/ops.hpp"
#include "pdiff/io/checkpoint.hpp"
#include "pdiff/layers/linear_core.hpp"
#include "pdiff/layers/norm.hpp"

namespace pdiff {

template <class C>
struct VaeConv {
  typename C::tensor weight, bias;
  Conv2dArgs args;
  static VaeConv load(const Checkpoint& ck, const std::string& prefix, std::int64_t in, std::int64_t out, int k,
                      Conv2dArgs a) {
    VaeConv c;
    const auto w = ck.read(prefix + ".weight");
    PDIFF_CHECK(w.rank() == 4 && w.size(0) == out && w.size(1) == in && w.size(2) == k && w.size(3) == k, "VAE: '",
                prefix, ".weight' in ", ck.dir(), " has shape ", w.shape(), ", the config needs (", out, ", ", in, ", ",
                k, ", ", k, ")");
    const auto b = ck.read(prefix + ".bias");
    PDIFF_CHECK(b.numel() == out, "VAE: '", prefix, ".bias' has ", b.numel(), " elements, needs ", out);
    c.weight = to_ctx<C>(w);
    c.bias = to_ctx<C>(b);
    c.args = a;
    return c;
  }
  typename C::tensor operator()(const typename C::tensor& x) const { return conv2d(x, weight, bias, args); }
};

// GroupNorm (layers/norm.hpp) from the checkpoint's `prefix`.weight / .bias.
template <class C>
GroupNorm<C> load_vae_group_norm(const Checkpoint& ck, const std::string& prefix, std::int64_t ch, int groups) {
  auto w = ck.read(prefix + ".weight"), b = ck.read(prefix + ".bias");
  PDIFF_CHECK(w.numel() == ch && b.numel() == ch, "VAE: '", prefix, "' has ", w.numel(), " channels, the config needs ",
              ch);
  GroupNorm<C> n(groups, ch, 1e-6f);
  n.load(w, b);
  return n;
}

namespace detail {
// SiLU in place on the CPU (no new buffer), a new tensor elsewhere.
template <class T, class B>
void vae_silu(Tensor<T, B>& x) {
  if constexpr (std::is_same_v<B, OnCpu>) silu_(x);
  else x = silu(x);
}
}  // namespace detail

template <class C>
struct VaeResnet {
  GroupNorm<C> norm1, norm2;
  VaeConv<C> conv1, conv2, shortcut;
  bool has_shortcut = false;
  static VaeResnet load(const Checkpoint& ck, const std::string& p, std::int64_t in, std::int64_t out, int groups) {
    VaeResnet r;
    r.norm1 = load_vae_group_norm<C>(ck, p + ".norm1", in, groups);
    r.conv1 = VaeConv<C>::load(ck, p + ".conv1", in, out, 3, Conv2dArgs::same(1));
    r.norm2 = load_vae_group_norm<C>(ck, p + ".norm2", out, groups);
    r.conv2 = VaeConv<C>::load(ck, p + ".conv2", out, out, 3, Conv2dArgs::same(1));
    r.has_shortcut = in != out;
    if (r.has_shortcut) r.shortcut = VaeConv<C>::load(ck, p + ".conv_shortcut", in, out, 1, {});
    return r;
  }
  typename C::tensor operator()(const typename C::tensor& x) const {
    auto h = norm1(x);
    detail::vae_silu(h);
    h = conv1(h);
    h = norm2(h);
    detail::vae_silu(h);
    h = conv2(h);
    add_(h, has_shortcut ? shortcut(x) : x);
    return h;
  }
};

// A linear layer with bias from the checkpoint (the shared LinearCore of layers/).
template <class C>
struct VaeLinear {
  detail::LinearCore<C> core;
  static VaeLinear load(const Checkpoint& ck, const std::string& p, std::int64_t ch) {
    const auto w = ck.read(p + ".weight"), b = ck.read(p + ".bias");
    PDIFF_CHECK(w.rank() == 2 && w.size(0) == ch && w.size(1) == ch && b.numel() == ch, "VAE: '", p, "' has weight",
                w.shape(), " and bias", b.shape(), ", the config needs (", ch, ", ", ch, ") and (", ch, ")");
    VaeLinear l;
    l.core.set(w, &b);
    return l;
  }
  // x: (..., C) → (..., C)
  typename C::tensor operator()(const typename C::tensor& x) const {
    auto y = core.matmul(x);
    core.add_bias(y);
    return y;
  }
};

template <class C>
struct VaeAttention {
  GroupNorm<C> norm;
  VaeLinear<C> q, k, v, out;
  static VaeAttention load(const Checkpoint& ck, const std::string& p, std::int64_t ch, int groups) {
    return {load_vae_group_norm<C>(ck, p + ".group_norm", ch, groups), VaeLinear<C>::load(ck, p + ".to_q", ch),
            VaeLinear<C>::load(ck, p + ".to_k", ch), VaeLinear<C>::load(ck, p + ".to_v", ch),
            VaeLinear<C>::load(ck, p + ".to_out.0", ch)};
  }
  typename C::tensor operator()(const typename C::tensor& x) const {
    const std::int64_t B = x.size(0), Ch = x.size(1), N = x.size(2) * x.size(3);
    // tokens: (B, N, C), the transpose of the channel-major image; one head of dimension C
    const auto t = transpose_last2(norm(x).view({B, Ch, N}));
    const auto a = attention(q(t).view({B, N, 1, Ch}), k(t).view({B, N, 1, Ch}), v(t).view({B, N, 1, Ch}));
    auto y = transpose_last2(out(a.view({B, N, Ch}))).view(x.shape());
    add_(y, x);
    return y;
  }
};

// The mid block of encoder and decoder: resnet, [attention], resnet.
template <class C>
struct VaeMidBlock {
  VaeResnet<C> r0, r1;
  VaeAttention<C> attn;
  bool has_attn = true;
  static VaeMidBlock load(const Checkpoint& ck, const std::string& p, std::int64_t ch, int groups, bool with_attn) {
    VaeMidBlock m;
    m.r0 = VaeResnet<C>::load(ck, p + ".resnets.0", ch, ch, groups);
    m.has_attn = with_attn;
    if (with_attn) m.attn = VaeAttention<C>::load(ck, p + ".attentions.0", ch, groups);
    m.r1 = VaeResnet<C>::load(ck, p + ".resnets.1", ch, ch, groups);
    return m;
  }
  typename C::tensor operator()(const typename C::tensor& x) const {
    auto h = r0(x);
    if (has_attn) h = attn(h);
    return r1(h);
  }
};

}  // namespace pdiff
