// Host-side entry points to the CUDA layer ops for the op tests: plain std::vector<float> in and out,
// so the comparisons with the CPU ops (Eigen) compile with the host compiler. Inputs are converted to
// the storage type on upload (bf16: round to nearest even) and results back to float.
// Optional inputs are nullptr.
#pragma once

#include <cstdint>
#include <vector>

namespace pdiff::test {

enum class Dt { f32, bf16 };

std::vector<float> dev_rms_norm(Dt dt, const std::vector<float>& x, const std::vector<float>* w, std::int64_t rows,
                                int d, float eps);
std::vector<float> dev_layer_norm_modulate(Dt dt, const std::vector<float>& x, const std::vector<float>* w,
                                           const std::vector<float>* b, const std::vector<float>* shift,
                                           const std::vector<float>* scale, std::int64_t batch, std::int64_t seq,
                                           int d, float eps);
std::vector<float> dev_group_norm(Dt dt, const std::vector<float>& x, const std::vector<float>* w,
                                  const std::vector<float>* b, std::int64_t batch, std::int64_t channels,
                                  std::int64_t rest, int groups, float eps);
std::vector<float> dev_rope(Dt dt, const std::vector<float>& x, const std::vector<float>& cos,
                            const std::vector<float>& sin, std::int64_t batch, std::int64_t seq, std::int64_t heads,
                            int d, bool batched, bool interleaved);
std::vector<float> dev_activation(Dt dt, const std::vector<float>& x, bool gelu);
std::vector<float> dev_swiglu(Dt dt, const std::vector<float>& x, std::int64_t rows, std::int64_t f);
std::vector<float> dev_gated_add(Dt dt, const std::vector<float>& x, const std::vector<float>* gate,
                                 const std::vector<float>& y, std::int64_t batch, std::int64_t seq, std::int64_t d);
std::vector<float> dev_softmax(Dt dt, const std::vector<float>& x, std::int64_t rows, int n, float scale);

struct DevAttnCase {
  std::int64_t batch = 1, sq = 1, sk = 1;
  int heads = 1, kv_heads = 1, head_dim = 64;
  float scale = 0.0f;
  bool causal = false;
  std::int64_t q_offset = 0, k_offset = 0;
  const std::vector<std::uint8_t>* key_mask = nullptr;  // (B, Sk)
  const std::vector<std::uint8_t>* mask = nullptr;      // (B or 1, Sq, Sk)
  bool mask_batched = false;
};
struct DevAttnResult {
  std::vector<float> out, lse;
};
enum class AttnKernel { flash, reference_f32, reference_bf16 };
// flash: bf16 storage; reference_*: the one-block-per-row kernel in fp32 or bf16 storage.
DevAttnResult dev_attention(AttnKernel kernel, const DevAttnCase& c, const std::vector<float>& q,
                            const std::vector<float>& k, const std::vector<float>& v, bool want_lse);

}  // namespace pdiff::test
