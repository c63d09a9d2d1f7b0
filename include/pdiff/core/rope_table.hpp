// pdiff/core/rope_table.hpp — RopeTable<B>: the cos/sin rows of rotary position embeddings on
// backend B, always fp32 (angles lose too much in bf16). Tables are built on the host
// (backend/cpu/rope.hpp) and moved to a device once per forward with to<B>(table).
//   cos, sin: (S, D) shared by the batch, or (B, S, D)
#pragma once

#include "pdiff/core/tensor.hpp"

namespace pdiff {

template <class B = OnCpu>
struct RopeTable {
  Tensor<float, B> cos, sin;
};
template <class B>
RopeTable(Tensor<float, B>, Tensor<float, B>) -> RopeTable<B>;

// The table on backend B (a no-op share when it is already there).
template <class B, class B0>
RopeTable<B> to(const RopeTable<B0>& t) {
  if constexpr (std::is_same_v<B, B0>) return t;
  else return {to<B>(t.cos), to<B>(t.sin)};
}

}  // namespace pdiff
