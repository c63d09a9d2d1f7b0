// MoE<C> with EP<4> under `mpirun -np 4` (one rank per process, MpiComm): dispatch/combine across
// processes equals the serial layer run in each process, for an EP group over TP x CFG and over
// Ulysses x Ring, balanced and skewed routing (tests/golden/hunyuan_moe_tiny).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "harness.hpp"
#include "pdiff/io/checkpoint.hpp"
#include "pdiff/models/hunyuan_image3/config.hpp"

using namespace pdiff;
using namespace pdiff::test;
namespace fs = std::filesystem;

namespace {
const fs::path dir = fs::path(PDIFF_SOURCE_DIR) / "tests/golden/hunyuan_moe_tiny";

// This process's result on L and the serial result it must equal (its branch, its chunk).
template <class L>
void check_layout() {
  const auto ck = Checkpoint::open(dir);
  const auto cfg = HunyuanImage3Config::load_moe(dir).moe(0);
  const auto g = SafeTensors::open((dir / "goldens.safetensors").string());
  for (std::string c : {"", "_skew"}) {
    CAPTURE(c);
    const auto x = g.read("x" + c);
    bool ran = false;
    launch<L>({}, [&](auto& rank) {
      CHECK(std::is_same_v<typename std::decay_t<decltype(rank)>::comm, MpiComm>);
      const auto cd = rank.coords;
      const Tensor<float> branch = L::cfg == 1 ? x : narrow(x, 0, cd.cfg, 1);
      const SpChunk ch = sp_chunk<L>(rank, x.size(1));
      const auto y = MoE<Ctx<L>>::load(ck, cfg, rank, "model.layers.0.mlp.").forward(rank, narrow(branch, 1, ch.begin, ch.size()));
      auto self = make_rank<Layout<OnCpu>>(SelfComm{});
      const auto serial = MoE<Ctx<Layout<OnCpu>>>::load(ck, cfg, self, "model.layers.0.mlp.").forward(self, branch);
      CHECK(rel_err(y, narrow(serial, 1, ch.begin, ch.size())) < 1e-5);
      ran = true;
    });
    CHECK(ran);
  }
}
}  // namespace

TEST_CASE("EP<4> over TP<2> x CFG<2> across processes equals serial") { check_layout<Layout<TP<2>, CFG<2>, EP<4>, OnCpu>>(); }
TEST_CASE("EP<4> over Ulysses<2> x Ring<2> across processes equals serial") {
  check_layout<Layout<Ulysses<2>, Ring<2>, EP<4>, OnCpu>>();
}

int main(int argc, char** argv) {
  (void)MpiComm::world();
  doctest::Context ctx(argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank != 0) ctx.setOption("minimal", true);
  return ctx.run();
}
