// pdiff/models/flux2/latents.hpp — FLUX.2's latent bookkeeping (pipeline_flux2.py).
//
// | function                        | result                                                           |
// |---------------------------------|------------------------------------------------------------------|
// | pack(x)                         | (B, C, H, W) → (B, H·W, C), tokens row-major                     |
// | unpack(x, h, w)                 | the inverse                                                      |
// | latent_ids(h, w, t = 0)         | (h·w, 4) positions (t, y, x, 0); reference image i uses t = 10 + 10·i |
// | text_ids(n)                     | (n, 4) positions (0, 0, 0, l)                                    |
// | noise(seed, c, h, w)            | (1, c, h, w) standard normal from Philox: the same on every rank and backend |
#pragma once

#include "pdiff/backend/cpu/memory.hpp"
#include "pdiff/core/philox.hpp"
#include "pdiff/core/tensor.hpp"

namespace pdiff::flux2 {

inline Tensor<float, OnCpu> pack(const Tensor<float, OnCpu>& x) {
  PDIFF_CHECK(x.rank() == 4, "flux2::pack: latents", x.shape(), " must be (B, C, H, W)");
  const std::int64_t B = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  Tensor<float, OnCpu> o({B, HW, C});
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t c = 0; c < C; ++c)
      for (std::int64_t i = 0; i < HW; ++i) o((b * HW + i) * C + c) = x((b * C + c) * HW + i);
  return o;
}

inline Tensor<float, OnCpu> unpack(const Tensor<float, OnCpu>& x, std::int64_t h, std::int64_t w) {
  PDIFF_CHECK(x.rank() == 3 && x.size(1) == h * w, "flux2::unpack: tokens", x.shape(), " do not fill ", h, "x", w);
  const std::int64_t B = x.size(0), C = x.size(2), HW = h * w;
  Tensor<float, OnCpu> o({B, C, h, w});
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t c = 0; c < C; ++c)
      for (std::int64_t i = 0; i < HW; ++i) o((b * C + c) * HW + i) = x((b * HW + i) * C + c);
  return o;
}

inline Tensor<float, OnCpu> latent_ids(std::int64_t h, std::int64_t w, float t = 0.0f) {
  Tensor<float, OnCpu> ids({h * w, 4});
  for (std::int64_t y = 0; y < h; ++y)
    for (std::int64_t x = 0; x < w; ++x) {
      float* p = ids.data() + (y * w + x) * 4;
      p[0] = t, p[1] = float(y), p[2] = float(x), p[3] = 0.0f;
    }
  return ids;
}

inline Tensor<float, OnCpu> text_ids(std::int64_t n) {
  auto ids = Tensor<float, OnCpu>::zeros({n, 4});
  for (std::int64_t l = 0; l < n; ++l) ids(l * 4 + 3) = float(l);
  return ids;
}

inline Tensor<float, OnCpu> noise(std::uint64_t seed, std::int64_t c, std::int64_t h, std::int64_t w) {
  Tensor<float, OnCpu> x({1, c, h, w});
  Philox{seed, 0}.fill_normal(x.span());
  return x;
}

}  // namespace pdiff::flux2
