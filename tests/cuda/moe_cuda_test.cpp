// MoE<C> on OnCuda — the same layer code as the CPU tests — against HunyuanImage-3.0's MoE layer
// (tests/golden/hunyuan_moe_tiny): fp32 within 1e-4, bf16 within 2e-2; EP<2> over TP<2> (replicated
// tokens) and over Ulysses<2> (dispatch/combine) on thread ranks sharing one GPU equal the serial CUDA
// run; HunyuanImage-3.0's velocity on CUDA (tests/golden/hunyuan_image3_tiny); the device ops under it
// (moe_group: warp top-k + CUB radix sort; grouped_gemm_nt: cuBLAS grouped GEMM) against the CPU
// ones at HunyuanImage-3.0's router size (64 experts, top-8). Built in every CUDA build
// (CI's compile probe of the OnCuda MoE and HunyuanImage-3.0 code); run where a GPU is present, skipped
// (77) elsewhere.
#include <doctest/doctest.h>

#include <array>
#include <random>

#include "../layers/harness.hpp"
#include "pdiff/io/checkpoint.hpp"
#include "pdiff/models/hunyuan_image3/pipeline.hpp"
#include "pdiff/models/hunyuan_image3/transformer.hpp"

using namespace pdiff;
using namespace pdiff::test;
namespace fs = std::filesystem;

namespace {
const fs::path dir = fs::path(PDIFF_SOURCE_DIR) / "tests/golden/hunyuan_moe_tiny";

template <class L, class T>
std::vector<Tensor<float>> run_cuda(const Tensor<float>& x) {
  using C = Ctx<L, T>;
  const auto ck = Checkpoint::open(dir);
  const auto cfg = HunyuanImage3Config::load_moe(dir).moe(0);
  std::vector<Tensor<float>> out(std::size_t(L::world_size));
  launch<L>({.mode = Launch::threads, .comm = {.timeout = std::chrono::milliseconds(60000)}}, [&](auto& rank) {
    const auto moe = MoE<C>::load(ck, cfg, rank, "model.layers.0.mlp.");
    const SpChunk ch = sp_chunk<L>(rank, x.size(1));
    out[std::size_t(rank.index)] = to_host_f32(moe.forward(rank, to_ctx<C>(narrow(x, 1, ch.begin, ch.size()))));
  });
  return out;
}
}  // namespace

TEST_CASE("moe_group on CUDA = the CPU's: the same experts, tokens and counts, weights within 1e-6") {
  const auto golden = SafeTensors::open((dir / "goldens.safetensors").string()).read("router_logits");  // (48, 8)
  struct Case {
    Tensor<float> logits;
    int k;
    bool renormalize;
    std::int64_t t0, t1;
  };
  std::vector<Case> cases = {{golden, 2, true, 0, 48}, {golden, 2, true, 7, 30}, {golden, 1, false, 0, 48},
                             {random({4096, 64}, 11, 3.0f), 8, true, 0, 4096},   // HunyuanImage-3.0's router
                             {random({1000, 64}, 12), 8, true, 250, 750}, {random({300, 200}, 13), 3, true, 0, 300},
                             {golden, 2, true, 5, 5}};
  // every token on expert 3 first: the worst imbalance
  auto skew = random({512, 64}, 14);
  for (std::int64_t t = 0; t < 512; ++t) skew.data()[t * 64 + 3] += 20.0f;
  cases.push_back({skew, 8, true, 0, 512});
  for (const auto& c : cases) {
    CAPTURE(c.logits.shape());
    CAPTURE(c.t0);
    const auto want = moe_group(c.logits, c.k, c.renormalize, 0.5f, c.t0, c.t1);
    const auto got = moe_group(to<OnCuda>(c.logits), c.k, c.renormalize, 0.5f, c.t0, c.t1);
    CHECK(got.count == want.count);
    const auto tok = to<OnCpu>(got.token);
    const auto w = to<OnCpu>(got.weight);
    REQUIRE(tok.numel() == want.rows());
    std::int64_t bad_token = 0;
    double worst = 0;
    for (std::int64_t j = 0; j < want.rows(); ++j) {
      bad_token += tok(j) != want.token(j);
      worst = std::max(worst, double(std::abs(w(j) - want.weight(j))));
    }
    CHECK(bad_token == 0);
    CHECK(worst < 1e-6);
  }
  auto nan = random({40, 8}, 15);
  nan.data()[17 * 8 + 2] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH_AS(moe_group(to<OnCuda>(nan), 2, true, 1.0f, 0, 40), doctest::Contains("token 17 are not finite"),
                       Error);
}

TEST_CASE("index_rows / index_add_rows on CUDA = the CPU ops: repeated and unused destinations, fp32 and bf16") {
  for (auto [N, n, d] : {std::array<std::int64_t, 3>{7, 20, 5}, {4352, 4352 * 8, 256}, {70000, 1000, 3}}) {
    CAPTURE(N);
    CAPTURE(n);
    std::mt19937 gen(std::uint32_t(N + n));
    Tensor<std::int32_t> idx({n});
    for (std::int64_t i = 0; i < n; ++i) idx(i) = std::int32_t(gen() % std::uint32_t(N / 2 + 1));  // half never hit
    const auto x = random({N, d}, 1), rows = random({n, d}, 2), w = random({n}, 3);
    auto want = x.clone();
    index_add_rows(want, rows, idx, w);
    const auto didx = to<OnCuda>(idx);
    CHECK(max_abs(to<OnCpu>(index_rows(to<OnCuda>(x), didx)), index_rows(x, idx)) == 0.0);
    auto got = to<OnCuda>(x);
    index_add_rows(got, to<OnCuda>(rows), didx, to<OnCuda>(w));
    CHECK(rel_err(to<OnCpu>(got), want) < 1e-6);
    auto half = to<OnCuda>(convert<bf16>(x));
    index_add_rows(half, to<OnCuda>(convert<bf16>(rows)), didx, to<OnCuda>(w));
    CHECK(rel_err(to_host_f32(half), want) < 1e-2);
  }
}

TEST_CASE("grouped_gemm_nt on CUDA = one CPU GEMM per group: empty groups, more groups than one pointer chunk, "
          "rows not 16-byte aligned") {
  struct Case {
    std::vector<std::int64_t> rows;
    std::int64_t N;
  };
  for (const auto& [rows, N] : {Case{{5, 0, 17, 1, 0, 9}, 96}, Case{std::vector<std::int64_t>(200, 3), 96},
                                Case{{0, 0, 0}, 96}, Case{{5, 3, 2}, 95}}) {  // N = 95: y's group rows misaligned
    CAPTURE(rows.size());
    CAPTURE(N);
    std::int64_t n = 0;
    for (auto r : rows) n += r;
    const std::int64_t K = 64;
    const auto x = random({n, K}, 21);
    std::vector<Tensor<float>> w;
    for (std::size_t g = 0; g < rows.size(); ++g) w.push_back(random({N, K}, 100 + g));
    Tensor<float> want({n, N});
    for (std::int64_t g = 0, at = 0; g < std::int64_t(rows.size()); at += rows[std::size_t(g)], ++g) {
      if (rows[std::size_t(g)] == 0) continue;
      auto yg = want.slice(at, at + rows[std::size_t(g)]);
      gemm(x.slice(at, at + rows[std::size_t(g)]), w[std::size_t(g)], yg, {.trans_b = true});
    }
    auto run = [&](auto value) {
      using T = decltype(value);
      std::vector<Tensor<T, OnCuda>> dw;
      for (auto& t : w) dw.push_back(to<OnCuda>(convert<T>(t)));
      std::vector<const Tensor<T, OnCuda>*> p;
      for (auto& t : dw) p.push_back(&t);
      Tensor<T, OnCuda> y({n, N});
      grouped_gemm_nt(to<OnCuda>(convert<T>(x)), std::span<const Tensor<T, OnCuda>* const>(p),
                      std::span<const std::int64_t>(rows), y);
      if (N % 8 != 0) CHECK_FALSE(grouped_gemm_used());  // misaligned rows go one GEMM per group
      MESSAGE("grouped_gemm_nt<", sizeof(T) == 2 ? "bf16" : "fp32", "> on ", rows.size(), " groups: ",
              grouped_gemm_used() ? "one cuBLAS grouped GEMM" : "one GEMM per group (fallback)");
      return to_host_f32(y);
    };
    if (n == 0) {
      CHECK(run(float{}).numel() == 0);
      continue;
    }
    CHECK(rel_err(run(float{}), want) < 1e-5);
    CHECK(rel_err(run(bf16{}), want) < 1e-2);
  }
}

TEST_CASE("MoE on CUDA equals HunyuanImage-3.0's layer (fp32 1e-4, bf16 2e-2), balanced and skewed") {
  const auto g = SafeTensors::open((dir / "goldens.safetensors").string());
  for (std::string c : {"", "_skew"}) {
    CAPTURE(c);
    const auto x = g.read("x" + c), ref = g.read("out" + c);
    CHECK(rel_err(run_cuda<Layout<OnCuda>, float>(x)[0], ref) < 1e-4);
    CHECK(rel_err(run_cuda<Layout<OnCuda>, bf16>(x)[0], ref) < 2e-2);
  }
}

TEST_CASE("MoE on CUDA: EP<2> over TP<2> and over Ulysses<2> equal the serial CUDA run") {
  const auto g = SafeTensors::open((dir / "goldens.safetensors").string());
  const auto x = g.read("x");
  const auto serial = run_cuda<Layout<OnCuda>, float>(x)[0];
  for (auto& y : run_cuda<Layout<TP<2>, EP<2>, OnCuda>, float>(x)) CHECK(rel_err(y, serial) < 1e-5);
  const auto u = run_cuda<Layout<Ulysses<2>, EP<2>, OnCuda>, float>(x);
  CHECK(rel_err(u[0], narrow(serial, 1, 0, 12)) < 1e-5);
  CHECK(rel_err(u[1], narrow(serial, 1, 12, 12)) < 1e-5);
}

TEST_CASE("HunyuanImage-3.0 velocity on CUDA equals the reference (fp32 1e-4, bf16 5e-2), and on TP<2> x EP<2>") {
  const fs::path hy = fs::path(PDIFF_SOURCE_DIR) / "tests/golden/hunyuan_image3_tiny";
  const auto g = SafeTensors::open((hy / "goldens.safetensors").string());
  const auto ck = Checkpoint::open(hy);
  const auto cfg = HunyuanImage3Config::load(hy);
  const auto ids = g.read("input_ids");
  HunyuanSequence s;
  for (std::int64_t i = 0; i < ids.size(1); ++i) s.ids.push_back(std::int32_t(ids(i)));
  s.timestep_index = 19, s.image_begin = 20, s.h = 3, s.w = 5;
  const auto x = g.read("step0_latents_in"), want = g.read("step0_v_cond");
  auto run = [&](auto layout, auto value) {
    using L = decltype(layout);
    using C = Ctx<L, decltype(value)>;
    std::vector<Tensor<float>> out(std::size_t(L::world_size));
    launch<L>({.mode = Launch::threads, .comm = {.timeout = std::chrono::milliseconds(60000)}}, [&](auto& rank) {
      out[std::size_t(rank.index)] = HunyuanImage3Transformer<C>::load(ck, cfg, rank).velocity(rank, s, x, 1000.0f);
    });
    return out;
  };
  CHECK(rel_err(run(Layout<OnCuda>{}, float{})[0], want) < 1e-4);
  CHECK(rel_err(run(Layout<OnCuda>{}, bf16{})[0], want) < 5e-2);
  for (auto& v : run(Layout<TP<2>, EP<2>, OnCuda>{}, float{})) CHECK(rel_err(v, want) < 1e-4);
}

TEST_CASE("HunyuanImage3Pipeline on CUDA: 2 CFG steps and the 3-D VAE equal the reference (fp32 1e-4, bf16 5e-2), "
          "and TP<2> x CFG<2> x EP<4> on thread ranks sharing the GPU") {
  const fs::path hy = fs::path(PDIFF_SOURCE_DIR) / "tests/golden/hunyuan_image3_tiny";
  const auto g = SafeTensors::open((hy / "goldens.safetensors").string());
  const auto init = g.read("step0_latents_in");
  auto run = [&](auto layout, auto value) {
    using L = decltype(layout);
    std::vector<HunyuanResult> out(std::size_t(L::world_size));
    launch<L>({.mode = Launch::threads, .comm = {.timeout = std::chrono::milliseconds(60000)}}, [&](auto& rank) {
      const auto pipe = HunyuanImage3Pipeline<L, decltype(value)>::load(rank, hy);
      out[std::size_t(rank.index)] = pipe.generate(rank, {.prompt = "a red fox, snow", .width = 80, .height = 48, .steps = 2,
                                                          .guidance = 5.0f, .latents = &init, .progress = false});
    });
    return out;
  };
  const auto f = run(Layout<OnCuda>{}, float{})[0];
  CHECK(rel_err(f.latents, g.read("final_latents")) < 1e-4);
  CHECK(rel_err(f.image, g.read("image_01")) < 1e-4);
  const auto h = run(Layout<OnCuda>{}, bf16{})[0];
  CHECK(rel_err(h.image, g.read("image_01")) < 5e-2);
  for (auto& r : run(Layout<TP<2>, CFG<2>, EP<4>, OnCuda>{}, float{})) {
    CHECK(rel_err(r.latents, f.latents) < 1e-5);
    CHECK(rel_err(r.image, f.image) < 1e-5);
  }
}
