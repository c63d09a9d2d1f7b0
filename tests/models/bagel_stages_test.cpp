// BAGEL in two stages (include/pdiff/stage): stage 0 prefills the contexts on its own ranks, the KV
// caches travel with their metadata keyed by request id, stage 1 denoises on a different layout. The
// two-stage run equals the single-process run exactly (same TP degree) or within 1e-5 (TP degrees
// differ: the caches are re-sharded by heads); four requests of different prompts, sizes and kinds,
// prefilled in another order than submitted, each get their own image; a stage-0 error and a stage-1
// rank failure are reported with the request's id while the others complete.
#include <doctest/doctest.h>

#include "../layers/harness.hpp"
#include "pdiff/stage/bagel_stages.hpp"

using namespace pdiff;
using namespace pdiff::test;
namespace fs = std::filesystem;

namespace {
const fs::path dir = fs::path(PDIFF_SOURCE_DIR) / "tests/golden/bagel_tiny";

struct Inputs {
  SafeTensors g = SafeTensors::open((dir / "goldens.safetensors").string());
  Image img = read_image((dir / "edit_input.png").string());
  Tensor<float> noise_a = g.read("t2iA.init_noise"), noise_b = g.read("t2iB.init_noise"),
                noise_e = g.read("edit.init_noise"), eps = g.read("edit.encode_eps");

  std::vector<StageRequest> requests() const {
    std::vector<StageRequest> r(4);
    r[0] = {"a", {}};
    r[0].request.prompt = "a red circle on a blue background", r[0].request.width = 64, r[0].request.height = 64;
    r[0].request.noise = &noise_a;
    r[1] = {"b", {}};
    r[1].request.prompt = "a yellow star above green hills", r[1].request.width = 96, r[1].request.height = 64;
    r[1].request.noise = &noise_b;
    r[1].request.guidance.renorm = BagelRenorm::channel;
    r[2] = {"edit", {}};
    r[2].request.prompt = "make it blue", r[2].request.image = &img, r[2].request.noise = &noise_e;
    r[2].request.encode_noise = &eps, r[2].request.guidance.img_scale = 2.0f;
    r[2].request.vae_transform = {64, 32, 16}, r[2].request.vit_transform = {56, 28, 14};
    r[3] = {"tall", {}};
    r[3].request.prompt = "a green square", r[3].request.width = 32, r[3].request.height = 80, r[3].request.seed = 7;
    for (auto& q : r) q.request.num_timesteps = 4, q.request.progress = false;
    return r;
  }
};

// Each request alone on layout L in one process: its final latents.
template <class L>
std::map<std::string, Tensor<float>> alone(const std::vector<StageRequest>& rs) {
  std::map<std::string, Tensor<float>> out;
  for (auto& r : rs) out[r.id] = run_ranks<L>([&](auto& rank) {
                                   return BagelPipeline<L>::load(rank, dir).generate(rank, r.request).latent;
                                 })[0];
  return out;
}
}  // namespace

TEST_CASE("BAGEL two stages: TP<2> -> TP<2> x CFG<2> equals one process exactly; four requests in another order") {
  const Inputs in;
  const auto rs = in.requests();
  using L0 = Layout<TP<2>, OnCpu>;
  using L1 = Layout<TP<2>, CFG<2>, OnCpu>;
  const auto want = alone<L1>(rs);
  const auto rep = run_bagel_two_stage<L0, L1>(dir, rs, {.stage0_order = {3, 1, 0, 2}});
  CHECK(rep.failures.empty());
  REQUIRE(rep.results.size() == 4);
  CHECK(rep.completion_order == std::vector<std::string>{"tall", "b", "a", "edit"});  // not the submission order
  for (auto& r : rs) {
    CHECK_MESSAGE(max_abs(rep.results.at(r.id).latent, want.at(r.id)) == 0.0, r.id);
    CHECK(rep.results.at(r.id).image.size(2) == (r.id == "edit" ? 64 : r.request.height));
  }
  // the bytes moved: every context's layers x (K and V) x tokens x kv heads x head dim x fp32
  const std::size_t per_token = 2 /*layers*/ * 2 * 2 /*kv heads*/ * 16 * sizeof(float);
  CHECK(rep.timing.at("a").kv_bytes == 19 * per_token);  // gen = the 19 prompt tokens; cfg_text is empty
  CHECK(rep.timing.at("edit").kv_bytes == (42 + 36 + 6) * per_token);  // gen, cfg_text, cfg_img
  for (auto& [id, t] : rep.timing) CHECK(t.denoise_s > 0);
  CHECK(rep.stage1_launches == 1);
}

TEST_CASE("BAGEL two stages: different TP degrees re-shard the caches by heads") {
  const Inputs in;
  auto rs = in.requests();
  rs.erase(rs.begin() + 3);
  const auto serial = alone<Layout<OnCpu>>(rs);
  const auto rep = run_bagel_two_stage<Layout<OnCpu>, Layout<TP<2>, CFG<3>, OnCpu>>(dir, rs);
  CHECK(rep.failures.empty());
  for (auto& r : rs) CHECK_MESSAGE(max_abs(rep.results.at(r.id).latent, serial.at(r.id)) < 1e-5, r.id);
  // and the other way: TP<2> prefill, serial denoise
  const auto back = run_bagel_two_stage<Layout<TP<2>, OnCpu>, Layout<OnCpu>>(dir, rs);
  for (auto& r : rs) CHECK_MESSAGE(max_abs(back.results.at(r.id).latent, serial.at(r.id)) < 1e-5, r.id);
}

TEST_CASE("BAGEL two stages: failed requests are reported by id and do not stall the others") {
  const Inputs in;
  auto rs = in.requests();
  rs[0].request.width = 72;  // stage 0 refuses it
  rs[1].request.on_step = [](int rank, int step, int) {
    if (rank == 1 && step == 2) throw Error("injected failure");
  };
  const auto t0 = std::chrono::steady_clock::now();
  const auto rep = run_bagel_two_stage<Layout<TP<2>, OnCpu>, Layout<TP<2>, OnCpu>>(
      dir, rs, {.comm = {.timeout = std::chrono::milliseconds(5000)}});
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20));
  REQUIRE(rep.failures.count("a"));
  CHECK(rep.failures.at("a").find("stage 0: BAGEL: size 72x64 must be positive multiples of 16") != std::string::npos);
  REQUIRE(rep.failures.count("b"));
  CHECK(rep.failures.at("b").find("request 'b' failed on stage 1 rank 1: injected failure") != std::string::npos);
  CHECK(rep.results.count("edit"));
  CHECK(rep.results.count("tall"));
  CHECK(rep.failures.size() == 2);
  CHECK(rep.stage1_launches == 2);  // a fresh stage-1 group after the failure
  CHECK_THROWS_WITH_AS((run_bagel_two_stage<Layout<OnCpu>, Layout<OnCpu>>(dir, {rs[2], rs[2]})),
                       doctest::Contains("request id 'edit' given twice"), Error);
}

TEST_CASE("BAGEL two stages over one world (threads; the MPI form's code): messages by send/recv in request order") {
  const Inputs in;
  const auto rs = in.requests();
  using L0 = Layout<TP<2>, OnCpu>;
  using L1 = Layout<TP<2>, CFG<2>, OnCpu>;
  const auto want = alone<L1>(rs);
  const auto rep = run_bagel_two_stage_world<L0, L1>(dir, rs, {.stage0_order = {3, 1, 0, 2}});
  CHECK(rep.failures.empty());
  CHECK(rep.completion_order == std::vector<std::string>{"tall", "b", "a", "edit"});
  for (auto& r : rs) CHECK_MESSAGE(max_abs(rep.results.at(r.id).latent, want.at(r.id)) == 0.0, r.id);
  CHECK(rep.timing.at("edit").kv_bytes == (42 + 36 + 6) * 2 * 2 * 2 * 16 * sizeof(float));
  // a message survives its bytes: serialise, parse, the same contexts
  BagelKvMessage m;
  m.request_id = "x", m.width = 32, m.height = 48, m.img_is_gen = false, m.prefill_s = 0.5;
  m.contexts[1].length = 3, m.contexts[1].rope = 7;
  m.contexts[1].k.push_back(in.noise_a.view({16, 4, 16})), m.contexts[1].v.push_back(in.noise_b.view({24, 4, 16}));
  std::string id, why;
  const auto back = deserialize(serialize(m), id, why);
  REQUIRE(back);
  CHECK(id == "x");
  CHECK((back->width == 32 && back->height == 48 && !back->img_is_gen && back->contexts[1].rope == 7));
  CHECK(max_abs(back->contexts[1].v[0], in.noise_b.view({24, 4, 16})) == 0.0);
  auto bytes = serialize(m);
  bytes.pop_back();
  CHECK_THROWS_WITH_AS(deserialize(bytes, id, why), doctest::Contains("truncated message"), Error);
  CHECK_FALSE(deserialize(serialize_failure("y", "no"), id, why));
  CHECK((id == "y" && why == "no"));
}

TEST_CASE("BAGEL two stages over one world: a stage-1 rank failure ends the run with an error naming the request") {
  const Inputs in;
  auto rs = in.requests();
  rs[2].request.on_step = [](int rank, int step, int) {
    if (rank == 1 && step == 1) throw Error("injected failure");
  };
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH_AS((run_bagel_two_stage_world<Layout<TP<2>, OnCpu>, Layout<TP<2>, OnCpu>>(
                           dir, rs, {.comm = {.timeout = std::chrono::milliseconds(5000)}})),
                       doctest::Contains("request 'edit' failed on stage 1 rank 1: injected failure"), Error);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20));
  CHECK_THROWS_WITH_AS((run_bagel_two_stage_world<Layout<TP<2>, OnCpu>, Layout<OnCpu>>(dir, {rs[0], rs[0]})),
                       doctest::Contains("request id 'a' given twice"), Error);
}
