// pdiff/layers/kv_cache.hpp — KvCache: keys and values of past tokens for autoregressive decoding.
//
// The one layout of pdiff's KV cache, per layer: K and V each (B, capacity, kv_heads_local, D),
// tokens [0, length) valid, the same length for every batch entry (left-padded prompts carry a
// padding key mask instead). Sharded like the attention it feeds: kv_heads_local = the
// QKVParallel's kv_local(). Stages that hand a cache to another stage (BAGEL's AR → DiT) convert
// other layouts ((2, blocks, ...) vs (blocks, 2, ...)) into this one in one helper at the boundary.
// | member                     | effect                                                          |
// |----------------------------|-----------------------------------------------------------------|
// | append(layer, k, v)        | k, v (B, n, Hkv, D) written at [length, length + n) of layer    |
// | keys(layer), values(layer) | (B, length, Hkv, D): a view when B = 1, else a packed copy      |
// | advance(n)                 | length += n, after every layer appended its n tokens            |
#pragma once

#include <algorithm>

#include <vector>

#include "pdiff/backend/ops.hpp"
#include "pdiff/layers/ctx.hpp"

namespace pdiff {

template <class C>
class KvCache {
 public:
  using tensor = typename C::tensor;
  KvCache() = default;
  KvCache(int layers, std::int64_t batch, std::int64_t capacity, std::int64_t kv_heads, std::int64_t head_dim)
      : batch_(batch), capacity_(capacity), heads_(kv_heads), dim_(head_dim) {
    for (int i = 0; i < layers; ++i) {
      k_.push_back(tensor::zeros({batch, capacity, kv_heads, head_dim}));
      v_.push_back(tensor::zeros({batch, capacity, kv_heads, head_dim}));
    }
  }
  std::int64_t length() const { return length_; }
  std::int64_t capacity() const { return capacity_; }
  int layers() const { return int(k_.size()); }

  void append(int layer, const tensor& k, const tensor& v) {
    PDIFF_CHECK(layer >= 0 && layer < layers(), "KvCache: layer ", layer, " out of range [0, ", layers(), ")");
    PDIFF_CHECK(k.rank() == 4 && k.size(0) == batch_ && k.size(2) == heads_ && k.size(3) == dim_ &&
                    v.shape() == k.shape(),
                "KvCache: k", k.shape(), "/v", v.shape(), " must be (", batch_, ", n, ", heads_, ", ", dim_, ")");
    const std::int64_t n = k.size(1);
    PDIFF_CHECK(length_ + n <= capacity_, "KvCache: ", length_, " + ", n, " tokens exceed the capacity ", capacity_);
    const std::int64_t row = heads_ * dim_;
    using B = typename C::backend;
    detail::copy_rows<B>(k_[std::size_t(layer)].data() + length_ * row, capacity_ * row, k.data(), n * row, n * row, batch_);
    detail::copy_rows<B>(v_[std::size_t(layer)].data() + length_ * row, capacity_ * row, v.data(), n * row, n * row, batch_);
  }
  void advance(std::int64_t n) {
    PDIFF_CHECK(length_ + n <= capacity_, "KvCache: ", length_, " + ", n, " tokens exceed the capacity ", capacity_);
    length_ += n;
  }
  // `extra` counts tokens appended to this layer but not yet advanced (the current step's).
  tensor keys(int layer, std::int64_t extra = 0) const { return prefix(k_[std::size_t(layer)], extra); }
  tensor values(int layer, std::int64_t extra = 0) const { return prefix(v_[std::size_t(layer)], extra); }

 private:
  tensor prefix(const tensor& t, std::int64_t extra) const {
    const std::int64_t n = length_ + extra;
    if (batch_ == 1) return t.view({capacity_, heads_, dim_}).slice(0, n).view({1, n, heads_, dim_});
    return narrow(t, 1, 0, n);
  }
  std::int64_t batch_ = 0, capacity_ = 0, heads_ = 0, dim_ = 0, length_ = 0;
  std::vector<tensor> k_, v_;
};

}  // namespace pdiff
