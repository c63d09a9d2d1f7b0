// pdiff/backend/cpu/convert.hpp — element-type conversion of CPU tensors (f32 ↔ bf16 ↔ f16, ...).
#pragma once

#include <type_traits>

#include "pdiff/backend/cpu/memory.hpp"
#include "pdiff/core/tensor.hpp"

namespace pdiff {

// A new tensor holding `src` converted element-wise to U (round to nearest even for bf16/f16).
template <class U, class T>
Tensor<U, OnCpu> convert(const Tensor<T, OnCpu>& src) {
  if constexpr (std::is_same_v<U, T>) {
    return src.clone();
  } else {
    Tensor<U, OnCpu> dst(src.shape());
    const T* s = src.data();
    U* d = dst.data();
    for (std::int64_t i = 0, n = src.numel(); i < n; ++i) d[i] = from_float<U>(to_float(s[i]));
    return dst;
  }
}

}  // namespace pdiff
