// pdiff/comm/tensor_collectives.hpp — collectives on whole tensors, for any Communicator.
//
// | function                          | x (this rank)      | result                                    |
// |-----------------------------------|--------------------|-------------------------------------------|
// | all_reduce_(comm, x, op)          | any, in place      | reduced over the group                    |
// | all_gather(comm, x, dim)          | (..., n, ...)      | (..., size·n, ...): rank blocks along dim |
// | reduce_scatter(comm, x, dim, op)  | (..., size·n, ...) | (..., n, ...): this rank's block, reduced |
// | all_to_all(comm, x, split, cat)   | split dim size·a   | that dim a; dim `cat` multiplied by size  |
// Blocks along an inner dimension are packed/unpacked around the flat collective. Host tensors go
// to the communicator directly; device tensors need a device communicator (NcclComm).
#pragma once

#include <cstring>
#include <vector>

#include "pdiff/comm/communicator.hpp"
#include "pdiff/core/tensor.hpp"

namespace pdiff {

namespace detail {
// Outer (product of dims before d), extent of d, inner (product after d).
struct Split3 {
  std::int64_t outer = 1, n = 1, inner = 1;
};
inline Split3 split3(const Shape& s, int d) {
  Split3 r;
  d = s.norm(d);
  for (int i = 0; i < d; ++i) r.outer *= s.dims[i];
  r.n = s.dims[d];
  for (int i = d + 1; i < s.rank; ++i) r.inner *= s.dims[i];
  return r;
}
// blocks (P, outer, n/P·inner) ← x (outer, n, inner): block p holds x's slice p along the dimension.
template <class T>
void block_pack(const T* x, T* blocks, Split3 s, int parts) {
  const std::int64_t chunk = s.n / parts * s.inner;
  for (int p = 0; p < parts; ++p)
    for (std::int64_t o = 0; o < s.outer; ++o)
      std::memcpy(blocks + (std::int64_t(p) * s.outer + o) * chunk, x + (o * s.n * s.inner + p * chunk),
                  std::size_t(chunk) * sizeof(T));
}
// x (outer, n, inner) ← blocks (P, outer, n/P·inner): the inverse of block_pack.
template <class T>
void block_unpack(const T* blocks, T* x, Split3 s, int parts) {
  const std::int64_t chunk = s.n / parts * s.inner;
  for (int p = 0; p < parts; ++p)
    for (std::int64_t o = 0; o < s.outer; ++o)
      std::memcpy(x + (o * s.n * s.inner + p * chunk), blocks + (std::int64_t(p) * s.outer + o) * chunk,
                  std::size_t(chunk) * sizeof(T));
}
}  // namespace detail

template <Communicator C, class T>
void all_reduce_(C& comm, Tensor<T, OnCpu>& x, ReduceOp op = ReduceOp::sum) {
  if (comm.size() > 1) comm.all_reduce(x.data(), std::size_t(x.numel()), op);
}

template <Communicator C, class T>
Tensor<T, OnCpu> all_gather(C& comm, const Tensor<T, OnCpu>& x, int dim = 0) {
  const int P = comm.size();
  Shape s = x.shape();
  dim = s.norm(dim);
  s.dims[dim] *= P;
  Tensor<T, OnCpu> out(s);
  if (P == 1) {
    copy(out, x);
    return out;
  }
  if (detail::split3(x.shape(), dim).outer == 1) {
    comm.all_gather(x.data(), out.data(), std::size_t(x.numel()));
    return out;
  }
  Tensor<T, OnCpu> tmp({std::int64_t(P) * x.numel()});
  comm.all_gather(x.data(), tmp.data(), std::size_t(x.numel()));
  detail::block_unpack(tmp.data(), out.data(), detail::split3(s, dim), P);
  return out;
}

template <Communicator C, class T>
Tensor<T, OnCpu> reduce_scatter(C& comm, const Tensor<T, OnCpu>& x, int dim = 0, ReduceOp op = ReduceOp::sum) {
  const int P = comm.size();
  Shape s = x.shape();
  dim = s.norm(dim);
  PDIFF_CHECK(s.dims[dim] % P == 0, "reduce_scatter: dimension ", dim, " of x", s, " must be divisible by the group size ",
              P);
  Shape o = s;
  o.dims[dim] /= P;
  Tensor<T, OnCpu> out(o);
  if (P == 1) {
    copy(out, x);
    return out;
  }
  auto sp = detail::split3(s, dim);
  if (sp.outer == 1) {
    comm.reduce_scatter(x.data(), out.data(), std::size_t(out.numel()), op);
    return out;
  }
  Tensor<T, OnCpu> tmp({x.numel()});
  detail::block_pack(x.data(), tmp.data(), sp, P);
  comm.reduce_scatter(tmp.data(), out.data(), std::size_t(out.numel()), op);
  return out;
}

// Splits dimension `split_dim` into `size` blocks, sends block j to rank j, and concatenates the
// received blocks (in rank order) along `cat_dim`. Ulysses uses it with split = heads, cat = sequence
// and the reverse.
template <Communicator C, class T>
Tensor<T, OnCpu> all_to_all(C& comm, const Tensor<T, OnCpu>& x, int split_dim, int cat_dim) {
  const int P = comm.size();
  Shape s = x.shape();
  split_dim = s.norm(split_dim);
  cat_dim = s.norm(cat_dim);
  PDIFF_CHECK(s.dims[split_dim] % P == 0, "all_to_all: dimension ", split_dim, " of x", s,
              " must be divisible by the group size ", P);
  if (P == 1) return x.clone();
  Tensor<T, OnCpu> send({x.numel()}), recv({x.numel()});
  detail::block_pack(x.data(), send.data(), detail::split3(s, split_dim), P);
  comm.all_to_all(send.data(), recv.data(), std::size_t(x.numel() / P));
  // recv block i (from rank i) has x's shape with split_dim divided by P; place it at block i of cat_dim
  Shape blk = s;
  blk.dims[split_dim] /= P;
  Shape o = blk;
  o.dims[cat_dim] *= P;
  Tensor<T, OnCpu> out(o);
  detail::block_unpack(recv.data(), out.data(), detail::split3(o, cat_dim), P);
  return out;
}

}  // namespace pdiff
