// The CUDA attention kernels equal the CPU attention (backend/cpu/attention.hpp), output and
// log-sum-exp: flash (bf16, tensor cores) and the one-block-per-row reference (fp32 and bf16), for
// head dims 64 and 128, GQA/MQA, Sq and Sk that are not multiples of the tiles (128 × 64), causal with
// Ring offsets (including tiles with no visible key), key padding, block masks, explicit scale.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "ops_check.hpp"
#include "pdiff/backend/cpu/attention.hpp"

using namespace pdiff;
using namespace pdiff::test;

namespace {

using U8 = Tensor<std::uint8_t, OnCpu>;

struct Inputs {
  std::vector<float> q, k, v;
};

Inputs make_inputs(const DevAttnCase& c, std::uint32_t seed) {
  const std::size_t nq = std::size_t(c.batch * c.sq * c.heads * c.head_dim);
  const std::size_t nk = std::size_t(c.batch * c.sk * c.kv_heads * c.head_dim);
  // bf16-exact values so every kernel and the CPU read the same numbers
  return {as_dt(Dt::bf16, randn(nq, seed, 1.5f)), as_dt(Dt::bf16, randn(nk, seed + 1, 1.0f)),
          as_dt(Dt::bf16, randn(nk, seed + 2, 1.0f))};
}

struct CpuResult {
  CpuTensor out, lse;
};
CpuResult cpu_attention(const DevAttnCase& c, const Inputs& in) {
  const CpuTensor q = cpu(in.q, {c.batch, c.sq, c.heads, c.head_dim});
  const CpuTensor k = cpu(in.k, {c.batch, c.sk, c.kv_heads, c.head_dim});
  const CpuTensor v = cpu(in.v, {c.batch, c.sk, c.kv_heads, c.head_dim});
  U8 km, m;
  AttnArgs a;
  a.scale = c.scale, a.causal = c.causal, a.q_offset = c.q_offset, a.k_offset = c.k_offset;
  if (c.key_mask) {
    km = U8({c.batch, c.sk});
    for (std::size_t i = 0; i < c.key_mask->size(); ++i) km(std::int64_t(i)) = (*c.key_mask)[i];
    a.key_mask = &km;
  }
  if (c.mask) {
    m = U8({c.mask_batched ? c.batch : 1, c.sq, c.sk});
    for (std::size_t i = 0; i < c.mask->size(); ++i) m(std::int64_t(i)) = (*c.mask)[i];
    a.mask = &m;
  }
  CpuResult r;
  r.out = attention(q, k, v, a, &r.lse);
  return r;
}

// max |lse − ref| over rows with a finite reference; rows with −inf must be −inf on both sides.
double lse_error(const std::vector<float>& lse, const CpuTensor& ref, int& inf_mismatch) {
  double e = 0.0;
  inf_mismatch = 0;
  for (std::int64_t i = 0; i < ref.numel(); ++i) {
    const float r = ref(i), g = lse[std::size_t(i)];
    if (std::isinf(r) || std::isinf(g)) inf_mismatch += !(std::isinf(r) && std::isinf(g) && r < 0 && g < 0);
    else e = std::max(e, double(std::abs(r - g)));
  }
  return e;
}

void check_case(const DevAttnCase& c, std::uint32_t seed) {
  const Inputs in = make_inputs(c, seed);
  const CpuResult ref = cpu_attention(c, in);
  struct K {
    AttnKernel kernel;
    const char* name;
    double max_nmse, max_lse;
  };
  const K kernels[] = {{AttnKernel::flash, "flash bf16", 1e-4, 2e-3},
                       {AttnKernel::reference_f32, "reference f32", 1e-9, 1e-4},
                       {AttnKernel::reference_bf16, "reference bf16", 2e-5, 1e-4}};
  for (const K& k : kernels) {
    if (k.kernel == AttnKernel::flash && c.head_dim != 64 && c.head_dim != 128) continue;
    CAPTURE(k.name);
    const DevAttnResult r = dev_attention(k.kernel, c, in.q, in.k, in.v, true);
    CHECK(nmse(r.out, ref.out) < k.max_nmse);
    int inf_mismatch = 0;
    CHECK(lse_error(r.lse, ref.lse, inf_mismatch) < k.max_lse);
    CHECK(inf_mismatch == 0);
  }
}

std::vector<std::uint8_t> valid_lengths(std::int64_t batch, std::int64_t sk, std::initializer_list<std::int64_t> n) {
  std::vector<std::uint8_t> m(std::size_t(batch * sk), 0);
  std::int64_t b = 0;
  for (std::int64_t len : n) {
    for (std::int64_t j = 0; j < len; ++j) m[std::size_t(b * sk + j)] = 1;
    ++b;
  }
  return m;
}

}  // namespace

TEST_CASE("attention on CUDA: plain and GQA, head dims 64 and 128, tails in Sq and Sk") {
  for (int d : {64, 128}) {
    CAPTURE(d);
    DevAttnCase c;
    c.head_dim = d;
    c.batch = 2, c.sq = 77, c.sk = 130, c.heads = 4, c.kv_heads = 2;
    check_case(c, 100);
    c.batch = 1, c.sq = 1, c.sk = 1, c.heads = 3, c.kv_heads = 1;  // MQA, one key
    check_case(c, 200);
    c.batch = 1, c.sq = 300, c.sk = 64, c.heads = 2, c.kv_heads = 2;  // exactly one key tile, three query tiles
    check_case(c, 300);
    c.batch = 1, c.sq = 129, c.sk = 257, c.heads = 6, c.kv_heads = 2, c.scale = 0.05f;  // explicit scale
    check_case(c, 400);
  }
}

TEST_CASE("attention on CUDA: causal, with Ring offsets, and tiles with no visible key") {
  for (int d : {64, 128}) {
    CAPTURE(d);
    DevAttnCase c;
    c.head_dim = d, c.causal = true;
    c.batch = 2, c.sq = 200, c.sk = 200, c.heads = 2, c.kv_heads = 1;
    check_case(c, 500);
    c.batch = 1, c.sq = 100, c.sk = 164, c.q_offset = 64, c.k_offset = 0;  // queries later than keys
    check_case(c, 600);
    c.sq = 150, c.sk = 70, c.q_offset = 0, c.k_offset = 100;  // rows 0..99 see nothing: 0 and −inf
    check_case(c, 700);
    c.sq = 60, c.sk = 90, c.q_offset = 0, c.k_offset = 300;  // the whole tile sees nothing
    check_case(c, 800);
  }
}

TEST_CASE("attention on CUDA: key padding (valid lengths) and block masks") {
  for (int d : {64, 128}) {
    CAPTURE(d);
    DevAttnCase c;
    c.head_dim = d;
    c.batch = 2, c.sq = 90, c.sk = 150, c.heads = 4, c.kv_heads = 4;
    const auto km = valid_lengths(2, 150, {150, 57});
    c.key_mask = &km;
    check_case(c, 900);
    c.causal = true;
    check_case(c, 1000);
    c.causal = false, c.key_mask = nullptr;
    std::vector<std::uint8_t> mask(std::size_t(2 * 90 * 150));
    std::mt19937 gen(7);
    for (auto& x : mask) x = std::uint8_t(gen() % 5 != 0);
    for (std::int64_t j = 0; j < 150; ++j) mask[std::size_t(1 * 150 + j)] = 0;  // batch 0, row 1: fully masked
    c.mask = &mask, c.mask_batched = true;
    check_case(c, 1100);
    c.mask_batched = false;  // the first (Sq, Sk) slice broadcast over the batch
    const std::vector<std::uint8_t> shared(mask.begin(), mask.begin() + 90 * 150);
    c.mask = &shared;
    check_case(c, 1200);
  }
}

TEST_CASE("flash attention equals the CPU op on long sequences (many key tiles, pipeline wrap)") {
  DevAttnCase c;
  c.head_dim = 128, c.batch = 1, c.sq = 1000, c.sk = 1100, c.heads = 2, c.kv_heads = 1;
  check_case(c, 1300);
  c.causal = true, c.sq = c.sk = 1024;
  check_case(c, 1400);
}

TEST_CASE("flash attention equals the device reference at S = 2048, causal, GQA") {
  for (int d : {64, 128}) {
    CAPTURE(d);
    DevAttnCase c;
    c.head_dim = d, c.batch = 2, c.sq = 2048, c.sk = 2048, c.heads = 4, c.kv_heads = 1, c.causal = true;
    const Inputs in = make_inputs(c, 1500);
    const auto f = dev_attention(AttnKernel::flash, c, in.q, in.k, in.v, true);
    const auto r = dev_attention(AttnKernel::reference_f32, c, in.q, in.k, in.v, true);
    CHECK(nmse(f.out, r.out) < 1e-4);
    double e = 0.0;
    for (std::size_t i = 0; i < r.lse.size(); ++i) e = std::max(e, double(std::abs(f.lse[i] - r.lse[i])));
    CHECK(e < 2e-3);
  }
}

TEST_CASE("flash attention rejects head dims it has no kernel for, naming them") {
  DevAttnCase c;
  c.head_dim = 96;
  const Inputs in = make_inputs(c, 1);
  try {
    dev_attention(AttnKernel::flash, c, in.q, in.k, in.v, false);
    FAIL("head_dim 96 was accepted");
  } catch (const Error& e) {
    CHECK(std::string(e.what()) == "flash_attention: head_dim 96 not supported (64, 128)");
  }
}
