// pdiff/layers/sequence.hpp — cutting a sequence into this rank's sequence-parallel chunk and back,
// for any length: a length that does not divide by ulysses·ring is padded at its end.
//
// | function                          | x / result                                                      |
// |-----------------------------------|-----------------------------------------------------------------|
// | sp_padded_length(S, P)            | S rounded up to a multiple of P                                 |
// | sp_chunk<L>(rank, S)              | SpChunk: this rank's rows [begin, end) of the padded sequence   |
// | sp_shard<L>(rank, x, dim)         | (..., S, ...) full → this rank's chunk, zero rows where padded   |
// | sp_gather<L>(rank, x, dim)        | chunk → the padded sequence, all_gather over the sp group        |
// | sp_key_mask<B>(batch, S, P)       | (batch, padded) u8 key mask, 0 on the padding; empty when none   |
// The chunk of the rank with sp coordinate c = u + U·r is [c·n, (c+1)·n), n = padded / P; the
// padding rows [S, padded) sit at the end, so only the last chunks hold them. Attention masks the
// padded keys (sp_key_mask) and callers drop the padded rows after gathering (docs/sequence-parallel.md).
#pragma once

#include <algorithm>

#include "pdiff/comm/tensor_collectives.hpp"
#include "pdiff/parallel/axis.hpp"

namespace pdiff {

constexpr std::int64_t sp_padded_length(std::int64_t s, std::int64_t parts) { return (s + parts - 1) / parts * parts; }

// This rank's part of a sequence of `length` rows padded to `padded`: rows [begin, end), of which
// [begin, real_end()) are real and the rest padding.
struct SpChunk {
  std::int64_t length = 0, padded = 0, begin = 0, end = 0;
  std::int64_t size() const { return end - begin; }
  std::int64_t real_end() const { return std::clamp(length, begin, end); }
  std::int64_t real() const { return real_end() - begin; }
  std::int64_t padding() const { return end - real_end(); }
  bool padded_sequence() const { return padded != length; }
};

template <class L, class R>
SpChunk sp_chunk(const R& rank, std::int64_t length) {
  constexpr int P = L::ulysses * L::ring;
  const std::int64_t padded = sp_padded_length(length, P), n = padded / P;
  const std::int64_t c = P == 1 ? 0 : L::coord(Axis::sp, rank.index);
  return {length, padded, c * n, (c + 1) * n};
}

template <class L, class R, class T, class B>
Tensor<T, B> sp_shard(const R& rank, const Tensor<T, B>& x, int dim = 1) {
  if constexpr (L::ulysses * L::ring == 1) {
    return x;
  } else {
    const SpChunk c = sp_chunk<L>(rank, x.size(dim));
    auto real = narrow(x, dim, c.begin, c.real());
    if (c.padding() == 0) return real;
    Shape pad = x.shape();
    pad[dim] = c.padding();
    return cat(real, Tensor<T, B>::zeros(pad), dim);
  }
}

template <class L, class R, class T, class B>
Tensor<T, B> sp_gather(R& rank, const Tensor<T, B>& x, int dim = 1) {
  if constexpr (L::ulysses * L::ring == 1) return x;
  else return all_gather(rank.sp, x, dim);
}

// (batch, padded) key mask with 0 on the padding rows; an empty tensor when nothing is padded (so
// attention runs unmasked). Built on the host and moved to B once per forward.
template <class B>
Tensor<std::uint8_t, B> sp_key_mask(std::int64_t batch, std::int64_t length, int parts) {
  const std::int64_t padded = sp_padded_length(length, parts);
  if (padded == length) return {};
  Tensor<std::uint8_t> m = Tensor<std::uint8_t>::zeros({batch, padded});
  for (std::int64_t b = 0; b < batch; ++b) std::fill_n(m.data() + b * padded, length, std::uint8_t(1));
  return to<B>(m);
}

}  // namespace pdiff
