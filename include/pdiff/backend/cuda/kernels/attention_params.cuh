// pdiff/backend/cuda/kernels/attention_params.cuh — the options both CUDA attention kernels take
// (flash_attention.cuh, attention_reference.cuh); the device-pointer twin of the CPU AttnArgs.
//
// | field              | meaning (as backend/cpu/attention.hpp)                                        |
// |--------------------|--------------------------------------------------------------------------------|
// | scale              | 0: 1/sqrt(D)                                                                   |
// | causal             | key j masked for query i when k_offset + j > q_offset + i (global positions)  |
// | key_mask           | (B, Sk) u8 device, 0 = padding (valid lengths: ones then zeros)                |
// | mask, mask_batched | (B, Sq, Sk) when mask_batched, else (1, Sq, Sk); u8 device, 0 = masked         |
// A query row whose keys are all masked gives 0 and lse −inf (as PyTorch SDPA and the CPU op).
#pragma once

#include <cstdint>

namespace pdiff::cuda {

struct AttnParams {
  float scale = 0.0f;
  bool causal = false;
  std::int64_t q_offset = 0, k_offset = 0;
  const std::uint8_t* key_mask = nullptr;
  const std::uint8_t* mask = nullptr;
  bool mask_batched = false;
};

}  // namespace pdiff::cuda
