// Philox noise drawn on the device equals the CPU generator bit for bit for the same (seed, offset):
// normal and uniform, float and bf16, at offsets that do not start on a block of four.
#include <doctest/doctest.h>

#include <cstring>

#include "pdiff/backend/cpu/convert.hpp"
#include "pdiff/backend/cuda/philox.cuh"

using namespace pdiff;

namespace {
std::int64_t mismatches(const Tensor<float>& x, const Tensor<float>& y) {
  std::int64_t bad = 0;
  for (std::int64_t i = 0; i < x.numel(); ++i) bad += std::memcmp(&x(i), &y(i), 4) != 0;
  return bad;
}
}  // namespace

TEST_CASE("device normal and uniform noise equal the CPU's bit for bit") {
  const std::int64_t n = (1 << 20) + 3;
  for (std::uint64_t seed : {0ull, 42ull, 0x123456789abcdefull}) {
    CAPTURE(seed);
    Philox cpu{seed, 5}, dev{seed, 5};
    Tensor<float> ref({n});
    cpu.fill_normal(ref.span());
    Tensor<float, OnCuda> d({n});
    fill_normal(d, dev);
    CHECK(dev.offset == cpu.offset);
    CHECK(mismatches(ref, to<OnCpu>(d)) == 0);

    cpu.fill_uniform(ref.span());
    fill_uniform(d, dev);
    CHECK(mismatches(ref, to<OnCpu>(d)) == 0);
  }
}

TEST_CASE("bf16 noise equals the CPU's float noise converted to bf16") {
  const std::int64_t n = 10007;
  Tensor<float> ref({n});
  Philox{9, 1}.fill_normal(ref.span());
  Tensor<bf16, OnCuda> d({n});
  philox_normal_at(d, 9, 1);
  const auto want = convert<bf16>(ref);
  const auto got = to<OnCpu>(d);
  CHECK(std::memcmp(want.data(), got.data(), want.bytes()) == 0);
}
