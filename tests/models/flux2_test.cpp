// FLUX.2 transformer: serial equals diffusers (dev with guidance, klein without); every layout
// equals serial (TP, Ulysses, Ring and their combinations; chunks that hold only text, only image
// or the boundary; any token count, padded); clear errors for layouts that do not fit the model.
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

// The golden inputs, or their first nt text and ni image tokens (lengths no layout divides).
template <class L>
std::vector<Tensor<float>> run(const Case& c, std::int64_t nt = -1, std::int64_t ni = -1) {
  auto x = c.g.read("x"), ctx = c.g.read("context"), img_ids = c.g.read("img_ids"), txt_ids = c.g.read("txt_ids");
  if (nt >= 0) ctx = narrow(ctx, 1, 0, nt), txt_ids = narrow(txt_ids, 0, 0, nt);
  if (ni >= 0) x = narrow(x, 1, 0, ni), img_ids = narrow(img_ids, 0, 0, ni);
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
}

// 12 + 47 = 59 tokens (prime): every sequence-parallel layout pads the joint sequence and masks the
// padded keys; 3 + 6 = 9 tokens on 8 ranks: three ranks hold only padding, one text and padding.
TEST_CASE_TEMPLATE("any token count works on every layout and equals serial", L, PDIFF_TEST_LAYOUTS,
                   Layout<Ring<3>, OnCpu>, Layout<Ulysses<4>, OnCpu>, Layout<TP<2>, Ulysses<2>, Ring<2>, OnCpu>) {
  Case c("dev");
  for (auto [nt, ni] : {std::pair<std::int64_t, std::int64_t>{12, 47}, {3, 6}, {1, 1}}) {
    CAPTURE(nt);
    CAPTURE(ni);
    auto serial = run<Layout<OnCpu>>(c, nt, ni)[0];
    REQUIRE(serial.size(1) == ni);
    for (auto& y : run<L>(c, nt, ni)) CHECK(rel_err(y, serial) < 1e-5);
  }
}

TEST_CASE("ranks that hold only padding (9 tokens on Ring<8>, Ulysses<2> x Ring<4>)") {
  Case c("klein");
  for (auto [nt, ni] : {std::pair<std::int64_t, std::int64_t>{3, 6}, {12, 47}}) {
    CAPTURE(nt);
    auto serial = run<Layout<OnCpu>>(c, nt, ni)[0];
    for (auto& y : run<Layout<Ring<8>, OnCpu>>(c, nt, ni)) CHECK(rel_err(y, serial) < 1e-5);
    for (auto& y : run<Layout<Ulysses<2>, Ring<4>, OnCpu>>(c, nt, ni)) CHECK(rel_err(y, serial) < 1e-5);
  }
}
