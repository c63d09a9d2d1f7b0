// pdiff/layers/ctx.hpp — Ctx<L, T>: what a layer template is instantiated on: the layout (and so
// the backend) and the element type. Layers read degrees from Ctx::layout at compile time; the
// communicators come at run time from the Rank passed to forward().
#pragma once

#include "pdiff/core/tensor.hpp"

namespace pdiff {

template <class L, class T = float>
struct Ctx {
  using layout = L;
  using backend = typename L::backend;
  using value_type = T;
  using tensor = Tensor<T, backend>;
};

}  // namespace pdiff
