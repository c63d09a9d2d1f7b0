// src/cuda/ops_moe.cu — the MoE layer's token permutation and expert GEMMs on the GPU:
//
//   moe_group:       one warp per token: softmax over the experts (fp32), k rounds of a warp arg-max
//                    (ties to the lower expert, as the CPU's partial_sort), weights renormalised or
//                    scaled; then the (expert, slot) pairs sorted by expert with CUB's radix sort
//                    (stable, so tokens keep their order inside an expert, as the CPU's counting sort),
//                    gathered into (token, weight) rows, counted per expert and the counts copied back.
//   grouped_gemm_nt: every expert's rows times its weightᵀ in one cublasGemmGroupedBatchedEx call (one
//                    group per non-empty expert) when the groups are small (< 128 rows on average);
//                    larger groups run one cuBLASLt GEMM per expert (twice the grouped call's speed
//                    at HunyuanImage-3.0's sizes on an H200).
#include <cub/device/device_radix_sort.cuh>
#include <cublas_v2.h>

#include <bit>
#include <cfloat>
#include <vector>

#include "ops_common.cuh"
#include "pdiff/backend/cuda/check.hpp"
#include "pdiff/backend/cuda/device.hpp"
#include "pdiff/backend/cuda/handles.hpp"

namespace pdiff {

namespace detail {

// Is (p, e) after (q, f) in the routing order (probability descending, then expert ascending)?
__device__ inline bool route_after(float p, int e, float q, int f) { return p < q || (p == q && e > f); }

// Warp per token t of [t0, t0 + n): writes slot t·k + j (j < k, relative to t0) of expert / weight / slot.
// A row whose logits are not all finite (NaN, ±inf: the sum is not finite) records its token + 1 in
// *bad (the host raises an error naming it) and routes to experts 0..k−1 so nothing is out of range.
__global__ void moe_topk_kernel(const float* logits, std::int64_t t0, std::int64_t n, int E, int k, bool renormalize,
                                float scaling, std::uint32_t* expert, float* weight, std::int32_t* slot,
                                unsigned long long* bad) {
  const std::int64_t t = (std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = int(threadIdx.x % 32);
  if (t >= n) return;
  const float* l = logits + (t0 + t) * E;
  float m = -FLT_MAX;
  for (int e = lane; e < E; e += 32) m = fmaxf(m, l[e]);
  for (int o = 16; o > 0; o /= 2) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
  float sum = 0.0f;
  for (int e = lane; e < E; e += 32) sum += expf(l[e] - m);
  for (int o = 16; o > 0; o /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  if (!isfinite(sum) || !isfinite(m)) {
    if (lane == 0) {
      atomicMax(bad, static_cast<unsigned long long>(t0 + t + 1));
      for (int j = 0; j < k; ++j) expert[t * k + j] = std::uint32_t(j), weight[t * k + j] = 0.0f, slot[t * k + j] = int(t * k + j);
    }
    return;
  }
  float prev_p = FLT_MAX, chosen = 0.0f;
  int prev_e = -1;
  for (int j = 0; j < k; ++j) {
    // the best (p, e) strictly after the previous choice
    float bp = -1.0f;
    int be = E;
    for (int e = lane; e < E; e += 32) {
      const float p = expf(l[e] - m) / sum;
      if (route_after(p, e, prev_p, prev_e) && !route_after(p, e, bp, be)) bp = p, be = e;
    }
    for (int o = 16; o > 0; o /= 2) {
      const float op = __shfl_xor_sync(0xffffffffu, bp, o);
      const int oe = __shfl_xor_sync(0xffffffffu, be, o);
      if (route_after(bp, be, op, oe)) bp = op, be = oe;
    }
    prev_p = bp, prev_e = be;
    chosen += bp;
    if (lane == 0) {
      const std::int64_t s = t * k + j;
      expert[s] = std::uint32_t(be);
      weight[s] = bp;
      slot[s] = std::int32_t(s);
    }
  }
  if (lane == 0) {
    const float f = renormalize && k > 1 ? 1.0f / fmaxf(chosen, FLT_EPSILON) : scaling;
    for (int j = 0; j < k; ++j) weight[t * k + j] *= f;
  }
}

// Sorted (expert, slot) → rows (token, weight) and counts per expert.
__global__ void moe_rows_kernel(const std::uint32_t* expert, const std::int32_t* slot, const float* slot_weight,
                                std::int64_t n, int k, std::int64_t t0, std::int32_t* token, float* weight,
                                int* count) {
  for (std::int64_t j = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; j < n;
       j += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int32_t s = slot[j];
    token[j] = std::int32_t(t0 + s / k);
    weight[j] = slot_weight[s];
    atomicAdd(count + expert[j], 1);
  }
}

inline void cublas_check(cublasStatus_t s, const char* call) {
  if (s != CUBLAS_STATUS_SUCCESS) throw Error(cat("cuBLAS: ", call, " failed: ", cublasGetStatusString(s)));
}

// One cuBLAS handle per (thread, device), destroyed with the thread.
inline cublasHandle_t cublas_handle(int device) {
  return per_thread_handle<cublasHandle_t, cublasCreate_v2, cublasDestroy_v2>(device, "cuBLAS");
}

thread_local bool last_grouped = false;

// Up to n groups' (A, B, C) pointers as a kernel parameter (3 KiB, under the 4 KiB limit).
struct PtrChunk {
  static constexpr int n = 128;
  int count = 0;
  std::uint64_t p[3][n];
};
// ptrs: [A × groups | B × groups | C × groups]; this chunk's groups start at `first`.
__global__ void write_pointers_kernel(PtrChunk chunk, std::uint64_t* ptrs, int first, int groups) {
  const int which = int(threadIdx.x) / PtrChunk::n, i = int(threadIdx.x) % PtrChunk::n;
  if (i < chunk.count) ptrs[which * groups + first + i] = chunk.p[which][i];
}

}  // namespace detail

ExpertGroups<OnCuda> moe_group(const CudaTensor<float>& logits, int k, bool renormalize, float scaling,
                               std::int64_t t0, std::int64_t t1) {
  PDIFF_CHECK(logits.rank() == 2 && 0 <= t0 && t0 <= t1 && t1 <= logits.size(0), "moe_group: tokens [", t0, ", ",
              t1, ") of logits", logits.shape(), " (tokens, experts)");
  const std::int64_t E = logits.size(1), T = t1 - t0, n = T * k;
  PDIFF_CHECK(k >= 1 && k <= E && E <= std::int64_t(INT32_MAX), "moe_group: top_k (", k, ") must be in [1, experts = ",
              E, "]");
  PDIFF_CHECK(n <= std::int64_t(INT32_MAX), "moe_group: ", T, " tokens × top-", k, " exceed 2^31 rows");
  const cudaStream_t s = current_cuda_stream();
  ExpertGroups<OnCuda> g;
  g.token = CudaTensor<std::int32_t>({n});
  g.weight = CudaTensor<float>({n});
  g.count.assign(std::size_t(E), 0);
  if (n == 0) return g;
  CudaTensor<std::uint32_t> expert({n}), expert_sorted({n});
  CudaTensor<std::int32_t> slot({n}), slot_sorted({n});
  CudaTensor<float> slot_weight({n});
  auto bad = CudaTensor<unsigned long long>::zeros({1});
  const std::int64_t threads = T * 32;
  detail::moe_topk_kernel<<<unsigned((threads + 255) / 256), 256, 0, s>>>(
      logits.data(), t0, T, int(E), k, renormalize, scaling, expert.data(), slot_weight.data(), slot.data(), bad.data());
  cuda::detail::check_launch("moe_group (top-k)");
  const int bits = std::max(1, int(std::bit_width(std::uint64_t(E - 1))));
  std::size_t temp_bytes = 0;
  PDIFF_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, expert.data(), expert_sorted.data(),
                                                   slot.data(), slot_sorted.data(), int(n), 0, bits, s));
  CudaTensor<std::uint8_t> temp({std::int64_t(std::max<std::size_t>(temp_bytes, 1))});
  PDIFF_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp.data(), temp_bytes, expert.data(), expert_sorted.data(),
                                                   slot.data(), slot_sorted.data(), int(n), 0, bits, s));
  auto count = CudaTensor<int>::zeros({E});
  detail::moe_rows_kernel<<<unsigned(std::min<std::int64_t>((n + 255) / 256, 65535)), 256, 0, s>>>(
      expert_sorted.data(), slot_sorted.data(), slot_weight.data(), n, k, t0, g.token.data(), g.weight.data(),
      count.data());
  cuda::detail::check_launch("moe_group (rows)");
  std::vector<int> host(static_cast<std::size_t>(E));
  unsigned long long bad_token = 0;
  PDIFF_CUDA_CHECK(cudaMemcpyAsync(host.data(), count.data(), std::size_t(E) * sizeof(int), cudaMemcpyDeviceToHost, s));
  PDIFF_CUDA_CHECK(cudaMemcpyAsync(&bad_token, bad.data(), sizeof bad_token, cudaMemcpyDeviceToHost, s));
  PDIFF_CUDA_CHECK(cudaStreamSynchronize(s));
  PDIFF_CHECK(bad_token == 0, "MoE router: the logits of token ", bad_token - 1,
              " are not finite (NaN or inf): the input or the router weights hold non-finite values");
  for (std::int64_t e = 0; e < E; ++e) g.count[std::size_t(e)] = host[std::size_t(e)];
  return g;
}

template <class T>
void grouped_gemm_nt(const CudaTensor<T>& x, std::span<const CudaTensor<T>* const> w, std::span<const std::int64_t> rows,
                     CudaTensor<T>& y) {
  PDIFF_CHECK(w.size() == rows.size() && !w.empty() && x.rank() == 2 && w[0]->rank() == 2, "grouped_gemm_nt: ",
              w.size(), " weights for ", rows.size(), " row groups, x", x.shape());
  const std::int64_t K = x.size(1), N = w[0]->size(0);
  std::int64_t n = 0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    PDIFF_CHECK(w[i]->rank() == 2 && w[i]->size(0) == N && w[i]->size(1) == K, "grouped_gemm_nt: weight ", i,
                w[i]->shape(), " must be (", N, ", ", K, ")");
    PDIFF_CHECK(rows[i] >= 0 && rows[i] <= std::int64_t(INT32_MAX), "grouped_gemm_nt: group ", i, " has ", rows[i],
                " rows");
    n += rows[i];
  }
  PDIFF_CHECK(x.rank() == 2 && x.size(0) == n && y.rank() == 2 && y.size(0) == n && y.size(1) == N,
              "grouped_gemm_nt: x", x.shape(), " and y", y.shape(), " must be (", n, ", ", K, ") and (", n, ", ", N, ")");
  PDIFF_CHECK(K <= INT32_MAX && N <= INT32_MAX, "grouped_gemm_nt: sizes (", N, ", ", K, ") exceed int32");
  detail::last_grouped = false;
  if (n == 0 || N == 0) return;
  // Column-major view: yᵀ_g (N × r) = W_g (K × N col-major, transposed) · xᵀ_g (K × r).
  std::vector<cublasOperation_t> ta, tb;
  std::vector<int> m_, n_, k_, lda, ldb, ldc, size;
  std::vector<float> alpha, beta;
  std::vector<const void*> A, B;
  std::vector<void*> Cp;
  std::int64_t at = 0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    if (rows[i] == 0) continue;
    ta.push_back(CUBLAS_OP_T), tb.push_back(CUBLAS_OP_N);
    m_.push_back(int(N)), n_.push_back(int(rows[i])), k_.push_back(int(K));
    lda.push_back(int(K)), ldb.push_back(int(K)), ldc.push_back(int(N));
    alpha.push_back(1.0f), beta.push_back(0.0f), size.push_back(1);
    A.push_back(w[i]->data()), B.push_back(x.data() + at * K), Cp.push_back(y.data() + at * N);
    at += rows[i];
  }
  const cudaStream_t s = current_cuda_stream();
  if (K == 0) {
    memory<OnCuda>::zero(y.data(), y.bytes());
    return;
  }
  const int groups = int(ta.size());
  // cuBLAS reads the pointers on the device and cannot refuse a misaligned one: the grouped call takes
  // 16-byte aligned matrices only (C rows start at y + at·N), the rest goes one GEMM per group
  bool aligned = true;
  for (int i = 0; i < groups; ++i)
    aligned = aligned && reinterpret_cast<std::uintptr_t>(A[std::size_t(i)]) % 16 == 0 &&
              reinterpret_cast<std::uintptr_t>(B[std::size_t(i)]) % 16 == 0 &&
              reinterpret_cast<std::uintptr_t>(Cp[std::size_t(i)]) % 16 == 0;
  // Measured on an H200 (2026-12-04, bench_moe_cuda, HunyuanImage-3.0's widths: 64 experts, ~544 rows each,
  // 4096 × 6144 and 3072 × 4096 weights, bf16): the grouped call ran at 302 TFLOP/s, one cuBLASLt GEMM per
  // expert at 612 — with hundreds of rows per group each GEMM fills the GPU and cuBLASLt's per-shape
  // kernels win; the grouped call pays where groups are small (decode-size batches, many experts), so it
  // is used only below kGroupedRowsMax rows per group on average.
  constexpr std::int64_t kGroupedRowsMax = 128;
  const bool small_groups = groups > 0 && n / groups < kGroupedRowsMax;
#if CUBLAS_VERSION >= 120500
  if (aligned && small_groups) {
    // the pointer arrays, written on the device by a kernel whose parameters carry them (no host buffer
    // to keep alive, no synchronisation)
    CudaTensor<std::uint64_t> ptrs({3 * std::int64_t(groups)});
    for (int c = 0; c < groups; c += detail::PtrChunk::n) {
      detail::PtrChunk chunk;
      chunk.count = std::min(detail::PtrChunk::n, groups - c);
      for (int i = 0; i < chunk.count; ++i) {
        chunk.p[0][i] = reinterpret_cast<std::uint64_t>(A[std::size_t(c + i)]);
        chunk.p[1][i] = reinterpret_cast<std::uint64_t>(B[std::size_t(c + i)]);
        chunk.p[2][i] = reinterpret_cast<std::uint64_t>(Cp[std::size_t(c + i)]);
      }
      detail::write_pointers_kernel<<<1, 3 * detail::PtrChunk::n, 0, s>>>(chunk, ptrs.data(), c, groups);
      cuda::detail::check_launch("grouped_gemm_nt (pointers)");
    }
    const auto* dA = reinterpret_cast<const void* const*>(ptrs.data());
    const auto* dB = reinterpret_cast<const void* const*>(ptrs.data() + groups);
    auto* dC = reinterpret_cast<void* const*>(ptrs.data() + 2 * groups);
    const cudaDataType_t type = std::is_same_v<T, bf16> ? CUDA_R_16BF : CUDA_R_32F;
    const cublasHandle_t h = detail::cublas_handle(cuda_device());
    detail::cublas_check(cublasSetStream(h, s), "cublasSetStream");
    const cublasStatus_t st = cublasGemmGroupedBatchedEx(h, ta.data(), tb.data(), m_.data(), n_.data(), k_.data(),
                                                         alpha.data(), dA, type, lda.data(), dB, type, ldb.data(),
                                                         beta.data(), dC, type, ldc.data(), groups, size.data(),
                                                         CUBLAS_COMPUTE_32F);
    if (st == CUBLAS_STATUS_SUCCESS) {
      detail::last_grouped = true;
      return;
    }
    PDIFF_CHECK(st == CUBLAS_STATUS_NOT_SUPPORTED || st == CUBLAS_STATUS_INVALID_VALUE,
                "cuBLAS: cublasGemmGroupedBatchedEx failed: ", cublasGetStatusString(st));
  }
#else
  (void)aligned, (void)small_groups;  // cuBLAS before 12.5 has no grouped GEMM
#endif
  // large groups, or not supported for these types on this library / device: one GEMM per group
  at = 0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    if (rows[i] == 0) continue;
    auto xi = x.slice(at, at + rows[i]);
    auto yi = y.slice(at, at + rows[i]);
    gemm(xi, *w[i], yi, {.trans_b = true});
    at += rows[i];
  }
}

bool grouped_gemm_used() { return detail::last_grouped; }

#define PDIFF_INSTANTIATE(T)                                                                                     \
  template void grouped_gemm_nt(const CudaTensor<T>&, std::span<const CudaTensor<T>* const>,                     \
                                std::span<const std::int64_t>, CudaTensor<T>&);
PDIFF_CUDA_OPS_FOR_TYPES(PDIFF_INSTANTIATE)
#undef PDIFF_INSTANTIATE

}  // namespace pdiff
