// pdiff/models/hunyuan_image3/shards.hpp — HunyuanImage-3.0's qkv_proj under TP, as a value: the layer
// (HunyuanAttention::load) and the memory plan (hunyuan_image3_param_plan) evaluate the same arithmetic.
//
// qkv_proj.weight is ((NH + 2·KVH)·D, H), its rows grouped per KV head as [q×G, k, v] (G = NH / KVH query
// heads per KV head). TP splits the KV heads, each with its query group: rank r holds the contiguous rows
// [r·rows(), (r+1)·rows()) — kv_local() KV heads of (G + 2)·D rows each.
#pragma once

#include <cstdint>

#include "pdiff/core/error.hpp"
#include "pdiff/core/shape.hpp"
#include "pdiff/models/hunyuan_image3/config.hpp"

namespace pdiff {

struct HunyuanQkvShards {
  std::int64_t hidden = 0, heads = 0, kv_heads = 0, head_dim = 0;
  int degree = 1;

  HunyuanQkvShards(const HunyuanImage3Config& c, int tp)
      : hidden(c.hidden_size), heads(c.num_attention_heads), kv_heads(c.num_key_value_heads),
        head_dim(c.attention_head_dim), degree(tp) {
    PDIFF_CHECK(degree >= 1, "HunyuanImage-3.0: TP degree (", degree, ") must be at least 1");
    PDIFF_CHECK(kv_heads >= 1 && heads % kv_heads == 0, "HunyuanImage-3.0: num_attention_heads (", heads,
                ") must be a multiple of num_key_value_heads (", kv_heads, ")");
    PDIFF_CHECK(kv_heads % degree == 0, "HunyuanImage-3.0: num_key_value_heads (", kv_heads,
                ") must be divisible by tp (", degree, "): TP splits the KV heads with their query groups");
  }
  std::int64_t groups() const { return heads / kv_heads; }
  std::int64_t kv_local() const { return kv_heads / degree; }
  std::int64_t rows() const { return kv_local() * (groups() + 2) * head_dim; }  // this rank's rows
  std::int64_t row_begin(int rank) const { return std::int64_t(rank) * rows(); }
  Shape full_shape() const { return Shape{(heads + 2 * kv_heads) * head_dim, hidden}; }
  Shape local_shape() const { return Shape{rows(), hidden}; }
  std::int64_t local_elements() const { return rows() * hidden; }
};

}  // namespace pdiff
