// pdiff/comm/staged_comm.hpp — StagedComm<Host, B>: a communicator for tensors on backend B built on
// a host communicator: every collective copies its device buffers to the host, runs the host
// collective, and copies the result back: same semantics, timeouts and poisoning as the host
// communicator, because it does the work. StagedComm<MpiComm, OnCuda> serves MPI ranks in a build
// without NCCL; thread ranks on CUDA use DirectComm (comm/direct_comm.hpp), which copies device to device.
//
// | collective            | device → host                 | host collective | host → device   |
// |-----------------------|-------------------------------|-----------------|-----------------|
// | all_reduce, broadcast | buf (n)                       | in place        | buf (n)         |
// | all_gather            | send (n)                      | → recv (P·n)    | recv (P·n)      |
// | reduce_scatter        | send (P·n)                    | → recv (n)      | recv (n)        |
// | all_to_all(_v), send/recv | send                      | → recv          | recv            |
// It exists for correctness, not speed: each call crosses PCIe twice. Several GPUs use NcclComm.
#pragma once

#include <numeric>
#include <span>
#include <vector>

#include "pdiff/comm/communicator.hpp"
#include "pdiff/comm/thread_comm.hpp"
#include "pdiff/core/memory.hpp"
#if defined(PDIFF_WITH_CUDA)
#include "pdiff/backend/cuda/memory.hpp"
#endif

namespace pdiff {

template <class Host, class B>
class StagedComm {
 public:
  using memory_space = B;

  StagedComm() = default;
  explicit StagedComm(Host host) : host_(std::move(host)) {}
  static std::vector<StagedComm> create_world(int size, CommOptions opts = {}) {
    std::vector<StagedComm> w;
    for (auto& h : Host::create_world(size, opts)) w.emplace_back(std::move(h));
    return w;
  }

  int rank() const { return host_.rank(); }
  int size() const { return host_.size(); }
  CommStats stats() const { return host_.stats(); }
  Host& host() { return host_; }

  template <class T>
  void all_reduce(T* buf, std::size_t n, ReduceOp op) {
    auto h = down(buf, n);
    host_.all_reduce(h.data(), n, op);
    up(buf, h);
  }
  template <class T>
  void all_gather(const T* send, T* recv, std::size_t n) {
    auto s = down(send, n);
    std::vector<T> r(n * std::size_t(size()));
    host_.all_gather(s.data(), r.data(), n);
    up(recv, r);
  }
  template <class T>
  void reduce_scatter(const T* send, T* recv, std::size_t n, ReduceOp op) {
    auto s = down(send, n * std::size_t(size()));
    std::vector<T> r(n);
    host_.reduce_scatter(s.data(), r.data(), n, op);
    up(recv, r);
  }
  template <class T>
  void all_to_all(const T* send, T* recv, std::size_t n) {
    auto s = down(send, n * std::size_t(size()));
    std::vector<T> r(s.size());
    host_.all_to_all(s.data(), r.data(), n);
    up(recv, r);
  }
  template <class T>
  void all_to_all_v(const T* send, std::span<const std::size_t> send_counts, T* recv,
                    std::span<const std::size_t> recv_counts) {
    auto s = down(send, std::accumulate(send_counts.begin(), send_counts.end(), std::size_t(0)));
    std::vector<T> r(std::accumulate(recv_counts.begin(), recv_counts.end(), std::size_t(0)));
    host_.all_to_all_v(s.data(), send_counts, r.data(), recv_counts);
    up(recv, r);
  }
  template <class T>
  void broadcast(T* buf, std::size_t n, int root) {
    auto h = down(buf, n);
    host_.broadcast(h.data(), n, root);
    up(buf, h);
  }
  template <class T>
  void send(const T* buf, std::size_t n, int peer) {
    auto h = down(buf, n);
    host_.send(h.data(), n, peer);
  }
  template <class T>
  void recv(T* buf, std::size_t n, int peer) {
    std::vector<T> h(n);
    host_.recv(h.data(), n, peer);
    up(buf, h);
  }
  void barrier() { host_.barrier(); }
  void abort(const std::string& why) { host_.abort(why); }
  StagedComm split(int color, int key) { return StagedComm(host_.split(color, key)); }

 private:
  template <class T>
  static std::vector<T> down(const T* p, std::size_t n) {
    std::vector<T> h(n);
    if (n) memory<B>::to_host(h.data(), p, n * sizeof(T));
    return h;
  }
  template <class T>
  static void up(T* p, const std::vector<T>& h) {
    if (!h.empty()) memory<B>::from_host(p, h.data(), h.size() * sizeof(T));
  }
  Host host_;
};


}  // namespace pdiff
