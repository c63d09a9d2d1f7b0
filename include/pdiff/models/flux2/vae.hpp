// pdiff/models/flux2/vae.hpp — Flux2Vae: AutoencoderKLFlux2 with FLUX.2's latent conventions
// (pipeline_flux2.py: _patchify_latents, _unpatchify_latents, the BatchNorm running statistics).
//
// | call                                  | input                 | output                              |
// |---------------------------------------|-----------------------|-------------------------------------|
// | image_latents(img, opts, comm)        | (B, 3, H, W) in [−1, 1] | (B, 4·latent, H/16, W/16): patchified, (x − mean)/sqrt(var + eps) |
// | decode_tokens(tokens, h, w, opts, comm) | (B, h·w, 4·latent)  | (B, 3, 16h, 16w) in [−1, 1]          |
// | patchify / unpatchify                 | (B, C, 2h, 2w) ↔ (B, 4C, h, w), channel c·4 + dy·2 + dx |
// | to_unit(img)                          | [−1, 1] → [0, 1], clamped (the image processor's postprocess) |
#pragma once

#include <algorithm>
#include <cmath>

#include "pdiff/models/autoencoder_kl/autoencoder_kl.hpp"
#include "pdiff/models/flux2/latents.hpp"

namespace pdiff {

// Cx: where the convolutions run (BasicAutoencoderKL<Cx>); latents and images are host fp32 either way.
template <class Cx>
class BasicFlux2Vae {
 public:
  BasicAutoencoderKL<Cx> kl;
  Tensor<float, OnCpu> bn_mean, bn_std;  // (4·latent): sqrt(running_var + eps)

  static BasicFlux2Vae load(const std::filesystem::path& dir) {
    auto cfg = AutoencoderKLConfig::load(dir);
    PDIFF_CHECK(cfg.is_flux2(), "Flux2Vae: '", dir.string(), "' holds a ", cfg.class_name,
                ", FLUX.2 needs AutoencoderKLFlux2");
    PDIFF_CHECK(cfg.patch_size == std::vector<std::int64_t>({2, 2}), "Flux2Vae: patch_size must be (2, 2)");
    auto ck = Checkpoint::open(dir);
    BasicFlux2Vae v;
    v.kl = BasicAutoencoderKL<Cx>::load(ck, cfg);
    v.bn_mean = ck.read("bn.running_mean");
    auto var = ck.read("bn.running_var");
    const std::int64_t C = 4 * cfg.latent_channels;
    PDIFF_CHECK(v.bn_mean.numel() == C && var.numel() == C, "Flux2Vae: bn running stats have ", v.bn_mean.numel(),
                " channels, the config needs 4 x latent_channels = ", C);
    v.bn_std = Tensor<float, OnCpu>({C});
    for (std::int64_t c = 0; c < C; ++c) v.bn_std(c) = std::sqrt(var(c) + float(cfg.batch_norm_eps));
    return v;
  }
  std::int64_t latent_channels() const { return 4 * kl.config.latent_channels; }

  template <class Comm = SelfComm>
  Tensor<float, OnCpu> image_latents(const Tensor<float, OnCpu>& img, const VaeRunOptions& o = {},
                                     Comm&& comm = SelfComm{}) const {
    PDIFF_CHECK(img.rank() == 4 && img.size(2) % 16 == 0 && img.size(3) % 16 == 0, "Flux2Vae: image", img.shape(),
                " must be (B, 3, H, W) with H and W multiples of 16");
    auto p = patchify(kl.encode(img, o, comm));
    const std::int64_t B = p.size(0), C = p.size(1), hw = p.size(2) * p.size(3);
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t c = 0; c < C; ++c) {
        float* q = p.data() + (b * C + c) * hw;
        for (std::int64_t i = 0; i < hw; ++i) q[i] = (q[i] - bn_mean(c)) / bn_std(c);
      }
    return p;
  }

  template <class Comm = SelfComm>
  Tensor<float, OnCpu> decode_tokens(const Tensor<float, OnCpu>& tokens, std::int64_t h, std::int64_t w,
                                     const VaeRunOptions& o = {}, Comm&& comm = SelfComm{}) const {
    PDIFF_CHECK(tokens.rank() == 3 && tokens.size(2) == latent_channels(), "Flux2Vae::decode_tokens: tokens",
                tokens.shape(), " must be (B, h*w, ", latent_channels(), ")");
    auto x = flux2::unpack(tokens, h, w);
    const std::int64_t B = x.size(0), C = x.size(1), hw = h * w;
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t c = 0; c < C; ++c) {
        float* q = x.data() + (b * C + c) * hw;
        for (std::int64_t i = 0; i < hw; ++i) q[i] = q[i] * bn_std(c) + bn_mean(c);
      }
    return kl.decode(unpatchify(x), o, comm);
  }

  // (B, C, 2h, 2w) → (B, 4C, h, w), channel c·4 + dy·2 + dx
  static Tensor<float, OnCpu> patchify(const Tensor<float, OnCpu>& x) {
    const std::int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), h = H / 2, w = W / 2;
    PDIFF_CHECK(H % 2 == 0 && W % 2 == 0, "Flux2Vae::patchify: latents", x.shape(), " need even height and width");
    Tensor<float, OnCpu> o({B, 4 * C, h, w});
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t c = 0; c < C; ++c)
        for (std::int64_t d = 0; d < 4; ++d)
          for (std::int64_t y = 0; y < h; ++y)
            for (std::int64_t i = 0; i < w; ++i)
              o(((b * 4 * C + c * 4 + d) * h + y) * w + i) = x(((b * C + c) * H + 2 * y + d / 2) * W + 2 * i + d % 2);
    return o;
  }
  static Tensor<float, OnCpu> unpatchify(const Tensor<float, OnCpu>& x) {
    const std::int64_t B = x.size(0), C = x.size(1) / 4, h = x.size(2), w = x.size(3);
    PDIFF_CHECK(x.size(1) % 4 == 0, "Flux2Vae::unpatchify: latents", x.shape(), " need 4·C channels");
    Tensor<float, OnCpu> o({B, C, 2 * h, 2 * w});
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t c = 0; c < C; ++c)
        for (std::int64_t d = 0; d < 4; ++d)
          for (std::int64_t y = 0; y < h; ++y)
            for (std::int64_t i = 0; i < w; ++i)
              o(((b * C + c) * 2 * h + 2 * y + d / 2) * 2 * w + 2 * i + d % 2) = x(((b * 4 * C + c * 4 + d) * h + y) * w + i);
    return o;
  }
  static Tensor<float, OnCpu> to_unit(const Tensor<float, OnCpu>& img) {
    Tensor<float, OnCpu> o(img.shape());
    for (std::int64_t i = 0; i < o.numel(); ++i) o(i) = std::clamp(img(i) / 2.0f + 0.5f, 0.0f, 1.0f);
    return o;
  }
};

using Flux2Vae = BasicFlux2Vae<HostCtx>;

}  // namespace pdiff
