// pdiff/core/attn_args.hpp — BasicAttnArgs<B>: the options of attention() on backend B, the same
// fields on every backend (AttnArgs is the CPU one). Masks live where the tensors do.
//
// | field              | meaning                                                                    |
// |--------------------|----------------------------------------------------------------------------|
// | scale              | 0: 1/sqrt(D)                                                               |
// | causal             | key j masked for query i when k_offset + j > q_offset + i (global positions, for Ring) |
// | key_mask           | (B, Sk) u8, 0 = padding                                                    |
// | mask               | (B or 1, Sq, Sk) u8, 0 = masked (block masks, e.g. BAGEL's per-segment masks) |
#pragma once

#include <cstdint>

#include "pdiff/core/tensor.hpp"

namespace pdiff {

template <class B>
struct BasicAttnArgs {
  float scale = 0.0f;  // 0: 1/sqrt(D)
  bool causal = false;
  std::int64_t q_offset = 0, k_offset = 0;
  const Tensor<std::uint8_t, B>* key_mask = nullptr;
  const Tensor<std::uint8_t, B>* mask = nullptr;
};
using AttnArgs = BasicAttnArgs<OnCpu>;

}  // namespace pdiff
