// pdiff/models/hunyuan_image3/vae.hpp — HunyuanImage-3.0's VAE decoder (AutoencoderKLConv3D, a video
// VAE used on single images; official code hunyuan_image_3/autoencoder_kl_3d.py, SPEC.md §9), in Ctx C:
// on the layout's backend and element type like FLUX.2's VAE (host fp32 latents in, host fp32 image
// out). A 5-D activation (B, C, T, H, W) is kept as T frames of (B, C, H, W), so every 3×3×3
// convolution is three 2-D convolutions (one per temporal tap, zero padding in time) over conv2d.
//
//   z = latents / scaling_factor, T = 1
//   h = conv_in(z) + z repeated over channels; mid: ResnetBlock, AttnBlock (one head over T·H·W), ResnetBlock
//   up levels i = 0..: (layers_per_block + 1) ResnetBlocks, then UpsampleDCAE (spatial ×2 at the first
//   log2(ffactor_spatial) levels, temporal ×2 at the first log2(ffactor_temporal))
//   out = conv_out(swish(GroupNorm(h))); the LAST frame is the image; image = clamp(out/2 + 0.5, 0, 1)
// GroupNorm: 32 groups over channels × all frames × pixels, eps 1e-6.
//
// | part           | ops (both backends)                                                          |
// |----------------|------------------------------------------------------------------------------|
// | Conv3d         | conv2d per temporal tap, add_                                                |
// | GroupNorm3d    | the frames stacked to (B, C, T, H·W) (cat), group_norm, split back (narrow)   |
// | AttnBlock3d    | stacked frames, transpose_last2 to tokens (B, T·H·W, 1, C), attention        |
// | UpsampleDCAE   | channels repeated (cat), the pixel rearrangement as three transpose_last2    |
#pragma once

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "pdiff/backend/ops.hpp"
#include "pdiff/comm/self_comm.hpp"
#include "pdiff/io/config.hpp"
#include "pdiff/layers/ctx.hpp"
#include "pdiff/layers/norm.hpp"
#include "pdiff/parallel/vae_tiling.hpp"

namespace pdiff::hunyuan_image3 {

template <class T, class B>
using Frames = std::vector<Tensor<T, B>>;  // T frames of (B, C, H, W)

// The frames as one (B, C, T, H·W) tensor, and back.
template <class T, class B>
Tensor<T, B> stack_frames(const Frames<T, B>& x) {
  const auto& f = x.front();
  const Shape one{f.size(0), f.size(1), 1, f.size(2) * f.size(3)};
  if (x.size() == 1) return f.view(one);
  std::vector<Tensor<T, B>> views;
  for (auto& g : x) views.push_back(g.view(one));
  std::vector<const Tensor<T, B>*> ptrs;
  for (auto& v : views) ptrs.push_back(&v);
  return cat(std::span<const Tensor<T, B>* const>(ptrs), 2);
}
template <class T, class B>
Frames<T, B> split_frames(const Tensor<T, B>& s, std::int64_t h, std::int64_t w) {
  const std::int64_t n = s.size(2);
  const Shape frame{s.size(0), s.size(1), h, w};
  if (n == 1) return {s.view(frame)};
  Frames<T, B> out;
  for (std::int64_t t = 0; t < n; ++t) out.push_back(narrow(s, 2, t, 1).view(frame));
  return out;
}

template <class C>
struct Conv3d {
  using tensor = typename C::tensor;
  std::vector<tensor> taps;  // 3 (or 1) kernels (O, C, k, k), one per temporal offset −1, 0, +1
  tensor bias, no_bias;      // no_bias: empty (the later taps add no bias)
  int pad = 1;
  template <class Source>
  static Conv3d load(const Source& ck, const std::string& p) {
    const auto w = ck.read(p + ".weight");  // (O, C, kt, kh, kw)
    PDIFF_CHECK(w.rank() == 5, "HunyuanImage-3.0 VAE: ", p, ".weight", w.shape(), " must be (O, C, kt, kh, kw)");
    Conv3d c;
    const std::int64_t O = w.size(0), Ci = w.size(1), kt = w.size(2), kh = w.size(3), kw = w.size(4);
    for (std::int64_t t = 0; t < kt; ++t) {
      Tensor<float, OnCpu> k({O, Ci, kh, kw});
      for (std::int64_t o = 0; o < O * Ci; ++o)
        std::copy_n(w.data() + (o * kt + t) * kh * kw, kh * kw, k.data() + o * kh * kw);
      c.taps.push_back(to_ctx<C>(k));
    }
    c.bias = to_ctx<C>(ck.read(p + ".bias"));
    c.pad = int(kh / 2);
    return c;
  }
  std::int64_t out_channels() const { return taps.front().size(0); }
  template <class T, class B>
  Frames<T, B> operator()(const Frames<T, B>& x) const {
    const int T_ = int(x.size()), kt = int(taps.size()), r = kt / 2;
    Frames<T, B> out;
    for (int t = 0; t < T_; ++t) {
      tensor y;
      for (int d = 0; d < kt; ++d) {
        const int s = t + d - r;
        if (s < 0 || s >= T_) continue;
        auto part = conv2d(x[std::size_t(s)], taps[std::size_t(d)], y.empty() ? bias : no_bias, Conv2dArgs::same(pad));
        if (y.empty()) y = std::move(part);
        else add_(y, part);
      }
      out.push_back(std::move(y));
    }
    return out;
  }
};

// GroupNorm over (channels of the group) × frames × pixels.
template <class C>
struct GroupNorm3d {
  GroupNorm<C> norm;
  template <class Source>
  static GroupNorm3d load(const Source& ck, const std::string& p) {
    const auto w = ck.read(p + ".weight");
    GroupNorm3d g{GroupNorm<C>(32, w.numel(), 1e-6f)};
    g.norm.load(w, ck.read(p + ".bias"));
    return g;
  }
  template <class T, class B>
  Frames<T, B> operator()(const Frames<T, B>& x) const {
    return split_frames(norm(stack_frames(x)), x[0].size(2), x[0].size(3));
  }
};

template <class T, class B>
Frames<T, B> swish(Frames<T, B> x) {
  for (auto& f : x) f = silu(f);
  return x;
}
template <class T, class B>
Frames<T, B> plus(Frames<T, B> a, const Frames<T, B>& b) {
  for (std::size_t t = 0; t < a.size(); ++t) add_(a[t], b[t]);
  return a;
}
// Each channel repeated r times in place: (B, C, H, W) → (B, C·r, H, W), channel c·r + j = c.
template <class T, class B>
Frames<T, B> repeat_channels(const Frames<T, B>& x, std::int64_t r) {
  Frames<T, B> out;
  for (auto& f : x) {
    const std::int64_t Bn = f.size(0), Ch = f.size(1), H = f.size(2), W = f.size(3);
    const auto v = f.view({Bn, Ch, 1, H * W});
    const std::vector<const Tensor<T, B>*> copies(std::size_t(r), &v);
    out.push_back(cat(std::span<const Tensor<T, B>* const>(copies), 2).view({Bn, Ch * r, H, W}));
  }
  return out;
}

template <class C>
struct ResnetBlock3d {
  GroupNorm3d<C> norm1, norm2;
  Conv3d<C> conv1, conv2;
  std::optional<Conv3d<C>> shortcut;
  template <class Source>
  static ResnetBlock3d load(const Source& ck, const std::string& p) {
    ResnetBlock3d r{GroupNorm3d<C>::load(ck, p + ".norm1"), GroupNorm3d<C>::load(ck, p + ".norm2"),
                    Conv3d<C>::load(ck, p + ".conv1"), Conv3d<C>::load(ck, p + ".conv2"), std::nullopt};
    if (ck.contains(p + ".nin_shortcut.weight")) r.shortcut = Conv3d<C>::load(ck, p + ".nin_shortcut");
    return r;
  }
  template <class T, class B>
  Frames<T, B> operator()(const Frames<T, B>& x) const {
    auto h = conv2(swish(norm2(conv1(swish(norm1(x))))));
    return plus(std::move(h), shortcut ? (*shortcut)(x) : x);
  }
};

// One attention head over every position of every frame; q/k/v/proj_out are 1×1×1 convolutions.
template <class C>
struct AttnBlock3d {
  GroupNorm3d<C> norm;
  Conv3d<C> q, k, v, proj;
  template <class Source>
  static AttnBlock3d load(const Source& ck, const std::string& p) {
    return {GroupNorm3d<C>::load(ck, p + ".norm"), Conv3d<C>::load(ck, p + ".q"), Conv3d<C>::load(ck, p + ".k"),
            Conv3d<C>::load(ck, p + ".v"), Conv3d<C>::load(ck, p + ".proj_out")};
  }
  template <class T, class B>
  Frames<T, B> operator()(const Frames<T, B>& x) const {
    const auto n = norm(x);
    const std::int64_t Bn = x[0].size(0), Ch = x[0].size(1), H = x[0].size(2), W = x[0].size(3),
                       N = std::int64_t(x.size()) * H * W;
    // (B, C, T, H·W) → tokens (B, T·H·W, 1, C)
    auto tokens = [&](const Frames<T, B>& f) { return transpose_last2(stack_frames(f).view({Bn, Ch, N})).view({Bn, N, 1, Ch}); };
    const auto o = attention(tokens(q(n)), tokens(k(n)), tokens(v(n)));
    const auto back = transpose_last2(o.view({Bn, N, Ch})).view({Bn, Ch, std::int64_t(x.size()), H * W});
    return plus(proj(split_frames(back, H, W)), x);
  }
};

// conv (in → out·f) plus the input repeated over channels, both rearranged
// 'b (r1 r2 r3 c) f h w -> b c (f r1) (h r2) (w r3)', r2 = r3 = 2, r1 = 2 when temporal.
template <class C>
struct UpsampleDCAE {
  Conv3d<C> conv;
  int r1 = 1;
  template <class Source>
  static UpsampleDCAE load(const Source& ck, const std::string& p, bool temporal) {
    return {Conv3d<C>::load(ck, p + ".conv"), temporal ? 2 : 1};
  }
  template <class T, class B>
  Frames<T, B> operator()(const Frames<T, B>& x) const {
    const auto h = plus(conv(x), repeat_channels(x, conv.out_channels() / x[0].size(1)));
    const std::int64_t Bn = x[0].size(0), H = x[0].size(2), W = x[0].size(3), Cout = conv.out_channels() / (4 * r1),
                       n = Cout * H * W;
    Frames<T, B> out;
    for (auto& f : h)
      for (int a = 0; a < r1; ++a) {
        // channels (r2 r3 c) of output frame a: [p, q, c, i, j] → [c, i, p, j, q] by three transposes
        const auto s = r1 == 1 ? f : narrow(f, 1, a * 4 * Cout, 4 * Cout);
        auto y = transpose_last2(s.view({Bn * 2, 2, n}));      // [p, c, i, j, q]
        y = transpose_last2(y.view({Bn, 2, n * 2}));           // [c, i, j, q, p]
        y = transpose_last2(y.view({Bn * Cout * H, W * 2, 2}));  // [c, i, p, j, q]
        out.push_back(y.view({Bn, Cout, 2 * H, 2 * W}));
      }
    return out;
  }
};

// C: where the decoder runs (HostCtx: host fp32); latents in and the image out are host fp32 either way.
template <class C>
struct BasicVaeDecoder3d {
  using frames = Frames<typename C::value_type, typename C::backend>;
  float scaling_factor = 1.0f;
  std::int64_t latent_channels = 0;
  Conv3d<C> conv_in, conv_out;
  ResnetBlock3d<C> mid1, mid2;
  AttnBlock3d<C> attn;
  std::vector<std::vector<ResnetBlock3d<C>>> blocks;
  std::vector<std::optional<UpsampleDCAE<C>>> upsample;
  GroupNorm3d<C> norm_out;

  // vae: the "vae" object of config.json.
  template <class Source>
  static BasicVaeDecoder3d load(const Source& ck, const JsonConfig& vae, const std::string& p = "vae.decoder") {
    BasicVaeDecoder3d d;
    d.scaling_factor = vae.get<float>("scaling_factor");
    PDIFF_CHECK(vae.is_null("shift_factor"), "HunyuanImage-3.0 VAE: shift_factor is not supported");
    d.latent_channels = vae.get<std::int64_t>("latent_channels");
    const auto ch = vae.get<std::vector<std::int64_t>>("block_out_channels");
    const auto per = vae.get<std::int64_t>("layers_per_block") + 1;
    const auto fs = vae.get<std::int64_t>("ffactor_spatial"), ft = vae.get<std::int64_t>("ffactor_temporal");
    const int up_s = int(std::lround(std::log2(double(fs)))), up_t = int(std::lround(std::log2(double(ft))));
    PDIFF_CHECK(!ch.empty() && (std::int64_t(1) << up_s) == fs && (std::int64_t(1) << up_t) == ft && up_t <= up_s &&
                    up_s <= std::int64_t(ch.size()),
                "HunyuanImage-3.0 VAE: ffactor_spatial ", fs, " / ffactor_temporal ", ft, " do not fit ", ch.size(),
                " levels");
    d.conv_in = Conv3d<C>::load(ck, p + ".conv_in");
    d.mid1 = ResnetBlock3d<C>::load(ck, p + ".mid.block_1");
    d.attn = AttnBlock3d<C>::load(ck, p + ".mid.attn_1");
    d.mid2 = ResnetBlock3d<C>::load(ck, p + ".mid.block_2");
    for (std::size_t i = 0; i < ch.size(); ++i) {
      std::vector<ResnetBlock3d<C>> level;
      for (std::int64_t j = 0; j < per; ++j)
        level.push_back(ResnetBlock3d<C>::load(ck, p + ".up." + std::to_string(i) + ".block." + std::to_string(j)));
      d.blocks.push_back(std::move(level));
      if (int(i) < up_s)
        d.upsample.emplace_back(UpsampleDCAE<C>::load(ck, p + ".up." + std::to_string(i) + ".upsample", int(i) < up_t));
      else d.upsample.emplace_back();
    }
    d.norm_out = GroupNorm3d<C>::load(ck, p + ".norm_out");
    d.conv_out = Conv3d<C>::load(ck, p + ".conv_out");
    return d;
  }

  // latents (B, C, h, w) on the host → every output frame in C, (B, 3, 16h, 16w) each (unclamped).
  frames decode_frames(const Tensor<float, OnCpu>& latents) const {
    PDIFF_CHECK(latents.rank() == 4 && latents.size(1) == latent_channels, "HunyuanImage-3.0 VAE: latents",
                latents.shape(), " must be (B, ", latent_channels, ", h, w)");
    auto host = latents.clone();
    for (auto& v : host.span()) v /= scaling_factor;
    const frames z{to_ctx<C>(host)};
    auto h = plus(conv_in(z), repeat_channels(z, conv_in.out_channels() / latent_channels));
    h = mid2(attn(mid1(h)));
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      for (auto& b : blocks[i]) h = b(h);
      if (upsample[i]) h = (*upsample[i])(h);
    }
    return conv_out(swish(norm_out(h)));
  }
  // The image in [0, 1] on the host: the last frame, clamp(x/2 + 0.5, 0, 1). o.split = patch spreads haloed
  // blocks over the ranks of `comm` (a VaePatch group; the same image on each; the blocks' GroupNorm
  // statistics and mid-block attention see only their block, so it approaches the whole decode as the halo
  // grows; default halo: a quarter of the shorter latent side, at least 1). Tiled decode is FLUX's, not this VAE's.
  template <class Comm = SelfComm>
  Tensor<float, OnCpu> decode(const Tensor<float, OnCpu>& latents, const VaeRunOptions& o = {},
                              Comm&& comm = SelfComm{}) const {
    PDIFF_CHECK(o.split != VaeSplit::tiled, "HunyuanImage-3.0 VAE: tiled decode is not supported (use whole or patch)");
    auto last = [&](const Tensor<float, OnCpu>& z) { return to_host_f32(decode_frames(z).back()); };
    Tensor<float, OnCpu> img;
    if (!o.split) {
      img = last(latents);
    } else {
      PDIFF_CHECK(latents.rank() == 4, "HunyuanImage-3.0 VAE: latents", latents.shape(), " must be (B, C, h, w)");
      const std::int64_t f = spatial_factor(), h = latents.size(2), w = latents.size(3);
      const std::int64_t halo = o.halo > 0 ? o.halo : std::max<std::int64_t>(1, std::min(h, w) / 4);
      const auto t = VaeTiling::patches(h, w, comm.size(), halo, f, 1);
      img = run_tiling(comm, t, latents.size(0), 3, [&](const VaeRegion& r) { return last(crop_region(latents, r)); });
    }
    for (auto& v : img.span()) v = std::clamp(v * 0.5f + 0.5f, 0.0f, 1.0f);
    return img;
  }
  // Output pixels per latent pixel (16 for the released VAE).
  std::int64_t spatial_factor() const {
    std::int64_t f = 1;
    for (auto& u : upsample) f *= u ? 2 : 1;
    return f;
  }
};

// The decoder on the host in fp32.
using VaeDecoder3d = BasicVaeDecoder3d<HostCtx>;

}  // namespace pdiff::hunyuan_image3
