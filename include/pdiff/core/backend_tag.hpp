// pdiff/core/backend_tag.hpp — OnCpu and OnCuda: the backend policies, also the second parameter
// of Tensor<T, Backend>. They live in core because tensors need them; parallel/backend.hpp lists
// them with the other policies.
#pragma once

#include "pdiff/core/kinds.hpp"

namespace pdiff {

struct OnCpu {
  using kind = kind::backend;
  static constexpr int degree = 1;
  static constexpr const char* name = "cpu";
};

struct OnCuda {
  using kind = kind::backend;
  static constexpr int degree = 1;
  static constexpr const char* name = "cuda";
};

// The default backend: CUDA when pdiff was configured with it, else the CPU.
#if defined(PDIFF_WITH_CUDA)
using DefaultBackend = OnCuda;
#else
using DefaultBackend = OnCpu;
#endif

template <class B> inline constexpr bool is_backend_v = false;
template <> inline constexpr bool is_backend_v<OnCpu> = true;
template <> inline constexpr bool is_backend_v<OnCuda> = true;

}  // namespace pdiff
