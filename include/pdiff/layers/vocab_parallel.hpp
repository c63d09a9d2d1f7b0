// pdiff/layers/vocab_parallel.hpp — VocabParallelEmbedding<C, A> and VocabParallelLMHead<C, A>.
//
// The vocabulary is padded to a multiple of P (padding rows are zero) and rank r holds rows
// [r·V'/P, (r+1)·V'/P). Embedding: ids (B, S) int64 → masked local lookup (ids outside the shard
// give 0) → all_reduce → (B, S, dim). LM head: x (..., dim) → local logits (..., V'/P) →
// all_gather → (..., V), the padding cut. An id outside [0, V) is an error naming it.
#pragma once

#include <algorithm>

#include "pdiff/comm/tensor_collectives.hpp"
#include "pdiff/layers/linear_core.hpp"
#include "pdiff/parallel/axis_comm.hpp"

namespace pdiff {

// The vocabulary's shard arithmetic for a degree given as a value (compile-time or run-time): rows
// [r·V'/P, (r+1)·V'/P) of the padded vocabulary V' = P·ceil(V/P).
struct VocabShards {
  std::int64_t vocab = 0, dim = 0;
  int degree = 1;
  static constexpr bool has_bias = false;

  constexpr VocabShards() = default;
  constexpr VocabShards(std::int64_t vocab_size, std::int64_t embed_dim, int degree_)
      : vocab(vocab_size), dim(embed_dim), degree(degree_) {
    PDIFF_CHECK(degree >= 1, "VocabParallel: the number of shards (", degree, ") must be at least 1");
  }
  constexpr std::int64_t rows_local() const { return (vocab + degree - 1) / degree; }
  constexpr std::int64_t local_elements() const { return rows_local() * dim; }

  ShardPlan weight_plan(int r) const {
    const std::int64_t n = rows_local();
    return {Shape{n, dim}, 0, {{0, 0, r * n, (r + 1) * n}}};
  }
  ShardPlan bias_plan(int) const { return {}; }
  FullShapes weight_shapes() const { return {{vocab, dim}}; }
  FullShapes bias_shapes() const { return {}; }
};

template <class C, Axis A = Axis::tp>
struct VocabParallelEmbedding : VocabShards {
  using tensor = typename C::tensor;
  static constexpr int parts = C::layout::degree(A);
  Tensor<float, OnCpu> weight;   // (V'/P, dim), on the host: rows are gathered there, then moved
  Tensor<bf16, OnCpu> weight16;  // the same kept bf16 when the checkpoint is (backend/cpu/bf16_weights.hpp)

  VocabParallelEmbedding() = default;
  VocabParallelEmbedding(std::int64_t vocab_size, std::int64_t embed_dim) : VocabShards(vocab_size, embed_dim, parts) {}

  // Rank r's rows from a weight source: `weights` = {E (vocab, dim)}.
  template <WeightSource S>
  void load(const S& source, int r, const TensorNames& weights) {
    PDIFF_CHECK(weights.size() == 1, "VocabParallelEmbedding: one tensor expected, ", weights.size(), " named");
    set(source.read_plan(weight_plan(r), weights, weight_shapes()));
  }
  // Rank r's rows cut from the full table in memory (tests).
  void load(int r, const Tensor<float, OnCpu>& w) { set(materialize(weight_plan(r), w)); }

  template <class R>
  tensor forward(R& rank, const Tensor<std::int64_t, OnCpu>& ids) const {
    const int r = parts > 1 ? axis_comm<A>(rank).rank() : 0;
    const std::int64_t lo = r * rows_local(), hi = lo + rows_local();
    Shape s = ids.shape();
    PDIFF_CHECK(s.rank < Shape::max_rank, "VocabParallelEmbedding: ids", s, " has too many dimensions");
    s.dims[s.rank++] = dim;
    auto out = Tensor<float, OnCpu>::zeros(s);
    for (std::int64_t t = 0; t < ids.numel(); ++t) {
      const std::int64_t id = ids(t);
      PDIFF_CHECK(id >= 0 && id < vocab, "VocabParallelEmbedding: token id ", id, " at position ", t,
                  " is outside the vocabulary [0, ", vocab, ")");
      if (id < lo || id >= hi) continue;
      if (weight16.empty()) std::copy_n(weight.data() + (id - lo) * dim, dim, out.data() + t * dim);
      else widen_bf16(weight16.data() + (id - lo) * dim, out.data() + t * dim, dim);
    }
    tensor y = to_ctx<C>(out);
    if constexpr (parts > 1) all_reduce_(axis_comm<A>(rank), y);
    return y;
  }

 private:
  void set(const Tensor<float, OnCpu>& local) {
    if (keep_bf16(local)) weight16 = convert<bf16>(local), weight = {};
    else weight = local, weight16 = {};
  }
};

template <class C, Axis A = Axis::tp>
struct VocabParallelLMHead : VocabShards {
  using tensor = typename C::tensor;
  static constexpr int parts = C::layout::degree(A);
  detail::LinearCore<C> core;

  VocabParallelLMHead() = default;
  VocabParallelLMHead(std::int64_t vocab_size, std::int64_t hidden) : VocabShards(vocab_size, hidden, parts) {}

  // Rank r's rows from a weight source: `weights` = {W (vocab, hidden)} (the embedding's when tied).
  template <WeightSource S>
  void load(const S& source, int r, const TensorNames& weights) {
    detail::load_shard(core, *this, source, r, weights, {});
  }
  // Rank r's rows cut from the full matrix in memory (tests).
  void load(int r, const Tensor<float, OnCpu>& w) { core.set(materialize(weight_plan(r), w)); }

  template <class R>
  tensor forward(R& rank, const tensor& x) const {
    auto local = core.matmul(x);
    if constexpr (parts == 1) {
      return local;
    } else {
      auto full = all_gather(axis_comm<A>(rank), local, -1);  // (..., V')
      return narrow(full, -1, 0, vocab);  // drop the padding rows of the last shard
    }
  }
};

}  // namespace pdiff
