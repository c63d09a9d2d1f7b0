// pdiff/comm/detail/reduce.hpp — element-wise reduction of host buffers in a fixed rank order, so
// every rank computes bit-identical results (bf16/f16 reduced in float).
#pragma once

#include <algorithm>
#include <type_traits>
#include <cstddef>

#include "pdiff/comm/communicator.hpp"
#include "pdiff/core/dtype.hpp"

namespace pdiff::detail {

template <class T>
inline constexpr bool is_half_v = std::is_same_v<T, bf16> || std::is_same_v<T, f16>;
template <class T>
using acc_t = std::conditional_t<is_half_v<T>, float, T>;

// out[i] = src[0][i] ⊕ src[1][i] ⊕ ... in source order; bf16/f16 accumulate in float and round once.
template <class T>
void reduce_into(T* out, const T* const* src, int nsrc, std::size_t offset, std::size_t n, ReduceOp op) {
  auto widen = [](T v) -> acc_t<T> {
    if constexpr (is_half_v<T>) return float(v);
    else return v;
  };
  for (std::size_t i = 0; i < n; ++i) {
    acc_t<T> acc = widen(src[0][offset + i]);
    for (int k = 1; k < nsrc; ++k) {
      const acc_t<T> v = widen(src[k][offset + i]);
      acc = op == ReduceOp::sum ? acc_t<T>(acc + v) : std::max(acc, v);
    }
    if constexpr (is_half_v<T>) out[i] = T(acc);
    else out[i] = acc;
  }
}

// Logical bytes sent to other ranks, as communicator.hpp defines them.
inline std::uint64_t ring_all_reduce_bytes(std::size_t n, std::size_t elem, int size) {
  return size <= 1 ? 0 : std::uint64_t(2) * std::uint64_t(size - 1) * n * elem / std::uint64_t(size);
}

}  // namespace pdiff::detail
