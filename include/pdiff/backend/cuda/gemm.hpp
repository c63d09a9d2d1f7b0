// pdiff/backend/cuda/gemm.hpp — gemm() on the CUDA backend through cuBLASLt.
//
//   c = alpha · op(a) · op(b) + beta · c     (shapes and rules: core/gemm_args.hpp, gemm_dims)
//
// | element | storage | compute                                        |
// |---------|---------|------------------------------------------------|
// | bf16    | bf16    | CUBLAS_COMPUTE_32F (fp32 accumulate), one round |
// | float   | fp32    | CUBLAS_COMPUTE_32F (no TF32)                   |
//
// | case                                      | cuBLASLt problem                                 |
// |-------------------------------------------|--------------------------------------------------|
// | rank-2 operands                           | one matmul                                        |
// | batched a, rank-2 b (weight), no trans_a  | folded into M: one (batch·M, K) · (K, N) matmul   |
// | other batched / shared combinations       | strided batch, a shared operand has stride 0      |
// Row-major is handled by the usual swap: cuBLASLt (column-major) computes cᵀ (N×M) = op(b)ᵀ · op(a)ᵀ,
// where a row-major matrix read column-major is already its transpose, so op flags carry over.
// The matmul descriptor, layouts and the heuristic's algorithm are cached per (device, type,
// shape, transposes, pointer alignment) in a per-thread table (no locks; each thread asks the
// heuristic once per shape). Large problems (2·M·N·K ≥ 2³³ flops, beta = 0) are tuned once: the first call
// times the heuristic's first 8 candidates (two runs each, CUDA events) and keeps the fastest
// (PDIFF_GEMM_TUNE=0 keeps the heuristic's first; on an H200 its first ran FLUX.2-dev's single-block GEMMs at
// ~755 TFLOP/s inside the step against ~800 alone). The workspace (≤ 32 MiB, as the heuristic asks) comes from the caching
// allocator on the current stream and is released right after enqueueing (stream-ordered).
// Everything runs on current_cuda_stream(). Only with PDIFF_WITH_CUDA; plain host C++.
#pragma once

#if defined(PDIFF_WITH_CUDA)
#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "pdiff/backend/cuda/device.hpp"
#include "pdiff/backend/cuda/handles.hpp"
#include "pdiff/backend/cuda/memory.hpp"
#include "pdiff/backend/cuda/stream.hpp"
#include "pdiff/core/dtype.hpp"
#include "pdiff/core/gemm_args.hpp"
#include "pdiff/core/tensor.hpp"

namespace pdiff {

namespace detail {

inline void lt_check(cublasStatus_t s, const char* call) {
  if (s != CUBLAS_STATUS_SUCCESS) throw Error(cat("cuBLASLt: ", call, " failed: ", cublasLtGetStatusString(s)));
}

inline constexpr std::size_t lt_max_workspace = std::size_t(32) << 20;

// One cuBLASLt handle per (thread, device), destroyed with the thread.
inline cublasLtHandle_t lt_handle(int device) {
  return per_thread_handle<cublasLtHandle_t, cublasLtCreate, cublasLtDestroy>(device, "cuBLASLt");
}

// The problem as cuBLASLt sees it (column-major, after the row-major swap).
struct LtKey {
  int device = 0;
  cudaDataType_t type = CUDA_R_32F;
  bool trans_a = false, trans_b = false;  // pdiff's flags (on a and b)
  std::int64_t m = 0, n = 0, k = 0, batch = 1;
  std::int64_t stride_a = 0, stride_b = 0, stride_c = 0;  // elements, of pdiff's a, b, c
  std::uint32_t align_a = 0, align_b = 0, align_c = 0;    // bytes, powers of two ≤ 256
  bool operator==(const LtKey&) const = default;
};
struct LtKeyHash {
  std::size_t operator()(const LtKey& k) const {
    std::size_t h = 0;
    auto mix = [&h](std::uint64_t v) { h ^= std::hash<std::uint64_t>{}(v) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2); };
    for (std::uint64_t v : {std::uint64_t(k.device), std::uint64_t(k.type), std::uint64_t(k.trans_a),
                            std::uint64_t(k.trans_b), std::uint64_t(k.m), std::uint64_t(k.n), std::uint64_t(k.k),
                            std::uint64_t(k.batch), std::uint64_t(k.stride_a), std::uint64_t(k.stride_b),
                            std::uint64_t(k.stride_c), std::uint64_t(k.align_a), std::uint64_t(k.align_b),
                            std::uint64_t(k.align_c)})
      mix(v);
    return h;
  }
};

struct LtPlan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;  // cuBLASLt's A (= b), B (= a), C = D
  cublasLtMatmulAlgo_t algo{};
  std::size_t workspace = 0;
  cublasLtMatmulHeuristicResult_t candidates[8]{};  // the heuristic's, best first
  int n_candidates = 0;                              // set to 0 once tuned
  LtPlan() = default;
  LtPlan(const LtPlan&) = delete;
  LtPlan& operator=(const LtPlan&) = delete;
  ~LtPlan() {
    if (la) cublasLtMatrixLayoutDestroy(la);
    if (lb) cublasLtMatrixLayoutDestroy(lb);
    if (lc) cublasLtMatrixLayoutDestroy(lc);
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
};

inline std::uint32_t pointer_alignment(const void* p) {
  const auto v = reinterpret_cast<std::uintptr_t>(p);
  if (v == 0) return 256;
  const std::uintptr_t low = v & (~v + 1);
  return std::uint32_t(low < 256 ? low : 256);
}

// Column-major layout rows × cols, leading dimension rows, `batch` matrices `stride` apart.
inline cublasLtMatrixLayout_t lt_layout(cudaDataType_t type, std::int64_t rows, std::int64_t cols, std::int64_t batch,
                                        std::int64_t stride) {
  cublasLtMatrixLayout_t l = nullptr;
  lt_check(cublasLtMatrixLayoutCreate(&l, type, std::uint64_t(rows), std::uint64_t(cols), rows),
           "cublasLtMatrixLayoutCreate");
  if (batch > 1) {
    const auto count = std::int32_t(batch);
    lt_check(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof count),
             "cublasLtMatrixLayoutSetAttribute(BATCH_COUNT)");
    lt_check(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof stride),
             "cublasLtMatrixLayoutSetAttribute(STRIDED_BATCH_OFFSET)");
  }
  return l;
}

inline std::unique_ptr<LtPlan> lt_make_plan(const LtKey& k, cublasLtHandle_t h) {
  auto p = std::make_unique<LtPlan>();
  lt_check(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
  const cublasOperation_t op_a = k.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;  // cuBLASLt's A is pdiff's b
  const cublasOperation_t op_b = k.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  lt_check(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof op_a),
           "cublasLtMatmulDescSetAttribute(TRANSA)");
  lt_check(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof op_b),
           "cublasLtMatmulDescSetAttribute(TRANSB)");
  // b row-major (K, N) is column-major (N, K); with trans_b it is (N, K) row-major = (K, N) column-major.
  p->la = lt_layout(k.type, k.trans_b ? k.k : k.n, k.trans_b ? k.n : k.k, k.batch, k.stride_b);
  p->lb = lt_layout(k.type, k.trans_a ? k.m : k.k, k.trans_a ? k.k : k.m, k.batch, k.stride_a);
  p->lc = lt_layout(k.type, k.n, k.m, k.batch, k.stride_c);

  cublasLtMatmulPreference_t pref = nullptr;
  lt_check(cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate");
  std::unique_ptr<std::remove_pointer_t<cublasLtMatmulPreference_t>, cublasStatus_t (*)(cublasLtMatmulPreference_t)>
      pref_guard(pref, cublasLtMatmulPreferenceDestroy);
  const std::uint64_t ws = lt_max_workspace;
  lt_check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws),
           "cublasLtMatmulPreferenceSetAttribute(MAX_WORKSPACE_BYTES)");
  const std::uint32_t align[4] = {k.align_b, k.align_a, k.align_c, k.align_c};  // cuBLASLt's A, B, C, D
  const cublasLtMatmulPreferenceAttributes_t attr[4] = {
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
  for (int i = 0; i < 4; ++i)
    lt_check(cublasLtMatmulPreferenceSetAttribute(pref, attr[i], &align[i], sizeof align[i]),
             "cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT)");

  cublasLtMatmulHeuristicResult_t res[8]{};
  int found = 0;
  lt_check(cublasLtMatmulAlgoGetHeuristic(h, p->desc, p->la, p->lb, p->lc, p->lc, pref, 8, res, &found),
           "cublasLtMatmulAlgoGetHeuristic");
  PDIFF_CHECK(found > 0, "gemm<OnCuda>: cuBLASLt has no algorithm for batch ", k.batch, " M=", k.m, " N=", k.n,
              " K=", k.k, (k.trans_a ? " trans_a" : ""), (k.trans_b ? " trans_b" : ""), " type ", int(k.type));
  p->algo = res[0].algo;
  p->workspace = res[0].workspaceSize;
  for (int i = 0; i < found; ++i)
    if (res[i].state == CUBLAS_STATUS_SUCCESS) p->candidates[p->n_candidates++] = res[i];
  return p;
}

inline bool lt_tuning_on() {
  static const bool on = [] {
    const char* e = std::getenv("PDIFF_GEMM_TUNE");
    return !(e && e[0] == '0');
  }();
  return on;
}

// One matmul with candidate r (alpha 1, beta 0).
inline cublasStatus_t lt_run(const LtPlan& p, cublasLtHandle_t h, const cublasLtMatmulHeuristicResult_t& r,
                             const void* b, const void* a, void* c, void* ws, cudaStream_t s) {
  const float one = 1.0f, zero = 0.0f;
  return cublasLtMatmul(h, p.desc, &one, b, p.la, a, p.lb, &zero, c, p.lc, c, p.lc, &r.algo, ws, r.workspaceSize, s);
}

// Times each candidate twice on the call's own operands (beta = 0: c is only written) and keeps the fastest
// in p. A candidate that fails to launch is skipped; the heuristic's first stays if none is faster.
inline void lt_tune(LtPlan& p, cublasLtHandle_t h, const void* b, const void* a, void* c, cudaStream_t s) {
  std::size_t ws_bytes = 0;
  for (int i = 0; i < p.n_candidates; ++i) ws_bytes = std::max(ws_bytes, p.candidates[i].workspaceSize);
  void* ws = ws_bytes ? memory<OnCuda>::allocate(ws_bytes) : nullptr;
  cudaEvent_t e0 = nullptr, e1 = nullptr;
  PDIFF_CUDA_CHECK(cudaEventCreate(&e0));
  PDIFF_CUDA_CHECK(cudaEventCreate(&e1));
  float best = 0.0f;
  int pick = 0;
  for (int i = 0; i < p.n_candidates; ++i) {
    const cublasLtMatmulHeuristicResult_t& r = p.candidates[i];
    if (lt_run(p, h, r, b, a, c, ws, s) != CUBLAS_STATUS_SUCCESS) continue;  // warm-up; a refused one is skipped
    PDIFF_CUDA_CHECK(cudaEventRecord(e0, s));
    const bool ok = lt_run(p, h, r, b, a, c, ws, s) == CUBLAS_STATUS_SUCCESS &&
                    lt_run(p, h, r, b, a, c, ws, s) == CUBLAS_STATUS_SUCCESS;
    PDIFF_CUDA_CHECK(cudaEventRecord(e1, s));
    PDIFF_CUDA_CHECK(cudaEventSynchronize(e1));
    float ms = 0.0f;
    PDIFF_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
    if (ok && (best == 0.0f || ms < best)) best = ms, pick = i;
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  memory<OnCuda>::deallocate(ws, ws_bytes);
  p.algo = p.candidates[pick].algo;
  p.workspace = p.candidates[pick].workspaceSize;
  p.n_candidates = 0;
}

inline LtPlan& lt_plan(const LtKey& k, cublasLtHandle_t h) {
  thread_local std::unordered_map<LtKey, std::unique_ptr<LtPlan>, LtKeyHash> cache;
  auto it = cache.find(k);
  if (it == cache.end()) it = cache.emplace(k, lt_make_plan(k, h)).first;
  return *it->second;
}

template <class T>
void gemm_cuda(const Tensor<T, OnCuda>& a, const Tensor<T, OnCuda>& b, Tensor<T, OnCuda>& c, const GemmArgs& g) {
  const GemmDims d = gemm_dims(a.shape(), b.shape(), c.shape(), g);
  if (d.m == 0 || d.n == 0 || d.batch == 0) return;
  if (d.k == 0) {  // an empty sum: c = beta · c, which needs a kernel unless beta is 0
    PDIFF_CHECK(g.beta == 0.0f, "gemm<OnCuda>: K = 0 with beta = ", g.beta, " is not supported (only beta = 0)");
    memory<OnCuda>::zero(c.data(), c.bytes());
    return;
  }
  LtKey k;
  k.device = cuda_device();
  k.type = std::is_same_v<T, bf16> ? CUDA_R_16BF : CUDA_R_32F;
  k.trans_a = g.trans_a;
  k.trans_b = g.trans_b;
  k.m = d.m, k.n = d.n, k.k = d.k, k.batch = d.batch;
  bool a_batched = d.a_batched;
  if (k.batch > 1 && a_batched && !d.b_batched && !g.trans_a) {  // x (B, M, K) · W: one (B·M, K) matmul
    k.m *= k.batch;
    k.batch = 1;
    a_batched = false;
  }
  PDIFF_CHECK(k.batch <= std::int64_t(INT32_MAX), "gemm<OnCuda>: batch ", k.batch, " exceeds cuBLASLt's int32 count");
  if (k.batch > 1) {
    k.stride_a = a_batched ? d.m * d.k : 0;  // 0: one matrix shared by every batch entry
    k.stride_b = d.b_batched ? d.k * d.n : 0;
    k.stride_c = d.m * d.n;
  }
  k.align_a = pointer_alignment(a.data());
  k.align_b = pointer_alignment(b.data());
  k.align_c = pointer_alignment(c.data());

  const cublasLtHandle_t h = lt_handle(k.device);
  LtPlan& p = lt_plan(k, h);
  const cudaStream_t s = current_cuda_stream();
  if (p.n_candidates > 1 && g.beta == 0.0f && lt_tuning_on() &&
      2.0 * double(k.m) * double(k.n) * double(k.k) * double(k.batch) >= 8.6e9)
    lt_tune(p, h, b.data(), a.data(), c.data(), s);
  void* ws = p.workspace ? memory<OnCuda>::allocate(p.workspace) : nullptr;
  const cublasStatus_t st = cublasLtMatmul(h, p.desc, &g.alpha, b.data(), p.la, a.data(), p.lb, &g.beta, c.data(),
                                           p.lc, c.data(), p.lc, &p.algo, ws, p.workspace, s);
  memory<OnCuda>::deallocate(ws, p.workspace);  // stream-ordered: the next user on s comes after
  lt_check(st, "cublasLtMatmul");
}

}  // namespace detail

// c = alpha · op(a) · op(b) + beta · c: bf16 storage, fp32 accumulation.
inline void gemm(const Tensor<bf16, OnCuda>& a, const Tensor<bf16, OnCuda>& b, Tensor<bf16, OnCuda>& c,
                 const GemmArgs& g = {}) {
  detail::gemm_cuda(a, b, c, g);
}
// c = alpha · op(a) · op(b) + beta · c in fp32.
inline void gemm(const Tensor<float, OnCuda>& a, const Tensor<float, OnCuda>& b, Tensor<float, OnCuda>& c,
                 const GemmArgs& g = {}) {
  detail::gemm_cuda(a, b, c, g);
}

}  // namespace pdiff
#endif
