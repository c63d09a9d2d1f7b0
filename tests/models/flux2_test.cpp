// FLUX.2 transformer: serial equals diffusers (dev with guidance, klein without); every layout
// equals serial (TP, Ulysses, Ring and their combinations; chunks that hold only text, only image
// or the boundary); clear errors for layouts that do not fit the model.
#include <doctest/doctest.h>

#include "../layers/harness.hpp"
#include "pdiff/models/flux2/transformer.hpp"

using namespace pdiff;
using namespace pdiff::test;
namespace fs = std::filesystem;

namespace {
const fs::path root = fs::path(PDIFF_SOURCE_DIR) / "tests/golden/flux2_tiny";

struct Case {
  Checkpoint ck;
  Flux2Config cfg;
  SafeTensors g;
  explicit Case(const std::string& v)
      : ck(Checkpoint::open(root / v / "transformer")),
        cfg(Flux2Config::load(root / v / "transformer")),
        g(SafeTensors::open((root / v / "transformer_goldens.safetensors").string())) {}
  std::vector<float> values(const char* n) const {
    if (!g.contains(n)) return {};
    auto t = g.read(n);
    return {t.data(), t.data() + t.numel()};
  }
};

template <class L>
std::vector<Tensor<float>> run(const Case& c) {
  auto x = c.g.read("x"), ctx = c.g.read("context"), img_ids = c.g.read("img_ids"), txt_ids = c.g.read("txt_ids");
  auto t = c.values("timestep"), gs = c.values("guidance");
  return run_ranks<L>([&](auto& rank) {
    auto m = Flux2Transformer<Ctx<L>>::load(c.ck, c.cfg, rank.coords.tp);
    return m.forward(rank, x, ctx, t, gs, img_ids, txt_ids);
  });
}
}  // namespace

TEST_CASE("serial FLUX.2 transformer equals diffusers (dev and klein)") {
  for (const char* v : {"dev", "klein"}) {
    CAPTURE(v);
    Case c(v);
    CHECK(c.cfg.guidance_embeds == (std::string(v) == "dev"));
    auto y = run<Layout<OnCpu>>(c)[0];
    CHECK(rel_err(y, c.g.read("out")) < 1e-4);
  }
}

TEST_CASE_TEMPLATE("every layout equals serial", L, PDIFF_TEST_LAYOUTS, Layout<Ring<3>, OnCpu>,
                   Layout<TP<2>, Ulysses<2>, Ring<2>, OnCpu>) {
  Case c("dev");
  auto serial = run<Layout<OnCpu>>(c)[0];
  for (auto& y : run<L>(c)) CHECK(rel_err(y, serial) < 1e-5);
}

TEST_CASE("layouts that do not fit the model are clear errors") {
  Case c("klein");
  using U3 = Layout<Ulysses<3>, OnCpu>;
  CHECK_THROWS_WITH_AS(run<U3>(c), doctest::Contains("num_attention_heads (4) must be divisible by tp*ulysses (1*3)"),
                       Error);
  using R8 = Layout<Ring<8>, OnCpu>;
  CHECK_THROWS_WITH_AS(run<R8>(c), doctest::Contains("(12 + 48 = 60) must be divisible by ulysses*ring (1*8)"), Error);
}
