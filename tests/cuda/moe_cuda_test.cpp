// MoE<C> on OnCuda — the same layer code as the CPU tests — against HunyuanImage-3.0's MoE layer
// (tests/golden/hunyuan_moe_tiny): fp32 within 1e-4, bf16 within 2e-2; EP<2> over TP<2> (replicated
// tokens) and over Ulysses<2> (dispatch/combine) on thread ranks sharing one GPU equal the serial CUDA
// run; HunyuanImage-3.0's velocity on CUDA (tests/golden/hunyuan_image3_tiny). Built in every CUDA build
// (CI's compile probe of the OnCuda MoE and HunyuanImage-3.0 code); run where a GPU is present, skipped
// (77) elsewhere.
#include <doctest/doctest.h>

#include "../layers/harness.hpp"
#include "pdiff/io/checkpoint.hpp"
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
