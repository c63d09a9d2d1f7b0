// memory<OnCuda> and its stream-ordered caching pool: reuse, accounting, cross-stream ordering,
// thread safety (ranks as threads sharing one GPU).
#include <doctest/doctest.h>

#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "cuda_spin.hpp"
#include "pdiff/backend/cpu/memory.hpp"
#include "pdiff/backend/cuda/memory.hpp"
#include "pdiff/core/tensor.hpp"

using namespace pdiff;
using Mem = memory<OnCuda>;

TEST_CASE("sizes are rounded to 512 B up to 1 MiB and to quarter powers of two above") {
  CHECK(CudaCachingAllocator::round_size(1) == 512);
  CHECK(CudaCachingAllocator::round_size(513) == 1024);
  CHECK(CudaCachingAllocator::round_size(std::size_t(1) << 20) == std::size_t(1) << 20);
  CHECK(CudaCachingAllocator::round_size((std::size_t(1) << 20) + 1) == std::size_t(5) << 18);  // 1.25 MiB
  CHECK(CudaCachingAllocator::round_size(std::size_t(3) << 20) == std::size_t(3) << 20);
  CHECK(CudaCachingAllocator::round_size((std::size_t(3) << 20) + 1) == std::size_t(7) << 19);  // 3.5 MiB
}

TEST_CASE("a freed block is reused for the same rounded size without a new cudaMalloc") {
  Mem::empty_cache();
  void* p = Mem::allocate(1000);
  const CudaMemoryStats before = Mem::stats();
  Mem::deallocate(p, 1000);
  void* q = Mem::allocate(900);  // same 1024-byte bin, same stream
  CHECK(q == p);
  CHECK(Mem::stats().mallocs == before.mallocs);
  CHECK(Mem::stats().hits == before.hits + 1);
  Mem::deallocate(q, 900);
}

TEST_CASE("live bytes, the high-water mark and reserved bytes") {
  Mem::empty_cache();
  Mem::reset_peak();
  const std::size_t live0 = Mem::live_bytes();
  {
    Tensor<float, OnCuda> a({1000});
    Tensor<float, OnCuda> b({2000});
    CHECK(Mem::live_bytes() == live0 + 12000);
    CHECK(Mem::reserved_bytes() >= live0 + 12000);
  }
  CHECK(Mem::live_bytes() == live0);
  CHECK(Mem::peak_bytes() == live0 + 12000);
  CHECK(Mem::stats().cached >= 12000);
  Mem::reset_peak();
  CHECK(Mem::peak_bytes() == live0);
  Mem::empty_cache();
  CHECK(Mem::stats().cached == 0);
}

TEST_CASE("host round trip, zeros and device copies") {
  Tensor<float> h({3, 5});
  for (int i = 0; i < 15; ++i) h(i) = float(i) - 7.5f;
  auto d = to<OnCuda>(h);
  auto d2 = d.clone();
  auto back = to<OnCpu>(d2);
  for (int i = 0; i < 15; ++i) CHECK(back(i) == h(i));
  auto z = to<OnCpu>(Tensor<float, OnCuda>::zeros({7}));
  for (int i = 0; i < 7; ++i) CHECK(z(i) == 0.0f);
  auto row = to<OnCpu>(d.slice(1, 2).clone());
  CHECK(row(0) == h(5));
}

TEST_CASE("a block freed on one stream is reused at once there, on another only after that stream's work") {
  Mem::empty_cache();
  CudaStream s1, s2;
  void* p = nullptr;
  {
    CudaStreamGuard g(s1);
    p = Mem::allocate(4096);
    test::spin(s1, 300);  // s1 is busy for 300 ms: p's last use has not happened yet
    Mem::deallocate(p, 4096);
    void* again = Mem::allocate(4096);  // same stream: stream order makes reuse safe at once
    CHECK(again == p);
    Mem::deallocate(again, 4096);
  }
  void* q = nullptr;
  {
    CudaStreamGuard g(s2);
    q = Mem::allocate(4096);
    CHECK(q != p);  // s1's free event has not completed
  }
  s1.synchronize();
  {
    CudaStreamGuard g(s2);
    void* r = Mem::allocate(4096);
    CHECK(r == p);  // now it has
    Mem::deallocate(r, 4096);
    Mem::deallocate(q, 4096);
  }
  s2.synchronize();
  Mem::empty_cache();
}

TEST_CASE("four threads with their own streams allocate and free concurrently") {
  const std::size_t live0 = Mem::live_bytes();
  std::mutex mu;
  std::set<void*> alive;
  int clashes = 0;
  auto work = [&](int t) {
    CudaStream s;
    CudaStreamGuard g(s);
    for (int it = 0; it < 500; ++it) {
      std::vector<std::pair<void*, std::size_t>> mine;
      for (int k = 0; k < 8; ++k) {
        const std::size_t bytes = std::size_t(256) << ((it + k + t) % 12);  // 256 B .. 512 KiB
        void* p = Mem::allocate(bytes);
        Mem::zero(p, bytes);
        mine.push_back({p, bytes});
        std::lock_guard lk(mu);
        if (!alive.insert(p).second) ++clashes;
      }
      for (auto [p, bytes] : mine) {
        {
          std::lock_guard lk(mu);
          alive.erase(p);
        }
        Mem::deallocate(p, bytes);
      }
    }
    s.synchronize();
  };
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) ts.emplace_back(work, t);
  for (auto& t : ts) t.join();
  CHECK(clashes == 0);
  CHECK(Mem::live_bytes() == live0);
  Mem::empty_cache();  // the threads' streams are gone; their blocks' events have completed
}

TEST_CASE("each thread (rank) has its own live and peak bytes, credited back when another thread frees") {
  Tensor<float, OnCuda> handed_back;
  std::size_t peak_a = 0, peak_b = 0;
  std::thread a([&] {
    memory<OnCuda>::reset_thread_peak();
    { Tensor<float, OnCuda> t({1000}); }
    handed_back = Tensor<float, OnCuda>({500});
    peak_a = memory<OnCuda>::thread_peak_bytes();
    CHECK(memory<OnCuda>::thread_live_bytes() == 2000);
  });
  a.join();
  std::thread b([&] {
    Tensor<float, OnCuda> t({3000});
    peak_b = memory<OnCuda>::thread_peak_bytes();
  });
  b.join();
  CHECK(peak_a == 4000);
  CHECK(peak_b == 12000);
  const std::size_t mine = memory<OnCuda>::thread_live_bytes();
  handed_back = {};  // charged to thread a
  CHECK(memory<OnCuda>::thread_live_bytes() == mine);
}
