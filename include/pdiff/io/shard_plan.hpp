// pdiff/io/shard_plan.hpp — how a rank's parameter is cut from checkpoint tensors, and what a weight
// source is.
//
// A ShardPlan says: the local parameter (shape `local`) is the concatenation along `cat_dim` of
// slices [begin, end) along `dim` of checkpoint tensors `source` (an index into the layer's list of
// checkpoint names, e.g. {to_q, to_k, to_v}). Layers publish plans; the checkpoint loader reads
// only those rows/columns from the file, and tests build shards from full tensors with
// materialize(). Cases:
// | layer                 | sources      | slice dim | cat dim |
// |-----------------------|--------------|-----------|---------|
// | ColumnParallel        | W            | 0 (rows)  | 0       |
// | RowParallel           | W            | 1 (cols)  | 1       |
// | QKVParallel           | Wq, Wk, Wv   | 0         | 0       |
// | MergedColumnParallel  | W₀..Wₙ or one fused W | 0 | 0       |
// | VocabParallelEmbedding| E            | 0         | 0       |
// A weight source is anything with Checkpoint's reading interface — read(name) for a whole tensor and
// read_plan(plan, names, full_shapes) for a rank's shard: io/checkpoint.hpp, or the benchmarks' random
// weights. Layers load themselves from one (`layer.load(source, rank, names)`); io needs no layer header.
#pragma once

#include <concepts>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "pdiff/backend/cpu/memory.hpp"
#include "pdiff/core/copy_ops.hpp"
#include "pdiff/core/tensor.hpp"

namespace pdiff {

struct Slice {
  int source = 0;
  int dim = 0;
  std::int64_t begin = 0, end = 0;
};

struct ShardPlan {
  Shape local;
  int cat_dim = 0;
  std::vector<Slice> slices;
};

// Each source's full shape, in the order the plan's slices index them (checked against the file).
using FullShapes = std::vector<std::vector<std::int64_t>>;
using TensorNames = std::vector<std::string>;

template <class S>
concept WeightSource = requires(const S& s, const ShardPlan& p, const TensorNames& n, const FullShapes& f) {
  { s.read(n[0]) } -> std::convertible_to<Tensor<float, OnCpu>>;
  { s.read_plan(p, n, f) } -> std::convertible_to<Tensor<float, OnCpu>>;
};

// [index·n/parts, (index+1)·n/parts) with the divisibility rule stated when it fails.
constexpr std::pair<std::int64_t, std::int64_t> even_range(std::int64_t n, int parts, int index, const char* what) {
  PDIFF_CHECK(parts >= 1, what, ": the number of shards (", parts, ") must be at least 1");
  PDIFF_CHECK(n % parts == 0, what, " (", n, ") must be divisible by the number of shards (", parts, ")");
  const std::int64_t len = n / parts;
  return {index * len, (index + 1) * len};
}

// Builds a local parameter from its plan: `read(slice)` returns the slice of its source as a tensor
// whose extent along slice.dim is end − begin (rows past the source's end zero); the pieces are
// concatenated along cat_dim. The checkpoint loader passes a reader that touches only those bytes
// of the file; materialize() below reads from full tensors in memory.
// The element type is the reader's (f32, or bf16 for Checkpoint::read_plan_bf16).
template <class ReadSlice>
auto assemble(const ShardPlan& plan, ReadSlice&& read) {
  using Part = decltype(read(plan.slices.front()));
  using T = typename Part::value_type;
  std::vector<Part> parts;
  std::vector<const Part*> ptrs;
  parts.reserve(plan.slices.size());
  for (const Slice& s : plan.slices) parts.push_back(read(s));
  for (auto& p : parts) ptrs.push_back(&p);
  Part out = parts.size() == 1 ? parts[0] : cat<T, OnCpu>(ptrs, plan.cat_dim);
  PDIFF_CHECK(out.shape() == plan.local, "shard: assembled ", out.shape(), " but the layer expects ", plan.local);
  return out;
}

// Slice [begin, end) of `src` along `dim`, zero-padded past its end (vocabulary padding).
template <class T>
Tensor<T, OnCpu> slice_padded(const Tensor<T, OnCpu>& src, int dim, std::int64_t begin, std::int64_t end) {
  const std::int64_t n = src.size(dim);
  PDIFF_CHECK(begin >= 0 && begin <= end, "shard: bad slice [", begin, ", ", end, ")");
  if (end <= n) return narrow(src, dim, begin, end - begin);
  Shape s = src.shape();
  s[dim] = end - begin;
  auto out = Tensor<T, OnCpu>::zeros(s);
  if (begin < n) {
    auto have = narrow(src, dim, begin, n - begin);
    auto pad = Tensor<T, OnCpu>::zeros([&] { Shape p = s; p[dim] = end - n; return p; }());
    out = cat(have, pad, dim);
  }
  return out;
}

// The local parameter from full tensors in memory (tests, converted checkpoints).
inline Tensor<float, OnCpu> materialize(const ShardPlan& plan, std::span<const Tensor<float, OnCpu>* const> sources) {
  return assemble(plan, [&](const Slice& s) {
    PDIFF_CHECK(s.source >= 0 && std::size_t(s.source) < sources.size() && sources[std::size_t(s.source)],
                "materialize: the plan names source ", s.source, " but ", sources.size(), " were given");
    return slice_padded(*sources[std::size_t(s.source)], s.dim, s.begin, s.end);
  });
}

inline Tensor<float, OnCpu> materialize(const ShardPlan& plan, const Tensor<float, OnCpu>& source) {
  const Tensor<float, OnCpu>* s[] = {&source};
  return materialize(plan, s);
}

}  // namespace pdiff
