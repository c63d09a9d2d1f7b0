// Batched generation and DP<N> (Flux2Pipeline::generate with a span of requests) on the committed
// FLUX.2-klein and -dev test folders (tests/golden/flux2_tiny/*/e2e): a batch equals its images made
// one at a time (each image's noise is Philox(its seed)); DP<2>, DP<2> x TP<2>, DP<2> x CFG<2> equal
// serial with every image made once, in request order on every rank (or on the root only); the
// division by cost (dp_assign), the split by max_batch and memory budget, and clear errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <mutex>

#include "../layers/harness.hpp"
#include "pdiff/models/flux2/pipeline.hpp"

using namespace pdiff;
using namespace pdiff::test;
namespace fs = std::filesystem;

namespace {
const fs::path klein = fs::path(PDIFF_SOURCE_DIR) / "tests/golden/flux2_tiny/klein/e2e";
const fs::path dev = fs::path(PDIFF_SOURCE_DIR) / "tests/golden/flux2_tiny/dev/e2e";

// 2 prompts x 2 images (seeds 11, 12, 13, 14), the last at another size; klein true CFG (guidance 3).
std::vector<Flux2Request> four(float guidance = 3.0f) {
  const std::string prompts[] = {"a red fox in the snow", "a blue house by the sea, evening"};
  auto qs = flux2_requests({.width = 64, .height = 48, .steps = 3, .guidance = guidance, .seed = 11,
                            .max_sequence_length = 64, .progress = false},
                           prompts, 2);
  qs[3].width = 32, qs[3].height = 32;
  return qs;
}

// Every rank's results of generate(rank, qs, o) on layout L (thread ranks).
template <class L>
std::vector<std::vector<Flux2Result>> batch(const fs::path& dir, std::span<const Flux2Request> qs,
                                            Flux2BatchOptions o = {.progress = false}) {
  std::vector<std::vector<Flux2Result>> out(std::size_t(L::world_size));
  launch<L>({.mode = Launch::threads, .comm = {.timeout = std::chrono::milliseconds(30000)}}, [&](auto& rank) {
    const auto pipe = Flux2Pipeline<L>::load(rank, dir);
    out[std::size_t(rank.index)] = pipe.generate(rank, qs, o);
  });
  return out;
}

// Each request made alone, serially.
std::vector<Flux2Result> singles(const fs::path& dir, std::span<const Flux2Request> qs) {
  std::vector<Flux2Result> out;
  launch<Layout<OnCpu>>({.mode = Launch::threads}, [&](auto& rank) {
    const auto pipe = Flux2Pipeline<Layout<OnCpu>>::load(rank, dir);
    for (auto& q : qs) out.push_back(pipe.generate(rank, q));
  });
  return out;
}

void check_equal(const std::vector<Flux2Result>& got, const std::vector<Flux2Result>& want, double tol) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    CHECK(max_abs(got[i].image, want[i].image) <= tol);
    CHECK(max_abs(got[i].latents, want[i].latents) <= tol);
    CHECK(got[i].prompt == want[i].prompt);
  }
}
}  // namespace

TEST_CASE("dp_assign: longest first to the least loaded group, the same answer everywhere") {
  const double costs[] = {2, 4, 3, 3, 2};
  const auto owner = dp_assign(costs, 2);
  // 4 → group 0; 3 → 1; 3 → 1 (3 < 4); 2 → 0 (4 < 6); 2 → 0 (tie 6 = 6: the lower index)
  CHECK(owner == std::vector<int>{0, 0, 1, 1, 0});
  CHECK(dp_loads(costs, owner, 2) == std::vector<double>{8, 6});
  const double equal[] = {1, 1, 1};
  CHECK(dp_assign(equal, 2) == std::vector<int>{0, 1, 0});  // equal costs: round robin, uneven counts 2 + 1
  CHECK(dp_assign(equal, 1) == std::vector<int>{0, 0, 0});
  CHECK_THROWS_WITH_AS(dp_assign(equal, 0), doctest::Contains("0 groups"), Error);
}

TEST_CASE("flux2_requests: prompts x images in diffusers' order, a seed per image; bad counts are clear errors") {
  const std::string prompts[] = {"a", "b"};
  const auto qs = flux2_requests({.seed = 5}, prompts, 3);
  REQUIRE(qs.size() == 6);
  for (std::size_t i = 0; i < 6; ++i) {
    CHECK(qs[i].prompt == prompts[i / 3]);
    CHECK(qs[i].seed == 5 + i);
  }
  const std::uint64_t seeds[] = {9, 8, 7, 6};
  const auto given = flux2_requests({}, prompts, 2, seeds);
  CHECK(given[2].seed == 7);
  CHECK(given[2].prompt == "b");
  CHECK_THROWS_WITH_AS(flux2_requests({}, prompts, 0), doctest::Contains("num_images_per_prompt 0 must be >= 1"), Error);
  CHECK_THROWS_WITH_AS(flux2_requests({}, prompts, -2), doctest::Contains("must be >= 1"), Error);
  CHECK_THROWS_WITH_AS(flux2_requests({}, std::span<const std::string>{}, 1), doctest::Contains("no prompt"), Error);
  CHECK_THROWS_WITH_AS(flux2_requests({}, prompts, 3, seeds), doctest::Contains("4 seeds for 6 images"), Error);
}

TEST_CASE("Flux2Pipeline klein: a batch of 4 (2 prompts x 2 images, one of another size) equals 4 single runs") {
  const auto qs = four();
  const auto want = singles(klein, qs);
  const auto got = batch<Layout<OnCpu>>(klein, qs);
  check_equal(got[0], want, 1e-5);
  // the three 64x48 images shared one forward, the 32x32 one ran alone
  CHECK(got[0][0].batch == 3);
  CHECK(got[0][2].batch == 3);
  CHECK(got[0][3].batch == 1);
  CHECK(got[0][3].image.shape() == Shape({1, 3, 32, 32}));
  // different seeds and prompts give different images: the batch did not repeat one
  CHECK(max_abs(got[0][0].image, got[0][1].image) > 1e-3);
  CHECK(max_abs(got[0][0].image, got[0][2].image) > 1e-3);
  MESSAGE("batch vs single, max |diff| image 0: ", max_abs(got[0][0].image, want[0].image));
}

TEST_CASE("Flux2Pipeline dev: a batch with embedded guidance equals single runs") {
  auto qs = four(4.0f);
  qs.resize(3);
  const auto want = singles(dev, qs);
  const auto got = batch<Layout<OnCpu>>(dev, qs);
  check_equal(got[0], want, 1e-5);
  CHECK(got[0][0].batch == 3);
}

TEST_CASE_TEMPLATE("Flux2Pipeline klein on DP<2> layouts: every image made once, in request order on every rank, equal "
                   "to serial", L, Layout<DP<2>, OnCpu>, Layout<DP<2>, TP<2>, OnCpu>, Layout<DP<2>, CFG<2>, OnCpu>) {
  const auto qs = four();
  const auto want = batch<Layout<OnCpu>>(klein, qs)[0];
  const auto got = batch<L>(klein, qs);
  for (std::size_t r = 0; r < got.size(); ++r) {
    CAPTURE(r);
    check_equal(got[r], want, 1e-5);
  }
  // both DP groups worked, each image came from exactly one of them
  std::vector<int> groups;
  for (auto& x : got[0]) groups.push_back(x.dp_group);
  CHECK(std::count(groups.begin(), groups.end(), 0) >= 1);
  CHECK(std::count(groups.begin(), groups.end(), 1) >= 1);
  Flux2Pipeline<L> p;
  p.variant = Flux2Variant::klein;
  p.transformer.cfg.in_channels = 128;
  const auto plan = p.plan_batch(qs);
  std::vector<int> seen(qs.size(), 0);
  for (std::size_t f = 0; f < plan.forwards.size(); ++f)
    for (auto i : plan.forwards[f]) {
      ++seen[i];
      CHECK(plan.forward_group[f] == plan.owner[i]);
      CHECK(groups[i] == plan.owner[i]);
    }
  CHECK(std::all_of(seen.begin(), seen.end(), [](int n) { return n == 1; }));
}

TEST_CASE("Flux2Pipeline klein on DP<2>: uneven counts (3 images), and results on the root only") {
  auto qs = four();
  qs.resize(3);
  const auto want = batch<Layout<OnCpu>>(klein, qs)[0];
  using L = Layout<DP<2>, TP<2>, OnCpu>;
  const auto all = batch<L>(klein, qs);
  for (auto& r : all) check_equal(r, want, 1e-5);
  const auto root = batch<L>(klein, qs, {.all_ranks = false, .progress = false});
  check_equal(root[0], want, 1e-5);
  for (std::size_t r = 1; r < root.size(); ++r) CHECK(root[r].empty());
}

TEST_CASE("Flux2Pipeline: max_batch and the memory budget split a batch; what cannot fit is refused before any work") {
  const auto qs = four();
  using L = Layout<OnCpu>;
  std::optional<Flux2Pipeline<L>> pipe;
  launch<L>({.mode = Launch::threads}, [&](auto& rank) { pipe = Flux2Pipeline<L>::load(rank, klein); });
  const auto whole = pipe->plan_batch(qs);
  REQUIRE(whole.forwards.size() == 2);
  CHECK(whole.forwards[0] == std::vector<std::size_t>{0, 1, 2});
  CHECK(whole.forwards[1] == std::vector<std::size_t>{3});
  const auto two = pipe->plan_batch(qs, {.max_batch = 2});
  CHECK(two.forwards.size() == 3);
  CHECK(two.forwards[0] == std::vector<std::size_t>{0, 1});
  const std::int64_t one = whole.activation_bytes[0];
  CHECK(one > 0);
  const auto budget = pipe->plan_batch(qs, {.memory_budget = 2 * one});
  CHECK(budget.forwards[0].size() == 2);
  CHECK_THROWS_WITH_AS(pipe->plan_batch(qs, {.memory_budget = one / 2}),
                       doctest::Contains("more than the memory budget"), Error);
  CHECK_THROWS_WITH_AS(pipe->plan_batch(std::span<const Flux2Request>{}), doctest::Contains("an empty batch"), Error);
  CHECK_THROWS_WITH_AS(pipe->plan_batch(qs, {.max_batch = 0}), doctest::Contains("max_batch 0 must be >= 1"), Error);
  auto bad = qs;
  bad[1].steps = 0;
  CHECK_THROWS_WITH_AS(pipe->plan_batch(bad), doctest::Contains("request 1: steps (0) must be >= 1"), Error);
  bad = qs;
  bad[2].width = 40;
  CHECK_THROWS_WITH_AS(pipe->plan_batch(bad), doctest::Contains("request 2: height and width (48x40)"), Error);
}
