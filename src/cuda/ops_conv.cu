// src/cuda/ops_conv.cu — the VAE's ops on the GPU (backend/cpu/conv.hpp's, same shapes, checks and
// results up to GEMM rounding):
//
// | op                  | how                                                                          |
// |---------------------|------------------------------------------------------------------------------|
// | conv2d              | 1×1 stride 1 unpadded: one GEMM per image on x as (C, H·W). Otherwise bands of output rows: an im2col kernel fills (C·kh·kw, rows·Wo), one cuBLASLt GEMM (fp32 accumulation) per band into the output rows; the band buffer is kept ≤ 64 M elements |
// | bias                | one kernel adding b[o] over each output channel                              |
// | upsample_nearest2x  | one thread per output element                                                |
// | transpose_last2     | 32×32 tiles through shared memory                                            |
// | modulate_channels_  | one thread per element, scale/shift per (image, channel) in fp32             |
#include <algorithm>

#include "ops_common.cuh"
#include "pdiff/core/copy_ops.hpp"

namespace pdiff {

namespace detail {

// col (K = C·kh·kw, n = rows·Wo): row (c, i, j), column (y, ox) = x[c, (y0 + y)·s + i − pt, ox·s + j − pl] or 0.
template <class T>
__global__ void im2col_kernel(const T* __restrict__ x, T* __restrict__ col, std::int64_t C, std::int64_t H,
                              std::int64_t W, int kh, int kw, Conv2dArgs a, std::int64_t y0, std::int64_t rows,
                              std::int64_t Wo) {
  const std::int64_t n = rows * Wo, total = C * kh * kw * n;
  for (std::int64_t idx = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t k = idx / n, p = idx % n;
    const std::int64_t c = k / (kh * kw), i = (k / kw) % kh, j = k % kw;
    const std::int64_t iy = (y0 + p / Wo) * a.stride + i - a.pad_top, ix = (p % Wo) * a.stride + j - a.pad_left;
    col[idx] = (iy >= 0 && iy < H && ix >= 0 && ix < W) ? x[(c * H + iy) * W + ix] : from_float<T>(0.0f);
  }
}

// out (B, O, HW) += b[o]
template <class T>
__global__ void channel_bias_kernel(T* out, const T* b, std::int64_t O, std::int64_t hw, std::int64_t total) {
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += std::int64_t(gridDim.x) * blockDim.x)
    out[i] = from_float<T>(to_float(out[i]) + to_float(b[(i / hw) % O]));
}

template <class T>
__global__ void upsample_nearest2x_kernel(const T* x, T* out, std::int64_t H, std::int64_t W, std::int64_t total) {
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t ox = i % (2 * W), oy = (i / (2 * W)) % (2 * H), p = i / (4 * H * W);
    out[i] = x[(p * H + oy / 2) * W + ox / 2];
  }
}

// (B, M, N) → (B, N, M); grid (⌈N/32⌉, ⌈M/32⌉, B), block (32, 8)
template <class T>
__global__ void transpose_kernel(const T* x, T* out, std::int64_t B, std::int64_t M, std::int64_t N) {
  __shared__ T tile[32][33];
  const std::int64_t m0 = std::int64_t(blockIdx.y) * 32, n0 = std::int64_t(blockIdx.x) * 32;
  // batches beyond the grid's 65535 in z: each block walks b, b + gridDim.z, ... (DCAE's rearrangement
  // transposes B·C·H small matrices)
  for (std::int64_t b = blockIdx.z; b < B; b += gridDim.z) {
    const T* src = x + b * M * N;
    T* dst = out + b * M * N;
    for (int r = int(threadIdx.y); r < 32; r += 8) {
      const std::int64_t m = m0 + r, n = n0 + threadIdx.x;
      if (m < M && n < N) tile[r][threadIdx.x] = src[m * N + n];
    }
    __syncthreads();
    for (int r = int(threadIdx.y); r < 32; r += 8) {
      const std::int64_t n = n0 + r, m = m0 + threadIdx.x;
      if (m < M && n < N) dst[n * M + m] = tile[threadIdx.x][r];
    }
    __syncthreads();  // the tile is rewritten for the next b
  }
}

template <class T>
__global__ void modulate_channels_kernel(T* x, const float* ss, std::int64_t C, std::int64_t n, std::int64_t total) {
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t bc = i / n, b = bc / C, c = bc % C;
    x[i] = from_float<T>(to_float(x[i]) * (1.0f + ss[b * 2 * C + c]) + ss[b * 2 * C + C + c]);
  }
}

inline unsigned grid_for(std::int64_t total) { return unsigned(std::min<std::int64_t>((total + 255) / 256, 65535)); }

}  // namespace detail

template <class T>
CudaTensor<T> conv2d(const CudaTensor<T>& x, const CudaTensor<T>& w, const CudaTensor<T>& b, const Conv2dArgs& a) {
  const Conv2dDims d = Conv2dDims::of(x.shape(), w.shape(), b.empty() ? 0 : b.numel(), a);
  const auto [B, C, H, W, O, kh, kw, Ho, Wo, K] = d;
  CudaTensor<T> out({B, O, Ho, Wo});
  if (out.numel() == 0) return out;
  PDIFF_CHECK(K > 0, "conv2d: x", x.shape(), " has no input channels");
  const cudaStream_t s = current_cuda_stream();
  const auto wm = w.view({O, K});
  const bool pointwise = d.pointwise(a);
  const std::int64_t band = std::max<std::int64_t>(1, std::min(Ho, (std::int64_t(64) << 20) / std::max<std::int64_t>(1, K * Wo)));
  CudaTensor<T> col, tmp;
  if (!pointwise) {
    col = CudaTensor<T>({K, band * Wo});
    if (band < Ho) tmp = CudaTensor<T>({O, band * Wo});
  }
  for (std::int64_t bi = 0; bi < B; ++bi) {
    const auto xb = x.slice(bi, bi + 1);
    auto ob = out.slice(bi, bi + 1).view({O, Ho * Wo});
    if (pointwise) {
      gemm(wm, xb.view({C, H * W}), ob);
      continue;
    }
    for (std::int64_t y0 = 0; y0 < Ho; y0 += band) {
      const std::int64_t rows = std::min(band, Ho - y0), n = rows * Wo;
      detail::im2col_kernel<T><<<detail::grid_for(K * n), 256, 0, s>>>(xb.data(), col.data(), C, H, W, int(kh),
                                                                        int(kw), a, y0, rows, Wo);
      cuda::detail::check_launch("conv2d (im2col)");
      const auto cb = col.view({K * band * Wo}).slice(0, K * n).view({K, n});
      if (rows == Ho) {
        gemm(wm, cb, ob);
      } else {
        auto tb = tmp.view({O * band * Wo}).slice(0, O * n).view({O, n});
        gemm(wm, cb, tb);
        // the band's rows into each output channel's plane
        detail::copy_rows<OnCuda>(ob.data() + y0 * Wo, Ho * Wo, tb.data(), n, n, O);
      }
    }
  }
  if (!b.empty()) {
    detail::channel_bias_kernel<T><<<detail::grid_for(out.numel()), 256, 0, s>>>(out.data(), b.data(), O, Ho * Wo,
                                                                                  out.numel());
    cuda::detail::check_launch("conv2d (bias)");
  }
  return out;
}

template <class T>
CudaTensor<T> upsample_nearest2x(const CudaTensor<T>& x) {
  PDIFF_CHECK(x.rank() == 4, "upsample_nearest2x: x", x.shape(), " must be (B, C, H, W)");
  CudaTensor<T> out({x.size(0), x.size(1), 2 * x.size(2), 2 * x.size(3)});
  if (out.numel() == 0) return out;
  detail::upsample_nearest2x_kernel<T><<<detail::grid_for(out.numel()), 256, 0, current_cuda_stream()>>>(
      x.data(), out.data(), x.size(2), x.size(3), out.numel());
  cuda::detail::check_launch("upsample_nearest2x");
  return out;
}

template <class T>
CudaTensor<T> transpose_last2(const CudaTensor<T>& x) {
  PDIFF_CHECK(x.rank() == 3, "transpose_last2: x", x.shape(), " must be (B, M, N)");
  const std::int64_t B = x.size(0), M = x.size(1), N = x.size(2);
  CudaTensor<T> out({B, N, M});
  if (out.numel() == 0) return out;
  PDIFF_CHECK((M + 31) / 32 <= 65535, "transpose_last2: x", x.shape(), " is beyond the grid's limits");
  const dim3 grid(unsigned((N + 31) / 32), unsigned((M + 31) / 32), unsigned(std::min<std::int64_t>(B, 65535)));
  detail::transpose_kernel<T><<<grid, dim3(32, 8), 0, current_cuda_stream()>>>(x.data(), out.data(), B, M, N);
  cuda::detail::check_launch("transpose_last2");
  return out;
}

template <class T>
void modulate_channels_(CudaTensor<T>& x, const CudaTensor<float>& ss) {
  PDIFF_CHECK(x.rank() >= 2 && ss.numel() == 2 * x.size(0) * x.size(1), "modulate_channels_: x", x.shape(),
              " must be (B, C, ...) and scale/shift", ss.shape(), " (B, 2·C)");
  if (x.numel() == 0) return;
  detail::modulate_channels_kernel<T><<<detail::grid_for(x.numel()), 256, 0, current_cuda_stream()>>>(
      x.data(), ss.data(), x.size(1), x.numel() / (x.size(0) * x.size(1)), x.numel());
  cuda::detail::check_launch("modulate_channels_");
}

#define PDIFF_INSTANTIATE(T)                                                                                       \
  template CudaTensor<T> conv2d(const CudaTensor<T>&, const CudaTensor<T>&, const CudaTensor<T>&, const Conv2dArgs&); \
  template CudaTensor<T> upsample_nearest2x(const CudaTensor<T>&);                                                 \
  template CudaTensor<T> transpose_last2(const CudaTensor<T>&);                                                   \
  template void modulate_channels_(CudaTensor<T>&, const CudaTensor<float>&);
PDIFF_CUDA_OPS_FOR_TYPES(PDIFF_INSTANTIATE)
#undef PDIFF_INSTANTIATE

}  // namespace pdiff
