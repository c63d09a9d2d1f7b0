// The FLUX.2 transformer on OnCuda — the same model code as the CPU tests — against the diffusers
// golden and the CPU run: fp32 value type within 1e-4, bf16 within rel 2e-2; TP<2>, Ulysses<2>,
// Ring<2> and Ulysses<2>×Ring<2> on thread ranks sharing one GPU (DeviceThreadComm) equal the
// serial CUDA run. Built in every CUDA build (so CI instantiates the OnCuda model code with the op
// library); run where a GPU is present, skipped (77) elsewhere.
#include <doctest/doctest.h>

#include "../layers/harness.hpp"
#include "pdiff/models/flux2/transformer.hpp"

using namespace pdiff;
using namespace pdiff::test;
namespace fs = std::filesystem;

namespace {
const fs::path root = fs::path(PDIFF_SOURCE_DIR) / "tests/golden/flux2_tiny/dev";

struct Golden {
  Checkpoint ck = Checkpoint::open(root / "transformer");
  Flux2Config cfg = Flux2Config::load(root / "transformer");
  SafeTensors g = SafeTensors::open((root / "transformer_goldens.safetensors").string());
  std::vector<float> values(const char* n) const {
    auto t = g.read(n);
    return {t.data(), t.data() + t.numel()};
  }
};

// Every rank's output, on the host in fp32.
template <class L, class T>
std::vector<Tensor<float>> run_cuda(const Golden& c) {
  using C = Ctx<L, T>;
  auto x = c.g.read("x"), ctx = c.g.read("context"), img_ids = c.g.read("img_ids"), txt_ids = c.g.read("txt_ids");
  auto t = c.values("timestep"), gs = c.values("guidance");
  std::vector<Tensor<float>> out(std::size_t(L::world_size));
  launch<L>({.mode = Launch::threads, .comm = {.timeout = std::chrono::milliseconds(60000)}}, [&](auto& rank) {
    auto m = Flux2Transformer<C>::load(c.ck, c.cfg, rank.coords.tp);
    auto y = m.forward(rank, to_ctx<C>(x), to_ctx<C>(ctx), t, gs, img_ids, txt_ids);
    out[std::size_t(rank.index)] = to_host_f32(y);
  });
  return out;
}
}  // namespace

TEST_CASE("FLUX.2 transformer on CUDA equals diffusers (fp32 1e-4, bf16 2e-2)") {
  Golden c;
  const auto ref = c.g.read("out");
  CHECK(rel_err(run_cuda<Layout<OnCuda>, float>(c)[0], ref) < 1e-4);
  CHECK(rel_err(run_cuda<Layout<OnCuda>, bf16>(c)[0], ref) < 2e-2);
}

TEST_CASE_TEMPLATE("FLUX.2 layouts on one GPU equal the serial CUDA run (fp32)", L, Layout<TP<2>, OnCuda>,
                   Layout<Ulysses<2>, OnCuda>, Layout<Ring<2>, OnCuda>, Layout<Ulysses<2>, Ring<2>, OnCuda>) {
  Golden c;
  const auto serial = run_cuda<Layout<OnCuda>, float>(c)[0];
  for (auto& y : run_cuda<L, float>(c)) CHECK(rel_err(y, serial) < 1e-5);
}

TEST_CASE("FLUX.2 TP<2> in bf16 on one GPU stays within bf16 tolerance of diffusers") {
  Golden c;
  for (auto& y : run_cuda<Layout<TP<2>, OnCuda>, bf16>(c)) CHECK(rel_err(y, c.g.read("out")) < 2e-2);
}
