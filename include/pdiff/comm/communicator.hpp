// pdiff/comm/communicator.hpp — the Communicator concept every rank group satisfies.
//
// | collective                                   | per rank: sends                  | receives              |
// |----------------------------------------------|----------------------------------|-----------------------|
// | all_reduce(buf, n, op)          (in place)   | n                                | n (reduced)           |
// | all_gather(send, recv, n)                    | n                                | size·n, rank order    |
// | reduce_scatter(send, recv, n, op)            | size·n                           | n (block `rank`)      |
// | all_to_all(send, recv, n)                    | block j (n elems) to rank j      | block i from rank i   |
// | all_to_all_v(send, scounts, recv, rcounts)   | scounts[j] to rank j (packed)    | rcounts[i] from i     |
// | broadcast(buf, n, root)                      | root: n                          | n                     |
// | send(buf, n, peer) / recv(buf, n, peer)      | point to point, matched in order |                       |
// | barrier()                                    |                                  |                       |
// | split(color, key)                            | sub-communicator of equal colors, ordered by (key, rank) |
//
// Element types: float, double, bf16, f16, int32_t, int64_t, uint8_t. Reductions of bf16/f16 are
// computed in float. Host communicators (ThreadComm, MpiComm) take host pointers; NcclComm takes
// device pointers. `stats()` counts the logical payload this rank sent to OTHER ranks, the figure
// the benchmarks compare with analytic formulas:
//   all_gather, reduce_scatter, all_to_all: (size−1)·n elements; all_to_all_v: Σ_{j≠rank} scounts[j];
//   all_reduce: 2·(size−1)·n/size (ring); broadcast: (size−1)·n at the root, 0 elsewhere; send: n.
// Failure: any collective throws pdiff::Error (never hangs) when a peer failed (abort) or when the
// communicator's timeout (CommOptions, default 60 s) passes.
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>

#include "pdiff/core/backend_tag.hpp"
#include "pdiff/core/dtype.hpp"

namespace pdiff {

enum class ReduceOp { sum, max };

struct CommOptions {
  std::chrono::milliseconds timeout{60'000};  // a collective waiting longer than this throws
};

// Bytes of logical payload this rank sent to other ranks, per collective kind (see table above).
struct CommStats {
  std::uint64_t all_reduce = 0, all_gather = 0, reduce_scatter = 0, all_to_all = 0, broadcast = 0, send = 0;
  std::uint64_t calls = 0;
  std::uint64_t total() const { return all_reduce + all_gather + reduce_scatter + all_to_all + broadcast + send; }
};

template <class C>
concept Communicator = requires(C& c, const C& cc, float* p, const float* cp, std::size_t n, int r,
                                std::span<const std::size_t> counts, const std::string& why) {
  { cc.rank() } -> std::same_as<int>;
  { cc.size() } -> std::same_as<int>;
  c.all_reduce(p, n, ReduceOp::sum);
  c.all_gather(cp, p, n);
  c.reduce_scatter(cp, p, n, ReduceOp::sum);
  c.all_to_all(cp, p, n);
  c.all_to_all_v(cp, counts, p, counts);
  c.broadcast(p, n, r);
  c.send(cp, n, r);
  c.recv(p, n, r);
  c.barrier();
  c.abort(why);  // poisons the group: every pending or later collective of every member throws
  { c.split(r, r) } -> std::same_as<C>;
  { cc.stats() } -> std::convertible_to<CommStats>;
};

// Which backend's memory a communicator's buffers live in: `C::memory_space` when it says (OnCuda for
// NcclComm; void for SelfComm, which touches no buffer), else host memory (ThreadComm, MpiComm).
template <class C, class B>
constexpr bool comm_accepts() {
  if constexpr (requires { typename C::memory_space; })
    return std::is_void_v<typename C::memory_space> || std::is_same_v<typename C::memory_space, B>;
  else
    return std::is_same_v<B, OnCpu>;
}

}  // namespace pdiff
