// NcclComm on every visible GPU (world = device count, one thread per rank): each collective and
// element type against a serial computation, split, stats, abort and timeout (never a hang).
// Values are small integers, so sums are exact in every type and results are compared exactly.
#include <doctest/doctest.h>

#include <cuda_runtime_api.h>

#include <exception>
#include <functional>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "cuda_spin.hpp"
#include "pdiff/backend/cuda/memory.hpp"
#include "pdiff/comm/nccl_comm.hpp"
#include "pdiff/core/tensor.hpp"

using namespace pdiff;

namespace {
std::vector<int> all_devices() {
  std::vector<int> d(static_cast<std::size_t>(cuda_device_count()));
  std::iota(d.begin(), d.end(), 0);
  return d;
}
// Runs f(comm) on one thread per rank (each on its device); returns each rank's error text ("" if none).
std::vector<std::string> on_ranks(std::vector<NcclComm>& comms, const std::function<void(NcclComm&)>& f) {
  std::vector<std::string> err(comms.size());
  std::vector<std::thread> ts;
  for (std::size_t r = 0; r < comms.size(); ++r)
    ts.emplace_back([&, r] {
      try {
        PDIFF_CUDA_CHECK(cudaSetDevice(comms[r].device()));
        f(comms[r]);
      } catch (const std::exception& e) {
        err[r] = e.what();
        if (err[r].empty()) err[r] = "?";
      }
    });
  for (auto& t : ts) t.join();
  return err;
}
template <class T>
T val(int rank, std::size_t i) {
  return T(float((rank + 1) + int(i % 5)));  // ≤ 12: sums over ≤ 8 ranks are exact even in bf16/u8
}
template <class T>
Tensor<T, OnCuda> upload(const std::vector<T>& v) {
  Tensor<T, OnCuda> t({std::int64_t(v.size())});
  if (!v.empty()) memory<OnCuda>::from_host(t.data(), v.data(), v.size() * sizeof(T));
  return t;
}
template <class T>
std::vector<T> download(const Tensor<T, OnCuda>& t) {
  std::vector<T> v(std::size_t(t.numel()));
  if (!v.empty()) memory<OnCuda>::to_host(v.data(), t.data(), v.size() * sizeof(T));
  return v;
}
template <class T>
float f(T v) {
  return float(v);
}
}  // namespace

TEST_CASE_TEMPLATE("every collective equals the serial computation", T, float, double, bf16, f16, std::int32_t,
                   std::int64_t, std::uint8_t) {
  auto comms = NcclComm::init_all(all_devices());
  const int P = int(comms.size());
  const std::size_t n = 1000;
  std::vector<std::vector<std::string>> bad(static_cast<std::size_t>(P));  // per rank: failed checks
  auto errors = on_ranks(comms, [&](NcclComm& c) {
    const int r = c.rank();
    auto& out = bad[std::size_t(r)];
    auto expect = [&](bool ok, const char* what) {
      if (!ok) out.push_back(what);
    };
    std::vector<T> mine(n);
    for (std::size_t i = 0; i < n; ++i) mine[i] = val<T>(r, i);
    {  // all_reduce sum and max
      auto x = upload(mine);
      c.all_reduce(x.data(), n, ReduceOp::sum);
      auto y = upload(mine);
      c.all_reduce(y.data(), n, ReduceOp::max);
      auto hs = download(x), hm = download(y);
      bool ok_s = true, ok_m = true;
      for (std::size_t i = 0; i < n; ++i) {
        float s = 0;
        for (int q = 0; q < P; ++q) s += f(val<T>(q, i));
        ok_s = ok_s && f(hs[i]) == s;
        ok_m = ok_m && f(hm[i]) == f(val<T>(P - 1, i));
      }
      expect(ok_s, "all_reduce sum");
      expect(ok_m, "all_reduce max");
    }
    {  // all_gather: rank blocks in order
      auto x = upload(mine);
      Tensor<T, OnCuda> g({std::int64_t(n) * P});
      c.all_gather(x.data(), g.data(), n);
      auto h = download(g);
      bool ok = true;
      for (int q = 0; q < P; ++q)
        for (std::size_t i = 0; i < n; ++i) ok = ok && f(h[std::size_t(q) * n + i]) == f(val<T>(q, i));
      expect(ok, "all_gather");
    }
    {  // reduce_scatter: send (P, m), this rank gets block r summed
      const std::size_t m = n / std::size_t(P);
      auto x = upload(mine);
      Tensor<T, OnCuda> y({std::int64_t(m)});
      c.reduce_scatter(x.data(), y.data(), m, ReduceOp::sum);
      auto h = download(y);
      bool ok = true;
      for (std::size_t i = 0; i < m; ++i) {
        float s = 0;
        for (int q = 0; q < P; ++q) s += f(val<T>(q, std::size_t(r) * m + i));
        ok = ok && f(h[i]) == s;
      }
      expect(ok, "reduce_scatter");
    }
    {  // all_to_all: block j of rank q lands in block q of rank j
      const std::size_t m = 7;
      std::vector<T> s(m * std::size_t(P));
      for (int j = 0; j < P; ++j)
        for (std::size_t i = 0; i < m; ++i) s[std::size_t(j) * m + i] = T(float(r * 10 + j + int(i % 2)));
      auto x = upload(s);
      Tensor<T, OnCuda> y({std::int64_t(m) * P});
      c.all_to_all(x.data(), y.data(), m);
      auto h = download(y);
      bool ok = true;
      for (int q = 0; q < P; ++q)
        for (std::size_t i = 0; i < m; ++i) ok = ok && f(h[std::size_t(q) * m + i]) == float(q * 10 + r + int(i % 2));
      expect(ok, "all_to_all");
    }
    {  // all_to_all_v: rank q sends (q + j) % 3 elements to rank j (one count may be 0)
      auto cnt = [](int q, int j) { return std::size_t((q + j) % 3); };
      std::vector<std::size_t> sc(static_cast<std::size_t>(P)), rc(static_cast<std::size_t>(P));
      std::vector<T> s;
      for (int j = 0; j < P; ++j) {
        sc[std::size_t(j)] = cnt(r, j);
        rc[std::size_t(j)] = cnt(j, r);
        for (std::size_t i = 0; i < cnt(r, j); ++i) s.push_back(T(float(r * 10 + j)));
      }
      const std::size_t total = std::accumulate(rc.begin(), rc.end(), std::size_t(0));
      auto x = upload(s);
      Tensor<T, OnCuda> y({std::int64_t(std::max<std::size_t>(total, 1))});
      c.all_to_all_v(x.data(), std::span<const std::size_t>(sc), y.data(), std::span<const std::size_t>(rc));
      auto h = download(y);
      bool ok = true;
      std::size_t at = 0;
      for (int q = 0; q < P; ++q)
        for (std::size_t i = 0; i < cnt(q, r); ++i) ok = ok && f(h[at++]) == float(q * 10 + r);
      expect(ok, "all_to_all_v");
    }
    {  // broadcast from the last rank
      auto x = upload(mine);
      c.broadcast(x.data(), n, P - 1);
      auto h = download(x);
      bool ok = true;
      for (std::size_t i = 0; i < n; ++i) ok = ok && f(h[i]) == f(val<T>(P - 1, i));
      expect(ok, "broadcast");
    }
    if (P >= 2 && r < 2) {  // send/recv between ranks 0 and 1, ordered so the rendezvous matches
      auto x = upload(mine);
      Tensor<T, OnCuda> y({std::int64_t(n)});
      const int peer = 1 - r;
      if (r == 0) {
        c.send(x.data(), n, peer);
        c.recv(y.data(), n, peer);
      } else {
        c.recv(y.data(), n, peer);
        c.send(x.data(), n, peer);
      }
      auto h = download(y);
      bool ok = true;
      for (std::size_t i = 0; i < n; ++i) ok = ok && f(h[i]) == f(val<T>(peer, i));
      expect(ok, "send/recv");
    }
    c.barrier();
    expect(c.stats().all_gather == std::uint64_t(P - 1) * n * sizeof(T), "stats: all_gather bytes");
  });
  for (int r = 0; r < P; ++r) {
    CAPTURE(r);
    CHECK(errors[std::size_t(r)] == "");
    for (const auto& what : bad[std::size_t(r)]) FAIL_CHECK(what);
  }
}

TEST_CASE("split groups ranks by colour, ordered by key") {
  auto comms = NcclComm::init_all(all_devices());
  const int P = int(comms.size());
  std::vector<int> sub_rank(static_cast<std::size_t>(P)), sub_size(static_cast<std::size_t>(P)), sum(static_cast<std::size_t>(P));
  auto errors = on_ranks(comms, [&](NcclComm& c) {
    const int r = c.rank();
    NcclComm sub = c.split(r % 2, -r);  // reverse order inside each colour
    sub_rank[std::size_t(r)] = sub.rank();
    sub_size[std::size_t(r)] = sub.size();
    auto x = upload(std::vector<std::int32_t>{r});
    sub.all_reduce(x.data(), 1, ReduceOp::sum);
    sum[std::size_t(r)] = download(x)[0];
  });
  for (int r = 0; r < P; ++r) {
    CAPTURE(r);
    CHECK(errors[std::size_t(r)] == "");
    int size = 0, before = 0, total = 0;
    for (int q = r % 2; q < P; q += 2) {
      ++size;
      total += q;
      if (q > r) ++before;  // larger ranks have smaller keys
    }
    CHECK(sub_size[std::size_t(r)] == size);
    CHECK(sub_rank[std::size_t(r)] == before);
    CHECK(sum[std::size_t(r)] == total);
  }
}

TEST_CASE("abort on one rank makes every rank's collective throw, no hang") {
  auto comms = NcclComm::init_all(all_devices(), {.timeout = std::chrono::milliseconds(20000)});
  auto errors = on_ranks(comms, [&](NcclComm& c) {
    if (c.rank() == 0) c.abort("injected failure");
    auto x = upload(std::vector<float>(16, 1.0f));
    c.all_reduce(x.data(), 16, ReduceOp::sum);
  });
  for (const auto& e : errors) CHECK(e.find("injected failure") != std::string::npos);
}

TEST_CASE("a collective that cannot finish times out and aborts the others") {
  auto comms = NcclComm::init_all(all_devices(), {.timeout = std::chrono::milliseconds(1000)});
  auto errors = on_ranks(comms, [&](NcclComm& c) {
    auto x = upload(std::vector<float>(16, 1.0f));
    if (c.rank() == 0) {
      // Rank 0 is late by 3 s. With peers it just arrives late (their kernels wait, are aborted
      // when they time out, and rank 0 finds the poison); alone, its own stream is kept busy.
      if (c.size() == 1) test::spin(current_cuda_stream(), 3000);
      else std::this_thread::sleep_for(std::chrono::milliseconds(3000));
    }
    c.all_reduce(x.data(), 16, ReduceOp::sum);
  });
  bool timed_out = false;
  for (const auto& e : errors) {
    CHECK(!e.empty());
    timed_out = timed_out || e.find("timed out") != std::string::npos;
  }
  CHECK(timed_out);
  for (int d : all_devices()) {  // the spin ends; the aborted NCCL kernels have exited
    CudaDeviceGuard g(d);
    CHECK(cudaDeviceSynchronize() == cudaSuccess);
  }
  auto later = on_ranks(comms, [&](NcclComm& c) { c.barrier(); });
  for (const auto& e : later) CHECK(!e.empty());
}
