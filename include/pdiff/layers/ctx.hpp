// pdiff/layers/ctx.hpp — Ctx<L, T>: what a layer template is instantiated on: the layout (and so
// the backend) and the element type. Layers read degrees from C::layout at compile time, name their
// tensors `typename C::tensor`, and get communicators at run time from the Rank passed to forward().
//
// | helper                 | what                                                              |
// |------------------------|-------------------------------------------------------------------|
// | to_ctx<C>(host f32)    | a parameter or input read on the host → C's backend and type      |
// | to_host_f32(x)         | any tensor → host fp32 (results, tests, scheduler state)           |
// | default_value_t<B>     | fp32 on OnCpu, bf16 on OnCuda: Ctx<L>'s element type              |
// | HostCtx                | serial fp32 on the CPU: host-side parts (VAE, text encoders today) |
// On OnCpu/float both helpers share storage (no copy); elsewhere they copy once and convert where it is fast.
#pragma once

#include <type_traits>

#include "pdiff/backend/cpu/convert.hpp"
#include "pdiff/core/tensor.hpp"
#include "pdiff/parallel/layout.hpp"

namespace pdiff {

// The element type a backend computes in unless told: fp32 on the CPU, bf16 on CUDA (fp32 accumulation).
template <class B>
using default_value_t = std::conditional_t<std::is_same_v<B, OnCuda>, bf16, float>;

template <class L, class T = default_value_t<typename L::backend>>
struct Ctx {
  using layout = L;
  using backend = typename L::backend;
  using value_type = T;
  using tensor = Tensor<T, backend>;
};

using HostCtx = Ctx<Layout<OnCpu>, float>;

template <class C>
typename C::tensor to_ctx(const Tensor<float, OnCpu>& x) {
  using T = typename C::value_type;
  using B = typename C::backend;
  if constexpr (std::is_same_v<T, float> && std::is_same_v<B, OnCpu>) return x;
  else if constexpr (std::is_same_v<B, OnCpu>) return convert<T>(x);
  else if constexpr (std::is_same_v<T, float>) return to<B>(x);
  else return convert<T>(to<B>(x));  // fp32 up, converted by the device (the host loop is the slow part)
}

template <class T, class B>
Tensor<float, OnCpu> to_host_f32(const Tensor<T, B>& x) {
  if constexpr (std::is_same_v<B, OnCpu>) {
    if constexpr (std::is_same_v<T, float>) return x;
    else return convert<float>(x);
  } else {
    return to_host_f32(to<OnCpu>(x));
  }
}

}  // namespace pdiff
