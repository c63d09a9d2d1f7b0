// src/cuda/ops_norm.cu — normalisations and RoPE of backend/cuda/ops.hpp (RMSNorm, LayerNorm,
// GroupNorm, rotary embeddings). fp32 statistics whatever the storage type; shapes and errors as the
// CPU ops.
#include "ops_common.cuh"

#include "pdiff/backend/cuda/kernels/group_norm.cuh"
#include "pdiff/backend/cuda/kernels/layer_norm.cuh"
#include "pdiff/backend/cuda/kernels/rms_norm.cuh"
#include "pdiff/backend/cuda/kernels/rms_norm_rope.cuh"
#include "pdiff/backend/cuda/kernels/rope.cuh"

namespace pdiff {

namespace detail {
template <class T>
void check_last_dim_cuda(const char* op, const CudaTensor<T>& x, const CudaTensor<T>& w, const char* wname) {
  if (!w.empty())
    PDIFF_CHECK(w.numel() == x.size(-1), op, ": ", wname, " has ", w.numel(), " elements, x", x.shape(), " has ",
                x.size(-1), " features");
}

template <class T>
void rope_cuda(CudaTensor<T>& x, const RopeTable<OnCuda>& t, cuda::RopePairs style, const char* op) {
  PDIFF_CHECK(x.rank() == 4, op, ": x", x.shape(), " must be (B, S, H, D)");
  const std::int64_t B = x.size(0), S = x.size(1), H = x.size(2), D = x.size(3);
  const bool batched = t.cos.rank() == 3;
  PDIFF_CHECK(t.cos.rank() >= 2 && t.cos.size(-1) == D && t.cos.size(-2) == S && (!batched || t.cos.size(0) == B) &&
                  t.sin.shape() == t.cos.shape(),
              op, ": table", t.cos.shape(), " must be (S, D) or (B, S, D) for x", x.shape());
  cuda::launch_rope(x.data(), t.cos.data(), t.sin.data(), B, S, H, as_int_dim(D, op), batched, style,
                    current_cuda_stream());
}

// rms_norm then rope in one kernel where it fits (rms_norm_rope.cuh), else the two ops.
template <class T>
CudaTensor<T> rms_norm_rope_cuda(const CudaTensor<T>& x, const CudaTensor<T>& w, float eps, const RopeTable<OnCuda>& t,
                                 cuda::RopePairs style, const char* op) {
  PDIFF_CHECK(x.rank() == 4, op, ": x", x.shape(), " must be (B, S, H, D)");
  check_last_dim_cuda(op, x, w, "weight");
  const std::int64_t B = x.size(0), S = x.size(1), H = x.size(2), D = x.size(3);
  const bool batched = t.cos.rank() == 3;
  PDIFF_CHECK(t.cos.rank() >= 2 && t.cos.size(-1) == D && t.cos.size(-2) == S && (!batched || t.cos.size(0) == B) &&
                  t.sin.shape() == t.cos.shape(),
              op, ": table", t.cos.shape(), " must be (S, D) or (B, S, D) for x", x.shape());
  CudaTensor<T> o(x.shape());
  if (cuda::launch_rms_norm_rope(x.data(), data_or_null(w), o.data(), t.cos.data(), t.sin.data(), B, S, H,
                                 as_int_dim(D, op), batched, eps, style, current_cuda_stream()))
    return o;
  const int d = as_int_dim(D, op);
  cuda::launch_rms_norm(x.data(), data_or_null(w), o.data(), x.numel() / d, d, eps, current_cuda_stream());
  rope_cuda(o, t, style, op);
  return o;
}
}  // namespace detail

template <class T>
CudaTensor<T> rms_norm_rope_half(const CudaTensor<T>& x, const CudaTensor<T>& w, float eps,
                                 const RopeTable<OnCuda>& t) {
  return detail::rms_norm_rope_cuda(x, w, eps, t, cuda::RopePairs::half, "rms_norm_rope_half");
}
template <class T>
CudaTensor<T> rms_norm_rope_interleaved(const CudaTensor<T>& x, const CudaTensor<T>& w, float eps,
                                        const RopeTable<OnCuda>& t) {
  return detail::rms_norm_rope_cuda(x, w, eps, t, cuda::RopePairs::interleaved, "rms_norm_rope_interleaved");
}

template <class T>
CudaTensor<T> rms_norm(const CudaTensor<T>& x, const CudaTensor<T>& w, float eps) {
  detail::check_last_dim_cuda("rms_norm", x, w, "weight");
  CudaTensor<T> o(x.shape());
  const int d = detail::as_int_dim(x.size(-1), "rms_norm");
  cuda::launch_rms_norm(x.data(), detail::data_or_null(w), o.data(), x.numel() / d, d, eps, current_cuda_stream());
  return o;
}
template <class T>
CudaTensor<T> rms_norm(const CudaTensor<T>& x, float eps) {
  return rms_norm(x, CudaTensor<T>{}, eps);
}
template <class T>
CudaTensor<T> layer_norm(const CudaTensor<T>& x, const CudaTensor<T>& w, const CudaTensor<T>& b, float eps) {
  detail::check_last_dim_cuda("layer_norm", x, w, "weight");
  detail::check_last_dim_cuda("layer_norm", x, b, "bias");
  CudaTensor<T> o(x.shape());
  const int d = detail::as_int_dim(x.size(-1), "layer_norm");
  cuda::launch_layer_norm(x.data(), detail::data_or_null(w), detail::data_or_null(b), o.data(), x.numel() / d, d, eps,
                          current_cuda_stream());
  return o;
}
template <class T>
CudaTensor<T> layer_norm(const CudaTensor<T>& x, float eps) {
  return layer_norm(x, CudaTensor<T>{}, CudaTensor<T>{}, eps);
}
template <class T>
CudaTensor<T> group_norm(const CudaTensor<T>& x, int groups, const CudaTensor<T>& w, const CudaTensor<T>& b,
                         float eps) {
  PDIFF_CHECK(x.rank() >= 2, "group_norm: x", x.shape(), " needs (B, C, ...)");
  const std::int64_t B = x.size(0), C = x.size(1), rest = x.numel() / (B * C);
  PDIFF_CHECK(w.empty() || w.numel() == C, "group_norm: weight has ", w.numel(), " elements, x has ", C, " channels");
  PDIFF_CHECK(b.empty() || b.numel() == C, "group_norm: bias has ", b.numel(), " elements, x has ", C, " channels");
  CudaTensor<T> o(x.shape());
  cuda::launch_group_norm(x.data(), detail::data_or_null(w), detail::data_or_null(b), o.data(), B, C, rest, groups,
                          eps, current_cuda_stream());
  return o;
}
template <class T>
void apply_rope_half(CudaTensor<T>& x, const RopeTable<OnCuda>& t) {
  detail::rope_cuda(x, t, cuda::RopePairs::half, "apply_rope_half");
}
template <class T>
void apply_rope_interleaved(CudaTensor<T>& x, const RopeTable<OnCuda>& t) {
  detail::rope_cuda(x, t, cuda::RopePairs::interleaved, "apply_rope_interleaved");
}

#define PDIFF_INSTANTIATE(T)                                                                                  \
  template CudaTensor<T> rms_norm(const CudaTensor<T>&, const CudaTensor<T>&, float);                        \
  template CudaTensor<T> rms_norm(const CudaTensor<T>&, float);                                              \
  template CudaTensor<T> layer_norm(const CudaTensor<T>&, const CudaTensor<T>&, const CudaTensor<T>&, float); \
  template CudaTensor<T> layer_norm(const CudaTensor<T>&, float);                                            \
  template CudaTensor<T> group_norm(const CudaTensor<T>&, int, const CudaTensor<T>&, const CudaTensor<T>&,   \
                                    float);                                                                  \
  template void apply_rope_half(CudaTensor<T>&, const RopeTable<OnCuda>&);                                   \
  template void apply_rope_interleaved(CudaTensor<T>&, const RopeTable<OnCuda>&);                            \
  template CudaTensor<T> rms_norm_rope_half(const CudaTensor<T>&, const CudaTensor<T>&, float,                \
                                            const RopeTable<OnCuda>&);                                       \
  template CudaTensor<T> rms_norm_rope_interleaved(const CudaTensor<T>&, const CudaTensor<T>&, float,         \
                                                   const RopeTable<OnCuda>&);
PDIFF_CUDA_OPS_FOR_TYPES(PDIFF_INSTANTIATE)
#undef PDIFF_INSTANTIATE

}  // namespace pdiff
