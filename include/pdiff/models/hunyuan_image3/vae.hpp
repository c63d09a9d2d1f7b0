// pdiff/models/hunyuan_image3/vae.hpp — HunyuanImage-3.0's VAE decoder (AutoencoderKLConv3D, a video
// VAE used on single images; official code hunyuan_image_3/autoencoder_kl_3d.py, SPEC.md §9), on the
// host in fp32. A 5-D activation (B, C, T, H, W) is kept as T frames of (B, C, H, W), so every 3×3×3
// convolution is three 2-D convolutions (one per temporal tap, zero padding in time) over conv2d.
//
//   z = latents / scaling_factor, T = 1
//   h = conv_in(z) + z repeated over channels; mid: ResnetBlock, AttnBlock (one head over T·H·W), ResnetBlock
//   up levels i = 0..: (layers_per_block + 1) ResnetBlocks, then UpsampleDCAE (spatial ×2 at the first
//   log2(ffactor_spatial) levels, temporal ×2 at the first log2(ffactor_temporal))
//   out = conv_out(swish(GroupNorm(h))); the LAST frame is the image; image = clamp(out/2 + 0.5, 0, 1)
// GroupNorm: 32 groups over channels × all frames × pixels, eps 1e-6.
#pragma once

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "pdiff/backend/cpu/attention.hpp"
#include "pdiff/backend/cpu/conv.hpp"
#include "pdiff/backend/ops.hpp"
#include "pdiff/comm/self_comm.hpp"
#include "pdiff/io/config.hpp"
#include "pdiff/parallel/vae_tiling.hpp"

namespace pdiff::hunyuan_image3 {

using Frames = std::vector<Tensor<float, OnCpu>>;  // T frames of (B, C, H, W)

struct Conv3d {
  std::vector<Tensor<float, OnCpu>> taps;  // 3 (or 1) kernels (O, C, k, k), one per temporal offset −1, 0, +1
  Tensor<float, OnCpu> bias, no_bias;
  int pad = 1;
  template <class Source>
  static Conv3d load(const Source& ck, const std::string& p) {
    const auto w = ck.read(p + ".weight");  // (O, C, kt, kh, kw)
    PDIFF_CHECK(w.rank() == 5, "HunyuanImage-3.0 VAE: ", p, ".weight", w.shape(), " must be (O, C, kt, kh, kw)");
    Conv3d c;
    const std::int64_t O = w.size(0), C = w.size(1), kt = w.size(2), kh = w.size(3), kw = w.size(4);
    for (std::int64_t t = 0; t < kt; ++t) {
      Tensor<float, OnCpu> k({O, C, kh, kw});
      for (std::int64_t o = 0; o < O * C; ++o)
        std::copy_n(w.data() + (o * kt + t) * kh * kw, kh * kw, k.data() + o * kh * kw);
      c.taps.push_back(std::move(k));
    }
    c.bias = ck.read(p + ".bias");
    c.pad = int(kh / 2);
    return c;
  }
  Frames operator()(const Frames& x) const {
    const int T = int(x.size()), kt = int(taps.size()), r = kt / 2;
    Frames out;
    for (int t = 0; t < T; ++t) {
      Tensor<float, OnCpu> y;
      for (int d = 0; d < kt; ++d) {
        const int s = t + d - r;
        if (s < 0 || s >= T) continue;
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
struct GroupNorm3d {
  Tensor<float, OnCpu> w, b;
  int groups = 32;
  float eps = 1e-6f;
  template <class Source>
  static GroupNorm3d load(const Source& ck, const std::string& p) {
    return {ck.read(p + ".weight"), ck.read(p + ".bias")};
  }
  Frames operator()(const Frames& x) const {
    const std::int64_t B = x[0].size(0), C = x[0].size(1), n = x[0].size(2) * x[0].size(3), cg = C / groups;
    Frames out;
    for (auto& f : x) out.push_back(Tensor<float, OnCpu>(f.shape()));
    for (std::int64_t bt = 0; bt < B; ++bt)
      for (std::int64_t g = 0; g < groups; ++g) {
        double sum = 0, sq = 0;
        for (auto& f : x)
          for (std::int64_t c = g * cg; c < (g + 1) * cg; ++c)
            for (std::int64_t i = 0; i < n; ++i) {
              const double v = f((bt * C + c) * n + i);
              sum += v, sq += v * v;
            }
        const double cnt = double(cg * n) * double(x.size()), mean = sum / cnt;
        const float inv = float(1.0 / std::sqrt(std::max(sq / cnt - mean * mean, 0.0) + eps));
        for (std::size_t t = 0; t < x.size(); ++t)
          for (std::int64_t c = g * cg; c < (g + 1) * cg; ++c)
            for (std::int64_t i = 0; i < n; ++i) {
              const std::int64_t at = (bt * C + c) * n + i;
              out[t](at) = (x[t](at) - float(mean)) * inv * w(c) + b(c);
            }
      }
    return out;
  }
};

inline Frames swish(Frames x) {
  for (auto& f : x) f = silu(f);
  return x;
}
inline Frames plus(Frames a, const Frames& b) {
  for (std::size_t t = 0; t < a.size(); ++t) add_(a[t], b[t]);
  return a;
}
// Each channel repeated r times in place: (B, C, H, W) → (B, C·r, H, W), channel c·r + j = c.
inline Frames repeat_channels(const Frames& x, std::int64_t r) {
  Frames out;
  for (auto& f : x) {
    const std::int64_t B = f.size(0), C = f.size(1), n = f.size(2) * f.size(3);
    Tensor<float, OnCpu> y({B, C * r, f.size(2), f.size(3)});
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t c = 0; c < C; ++c)
        for (std::int64_t j = 0; j < r; ++j) std::copy_n(f.data() + (b * C + c) * n, n, y.data() + ((b * C + c) * r + j) * n);
    out.push_back(std::move(y));
  }
  return out;
}

struct ResnetBlock3d {
  GroupNorm3d norm1, norm2;
  Conv3d conv1, conv2;
  std::optional<Conv3d> shortcut;
  template <class Source>
  static ResnetBlock3d load(const Source& ck, const std::string& p) {
    ResnetBlock3d r{GroupNorm3d::load(ck, p + ".norm1"), GroupNorm3d::load(ck, p + ".norm2"),
                    Conv3d::load(ck, p + ".conv1"), Conv3d::load(ck, p + ".conv2"), std::nullopt};
    if (ck.contains(p + ".nin_shortcut.weight")) r.shortcut = Conv3d::load(ck, p + ".nin_shortcut");
    return r;
  }
  Frames operator()(const Frames& x) const {
    auto h = conv2(swish(norm2(conv1(swish(norm1(x))))));
    return plus(std::move(h), shortcut ? (*shortcut)(x) : x);
  }
};

// One attention head over every position of every frame; q/k/v/proj_out are 1×1×1 convolutions.
struct AttnBlock3d {
  GroupNorm3d norm;
  Conv3d q, k, v, proj;
  template <class Source>
  static AttnBlock3d load(const Source& ck, const std::string& p) {
    return {GroupNorm3d::load(ck, p + ".norm"), Conv3d::load(ck, p + ".q"), Conv3d::load(ck, p + ".k"),
            Conv3d::load(ck, p + ".v"), Conv3d::load(ck, p + ".proj_out")};
  }
  Frames operator()(const Frames& x) const {
    const auto n = norm(x);
    const auto qf = q(n), kf = k(n), vf = v(n);
    const std::int64_t B = x[0].size(0), C = x[0].size(1), H = x[0].size(2), W = x[0].size(3), P = H * W,
                       T = std::int64_t(x.size());
    // (B, T·H·W, 1, C) tokens
    auto tokens = [&](const Frames& f) {
      Tensor<float, OnCpu> t({B, T * P, 1, C});
      for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t tt = 0; tt < T; ++tt)
          for (std::int64_t c = 0; c < C; ++c)
            for (std::int64_t i = 0; i < P; ++i) t(((b * T + tt) * P + i) * C + c) = f[std::size_t(tt)]((b * C + c) * P + i);
      return t;
    };
    const auto o = attention(tokens(qf), tokens(kf), tokens(vf));
    Frames of;
    for (std::int64_t tt = 0; tt < T; ++tt) {
      Tensor<float, OnCpu> f({B, C, H, W});
      for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t c = 0; c < C; ++c)
          for (std::int64_t i = 0; i < P; ++i) f((b * C + c) * P + i) = o(((b * T + tt) * P + i) * C + c);
      of.push_back(std::move(f));
    }
    return plus(proj(of), x);
  }
};

// conv (in → out·f) plus the input repeated over channels, both rearranged
// 'b (r1 r2 r3 c) f h w -> b c (f r1) (h r2) (w r3)', r2 = r3 = 2, r1 = 2 when temporal.
struct UpsampleDCAE {
  Conv3d conv;
  int r1 = 1;
  template <class Source>
  static UpsampleDCAE load(const Source& ck, const std::string& p, bool temporal) {
    return {Conv3d::load(ck, p + ".conv"), temporal ? 2 : 1};
  }
  Frames operator()(const Frames& x) const {
    const auto h = conv(x);
    const std::int64_t Cin = x[0].size(1), Cf = h[0].size(1), f = 4 * r1, Cout = Cf / f;
    const auto sc = repeat_channels(x, Cf / Cin);
    const std::int64_t B = x[0].size(0), H = x[0].size(2), W = x[0].size(3);
    Frames out;
    for (std::size_t t = 0; t < x.size(); ++t)
      for (int a = 0; a < r1; ++a) {
        Tensor<float, OnCpu> y({B, Cout, 2 * H, 2 * W});
        for (std::int64_t b = 0; b < B; ++b)
          for (std::int64_t c = 0; c < Cout; ++c)
            for (std::int64_t i = 0; i < 2 * H; ++i)
              for (std::int64_t j = 0; j < 2 * W; ++j) {
                const std::int64_t ch = ((a * 2 + i % 2) * 2 + j % 2) * Cout + c;  // (r1 r2 r3 c)
                const std::int64_t src = ((b * Cf + ch) * H + i / 2) * W + j / 2;
                y(((b * Cout + c) * 2 * H + i) * 2 * W + j) = h[t](src) + sc[t](src);
              }
        out.push_back(std::move(y));
      }
    return out;
  }
};

struct VaeDecoder3d {
  float scaling_factor = 1.0f;
  std::int64_t latent_channels = 0;
  Conv3d conv_in, conv_out;
  ResnetBlock3d mid1, mid2;
  AttnBlock3d attn;
  std::vector<std::vector<ResnetBlock3d>> blocks;
  std::vector<std::optional<UpsampleDCAE>> upsample;
  GroupNorm3d norm_out;

  // vae: the "vae" object of config.json.
  template <class Source>
  static VaeDecoder3d load(const Source& ck, const JsonConfig& vae, const std::string& p = "vae.decoder") {
    VaeDecoder3d d;
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
    d.conv_in = Conv3d::load(ck, p + ".conv_in");
    d.mid1 = ResnetBlock3d::load(ck, p + ".mid.block_1");
    d.attn = AttnBlock3d::load(ck, p + ".mid.attn_1");
    d.mid2 = ResnetBlock3d::load(ck, p + ".mid.block_2");
    for (std::size_t i = 0; i < ch.size(); ++i) {
      std::vector<ResnetBlock3d> level;
      for (std::int64_t j = 0; j < per; ++j)
        level.push_back(ResnetBlock3d::load(ck, p + ".up." + std::to_string(i) + ".block." + std::to_string(j)));
      d.blocks.push_back(std::move(level));
      if (int(i) < up_s) d.upsample.emplace_back(UpsampleDCAE::load(ck, p + ".up." + std::to_string(i) + ".upsample", int(i) < up_t));
      else d.upsample.emplace_back();
    }
    d.norm_out = GroupNorm3d::load(ck, p + ".norm_out");
    d.conv_out = Conv3d::load(ck, p + ".conv_out");
    return d;
  }

  // latents (1, C, h, w) → every output frame, (B, 3, 16h, 16w) each (unclamped).
  Frames decode_frames(const Tensor<float, OnCpu>& latents) const {
    PDIFF_CHECK(latents.rank() == 4 && latents.size(1) == latent_channels, "HunyuanImage-3.0 VAE: latents",
                latents.shape(), " must be (B, ", latent_channels, ", h, w)");
    Frames z{latents.clone()};
    for (auto& v : z[0].span()) v /= scaling_factor;
    const std::int64_t C0 = conv_in.taps[0].size(0);
    auto h = plus(conv_in(z), repeat_channels(z, C0 / latent_channels));
    h = mid2(attn(mid1(h)));
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      for (auto& b : blocks[i]) h = b(h);
      if (upsample[i]) h = (*upsample[i])(h);
    }
    return conv_out(swish(norm_out(h)));
  }
  // The image in [0, 1]: the last frame, clamp(x/2 + 0.5, 0, 1). o.split = patch spreads haloed blocks
  // over the ranks of `comm` (a VaePatch group; the same image on each; the blocks' GroupNorm statistics and
  // mid-block attention see only their block, so it approaches the whole decode as the halo grows; default
  // halo: a quarter of the shorter latent side, at least 1). Tiled decode is FLUX's, not this VAE's.
  template <class Comm = SelfComm>
  Tensor<float, OnCpu> decode(const Tensor<float, OnCpu>& latents, const VaeRunOptions& o = {},
                              Comm&& comm = SelfComm{}) const {
    PDIFF_CHECK(o.split != VaeSplit::tiled, "HunyuanImage-3.0 VAE: tiled decode is not supported (use whole or patch)");
    auto last = [&](const Tensor<float, OnCpu>& z) { return decode_frames(z).back(); };
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

}  // namespace pdiff::hunyuan_image3
