// pdiff/comm/self_comm.hpp — SelfComm: the communicator of a degree-1 axis. An empty type whose
// collectives are copies or nothing, so a degree-1 policy costs no bytes and no calls
// (STYLE.md §6); Rank stores it with [[no_unique_address]].
#pragma once

#include <algorithm>
#include <cstddef>
#include <span>
#include <string>

#include "pdiff/comm/communicator.hpp"
#include "pdiff/core/error.hpp"

namespace pdiff {

struct SelfComm {
  using memory_space = void;  // never touches a buffer: any backend's tensors
  static constexpr int rank() { return 0; }
  static constexpr int size() { return 1; }
  template <class T> void all_reduce(T*, std::size_t, ReduceOp) {}
  template <class T> void all_gather(const T* s, T* r, std::size_t n) { copy(s, r, n); }
  template <class T> void reduce_scatter(const T* s, T* r, std::size_t n, ReduceOp) { copy(s, r, n); }
  template <class T> void all_to_all(const T* s, T* r, std::size_t n) { copy(s, r, n); }
  template <class T>
  void all_to_all_v(const T* s, std::span<const std::size_t> sc, T* r, std::span<const std::size_t> rc) {
    PDIFF_CHECK(sc.size() == 1 && rc.size() == 1 && sc[0] == rc[0],
                "SelfComm::all_to_all_v: one rank must send to itself what it receives");
    copy(s, r, sc[0]);
  }
  template <class T> void broadcast(T*, std::size_t, int root) {
    PDIFF_CHECK(root == 0, "SelfComm::broadcast: root ", root, " out of range for size 1");
  }
  template <class T> void send(const T*, std::size_t, int peer) {
    PDIFF_CHECK(false, "SelfComm::send: no peer ", peer, " in a group of one");
  }
  template <class T> void recv(T*, std::size_t, int peer) {
    PDIFF_CHECK(false, "SelfComm::recv: no peer ", peer, " in a group of one");
  }
  void barrier() {}
  void abort(const std::string&) {}
  SelfComm split(int, int) const { return {}; }
  CommStats stats() const { return {}; }

 private:
  // Host pointers only: a SelfComm on device data is never called with distinct buffers by pdiff.
  template <class T> static void copy(const T* s, T* r, std::size_t n) {
    if (s != r) std::copy(s, s + n, r);
  }
};

static_assert(Communicator<SelfComm>);

}  // namespace pdiff
