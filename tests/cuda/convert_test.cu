// convert<U> on the device equals the CPU's convert<U> bit for bit (f32 ↔ bf16 ↔ f16), specials
// included, and f32 → bf16/f16 → f32 round trips stay within half an ulp of the narrow type.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "pdiff/backend/cpu/convert.hpp"
#include "pdiff/backend/cuda/convert.cuh"
#include "pdiff/core/philox.hpp"

using namespace pdiff;

namespace {
Tensor<float> samples() {
  const int n = 1 << 16;
  Tensor<float> t({n + 10});
  Philox{11, 0}.fill_normal(t.span().first(std::size_t(n)));
  for (int i = 0; i < n; ++i) t(i) *= std::ldexp(1.0f, (i % 60) - 30);  // 2^-30 .. 2^29: subnormal f16, overflow
  const float special[10] = {0.0f, -0.0f, std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                             std::numeric_limits<float>::quiet_NaN(), 65504.0f, 65520.0f, 1e-8f, 5.9604645e-08f, 3.0e38f};
  for (int i = 0; i < 10; ++i) t(n + i) = special[i];
  return t;
}
template <class T>
bool same_bits(const Tensor<T>& x, const Tensor<T>& y) {
  return x.numel() == y.numel() && std::memcmp(x.data(), y.data(), x.bytes()) == 0;
}
}  // namespace

TEST_CASE("device conversions equal the CPU's bit for bit") {
  const auto h = samples();
  const auto d = to<OnCuda>(h);
  const auto d_bf = convert<bf16>(d);
  const auto d_h = convert<f16>(d);
  CHECK(same_bits(to<OnCpu>(d_bf), convert<bf16>(h)));
  CHECK(same_bits(to<OnCpu>(d_h), convert<f16>(h)));
  CHECK(same_bits(to<OnCpu>(convert<float>(d_bf)), convert<float>(convert<bf16>(h))));
  CHECK(same_bits(to<OnCpu>(convert<float>(d_h)), convert<float>(convert<f16>(h))));
  CHECK(same_bits(to<OnCpu>(convert<f16>(d_bf)), convert<f16>(convert<bf16>(h))));
  CHECK(same_bits(to<OnCpu>(convert<bf16>(d_h)), convert<bf16>(convert<f16>(h))));
  CHECK(same_bits(to<OnCpu>(convert<float>(d)), h));  // identity is a copy
}

TEST_CASE("f32 → bf16 → f32 round trip is within half a bf16 ulp") {
  Tensor<float> h({4096});
  Philox{3, 0}.fill_normal(h.span());
  const auto back = to<OnCpu>(convert<float>(convert<bf16>(to<OnCuda>(h))));
  for (std::int64_t i = 0; i < h.numel(); ++i) CHECK(std::fabs(back(i) - h(i)) <= std::fabs(h(i)) * 0x1p-8f);
}

TEST_CASE("convert_into checks the element count") {
  Tensor<float, OnCuda> a({4});
  Tensor<bf16, OnCuda> b({5});
  CHECK_THROWS_AS(convert_into(b, a), Error);
}
