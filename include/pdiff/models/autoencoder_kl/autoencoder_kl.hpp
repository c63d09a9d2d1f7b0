// pdiff/models/autoencoder_kl/autoencoder_kl.hpp — AutoencoderKL: encode and decode of diffusers'
// AutoencoderKL / AutoencoderKLFlux2 (the shared part: encoder, decoder, quant convs), whole,
// tiled like the reference, or spread over the ranks of a VaePatch group.
//
// | call                              | input              | output                                  |
// |-----------------------------------|--------------------|-----------------------------------------|
// | encode(x, opts, comm)             | (B, in, H, W)      | posterior mean (B, latent, H/f, W/f) = the reference's latent_dist.mode() |
// | decode(z, opts, comm)             | (B, latent, h, w)  | (B, out, h·f, w·f), pixels in [−1, 1]  |
// | to_latents / from_latents         | FLUX.1 scaling: scaling·(z − shift) and back (identity when unset) |
// opts.split: none (whole image), tiled (the reference's tile grid and blending: equal to serial
// tiled decode on every group size), patch (one haloed block per rank, no blending). H and W must
// be multiples of f = 8; anything else is an error naming the size.
// BasicAutoencoderKL<C> runs its convolutions in C's backend and type (AutoencoderKL = the host fp32 one;
// BasicAutoencoderKL<Ctx<Layout<OnCuda>, bf16>> on the GPU). Inputs and outputs are host fp32 either way:
// each whole image, tile or patch goes to the device, runs there and comes back (a few MB, next to
// GFLOPs of convolutions), so the tiling / patch logic and its communicator stay on the host.
#pragma once

#include <optional>

#include "pdiff/core/copy_ops.hpp"
#include "pdiff/comm/self_comm.hpp"
#include "pdiff/models/autoencoder_kl/decoder.hpp"
#include "pdiff/models/autoencoder_kl/encoder.hpp"
#include "pdiff/parallel/vae_tiling.hpp"

namespace pdiff {


template <class C>
class BasicAutoencoderKL {
 public:
  using ctx = C;
  AutoencoderKLConfig config;
  VaeEncoder<C> encoder;
  VaeDecoder<C> decoder;
  std::optional<VaeConv<C>> quant_conv, post_quant_conv;

  static BasicAutoencoderKL load(const Checkpoint& ck, const AutoencoderKLConfig& c) {
    BasicAutoencoderKL v;
    v.config = c;
    v.encoder = VaeEncoder<C>::load(ck, c);
    v.decoder = VaeDecoder<C>::load(ck, c);
    if (c.use_quant_conv)
      v.quant_conv = VaeConv<C>::load(ck, "quant_conv", 2 * c.latent_channels, 2 * c.latent_channels, 1, {});
    if (c.use_post_quant_conv)
      v.post_quant_conv = VaeConv<C>::load(ck, "post_quant_conv", c.latent_channels, c.latent_channels, 1, {});
    return v;
  }
  static BasicAutoencoderKL load(const std::filesystem::path& dir) {
    return load(Checkpoint::open(dir), AutoencoderKLConfig::load(dir));
  }
  std::int64_t factor() const { return config.scale(); }

  // x: (B, in, H, W) → posterior mean (B, latent, H/f, W/f)
  template <class Comm = SelfComm>
  Tensor<float, OnCpu> encode(const Tensor<float, OnCpu>& x, const VaeRunOptions& o = {}, Comm&& comm = SelfComm{}) const {
    return narrow(encode_moments(x, o, std::forward<Comm>(comm)), 1, 0, config.latent_channels);
  }

  // x: (B, in, H, W) → the posterior's moments (B, 2·latent, H/f, W/f) = [mean | logvar], whole, tiled
  // or in patches like encode (for a sampled latent: mean + exp(logvar / 2)·ε, as FLUX.1's BFL code does).
  template <class Comm = SelfComm>
  Tensor<float, OnCpu> encode_moments(const Tensor<float, OnCpu>& x, const VaeRunOptions& o = {},
                                      Comm&& comm = SelfComm{}) const {
    const std::int64_t f = factor();
    PDIFF_CHECK(x.rank() == 4 && x.size(1) == config.in_channels, "AutoencoderKL::encode: image", x.shape(),
                " must be (B, ", config.in_channels, ", H, W)");
    PDIFF_CHECK(x.size(2) % f == 0 && x.size(3) % f == 0, "AutoencoderKL::encode: image size ", x.size(2), "x",
                x.size(3), " must be a multiple of the VAE factor ", f);
    auto moments = [&](const Tensor<float, OnCpu>& img) { return posterior_moments(img); };
    if (!o.split) return moments(x);
    const VaeTiling t = *o.split == VaeSplit::tiled
                            ? VaeTiling::tiled(x.size(2), x.size(3), o.tile ? o.tile * f : config.tile_sample(), 1, f,
                                               config.overlap_factor)
                            : VaeTiling::patches(x.size(2), x.size(3), comm.size(), halo(o) * f, 1, f);
    return run_tiling(comm, t, x.size(0), 2 * config.latent_channels,
                      [&](const VaeRegion& r) { return moments(crop_region(x, r)); });
  }

  // z: (B, latent, h, w) → image (B, out, h·f, w·f)
  template <class Comm = SelfComm>
  Tensor<float, OnCpu> decode(const Tensor<float, OnCpu>& z, const VaeRunOptions& o = {}, Comm&& comm = SelfComm{}) const {
    PDIFF_CHECK(z.rank() == 4 && z.size(1) == config.latent_channels, "AutoencoderKL::decode: latents", z.shape(),
                " must be (B, ", config.latent_channels, ", h, w)");
    auto dec = [&](const Tensor<float, OnCpu>& lat) {
      const auto z = to_ctx<C>(lat);
      return to_host_f32(decoder(post_quant_conv ? (*post_quant_conv)(z) : z));
    };
    if (!o.split) return dec(z);
    const std::int64_t f = factor();
    const VaeTiling t = *o.split == VaeSplit::tiled
                            ? VaeTiling::tiled(z.size(2), z.size(3), o.tile ? o.tile : config.tile_latent(), f, 1,
                                               config.overlap_factor)
                            : VaeTiling::patches(z.size(2), z.size(3), comm.size(), halo(o), f, 1);
    return run_tiling(comm, t, z.size(0), config.out_channels, [&](const VaeRegion& r) { return dec(crop_region(z, r)); });
  }

  // FLUX.1 (BAGEL): the denoiser's latents are scaling·(mean − shift); decode takes them back.
  Tensor<float, OnCpu> to_latents(const Tensor<float, OnCpu>& mean) const {
    Tensor<float, OnCpu> o(mean.shape());
    for (std::int64_t i = 0; i < o.numel(); ++i)
      o(i) = float((double(mean(i)) - config.shift_factor) * config.scaling_factor);
    return o;
  }
  Tensor<float, OnCpu> from_latents(const Tensor<float, OnCpu>& z) const {
    Tensor<float, OnCpu> o(z.shape());
    for (std::int64_t i = 0; i < o.numel(); ++i) o(i) = float(double(z(i)) / config.scaling_factor + config.shift_factor);
    return o;
  }

 private:
  std::int64_t halo(const VaeRunOptions& o) const {
    return o.halo ? o.halo : std::max<std::int64_t>(1, config.tile_latent() / 8);
  }
  // moments: (B, 2·latent, h, w) = [mean | logvar]; the mode of the posterior is the mean
  Tensor<float, OnCpu> posterior_moments(const Tensor<float, OnCpu>& x) const {
    auto m = encoder(to_ctx<C>(x));
    if (quant_conv) m = (*quant_conv)(m);
    return to_host_f32(m);
  }
};

using AutoencoderKL = BasicAutoencoderKL<HostCtx>;

}  // namespace pdiff
