// pdiff/stage/kv_transfer.hpp — the KV cache of a prefilled context as it travels between stages, in
// one normalised layout: per layer K and V of (tokens, kv_heads, head_dim), fp32 on the host, all KV
// heads (the producer's TP shards gathered), with the metadata the consumer needs in the same message
// (request id, KV length, next RoPE position, output size). The consumer re-shards by heads for its own
// TP degree, which may differ from the producer's.
//
// | call                                  | where          | what                                          |
// |---------------------------------------|----------------|-----------------------------------------------|
// | gather_kv<L>(rank, prefix, kv_heads)  | producer ranks | this TP rank's heads → all heads (collective over tp) |
// | shard_kv<C>(full, range)              | consumer ranks | all heads → the heads [range) of this TP rank |
// | KvContext::bytes()                    |                | the bytes moved: layers · 2 · tokens · kv_heads · head_dim · 4 |
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "pdiff/comm/tensor_collectives.hpp"
#include "pdiff/layers/attention.hpp"
#include "pdiff/layers/ctx.hpp"
#include "pdiff/parallel/axis_comm.hpp"

namespace pdiff {

struct KvContext {
  std::int64_t length = 0, rope = 0;                // tokens cached; the next RoPE position
  std::vector<Tensor<float, OnCpu>> k, v;            // per layer (tokens, kv_heads, head_dim)
  std::size_t bytes() const {
    std::size_t b = 0;
    for (std::size_t i = 0; i < k.size(); ++i) b += std::size_t(k[i].numel() + v[i].numel()) * sizeof(float);
    return b;
  }
};

// (1, T, kv_local, D) on this TP rank → (T, kv_heads, D) with every head, on every TP rank. TP rank r
// holds heads [r·kv/tp, (r+1)·kv/tp) when kv >= tp, else head r / (tp/kv) (replicated groups).
template <class L, class R, class T, class B>
Tensor<float, OnCpu> gather_kv(R& rank, const Tensor<T, B>& x, std::int64_t kv_heads) {
  PDIFF_CHECK(x.rank() == 4 && x.size(0) == 1, "gather_kv: the cache", x.shape(), " must be (1, tokens, heads, D)");
  const std::int64_t Tn = x.size(1), D = x.size(3);
  if constexpr (L::tp == 1) {
    PDIFF_CHECK(x.size(2) == kv_heads, "gather_kv: ", x.size(2), " heads, the model has ", kv_heads);
    return to_host_f32(x).view({Tn, kv_heads, D});
  } else {
    // gathered where the cache lives (the tp communicator takes that memory), then brought to the host
    const auto all = to_host_f32(all_gather(rank.tp, x, 2));  // (1, T, tp·kv_local, D)
    if (kv_heads >= L::tp) return all.view({Tn, kv_heads, D});
    const std::int64_t group = L::tp / kv_heads;  // ranks sharing one head
    Tensor<float, OnCpu> out({Tn, kv_heads, D});
    for (std::int64_t t = 0; t < Tn; ++t)
      for (std::int64_t hd = 0; hd < kv_heads; ++hd)
        std::copy_n(all.data() + (t * L::tp + hd * group) * D, D, out.data() + (t * kv_heads + hd) * D);
    return out;
  }
}

// (T, kv_heads, D) → heads [range) as this rank's cache (1, T, range, D) in C's backend and type.
template <class C>
typename C::tensor shard_kv(const Tensor<float, OnCpu>& full, std::pair<std::int64_t, std::int64_t> range) {
  PDIFF_CHECK(full.rank() == 3 && range.first >= 0 && range.second <= full.size(1) && range.first < range.second,
              "shard_kv: heads [", range.first, ", ", range.second, ") of a cache", full.shape());
  const std::int64_t Tn = full.size(0), n = range.second - range.first, D = full.size(2);
  auto part = n == full.size(1) ? full : narrow(full, 1, range.first, n);
  return to_ctx<C>(part.view({1, Tn, n, D}));
}

}  // namespace pdiff
