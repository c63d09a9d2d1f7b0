// BAGEL in two stages across processes: `mpirun -np 4` — processes 0, 1 prefill on TP<2> (stage 0),
// processes 2, 3 denoise on TP<2> (stage 1); the KV caches travel by MpiComm send/recv. Stage 1's
// images equal the single-process TP<2> run's exactly (computed by stage 1's root on thread ranks).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "../layers/harness.hpp"
#include "pdiff/stage/bagel_stages.hpp"

using namespace pdiff;
using namespace pdiff::test;
namespace fs = std::filesystem;

TEST_CASE("BAGEL two stages over 4 MPI processes equal one process") {
  const fs::path dir = fs::path(PDIFF_SOURCE_DIR) / "tests/golden/bagel_tiny";
  auto g = SafeTensors::open((dir / "goldens.safetensors").string());
  const auto img = read_image((dir / "edit_input.png").string());
  const auto noise_a = g.read("t2iA.init_noise"), noise_e = g.read("edit.init_noise"), eps = g.read("edit.encode_eps");
  std::vector<StageRequest> rs(2);
  rs[0].id = "t2i", rs[0].request.prompt = "a red circle on a blue background", rs[0].request.width = 64;
  rs[0].request.height = 64, rs[0].request.noise = &noise_a;
  rs[1].id = "edit", rs[1].request.prompt = "make it blue", rs[1].request.image = &img, rs[1].request.noise = &noise_e;
  rs[1].request.encode_noise = &eps, rs[1].request.guidance.img_scale = 2.0f;
  rs[1].request.vae_transform = {64, 32, 16}, rs[1].request.vit_transform = {56, 28, 14};
  for (auto& r : rs) r.request.num_timesteps = 4, r.request.progress = false;
  using L0 = Layout<TP<2>, OnCpu>;
  using L1 = Layout<TP<2>, OnCpu>;
  MpiComm world = MpiComm::world();
  REQUIRE(world.size() == 4);
  const auto rep = bagel_two_stage_rank<L0, L1>(world, dir, rs);
  if (world.rank() < 2) {
    CHECK(rep.results.empty());
    return;
  }
  CHECK(rep.failures.empty());
  REQUIRE(rep.results.size() == 2);
  CHECK(rep.timing.at("edit").kv_bytes == (42 + 36 + 6) * 2 * 2 * 2 * 16 * sizeof(float));
  for (auto& r : rs) {
    const auto want = run_ranks<L1>([&](auto& rank) {
      return BagelPipeline<L1>::load(rank, dir).generate(rank, r.request).latent;
    })[0];
    CHECK_MESSAGE(max_abs(rep.results.at(r.id).latent, want) == 0.0, r.id);
  }
}

int main(int argc, char** argv) {
  (void)MpiComm::world();
  doctest::Context ctx(argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank != 0 && rank != 2) ctx.setOption("minimal", true);  // 2: stage 1's root, where the results are
  return ctx.run();
}
