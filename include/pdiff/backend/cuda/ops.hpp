// pdiff/backend/cuda/ops.hpp — the layer ops on Tensor<T, OnCuda>, T ∈ {float, bf16}: the same names
// and arguments as the CPU ops (backend/cpu/*.hpp), so one layer code calls either by overload.
//
// How header-only layers reach the kernels: this header only *declares* the ops (plain host C++, no
// CUDA syntax); their definitions are in src/cuda/*.cu, compiled once by nvcc into the static library
// pdiff::cuda_ops (linked by pdiff::pdiff when CUDA is found). So model code compiles with the host
// compiler, a CPU-only build never sees a CUDA header, and each kernel is instantiated once per
// element type, never per layout. gemm() is host code over cuBLASLt (backend/cuda/gemm.hpp).
//
// | op                                   | shapes (as the CPU op)                          | kernel                   |
// |--------------------------------------|-------------------------------------------------|--------------------------|
// | silu, gelu_tanh                      | any                                             | kernels/activation.cuh   |
// | swiglu, swiglu_into                  | (..., 2I) → (..., I) / columns of out (..., W)   | kernels/swiglu.cuh       |
// | modulate, layer_norm_modulate        | x (B, S, D); shift, scale (B, D)                | kernels/layer_norm.cuh   |
// | gated_add                            | x, y (B, S, D); gate (B, D)                     | kernels/gated_add.cuh    |
// | add_, add                            | equal shapes or y over the last dim             | src/cuda/elementwise.cu  |
// | rms_norm, layer_norm                 | (..., D), weight/bias (D)                       | kernels/rms_norm, layer_norm |
// | group_norm                           | (B, C, ...)                                     | kernels/group_norm.cuh   |
// | apply_rope_half / _interleaved       | x (B, S, H, D) in place; table fp32             | kernels/rope.cuh         |
// | rms_norm_rope_half / _interleaved    | x (B, S, H, D), w (D) or empty; table fp32      | kernels/rms_norm_rope.cuh (one pass) |
// | attention (+ lse)                    | q (B, Sq, H, D), k/v (B, Sk, Hkv, D)            | flash (bf16, D 64/128) or reference |
// | merge_attention                      | acc/o (B, Sq, H, Dv), lse (B, H, Sq) fp32       | src/cuda/attention.cu    |
// | convert<U>                           | any                                             | convert.cuh              |
// | index_rows, index_add_rows           | x (N, D), idx (n) int32, weights (n) fp32       | src/cuda/ops_index.cu    |
// | conv2d                               | x (B, C, H, W), w (O, C, kh, kw), b (O)          | src/cuda/ops_conv.cu: im2col band + cuBLASLt |
// | upsample_nearest2x, transpose_last2  | (B, C, H, W) → 2×; (B, M, N) → (B, N, M)          | src/cuda/ops_conv.cu     |
// | modulate_channels_                   | x (B, C, ...), scale/shift (B, 2C) fp32           | src/cuda/ops_conv.cu     |
// | moe_group                            | logits (T, E) fp32 → ExpertGroups (count on host) | src/cuda/ops_moe.cu: warp top-k, CUB radix sort |
// | grouped_gemm_nt                      | x (n, K) in groups of rows, weights (N, K) each → (n, N) | src/cuda/ops_moe.cu: cublasGemmGroupedBatchedEx |
// Everything is enqueued on current_cuda_stream(); errors are pdiff::Error naming the op.
#pragma once

#if defined(PDIFF_WITH_CUDA)
#include <cstdint>
#include <span>
#include <string>

#include "pdiff/backend/cuda/gemm.hpp"
#include "pdiff/backend/cuda/memory.hpp"
#include "pdiff/core/attn_args.hpp"
#include "pdiff/core/conv_args.hpp"
#include "pdiff/core/expert_groups.hpp"
#include "pdiff/core/rope_table.hpp"
#include "pdiff/core/tensor.hpp"

namespace pdiff {

template <class T> using CudaTensor = Tensor<T, OnCuda>;

template <class T> CudaTensor<T> silu(const CudaTensor<T>& x);
template <class T> CudaTensor<T> gelu_tanh(const CudaTensor<T>& x);
template <class T> CudaTensor<T> swiglu(const CudaTensor<T>& x);
template <class T> void swiglu_into(const CudaTensor<T>& x, CudaTensor<T>& out, std::int64_t col0);
template <class T> CudaTensor<T> modulate(const CudaTensor<T>& x, const CudaTensor<T>& shift, const CudaTensor<T>& scale);
template <class T>
CudaTensor<T> layer_norm_modulate(const CudaTensor<T>& x, float eps, const CudaTensor<T>& shift,
                                  const CudaTensor<T>& scale);
template <class T> void gated_add(CudaTensor<T>& x, const CudaTensor<T>& gate, const CudaTensor<T>& y);
template <class T> void add_(CudaTensor<T>& x, const CudaTensor<T>& y);
template <class T> CudaTensor<T> add(const CudaTensor<T>& x, const CudaTensor<T>& y);
// For communicators: dst (n) = the rows of src (rows × n) summed (or max) in row order, fp32 accumulation;
// device pointers, the current stream.
template <class T> void reduce_rows(const T* src, T* dst, int rows, std::int64_t n, bool max);

template <class T> CudaTensor<T> rms_norm(const CudaTensor<T>& x, const CudaTensor<T>& w, float eps);
template <class T> CudaTensor<T> rms_norm(const CudaTensor<T>& x, float eps);
template <class T>
CudaTensor<T> layer_norm(const CudaTensor<T>& x, const CudaTensor<T>& w, const CudaTensor<T>& b, float eps);
template <class T> CudaTensor<T> layer_norm(const CudaTensor<T>& x, float eps);
template <class T>
CudaTensor<T> group_norm(const CudaTensor<T>& x, int groups, const CudaTensor<T>& w, const CudaTensor<T>& b, float eps);

template <class T> void apply_rope_half(CudaTensor<T>& x, const RopeTable<OnCuda>& t);
template <class T> void apply_rope_interleaved(CudaTensor<T>& x, const RopeTable<OnCuda>& t);
template <class T>
CudaTensor<T> rms_norm_rope_half(const CudaTensor<T>& x, const CudaTensor<T>& w, float eps, const RopeTable<OnCuda>& t);
template <class T>
CudaTensor<T> rms_norm_rope_interleaved(const CudaTensor<T>& x, const CudaTensor<T>& w, float eps,
                                        const RopeTable<OnCuda>& t);

template <class T>
CudaTensor<T> attention(const CudaTensor<T>& q, const CudaTensor<T>& k, const CudaTensor<T>& v,
                        const BasicAttnArgs<OnCuda>& a = {}, CudaTensor<float>* lse = nullptr);
// cuDNN's fused attention (src/cuda/attention_cudnn.cpp, through cudnn-frontend): bf16 q/k/v (B, S, H, D),
// no masks, causal = top-left (key j ≤ query i), lse (B, H, Sq) natural log when given. False (and why) when
// pdiff was built without cuDNN or cuDNN refuses the case: nothing was written, run the flash kernel.
// `attention` takes it for eligible bf16 cases by default where built; PDIFF_ATTENTION=flash in the environment
// keeps the flash kernel, and set_cudnn_attention(true|false) overrides both (cudnn_attention_requested() says
// which holds).
bool cudnn_attention_built();
bool cudnn_attention_requested();
void set_cudnn_attention(bool on);
bool attention_cudnn(const CudaTensor<bf16>& q, const CudaTensor<bf16>& k, const CudaTensor<bf16>& v,
                     CudaTensor<bf16>& out, float* lse, float scale, bool causal, std::string* why_not = nullptr);
template <class T>
void merge_attention(CudaTensor<T>& acc, CudaTensor<float>& acc_lse, const CudaTensor<T>& o, const CudaTensor<float>& lse);

template <class U, class T> CudaTensor<U> convert(const CudaTensor<T>& src);

template <class T> CudaTensor<T> index_rows(const CudaTensor<T>& x, const CudaTensor<std::int32_t>& idx);
template <class T>
void index_add_rows(CudaTensor<T>& out, const CudaTensor<T>& rows, const CudaTensor<std::int32_t>& idx,
                    const CudaTensor<float>& w);

// The VAE's ops (backend/cpu/conv.hpp's): a band of output rows at a time through an im2col buffer and
// one GEMM (1×1 convolutions: one GEMM on the input as it is), bias per output channel.
template <class T>
CudaTensor<T> conv2d(const CudaTensor<T>& x, const CudaTensor<T>& w, const CudaTensor<T>& b, const Conv2dArgs& a = {});
template <class T> CudaTensor<T> upsample_nearest2x(const CudaTensor<T>& x);
template <class T> CudaTensor<T> transpose_last2(const CudaTensor<T>& x);
// in place x·(1 + scale[b, c]) + shift[b, c] over (B, C, ...); ss (B, 2C) fp32 = [scale | shift]
template <class T> void modulate_channels_(CudaTensor<T>& x, const CudaTensor<float>& ss);

// A router's top-k of tokens [t0, t1) grouped by expert, as the CPU moe_group (backend/cpu/moe_route.hpp):
// softmax in fp32, ties to the lower expert, stable order inside an expert. Waits for the counts.
ExpertGroups<OnCuda> moe_group(const CudaTensor<float>& logits, int k, bool renormalize, float scaling,
                               std::int64_t t0, std::int64_t t1);

// y rows of group g = x rows of group g · w[g]ᵀ: x (n, K) with rows[g] rows per group (Σ = n), each w[g]
// (N, K), y (n, N); fp32 accumulation. One cuBLAS grouped GEMM (a group per non-empty expert); where the
// library refuses the types it falls back to one cuBLASLt GEMM per group (grouped_gemm_used() says which).
template <class T>
void grouped_gemm_nt(const CudaTensor<T>& x, std::span<const CudaTensor<T>* const> w, std::span<const std::int64_t> rows,
                     CudaTensor<T>& y);
// Whether this thread's last grouped_gemm_nt ran as one grouped call (false: the per-group fallback).
bool grouped_gemm_used();

}  // namespace pdiff
#endif
