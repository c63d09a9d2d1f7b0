// pdiff/layers/mlp.hpp — tensor-parallel MLP blocks.
//
// | block          | layers                                                          |
// |----------------|-----------------------------------------------------------------|
// | SwiGLUMLP      | gate|up MergedColumnParallel → silu(gate)·up → down RowParallel |
// | GeluMLP        | fc1 ColumnParallel → gelu(tanh) → fc2 RowParallel               |
// x: (B, S, D) replicated over TP → (B, S, D); one all_reduce per block when tp > 1.
#pragma once

#include "pdiff/layers/column_parallel.hpp"
#include "pdiff/layers/merged_column_parallel.hpp"
#include "pdiff/layers/row_parallel.hpp"

namespace pdiff {

template <class C>
struct SwiGLUMLP {
  MergedColumnParallel<C> gate_up;
  RowParallel<C> down;
  SwiGLUMLP() = default;
  SwiGLUMLP(std::int64_t dim, std::int64_t hidden, bool bias, Sources src = Sources::separate)
      : gate_up(dim, {hidden, hidden}, bias, src), down(hidden, dim, bias) {}
  template <class R>
  typename C::tensor forward(R& rank, const typename C::tensor& x) const {
    return down.forward(rank, swiglu(gate_up.forward(rank, x)));
  }
};

template <class C>
struct GeluMLP {
  ColumnParallel<C> fc1;
  RowParallel<C> fc2;
  GeluMLP() = default;
  GeluMLP(std::int64_t dim, std::int64_t hidden, bool bias) : fc1(dim, hidden, bias), fc2(hidden, dim, bias) {}
  template <class R>
  typename C::tensor forward(R& rank, const typename C::tensor& x) const {
    return fc2.forward(rank, gelu_tanh(fc1.forward(rank, x)));
  }
};

}  // namespace pdiff
