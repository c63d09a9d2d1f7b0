// The FLUX.2 memory plan: at TP<1> it counts exactly the elements of the reference checkpoints
// (dev and klein tiny models), TP<k> shards hold about 1/k, and FLUX.2-dev (transformer + Mistral
// encoder, bf16) fits the seed system's 26.97 GiB per rank at TP<4>.
#include <doctest/doctest.h>

#include <filesystem>

#include "pdiff/io/checkpoint.hpp"
#include "pdiff/models/flux2/plan.hpp"

using namespace pdiff;
namespace fs = std::filesystem;

TEST_CASE("flux2_param_plan at TP<1> equals the checkpoint's element count") {
  for (const char* v : {"dev", "klein"}) {
    const auto dir = fs::path(PDIFF_SOURCE_DIR) / "tests/golden/flux2_tiny" / v / "transformer";
    auto ck = Checkpoint::open(dir);
    std::int64_t n = 0;
    for (auto& name : ck.names()) {
      std::int64_t k = 1;
      for (auto d : ck.shape(name)) k *= d;
      n += k;
    }
    CAPTURE(v);
    CHECK(flux2_param_plan(Flux2Config::load(dir), 1).elements() == n);
  }
}

TEST_CASE("FLUX.2-dev per-rank parameters in bf16: TP<4> fits 27 GiB") {
  const double gib = 1024.0 * 1024.0 * 1024.0;
  double prev = 1e30;
  for (int tp : {1, 2, 4, 8}) {
    const double t = double(flux2_param_plan(flux2_dev(), tp).bytes(2)) / gib;
    const double m = double(mistral_param_plan(mistral_small_3_1_24b(), tp).bytes(2)) / gib;
    MESSAGE("TP<", tp, ">: transformer ", t, " GiB + Mistral encoder ", m, " GiB = ", t + m, " GiB per rank");
    CHECK(t + m < prev);
    prev = t + m;
    if (tp == 1) CHECK(t == doctest::Approx(60.0).epsilon(0.01));  // 32.2B parameters
    if (tp == 4) CHECK(t + m <= 27.0);
  }
  // Any degree the shapes divide by is answered (the layers' shard arithmetic at a run-time degree):
  // FLUX.2-dev's 48 heads, 6144 and 18432 split 3 ways exactly; 5 ways they do not.
  const auto p1 = flux2_param_plan(flux2_dev(), 1), p3 = flux2_param_plan(flux2_dev(), 3);
  CHECK(p3.sharded * 3 == p1.sharded);
  CHECK(p3.replicated == p1.replicated);
  CHECK_THROWS_WITH_AS(flux2_param_plan(flux2_dev(), 5),
                       doctest::Contains("num_attention_heads (48) must be divisible by tp (5)"), Error);
  CHECK_THROWS_WITH_AS(flux2_param_plan(flux2_dev(), 0), doctest::Contains("divisible by tp (0)"), Error);
}
