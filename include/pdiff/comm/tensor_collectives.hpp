// pdiff/comm/tensor_collectives.hpp — collectives on whole tensors, for any Communicator.
//
// | function                          | x (this rank)      | result                                    |
// |-----------------------------------|--------------------|-------------------------------------------|
// | all_reduce_(comm, x, op)          | any, in place      | reduced over the group                    |
// | all_gather(comm, x, dim)          | (..., n, ...)      | (..., size·n, ...): rank blocks along dim |
// | reduce_scatter(comm, x, dim, op)  | (..., size·n, ...) | (..., n, ...): this rank's block, reduced |
// | all_to_all(comm, x, split, cat)   | split dim size·a   | that dim a; dim `cat` multiplied by size  |
// Blocks along an inner dimension are packed/unpacked around the flat collective. Any backend's
// tensors: the packing is copy_ops' strided copies and the communicator must accept that memory
// (comm_accepts: a static_assert names the rule).
#pragma once

#include <cstring>
#include <vector>

#include "pdiff/comm/communicator.hpp"
#include "pdiff/core/copy_ops.hpp"

namespace pdiff {

namespace detail {
template <class C, class B>
constexpr void check_comm_memory() {
  static_assert(comm_accepts<C, B>(),
                "tensor collective: this communicator works on host memory; device tensors need a device "
                "communicator (NcclComm, or DeviceThreadComm for thread ranks sharing a GPU)");
}
}  // namespace detail

template <Communicator C, class T, class B>
void all_reduce_(C& comm, Tensor<T, B>& x, ReduceOp op = ReduceOp::sum) {
  detail::check_comm_memory<C, B>();
  if (comm.size() > 1) comm.all_reduce(x.data(), std::size_t(x.numel()), op);
}

template <Communicator C, class T, class B>
Tensor<T, B> all_gather(C& comm, const Tensor<T, B>& x, int dim = 0) {
  detail::check_comm_memory<C, B>();
  const int P = comm.size();
  Shape s = x.shape();
  dim = s.norm(dim);
  s.dims[dim] *= P;
  Tensor<T, B> out(s);
  if (P == 1) {
    copy(out, x);
    return out;
  }
  if (detail::split3(x.shape(), dim).outer == 1) {
    comm.all_gather(x.data(), out.data(), std::size_t(x.numel()));
    return out;
  }
  Tensor<T, B> tmp({std::int64_t(P) * x.numel()});
  comm.all_gather(x.data(), tmp.data(), std::size_t(x.numel()));
  detail::block_unpack<B>(tmp.data(), out.data(), detail::split3(s, dim), P);
  return out;
}

template <Communicator C, class T, class B>
Tensor<T, B> reduce_scatter(C& comm, const Tensor<T, B>& x, int dim = 0, ReduceOp op = ReduceOp::sum) {
  detail::check_comm_memory<C, B>();
  const int P = comm.size();
  Shape s = x.shape();
  dim = s.norm(dim);
  PDIFF_CHECK(s.dims[dim] % P == 0, "reduce_scatter: dimension ", dim, " of x", s, " must be divisible by the group size ",
              P);
  Shape o = s;
  o.dims[dim] /= P;
  Tensor<T, B> out(o);
  if (P == 1) {
    copy(out, x);
    return out;
  }
  auto sp = detail::split3(s, dim);
  if (sp.outer == 1) {
    comm.reduce_scatter(x.data(), out.data(), std::size_t(out.numel()), op);
    return out;
  }
  Tensor<T, B> tmp({x.numel()});
  detail::block_pack<B>(x.data(), tmp.data(), sp, P);
  comm.reduce_scatter(tmp.data(), out.data(), std::size_t(out.numel()), op);
  return out;
}

// Splits dimension `split_dim` into `size` blocks, sends block j to rank j, and concatenates the
// received blocks (in rank order) along `cat_dim`. Ulysses uses it with split = heads, cat = sequence
// and the reverse.
template <Communicator C, class T, class B>
Tensor<T, B> all_to_all(C& comm, const Tensor<T, B>& x, int split_dim, int cat_dim) {
  detail::check_comm_memory<C, B>();
  const int P = comm.size();
  Shape s = x.shape();
  split_dim = s.norm(split_dim);
  cat_dim = s.norm(cat_dim);
  PDIFF_CHECK(s.dims[split_dim] % P == 0, "all_to_all: dimension ", split_dim, " of x", s,
              " must be divisible by the group size ", P);
  if (P == 1) return x.clone();
  Tensor<T, B> send({x.numel()}), recv({x.numel()});
  detail::block_pack<B>(x.data(), send.data(), detail::split3(s, split_dim), P);
  comm.all_to_all(send.data(), recv.data(), std::size_t(x.numel() / P));
  // recv block i (from rank i) has x's shape with split_dim divided by P; place it at block i of cat_dim
  Shape blk = s;
  blk.dims[split_dim] /= P;
  Shape o = blk;
  o.dims[cat_dim] *= P;
  Tensor<T, B> out(o);
  detail::block_unpack<B>(recv.data(), out.data(), detail::split3(o, cat_dim), P);
  return out;
}

}  // namespace pdiff
