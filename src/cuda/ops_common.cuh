// src/cuda/ops_common.cuh — what the op definitions share: the shape checks the CPU ops make, with
// the same messages, and the explicit-instantiation list (float and bf16, nothing per layout).
#pragma once

#include "pdiff/backend/cuda/ops.hpp"
#include "pdiff/backend/cuda/stream.hpp"
#include "pdiff/backend/cuda/kernels/common.cuh"

// Instantiates OP(T) for both element types the CUDA ops support.
#define PDIFF_CUDA_OPS_FOR_TYPES(OP) \
  OP(float)                          \
  OP(::pdiff::bf16)

namespace pdiff::detail {

// (B, S, D) and a (B, D) parameter, as backend/cpu/activation.hpp checks them.
template <class T>
void check_mod_cuda(const char* op, const Tensor<T, OnCuda>& x, const Tensor<T, OnCuda>& p) {
  PDIFF_CHECK(x.rank() == 3 && p.numel() == x.size(0) * x.size(2), op, ": x", x.shape(), " must be (B, S, D) and its ",
              "parameter", p.shape(), " (B, D)");
}

template <class T>
const T* data_or_null(const Tensor<T, OnCuda>& t) {
  return t.empty() ? nullptr : t.data();
}

inline int as_int_dim(std::int64_t d, const char* op) {
  PDIFF_CHECK(d > 0 && d <= 0x7fffffff, op, ": last dimension (", d, ") must be in [1, 2^31)");
  return int(d);
}

}  // namespace pdiff::detail
