// pdiff/layers/sequence.hpp — cutting a sequence into this rank's sequence-parallel chunk and back.
//
// | function                          | x                     | result                              |
// |-----------------------------------|-----------------------|-------------------------------------|
// | sp_shard<L>(rank, x, dim)         | (..., S, ...) full    | chunk c = sp coordinate (u + U·r): (..., S/(U·R), ...) |
// | sp_gather<L>(rank, x, dim)        | chunk                 | full sequence, all_gather over the sp group |
// | sp_padded_length(S, P)            |                       | S rounded up to a multiple of P     |
// The rule: S must be divisible by ulysses·ring (a clear error names both). Models whose length is
// not (text + image tokens) pad the joint sequence at its end and mask the padding keys
// (docs/sequence-parallel.md).
#pragma once

#include "pdiff/comm/tensor_collectives.hpp"
#include "pdiff/parallel/axis.hpp"

namespace pdiff {

constexpr std::int64_t sp_padded_length(std::int64_t s, std::int64_t parts) { return (s + parts - 1) / parts * parts; }

template <class L, class R, class T, class B>
Tensor<T, B> sp_shard(R& rank, const Tensor<T, B>& x, int dim = 1) {
  constexpr int P = L::ulysses * L::ring;
  if constexpr (P == 1) {
    return x;
  } else {
    const std::int64_t S = x.size(dim);
    PDIFF_CHECK(S % P == 0, "sequence parallel: sequence length (", S, ") must be divisible by ulysses*ring (",
                L::ulysses, "*", L::ring, "); pad it to ", sp_padded_length(S, P));
    const int c = L::coord(Axis::sp, rank.index);
    return narrow(x, dim, c * (S / P), S / P);
  }
}

template <class L, class R, class T, class B>
Tensor<T, B> sp_gather(R& rank, const Tensor<T, B>& x, int dim = 1) {
  if constexpr (L::ulysses * L::ring == 1) return x;
  else return all_gather(rank.sp, x, dim);
}

}  // namespace pdiff
