// pdiff/parallel/vae_tiling.hpp — how VAE encode/decode is cut into tiles and put back together,
// serially or over the ranks of a VaePatch group (vllm-omni's distributed_vae_executor.py).
//
// | mode   | cut                                              | merge                                         |
// |--------|--------------------------------------------------|-----------------------------------------------|
// | tiled  | tiles of `in_tile` every in_tile·(1−overlap) (the reference's tiled_decode / _tiled_encode grid); an input no larger than one tile is one region, whole, as the reference does not tile it | blend_v / blend_h with the tiles above and left, in row-major order, then crop to row_limit = out_tile − blend: identical to serial tiled |
// | patch  | a rows×cols grid of P blocks, each grown by a halo | crop the halo, concatenate (no blending)    |
// Work goes to ranks greedily: tiles by decreasing area, each to the least-loaded rank (ties: the
// lower rank); every rank then receives every tile (one broadcast per tile from its owner) and
// merges them the same way, so the result is identical on every rank of the group.
// The tile function maps an input region (B, C, h, w) to an output of (B, C', h·num/den, w·num/den)
// (decode: num/den = 8/1, encode: 1/8); the region and output sizes are known to every rank
// beforehand, so no shapes travel.
#pragma once

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>
#include <vector>

#include "pdiff/backend/cpu/memory.hpp"
#include "pdiff/comm/communicator.hpp"
#include "pdiff/core/tensor.hpp"

namespace pdiff {

enum class VaeSplit { tiled, patch };

// How one VAE call runs: whole, tiled or patch parallel (over the comm the call is given).
struct VaeRunOptions {
  std::optional<VaeSplit> split;  // nullopt: the whole image at once
  std::int64_t tile = 0;          // tiled: tile size in latent pixels (encode tiles the image by tile·f); 0: the model's
  std::int64_t halo = 0;          // patch: halo in latent pixels (0: the model's default)
  static VaeRunOptions whole() { return {}; }
  static VaeRunOptions tiled(std::int64_t tile = 0) { return {VaeSplit::tiled, tile, 0}; }
  static VaeRunOptions patch(std::int64_t halo = 0) { return {VaeSplit::patch, 0, halo}; }
  bool operator==(const VaeRunOptions&) const = default;
};

struct VaeRegion {
  std::int64_t y = 0, x = 0, h = 0, w = 0;                // input rows/cols of the region
  std::int64_t crop_y = 0, crop_x = 0, crop_h = 0, crop_w = 0;  // patch mode: output window kept
};

// The regions of one tiled or patch-parallel run over an input of H×W.
struct VaeTiling {
  VaeSplit mode = VaeSplit::tiled;
  std::int64_t H = 0, W = 0, num = 1, den = 1;
  std::int64_t rows = 0, cols = 0;
  std::int64_t blend = 0, row_limit = 0;  // tiled mode, in output pixels
  std::vector<VaeRegion> regions;         // row-major
  std::int64_t out(std::int64_t n) const { return n * num / den; }

  // The reference's grid: starts every int(in_tile·(1 − overlap)); blend = int(out_tile·overlap).
  static VaeTiling tiled(std::int64_t H, std::int64_t W, std::int64_t in_tile, std::int64_t num, std::int64_t den,
                         double overlap = 0.25) {
    std::int64_t scaled = 0;  // in_tile·num, and the input sizes times num, must fit int64 (a huge tile once wrapped)
    PDIFF_CHECK(in_tile >= 1 && num >= 1 && den >= 1 && H >= 0 && W >= 0 &&
                    !__builtin_mul_overflow(in_tile, num, &scaled) && !__builtin_mul_overflow(std::max(H, W), num, &scaled),
                "VaeTiling: tile ", in_tile, " over ", H, "x", W, " at ", num, "/", den,
                ": the tile must be positive and tile·", num, " and size·", num, " must fit int64");
    PDIFF_CHECK(in_tile * num % den == 0, "VaeTiling: tile ", in_tile, " is not a whole number of output pixels (",
                num, "/", den, ")");
    VaeTiling t;
    t.mode = VaeSplit::tiled, t.H = H, t.W = W, t.num = num, t.den = den;
    const auto stride = std::int64_t(double(in_tile) * (1.0 - overlap));
    const std::int64_t out_tile = in_tile * num / den;
    PDIFF_CHECK(stride >= 1, "VaeTiling: tile ", in_tile, " with overlap ", overlap, " leaves no stride");
    t.blend = std::int64_t(double(out_tile) * overlap);
    t.row_limit = out_tile - t.blend;
    if (H <= in_tile && W <= in_tile) {  // the reference tiles only inputs larger than a tile
      t.rows = t.cols = 1;
      t.regions.push_back({0, 0, H, W, 0, 0, t.out(H), t.out(W)});
      PDIFF_CHECK(H * num % den == 0 && W * num % den == 0, "VaeTiling: ", H, "x", W,
                  " is not a whole number of output pixels; sizes must be multiples of ", den);
      return t;
    }
    for (std::int64_t y = 0; y < H; y += stride) {
      ++t.rows;
      for (std::int64_t x = 0; x < W; x += stride)
        t.regions.push_back({y, x, std::min(in_tile, H - y), std::min(in_tile, W - x)});
    }
    t.cols = std::int64_t(t.regions.size()) / t.rows;
    for (auto& r : t.regions) {
      PDIFF_CHECK(r.h * num % den == 0 && r.w * num % den == 0, "VaeTiling: a tile of ", r.h, "x", r.w,
                  " at (", r.y, ", ", r.x, ") is not a whole number of output pixels; sizes must be multiples of ", den);
      r.crop_h = std::min(t.row_limit, t.out(r.h)), r.crop_w = std::min(t.row_limit, t.out(r.w));
    }
    return t;
  }

  // P blocks in a rows×cols grid (rows ≥ cols, as square as P allows), each grown by `halo` input
  // pixels on every inner side; the halo is cropped from the output.
  static VaeTiling patches(std::int64_t H, std::int64_t W, int P, std::int64_t halo, std::int64_t num,
                           std::int64_t den) {
    PDIFF_CHECK(P >= 1 && halo >= 0, "VaeTiling: patch mode needs P >= 1 and halo >= 0, got ", P, " and ", halo);
    VaeTiling t;
    t.mode = VaeSplit::patch, t.H = H, t.W = W, t.num = num, t.den = den;
    int c = int(std::sqrt(double(P)));
    while (P % c) --c;
    t.rows = P / c, t.cols = c;
    // block edges fall on whole output pixels: cut in units of `den` input pixels (8 for encode)
    PDIFF_CHECK(H % den == 0 && W % den == 0, "VaeTiling: ", H, "x", W, " is not a multiple of ", den);
    const std::int64_t Hu = H / den, Wu = W / den;
    PDIFF_CHECK(t.rows <= Hu && t.cols <= Wu, "VaeTiling: ", H, "x", W, " is too small for ", t.rows, "x", t.cols,
                " patches");
    for (std::int64_t i = 0; i < t.rows; ++i)
      for (std::int64_t j = 0; j < t.cols; ++j) {
        const std::int64_t y0 = Hu * i / t.rows * den, y1 = Hu * (i + 1) / t.rows * den;
        const std::int64_t x0 = Wu * j / t.cols * den, x1 = Wu * (j + 1) / t.cols * den;
        const std::int64_t ey0 = std::max<std::int64_t>(0, y0 - halo), ey1 = std::min(H, y1 + halo);
        const std::int64_t ex0 = std::max<std::int64_t>(0, x0 - halo), ex1 = std::min(W, x1 + halo);
        t.regions.push_back({ey0, ex0, ey1 - ey0, ex1 - ex0, t.out(y0 - ey0), t.out(x0 - ex0), t.out(y1 - y0),
                             t.out(x1 - x0)});
      }
    for (auto& r : t.regions)
      PDIFF_CHECK(r.h * num % den == 0 && r.w * num % den == 0 && r.y * num % den == 0 && r.x * num % den == 0,
                  "VaeTiling: patch ", r.h, "x", r.w, " at (", r.y, ", ", r.x, ") does not map to whole output pixels");
    return t;
  }

  // Owner rank of every region: decreasing area to the least-loaded rank.
  std::vector<int> assign(int P) const {
    std::vector<std::size_t> order(regions.size());
    std::iota(order.begin(), order.end(), std::size_t(0));
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return regions[a].h * regions[a].w > regions[b].h * regions[b].w;
    });
    std::vector<std::int64_t> load(std::size_t(P), 0);
    std::vector<int> owner(regions.size(), 0);
    for (std::size_t k : order) {
      const auto r = int(std::min_element(load.begin(), load.end()) - load.begin());
      owner[k] = r;
      load[std::size_t(r)] += regions[k].h * regions[k].w;
    }
    return owner;
  }
};

namespace detail {
// b's first rows/cols become a blend of a's last ones (the reference's blend_v / blend_h), in place.
inline void blend_edge(const Tensor<float, OnCpu>& a, Tensor<float, OnCpu>& b, std::int64_t extent, bool vertical) {
  const std::int64_t BC = b.size(0) * b.size(1), ha = a.size(2), wa = a.size(3), hb = b.size(2), wb = b.size(3);
  extent = std::min({vertical ? ha : wa, vertical ? hb : wb, extent});
  for (std::int64_t p = 0; p < BC; ++p)
    for (std::int64_t k = 0; k < extent; ++k) {
      const float wb_k = float(double(k) / double(extent)), wa_k = float(1.0 - double(k) / double(extent));
      if (vertical) {
        const float* ar = a.data() + (p * ha + ha - extent + k) * wa;
        float* br = b.data() + (p * hb + k) * wb;
        for (std::int64_t x = 0; x < std::min(wa, wb); ++x) br[x] = ar[x] * wa_k + br[x] * wb_k;
      } else {
        for (std::int64_t y = 0; y < std::min(ha, hb); ++y) {
          float& bv = b.data()[(p * hb + y) * wb + k];
          bv = a.data()[(p * ha + y) * wa + wa - extent + k] * wa_k + bv * wb_k;
        }
      }
    }
}
}  // namespace detail

// The input under a region: x (B, C, H, W) → (B, C, r.h, r.w).
inline Tensor<float, OnCpu> crop_region(const Tensor<float, OnCpu>& x, const VaeRegion& r) {
  PDIFF_CHECK(x.rank() == 4 && r.y + r.h <= x.size(2) && r.x + r.w <= x.size(3), "crop_region: region ", r.h, "x",
              r.w, " at (", r.y, ", ", r.x, ") is outside x", x.shape());
  const std::int64_t BC = x.size(0) * x.size(1), H = x.size(2), W = x.size(3);
  Tensor<float, OnCpu> o({x.size(0), x.size(1), r.h, r.w});
  for (std::int64_t p = 0; p < BC; ++p)
    for (std::int64_t y = 0; y < r.h; ++y) {
      const float* src = x.data() + (p * H + r.y + y) * W + r.x;
      std::copy(src, src + r.w, o.data() + (p * r.h + y) * r.w);
    }
  return o;
}

namespace detail {
// Broadcasts a host tensor over any communicator: a device one (NcclComm, DeviceThreadComm on a CUDA
// layout's VaePatch axis) gets it through a device buffer.
template <class Comm>
void broadcast_host(Comm& comm, Tensor<float, OnCpu>& t, int root) {
  using Cm = std::remove_cvref_t<Comm>;
  if constexpr (comm_accepts<Cm, OnCpu>()) {
    comm.broadcast(t.data(), std::size_t(t.numel()), root);
  } else {
    auto d = to<typename Cm::memory_space>(t);
    comm.broadcast(d.data(), std::size_t(d.numel()), root);
    t = to<OnCpu>(d);
  }
}
}  // namespace detail

// Runs fn(region) → (B, C, out(h), out(w)) for every region on its owner rank of `comm`, shares the
// results and merges them; returns the merged output on every rank.
template <class Comm, class Fn>
Tensor<float, OnCpu> run_tiling(Comm& comm, const VaeTiling& t, std::int64_t B, std::int64_t C, Fn&& fn) {
  const int P = comm.size(), me = comm.rank();
  const auto owner = t.assign(P);
  std::vector<Tensor<float, OnCpu>> outs(t.regions.size());
  for (std::size_t k = 0; k < t.regions.size(); ++k) {
    const auto& r = t.regions[k];
    const Shape want{B, C, t.out(r.h), t.out(r.w)};
    if (owner[k] == me) {
      outs[k] = fn(r);
      PDIFF_CHECK(outs[k].shape() == want, "VaeTiling: the tile function returned ", outs[k].shape(), " for a ", r.h,
                  "x", r.w, " region, expected ", want);
    }
  }
  for (std::size_t k = 0; k < t.regions.size(); ++k) {
    const auto& r = t.regions[k];
    if (owner[k] != me) outs[k] = Tensor<float, OnCpu>({B, C, t.out(r.h), t.out(r.w)});
    if (P > 1) detail::broadcast_host(comm, outs[k], owner[k]);
  }
  // Output extent: the sum of the kept windows along the first column and the first row.
  std::int64_t OH = 0, OW = 0;
  for (std::int64_t i = 0; i < t.rows; ++i) OH += t.regions[std::size_t(i * t.cols)].crop_h;
  for (std::int64_t j = 0; j < t.cols; ++j) OW += t.regions[std::size_t(j)].crop_w;
  Tensor<float, OnCpu> out({B, C, OH, OW});
  std::int64_t oy = 0;
  for (std::int64_t i = 0; i < t.rows; ++i) {
    std::int64_t ox = 0;
    for (std::int64_t j = 0; j < t.cols; ++j) {
      const auto k = std::size_t(i * t.cols + j);
      auto& tile = outs[k];
      const auto& r = t.regions[k];
      if (t.mode == VaeSplit::tiled) {
        if (i > 0) detail::blend_edge(outs[k - std::size_t(t.cols)], tile, t.blend, true);
        if (j > 0) detail::blend_edge(outs[k - 1], tile, t.blend, false);
      }
      const std::int64_t th = tile.size(2), tw = tile.size(3);
      for (std::int64_t p = 0; p < B * C; ++p)
        for (std::int64_t y = 0; y < r.crop_h; ++y) {
          const float* src = tile.data() + (p * th + r.crop_y + y) * tw + r.crop_x;
          std::copy(src, src + r.crop_w, out.data() + (p * OH + oy + y) * OW + ox);
        }
      ox += r.crop_w;
    }
    oy += t.regions[std::size_t(i * t.cols)].crop_h;
  }
  return out;
}

}  // namespace pdiff
