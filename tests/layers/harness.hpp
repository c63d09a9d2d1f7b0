// Shared helpers of the layer tests: random tensors, relative error, the layouts every layer is
// checked on, and a runner that collects one result per rank.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <vector>

#include "pdiff/pdiff.hpp"

namespace pdiff::test {

inline Tensor<float> random(Shape s, std::uint64_t seed, float scale = 1.0f) {
  Tensor<float> t(s);
  Philox{seed, 0}.fill_normal(t.span());
  if (scale != 1.0f)
    for (auto& v : t.span()) v *= scale;
  return t;
}

// ‖a − b‖ / ‖b‖ in double.
inline double rel_err(const Tensor<float>& a, const Tensor<float>& b) {
  REQUIRE_MESSAGE(a.shape() == b.shape(), "shapes differ: ", a.shape().str(), " vs ", b.shape().str());
  double num = 0, den = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    double d = double(a(i)) - double(b(i));
    num += d * d;
    den += double(b(i)) * double(b(i));
  }
  return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}

// max |a − b| in double.
inline double max_abs(const Tensor<float>& a, const Tensor<float>& b) {
  REQUIRE_MESSAGE(a.shape() == b.shape(), "shapes differ: ", a.shape().str(), " vs ", b.shape().str());
  double m = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) m = std::max(m, double(std::fabs(a(i) - b(i))));
  return m;
}

// Runs fn(rank) → Tensor on every rank of L (threads) and returns the results by world rank.
template <class L, class Fn>
std::vector<Tensor<float>> run_ranks(Fn fn) {
  std::vector<Tensor<float>> out(std::size_t(L::world_size));
  launch<L>({.mode = Launch::threads, .comm = {.timeout = std::chrono::milliseconds(20000)}},
            [&](auto& rank) { out[std::size_t(rank.index)] = fn(rank); });
  return out;
}

}  // namespace pdiff::test

// The layouts of the layers issue, all on the CPU.
#define PDIFF_TEST_LAYOUTS                                                                                   \
  pdiff::Layout<pdiff::OnCpu>, pdiff::Layout<pdiff::TP<2>, pdiff::OnCpu>, pdiff::Layout<pdiff::TP<4>, pdiff::OnCpu>, \
      pdiff::Layout<pdiff::Ulysses<2>, pdiff::OnCpu>, pdiff::Layout<pdiff::Ring<2>, pdiff::OnCpu>,            \
      pdiff::Layout<pdiff::Ulysses<2>, pdiff::Ring<2>, pdiff::OnCpu>,                                         \
      pdiff::Layout<pdiff::TP<2>, pdiff::Ulysses<2>, pdiff::OnCpu>, pdiff::Layout<pdiff::TP<2>, pdiff::Ring<2>, pdiff::OnCpu>
