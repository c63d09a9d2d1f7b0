// The layout advisor (models/flux2/advisor.hpp): which layouts it keeps and drops and why, that its
// ranking follows the cost model (more ranks of compute are faster; a slow link favours layouts that
// move fewer bytes), the memory it states equals the planner's, Spearman's rank correlation, and clear
// errors for bad input.
#include <doctest/doctest.h>

#include <algorithm>

#include "pdiff/models/flux2/advisor.hpp"

using namespace pdiff;

namespace {
const LayoutPrediction* find(const std::vector<LayoutPrediction>& v, const std::string& name) {
  for (auto& p : v)
    if (p.name() == name) return &p;
  return nullptr;
}
}  // namespace

TEST_CASE("advisor: FLUX.2-dev on 1, 2, 4, 8 x 80 GiB — what fits, what is dropped and why") {
  const auto m = flux2_model_spec("flux2-dev");
  const Flux2Workload w;
  auto one = flux2_advise(m.transformer, m.encoder, w, {.count = 1, .mem_gib = 80});
  REQUIRE(one.size() == 1);
  CHECK(one[0].dropped.find("needs 93.1 GiB per rank, more than 90% of 80 GiB") != std::string::npos);
  auto two = flux2_advise(m.transformer, m.encoder, w, {.count = 2, .mem_gib = 80});
  CHECK(two[0].name() == "TP<2>");
  CHECK(two[0].dropped.empty());
  CHECK(find(two, "CFG<2>")->dropped == "CFG<2> needs 2 guidance branches, this model has 1");
  // memory equals the planner's parameters plus the activation estimate
  const double gib = 1024.0 * 1024.0 * 1024.0;
  const double want = double(flux2_param_plan(m.transformer, 2).bytes(2) + mistral_param_plan(m.encoder, 2).bytes(2) +
                             flux2_activation_bytes(m.transformer, 1024, 1024, 512, 2, 1, 2)) / gib;
  CHECK(two[0].mem_gib == doctest::Approx(want));
  auto eight = flux2_advise(m.transformer, m.encoder, w, {.count = 8, .mem_gib = 80});
  const auto* tp8u1 = find(eight, "TP<8>");
  REQUIRE(tp8u1 != nullptr);
  CHECK(tp8u1->dropped.empty());
  // runnable ones first, sorted by predicted batch step time
  std::size_t first_dropped = eight.size();
  for (std::size_t i = 0; i < eight.size(); ++i)
    if (!eight[i].dropped.empty()) {
      first_dropped = std::min(first_dropped, i);
    } else {
      CHECK(i < first_dropped);
      if (i > 0 && eight[i - 1].dropped.empty()) CHECK(eight[i - 1].batch_step_s <= eight[i].batch_step_s);
    }
  // 8 ranks of compute beat 4: the best 8-way layout predicts about half the best 4-way time
  auto four = flux2_advise(m.transformer, m.encoder, w, {.count = 4, .mem_gib = 80});
  CHECK(eight[0].compute_s == doctest::Approx(four[0].compute_s / 2));
}

TEST_CASE("advisor: heads not divisible, klein's two branches make CFG<2> a choice, DP divides a batch") {
  const auto k = flux2_model_spec("flux2-klein-4b");
  CHECK(k.branches == 2);
  CHECK(k.transformer.num_attention_heads == 24);
  Flux2Workload w{.branches = 2, .images = 4};
  const auto r = flux2_advise(k.transformer, k.encoder, w, {.count = 8, .mem_gib = 80});
  const auto r16 = flux2_advise(k.transformer, k.encoder, w, {.count = 16, .mem_gib = 80});
  const auto* u16 = find(r16, "Ulysses<16>");
  REQUIRE(u16 != nullptr);
  CHECK(u16->dropped == "24 heads are not divisible by tp x ulysses = 16");
  const auto* cfg2 = find(r, "CFG<2> x DP<4>");
  REQUIRE(cfg2 != nullptr);
  CHECK(cfg2->dropped.empty());
  // 4 images on DP<4>: one forward per group; on DP<1>, four
  const auto* tp8 = find(r, "TP<8>");
  REQUIRE(tp8 != nullptr);
  CHECK(tp8->batch_step_s == doctest::Approx(4 * tp8->step_s));
  CHECK(cfg2->batch_step_s == doctest::Approx(cfg2->step_s));
}

TEST_CASE("advisor: a slow link moves the choice to the layout with fewer bytes") {
  const auto m = flux2_model_spec("flux2-dev");
  const Flux2Workload w{.width = 2048, .height = 2048};
  const auto fast = flux2_advise(m.transformer, m.encoder, w, {.count = 8, .mem_gib = 80, .link_gbps = 450});
  const auto slow = flux2_advise(m.transformer, m.encoder, w, {.count = 8, .mem_gib = 80, .link_gbps = 0.5});
  CHECK(fast[0].comm_s < slow[0].comm_s);
  // on the slow link the winner's communication is the smallest of the runnable layouts
  double least = 1e30;
  for (auto& p : slow)
    if (p.dropped.empty()) least = std::min(least, p.comm_s);
  CHECK(slow[0].comm_s == doctest::Approx(least).epsilon(0.5));
}

TEST_CASE("spearman: the rank correlation") {
  const double a[] = {1, 2, 3, 4}, b[] = {10, 20, 30, 40}, c[] = {4, 3, 2, 1}, d[] = {1, 3, 2, 4};
  CHECK(spearman(a, b) == doctest::Approx(1.0));
  CHECK(spearman(a, c) == doctest::Approx(-1.0));
  CHECK(spearman(a, d) == doctest::Approx(0.8));
}

TEST_CASE("advisor: bad input is a clear error") {
  CHECK_THROWS_WITH_AS(flux2_model_spec("flux3"), doctest::Contains("unknown model 'flux3'"), Error);
  const auto m = flux2_model_spec("flux2-dev");
  CHECK_THROWS_WITH_AS(flux2_advise(m.transformer, m.encoder, {}, {.count = 0}), doctest::Contains("0 devices"), Error);
  CHECK_THROWS_WITH_AS(flux2_advise(m.transformer, m.encoder, {}, {.count = 2, .mem_gib = -1}),
                       doctest::Contains("must be positive"), Error);
  CHECK_THROWS_WITH_AS(flux2_advise(m.transformer, m.encoder, {.width = 100}, {.count = 2}),
                       doctest::Contains("must be multiples of 16"), Error);
  CHECK_THROWS_WITH_AS(flux2_advise(m.transformer, m.encoder, {.images = 0}, {.count = 2}),
                       doctest::Contains("images (0)"), Error);
}
