// Every CUDA layer op (include/pdiff/backend/cuda/kernels) equals its CPU op (backend/cpu) within
// the NMSE of its storage type, fp32 and bf16, on shapes with vector and scalar paths and tails.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "ops_check.hpp"
#include "pdiff/backend/cpu/activation.hpp"
#include "pdiff/backend/cpu/norm.hpp"
#include "pdiff/backend/cpu/rope.hpp"
#include "pdiff/backend/ops.hpp"
#include "pdiff/core/copy_ops.hpp"

using namespace pdiff;
using namespace pdiff::test;

namespace {
constexpr Dt kTypes[] = {Dt::f32, Dt::bf16};
// the same shape and the same values, bit for bit
bool same_values(const CpuTensor& got, const CpuTensor& want) {
  if (!(got.shape() == want.shape())) return false;
  for (std::int64_t i = 0; i < got.numel(); ++i)
    if (got(i) != want(i)) return false;
  return true;
}
}

TEST_CASE("rms_norm on CUDA equals the CPU op: weighted, unweighted, per-head q/k rows") {
  struct C {
    std::int64_t rows;
    int d;
  };
  for (Dt dt : kTypes)
    for (C c : {C{37, 3072}, C{1000, 128}, C{513, 64}, C{7, 100}, C{3, 5000}, C{5, 13}}) {
      CAPTURE(dt_name(dt));
      CAPTURE(c.rows);
      CAPTURE(c.d);
      const auto x = as_dt(dt, randn(std::size_t(c.rows * c.d), 1, 2.0f, 0.5f));
      const auto w = as_dt(dt, randn(std::size_t(c.d), 2, 0.3f, 1.0f));
      const CpuTensor xc = cpu(x, {c.rows, c.d}), wc = cpu(w, {c.d});
      CHECK(nmse(dev_rms_norm(dt, x, &w, c.rows, c.d, 1e-6f), rms_norm(xc, wc, 1e-6f)) < max_nmse(dt));
      CHECK(nmse(dev_rms_norm(dt, x, nullptr, c.rows, c.d, 1e-5f), rms_norm(xc, 1e-5f)) < max_nmse(dt));
    }
}

TEST_CASE("layer_norm fused with modulate on CUDA equals CPU layer_norm then modulate") {
  struct C {
    std::int64_t b, s;
    int d;
  };
  for (Dt dt : kTypes)
    for (C c : {C{2, 77, 3072}, C{1, 300, 128}, C{3, 5, 100}, C{2, 3, 6144}}) {
      CAPTURE(dt_name(dt));
      CAPTURE(c.s);
      CAPTURE(c.d);
      const auto n = std::size_t(c.b * c.s * c.d);
      const auto x = as_dt(dt, randn(n, 3, 1.5f, 4.0f));  // a large mean: two-pass variance matters
      const auto w = as_dt(dt, randn(std::size_t(c.d), 4, 0.2f, 1.0f));
      const auto bias = as_dt(dt, randn(std::size_t(c.d), 5, 0.2f));
      const auto shift = as_dt(dt, randn(std::size_t(c.b * c.d), 6, 0.5f));
      const auto scale = as_dt(dt, randn(std::size_t(c.b * c.d), 7, 0.5f));
      const CpuTensor xc = cpu(x, {c.b, c.s, c.d}), wc = cpu(w, {c.d}), bc = cpu(bias, {c.d});
      const CpuTensor shc = cpu(shift, {c.b, c.d}), scc = cpu(scale, {c.b, c.d});
      // FLUX.2: no affine, modulated
      CHECK(nmse(dev_layer_norm_modulate(dt, x, nullptr, nullptr, &shift, &scale, c.b, c.s, c.d, 1e-6f),
                 modulate(layer_norm(xc, 1e-6f), shc, scc)) < max_nmse(dt));
      // affine, modulated
      CHECK(nmse(dev_layer_norm_modulate(dt, x, &w, &bias, &shift, &scale, c.b, c.s, c.d, 1e-5f),
                 modulate(layer_norm(xc, wc, bc, 1e-5f), shc, scc)) < max_nmse(dt));
      // affine, not modulated
      CHECK(nmse(dev_layer_norm_modulate(dt, x, &w, &bias, nullptr, nullptr, c.b, c.s, c.d, 1e-5f),
                 layer_norm(xc, wc, bc, 1e-5f)) < max_nmse(dt));
    }
}

TEST_CASE("group_norm on CUDA equals the CPU op") {
  for (Dt dt : kTypes) {
    CAPTURE(dt_name(dt));
    const std::int64_t B = 2, C = 64, rest = 17 * 13;
    const int groups = 32;
    const auto x = as_dt(dt, randn(std::size_t(B * C * rest), 8, 1.0f, 2.0f));
    const auto w = as_dt(dt, randn(std::size_t(C), 9, 0.2f, 1.0f));
    const auto b = as_dt(dt, randn(std::size_t(C), 10, 0.2f));
    const CpuTensor xc = cpu(x, {B, C, rest}), wc = cpu(w, {C}), bc = cpu(b, {C});
    CHECK(nmse(dev_group_norm(dt, x, &w, &b, B, C, rest, groups, 1e-6f), group_norm(xc, groups, wc, bc, 1e-6f)) <
          max_nmse(dt));
    CHECK(nmse(dev_group_norm(dt, x, nullptr, nullptr, B, C, rest, groups, 1e-6f),
               group_norm(xc, groups, CpuTensor{}, CpuTensor{}, 1e-6f)) < max_nmse(dt));
  }
}

TEST_CASE("rope on CUDA equals the CPU op: rotate-half and interleaved, shared and per-batch tables") {
  // D = 128: 16-byte vectors; D = 24: one thread per pair for bf16 rotate-half (24 % 16 ≠ 0), vectors otherwise
  for (const int D : {128, 24}) {
    CAPTURE(D);
    const std::int64_t B = 2, S = 45, H = 3;
    std::vector<std::int64_t> pos(S);
    for (std::int64_t s = 0; s < S; ++s) pos[std::size_t(s)] = 3 * s + 1;
    const RopeTable t1 = rope_table_1d(pos, D, 10000.0);
    CpuTensor ids({S, 4});
    for (std::int64_t s = 0; s < S; ++s)
      for (int a = 0; a < 4; ++a) ids(s * 4 + a) = float((s * (a + 1)) % 11);
    const int axes[] = {D / 4, D / 4, D / 4, D / 4};
    const RopeTable t2 = rope_table_axes(ids, axes, 2000.0);
    // per-batch table (B, S, D): batch 1 shifted positions
    RopeTable tb{CpuTensor({B, S, D}), CpuTensor({B, S, D})};
    for (std::int64_t i = 0; i < S * D; ++i) {
      tb.cos(i) = t1.cos(i), tb.sin(i) = t1.sin(i);
      tb.cos(S * D + i) = t2.cos(i), tb.sin(S * D + i) = t2.sin(i);
    }
    auto vec = [](const CpuTensor& c) { return std::vector<float>(c.data(), c.data() + c.numel()); };
    for (Dt dt : kTypes)
      for (bool interleaved : {false, true})
        for (const RopeTable<OnCpu>* t : {&t1, &t2, static_cast<const RopeTable<OnCpu>*>(&tb)}) {
          CAPTURE(dt_name(dt));
          CAPTURE(interleaved);
          const bool batched = t->cos.rank() == 3;
          CAPTURE(batched);
          const auto x = as_dt(dt, randn(std::size_t(B * S * H * D), 11));
          CpuTensor ref = cpu(x, {B, S, H, D});
          if (interleaved) apply_rope_interleaved(ref, *t);
          else apply_rope_half(ref, *t);
          CHECK(nmse(dev_rope(dt, x, vec(t->cos), vec(t->sin), B, S, H, D, batched, interleaved), ref) < max_nmse(dt));
        }
  }
}

TEST_CASE("silu, gelu_tanh, swiglu and gated_add on CUDA equal the CPU ops") {
  for (Dt dt : kTypes) {
    CAPTURE(dt_name(dt));
    const std::int64_t n = 100003;
    const auto x = as_dt(dt, randn(std::size_t(n), 12, 3.0f));
    const CpuTensor xc = cpu(x, {n});
    CHECK(nmse(dev_activation(dt, x, false), silu(xc)) < max_nmse(dt));
    CHECK(nmse(dev_activation(dt, x, true), gelu_tanh(xc)) < max_nmse(dt));

    // F and D odd-sized (one thread per element) and multiples of 8 (16-byte vectors)
    for (const std::int64_t f : {1531, 1536}) {
      CAPTURE(f);
      const std::int64_t rows = 77;
      const auto xs = as_dt(dt, randn(std::size_t(rows * 2 * f), 13, 2.0f));
      CHECK(nmse(dev_swiglu(dt, xs, rows, f), swiglu(cpu(xs, {rows, 2 * f}))) < max_nmse(dt));
    }

    for (const std::int64_t D : {300, 302, 384}) {
      CAPTURE(D);
      const std::int64_t B = 2, S = 33;
      const auto xa = as_dt(dt, randn(std::size_t(B * S * D), 14));
      const auto y = as_dt(dt, randn(std::size_t(B * S * D), 15));
      const auto gate = as_dt(dt, randn(std::size_t(B * D), 16));
      CpuTensor ref = cpu(xa, {B, S, D});
      gated_add(ref, cpu(gate, {B, D}), cpu(y, {B, S, D}));
      CHECK(nmse(dev_gated_add(dt, xa, &gate, y, B, S, D), ref) < max_nmse(dt));
      CpuTensor ref2 = cpu(xa, {B, S, D});
      add_(ref2, cpu(y, {B, S, D}));
      CHECK(nmse(dev_gated_add(dt, xa, nullptr, y, B, S, D), ref2) < max_nmse(dt));
    }
  }
}

TEST_CASE("softmax on CUDA equals a double-precision softmax, fully masked rows are zero") {
  const float ninf = -std::numeric_limits<float>::infinity();
  for (Dt dt : kTypes)
    for (int n : {1, 31, 100, 4096, 10000}) {
      CAPTURE(dt_name(dt));
      CAPTURE(n);
      const std::int64_t rows = 19;
      auto x = as_dt(dt, randn(std::size_t(rows * n), 17, 4.0f));
      for (int j = 0; j < n; j += 3) x[std::size_t(j)] = ninf;       // row 0: partly masked
      for (int j = 0; j < n; ++j) x[std::size_t(n + j)] = ninf;      // row 1: fully masked
      const float scale = 0.37f;
      std::vector<float> ref(x.size());
      for (std::int64_t r = 0; r < rows; ++r) {
        const float* xr = x.data() + r * n;
        double m = -INFINITY, s = 0.0;
        for (int j = 0; j < n; ++j) m = std::max(m, double(scale) * xr[j]);
        for (int j = 0; j < n; ++j) s += m == -INFINITY ? 0.0 : std::exp(double(scale) * xr[j] - m);
        for (int j = 0; j < n; ++j)
          ref[std::size_t(r * n + j)] = m == -INFINITY ? 0.0f : float(std::exp(double(scale) * xr[j] - m) / s);
      }
      const auto out = dev_softmax(dt, x, rows, n, scale);
      CHECK(nmse(out, ref) < max_nmse(dt));
      int nonzero = 0;
      for (int j = 0; j < n; ++j) nonzero += out[std::size_t(n + j)] != 0.0f;
      CHECK(nonzero == 0);
    }
}

TEST_CASE("narrow and cat on CUDA (copy_2d: the vector kernel or cudaMemcpy2D) equal the CPU ops bit for bit") {
  // bf16 rows of 64 (128 B: vectors), 40 (80 B: vectors), 5 (10 B: cudaMemcpy2D); narrows at aligned and
  // unaligned offsets of the last dimension
  for (const std::int64_t d : {64, 40, 5}) {
    CAPTURE(d);
    CpuTensor a({3, 7, d}), b({3, 2, d});
    for (std::int64_t i = 0; i < a.numel(); ++i) a(i) = float(i % 251) * 0.25f - 7.0f;
    for (std::int64_t i = 0; i < b.numel(); ++i) b(i) = float(i % 13) * -0.5f;
    const auto a16 = convert<bf16>(a), b16 = convert<bf16>(b);
    const auto da16 = to<OnCuda>(a16), db16 = to<OnCuda>(b16);
    const auto da = to<OnCuda>(a), db = to<OnCuda>(b);
    auto same16 = [](const Tensor<bf16, OnCuda>& got, const Tensor<bf16, OnCpu>& want) {
      return same_values(convert<float>(to<OnCpu>(got)), convert<float>(want));
    };
    auto same32 = [](const Tensor<float, OnCuda>& got, const CpuTensor& want) { return same_values(to<OnCpu>(got), want); };
    CHECK(same16(narrow(da16, 1, 2, 4), narrow(a16, 1, 2, 4)));
    CHECK(same32(narrow(da, 1, 2, 4), narrow(a, 1, 2, 4)));
    CHECK(same16(cat(da16, db16, 1), cat(a16, b16, 1)));
    CHECK(same32(cat(da, db, 1), cat(a, b, 1)));
    for (const std::int64_t at : {std::int64_t(0), d / 2, std::int64_t(1)}) {
      const std::int64_t n = std::min<std::int64_t>(d - at, std::max<std::int64_t>(d / 4, 1));
      CAPTURE(at);
      CHECK(same16(narrow(da16, -1, at, n), narrow(a16, -1, at, n)));
      CHECK(same32(narrow(da, -1, at, n), narrow(a, -1, at, n)));
      CHECK(same16(cat(narrow(da16, -1, at, n), da16, -1), cat(narrow(a16, -1, at, n), a16, -1)));
    }
  }
}

namespace {
template <class T>
Tensor<T, OnCuda> up(const CpuTensor& c) {
  if constexpr (std::is_same_v<T, float>) return to<OnCuda>(c);
  else return to<OnCuda>(convert<T>(c));
}
template <class T>
CpuTensor down(const Tensor<T, OnCuda>& d) {
  if constexpr (std::is_same_v<T, float>) return to<OnCpu>(d);
  else return convert<float>(to<OnCpu>(d));
}
std::vector<float> values(const CpuTensor& c) { return std::vector<float>(c.data(), c.data() + c.numel()); }

template <class T>
void check_swiglu_into(Dt dt) {
  // F = 1536 at column 1536 of a 3072-wide buffer (vectors), at column 5 (unaligned: one thread per element),
  // at column 8 of rows 1548 wide (aligned start, a pitch off the bf16 vector: one thread per element for bf16),
  // F = 1531 (odd); columns right of the part keep their values
  struct C {
    std::int64_t f, col0, width;
  };
  for (const C c : {C{1536, 1536, 3072}, C{1536, 5, 1544}, C{1536, 8, 1548}, C{1531, 8, 1545}}) {
    CAPTURE(c.f);
    CAPTURE(c.col0);
    CAPTURE(c.width);
    const std::int64_t rows = 37, right = c.width - c.col0 - c.f;
    const CpuTensor x = cpu(as_dt(dt, randn(std::size_t(rows * 2 * c.f), 31, 2.0f)), {rows, 2 * c.f});
    const CpuTensor left = cpu(as_dt(dt, randn(std::size_t(rows * c.col0), 32)), {rows, c.col0});
    CpuTensor fill({rows, c.width});
    for (std::int64_t i = 0; i < fill.numel(); ++i) fill(i) = 7.0f;
    const auto dx = up<T>(x), dl = up<T>(left);
    Tensor<T, OnCuda> packed = up<T>(fill);
    narrow_assign(packed, -1, 0, dl);
    swiglu_into(dx, packed, c.col0);
    const CpuTensor got = down(packed);
    // bit for bit the device swiglu and the left part; the swiglu part = the CPU op within bf16/fp32 NMSE
    CHECK(same_values(narrow(got, -1, 0, c.col0), down(dl)));
    CHECK(same_values(narrow(got, -1, c.col0, c.f), down(swiglu(dx))));
    CHECK(nmse(values(narrow(got, -1, c.col0, c.f)), swiglu(x)) < max_nmse(dt));
    if (right > 0) CHECK(same_values(narrow(got, -1, c.col0 + c.f, right), narrow(fill, -1, c.col0 + c.f, right)));
  }
  Tensor<T, OnCuda> narrow_buf({4, 10});
  CHECK_THROWS_WITH_AS(swiglu_into(Tensor<T, OnCuda>({4, 8}), narrow_buf, 7), doctest::Contains("does not fit columns [7, 11)"),
                       Error);
}

template <class T>
void check_rms_norm_rope(Dt dt) {
  // bf16: D = 128 / 64 / 256 fused (16 / 8 / 32 threads a row), D = 24 the two ops; f32: D = 128, 64 fused,
  // 256 (64 threads a row) and 24 the two ops
  for (const int D : {128, 64, 256, 24}) {
    CAPTURE(D);
    const std::int64_t B = 2, S = 37, H = 5;
    std::vector<std::int64_t> pos(S);
    for (std::int64_t s = 0; s < S; ++s) pos[std::size_t(s)] = 2 * s + 3;
    const RopeTable t1 = rope_table_1d(pos, D, 10000.0);
    // per-batch: batch 0 the positions' table, batch 1 random values (a rotate-half row's halves differ, so a
    // kernel that took the wrong half's cos/sin would show)
    RopeTable tb{CpuTensor({B, S, D}), CpuTensor({B, S, D})};
    const auto rc = randn(std::size_t(S * D), 35), rs = randn(std::size_t(S * D), 36);
    for (std::int64_t i = 0; i < S * D; ++i) {
      tb.cos(i) = t1.cos(i), tb.sin(i) = t1.sin(i);
      tb.cos(S * D + i) = rc[std::size_t(i)], tb.sin(S * D + i) = rs[std::size_t(i)];
    }
    const CpuTensor x = cpu(as_dt(dt, randn(std::size_t(B * S * H * D), 33, 1.5f, 0.3f)), {B, S, H, D});
    const CpuTensor w = cpu(as_dt(dt, randn(std::size_t(D), 34, 0.3f, 1.0f)), {D});
    const auto dx = up<T>(x), dw = up<T>(w);
    for (const RopeTable<OnCpu>* t : {&t1, static_cast<const RopeTable<OnCpu>*>(&tb)})
      for (const bool weighted : {true, false}) {
        CAPTURE(t->cos.rank());
        CAPTURE(weighted);
        const auto dt_table = to<OnCuda>(*t);
        const CpuTensor wc = weighted ? w : CpuTensor{};
        const Tensor<T, OnCuda> dwc = weighted ? dw : Tensor<T, OnCuda>{};
        const CpuTensor got_h = down(rms_norm_rope_half(dx, dwc, 1e-6f, dt_table));
        const CpuTensor got_i = down(rms_norm_rope_interleaved(dx, dwc, 1e-6f, dt_table));
        CHECK(nmse(values(got_h), rms_norm_rope_half(x, wc, 1e-6f, *t)) < max_nmse(dt));
        CHECK(nmse(values(got_i), rms_norm_rope_interleaved(x, wc, 1e-6f, *t)) < max_nmse(dt));
        // and the device's two ops in turn (they round to T between the norm and the rope)
        auto two_h = weighted ? rms_norm(dx, dw, 1e-6f) : rms_norm(dx, 1e-6f);
        auto two_i = two_h.clone();
        apply_rope_half(two_h, dt_table);
        apply_rope_interleaved(two_i, dt_table);
        CHECK(nmse(values(got_h), down(two_h)) < max_nmse(dt));
        CHECK(nmse(values(got_i), down(two_i)) < max_nmse(dt));
      }
  }
  const auto t = to<OnCuda>(rope_table_1d(std::vector<std::int64_t>{0, 1, 2}, 8, 10000.0));
  CHECK_THROWS_WITH_AS(rms_norm_rope_half(Tensor<T, OnCuda>({1, 4, 2, 8}), Tensor<T, OnCuda>{}, 1e-6f, t),
                       doctest::Contains("must be (S, D) or (B, S, D)"), Error);
  CHECK_THROWS_WITH_AS(rms_norm_rope_interleaved(Tensor<T, OnCuda>({1, 3, 2, 8}), Tensor<T, OnCuda>({4}), 1e-6f, t),
                       doctest::Contains("weight has 4 elements"), Error);
}
}  // namespace

TEST_CASE("swiglu_into on CUDA writes the device swiglu into columns of a packed buffer; narrow_assign") {
  check_swiglu_into<float>(Dt::f32);
  check_swiglu_into<bf16>(Dt::bf16);
}

TEST_CASE("rms_norm_rope on CUDA (one pass where D fits) equals the CPU rms_norm then rope, both styles") {
  check_rms_norm_rope<float>(Dt::f32);
  check_rms_norm_rope<bf16>(Dt::bf16);
}
