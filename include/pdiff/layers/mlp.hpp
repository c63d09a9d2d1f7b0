// pdiff/layers/mlp.hpp — tensor-parallel MLP blocks.
//
// | block          | layers                                                          |
// |----------------|-----------------------------------------------------------------|
// | SwiGLUMLP      | gate|up MergedColumnParallel → silu(gate)·up → down RowParallel |
// | GeluMLP        | fc1 ColumnParallel → gelu(tanh) → fc2 RowParallel               |
// x: (B, S, D) replicated over TP → (B, S, D); one all_reduce per block when tp > 1.
#pragma once

#include "pdiff/backend/cpu/activation.hpp"
#include "pdiff/layers/column_parallel.hpp"
#include "pdiff/layers/merged_column_parallel.hpp"
#include "pdiff/layers/row_parallel.hpp"

namespace pdiff {

template <class Ctx>
struct SwiGLUMLP {
  MergedColumnParallel<Ctx> gate_up;
  RowParallel<Ctx> down;
  SwiGLUMLP() = default;
  SwiGLUMLP(std::int64_t dim, std::int64_t hidden, bool bias, Sources src = Sources::separate)
      : gate_up(dim, {hidden, hidden}, bias, src), down(hidden, dim, bias) {}
  template <class R>
  Tensor<float, OnCpu> forward(R& rank, const Tensor<float, OnCpu>& x) const {
    return down.forward(rank, swiglu(gate_up.forward(rank, x)));
  }
};

template <class Ctx>
struct GeluMLP {
  ColumnParallel<Ctx> fc1;
  RowParallel<Ctx> fc2;
  GeluMLP() = default;
  GeluMLP(std::int64_t dim, std::int64_t hidden, bool bias) : fc1(dim, hidden, bias), fc2(hidden, dim, bias) {}
  template <class R>
  Tensor<float, OnCpu> forward(R& rank, const Tensor<float, OnCpu>& x) const {
    return fc2.forward(rank, gelu_tanh(fc1.forward(rank, x)));
  }
};

}  // namespace pdiff
