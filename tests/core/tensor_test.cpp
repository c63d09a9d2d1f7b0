// Tensor<T, OnCpu>: storage, views, slices, copies, conversion and the errors they raise.
#include <doctest/doctest.h>

#include <numeric>

#include <thread>

#include "pdiff/backend/cpu/convert.hpp"
#include "pdiff/backend/cpu/memory.hpp"
#include "pdiff/core/tensor.hpp"

using namespace pdiff;

TEST_CASE("Tensor: shape, zeros, view and slice share storage") {
  auto t = Tensor<float>::zeros({2, 3, 4});
  CHECK(t.numel() == 24);
  CHECK(t.rank() == 3);
  CHECK(t.shape().stride(0) == 12);
  for (float v : t.span()) CHECK(v == 0.0f);
  std::iota(t.span().begin(), t.span().end(), 0.0f);

  auto v = t.view({6, 4});
  CHECK(v.data() == t.data());
  CHECK(v(5) == 5.0f);

  auto s = t.slice(1, 2);
  CHECK(s.shape() == Shape{1, 3, 4});
  CHECK(s(0) == 12.0f);
  s(0) = -1.0f;
  CHECK(t(12) == -1.0f);  // a slice writes through to its parent

  auto row = t[1][2];
  CHECK(row.shape() == Shape{4});
  CHECK(row(1) == 21.0f);
  CHECK(t.shares_storage());
}

TEST_CASE("Tensor: views keep the storage alive; clone does not share") {
  Tensor<float> child;
  {
    Tensor<float> parent({8});
    std::iota(parent.span().begin(), parent.span().end(), 1.0f);
    child = parent.slice(4, 8);
  }
  CHECK(child(0) == 5.0f);
  auto c = child.clone();
  c(0) = 0.0f;
  CHECK(child(0) == 5.0f);
  CHECK(!c.shares_storage());
}

TEST_CASE("Tensor: errors name the operation and the numbers") {
  Tensor<float> t({2, 3});
  CHECK_THROWS_WITH_AS(t.view({4, 2}), doctest::Contains("numel of (2, 3) is 6, of (4, 2) is 8"), Error);
  CHECK_THROWS_WITH_AS(t.slice(1, 3), doctest::Contains("rows [1, 3) out of range for shape (2, 3)"), Error);
  CHECK_THROWS_AS(Shape({1, 2, 3, 4, 5, 6}), Error);
  CHECK_THROWS_AS((void)t.shape()[2], Error);
  Tensor<float> u({5});
  CHECK_THROWS_WITH_AS(copy(u, t), doctest::Contains("differ in element count"), Error);
}

TEST_CASE("Shape: an element count beyond int64 is an error, not a wrapped size") {
  // 2^34 x 2^34 (flux2 --width 17179869184 --height 17179869184) once wrapped to 0 and allocated nothing
  const std::int64_t big = std::int64_t(1) << 34;
  CHECK_THROWS_WITH_AS((void)Shape({big, big}).numel(),
                       doctest::Contains("Shape (17179869184, 17179869184): the element count overflows int64"), Error);
  CHECK_THROWS_WITH_AS(Tensor<float>(Shape{big, big}), doctest::Contains("overflows int64"), Error);
  CHECK_THROWS_AS((void)Shape({2, big, big}).stride(0), Error);
  // a 0 makes the product 0 whatever the other extents are
  CHECK(Shape({big, big, 0}).numel() == 0);
  CHECK(Shape({2, big, big, 0}).stride(0) == 0);
  // fits int64 but not the address space as floats
  CHECK_THROWS_WITH_AS(Tensor<float>(Shape{std::int64_t(1) << 62}), doctest::Contains("overflow the address space"),
                       Error);
}

TEST_CASE("Tensor: copy, to<OnCpu> and dtype conversion") {
  Tensor<float> a({3, 2});
  for (int i = 0; i < 6; ++i) a(i) = 0.1f * float(i) - 0.2f;
  auto b = to<OnCpu>(a);
  CHECK(b.data() != a.data());
  for (int i = 0; i < 6; ++i) CHECK(b(i) == a(i));

  auto h = convert<bf16>(a);
  auto back = convert<float>(h);
  for (int i = 0; i < 6; ++i) CHECK(back(i) == float(bf16(a(i))));
  auto half = convert<f16>(a);
  for (int i = 0; i < 6; ++i) CHECK(float(half(i)) == doctest::Approx(a(i)).epsilon(1e-3));
}

TEST_CASE("memory<OnCpu>: live and peak bytes follow allocations") {
  memory<OnCpu>::reset_peak();
  std::size_t live0 = memory<OnCpu>::live_bytes();
  {
    Tensor<float> big({1024, 256});
    CHECK(memory<OnCpu>::live_bytes() == live0 + 1024 * 256 * 4);
  }
  CHECK(memory<OnCpu>::live_bytes() == live0);
  CHECK(memory<OnCpu>::peak_bytes() >= live0 + 1024 * 256 * 4);
}

TEST_CASE("memory<OnCpu>: each thread has its own counter, credited back when another thread frees") {
  std::size_t peak_a = 0, peak_b = 0;
  Tensor<float> handed_back;
  std::thread a([&] {
    memory<OnCpu>::reset_thread_peak();
    { Tensor<float> t({1000}); }
    handed_back = Tensor<float>({500});
    peak_a = memory<OnCpu>::thread_peak_bytes();
    CHECK(memory<OnCpu>::thread_live_bytes() == 2000);
  });
  a.join();
  std::thread b([&] {
    Tensor<float> t({3000});
    peak_b = memory<OnCpu>::thread_peak_bytes();
  });
  b.join();
  CHECK(peak_a == 4000);
  CHECK(peak_b == 12000);
  const std::size_t main_live = memory<OnCpu>::thread_live_bytes();
  handed_back = {};  // freed here, charged to thread a: this thread's count does not move
  CHECK(memory<OnCpu>::thread_live_bytes() == main_live);
}
