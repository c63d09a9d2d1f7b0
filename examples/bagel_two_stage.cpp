// bagel_two_stage — BAGEL-7B-MoT served in two stages (include/pdiff/stage/bagel_stages.hpp): stage 0
// prefills each request's contexts into KV caches on its own ranks (PDIFF_BAGEL_STAGE0, default TP<2>),
// the caches travel with their metadata keyed by request id, stage 1 denoises and decodes on other ranks
// (PDIFF_BAGEL_STAGE1, default TP<2>). Requests overlap: stage 0 prefills the next while stage 1
// denoises. Each request's image is written to PREFIX_<i>.png; a failed request is reported by id.
// Under mpirun (-np W0 + W1) the stages are processes: ranks [0, W0) prefill, the others denoise, and the
// caches travel by MPI send/recv; stage 1's root writes the images.
//   bagel_two_stage --model DIR --prompt "a red fox" --prompt "a blue bird" [--image in.png] -o out
//                   [--width W --height H --steps N --cfg-text S --cfg-img S --seed S]
//   (--image: every prompt edits that image; the seed of request i is seed + i)
#include <CLI/CLI.hpp>

#include <cstdio>

#include "cli_common.hpp"
#include "pdiff/io/image.hpp"
#include "pdiff/stage/bagel_stages.hpp"

using namespace pdiff;

#ifndef PDIFF_BAGEL_STAGE0
#define PDIFF_BAGEL_STAGE0 TP<2>, OnCpu
#endif
#ifndef PDIFF_BAGEL_STAGE1
#define PDIFF_BAGEL_STAGE1 TP<2>, OnCpu
#endif
using L0 = Layout<PDIFF_BAGEL_STAGE0>;
using L1 = Layout<PDIFF_BAGEL_STAGE1>;

int main(int argc, char** argv) {
  CLI::App app{"bagel_two_stage: BAGEL with the context prefill and the denoising on separate rank groups"};
  std::string model, out = "bagel", image;
  std::vector<std::string> prompts;
  std::int64_t width = 1024, height = 1024;
  int steps = 50;
  float cfg_text = 4.0f, cfg_img = -1.0f;
  std::uint64_t seed = 0;
  app.add_option("--model", model, "BAGEL folder (llm_config.json, ema.safetensors, ae.safetensors, tokenizer.json)");
  app.add_option("--prompt", prompts, "a prompt; give several for several requests")->take_all()->allow_extra_args(false);
  app.add_option("--image", image, "input image every prompt edits");
  app.add_option("--width", width, "image width, a multiple of 16 (text-to-image)");
  app.add_option("--height", height, "image height, a multiple of 16 (text-to-image)");
  app.add_option("--steps", steps, "num_timesteps as the reference (2..10000)");
  app.add_option("--cfg-text", cfg_text, "text guidance scale");
  app.add_option("--cfg-img", cfg_img, "image guidance scale (default 1.5, editing 2.0)");
  app.add_option("--seed", seed, "noise seed of the first request, >= 0")->check(cli::non_negative);
  app.add_option("-o,--output", out, "output prefix: PREFIX_<i>.png per request");
  CLI11_PARSE(app, argc, argv);
  try {
    PDIFF_CHECK(!model.empty(), "--model DIR is required (a BAGEL-7B-MoT folder)");
    PDIFF_CHECK(!prompts.empty(), "--prompt TEXT is required (once per request)");
    PDIFF_CHECK(steps >= 2 && steps <= 10000, "--steps ", steps, " must be between 2 and 10000");
    for (std::size_t i = 0; i < prompts.size(); ++i) cli::check_output(out + "_" + std::to_string(i) + ".png");
    Image input;
    if (!image.empty()) input = read_image(image);
    if (cfg_img < 0) cfg_img = image.empty() ? 1.5f : 2.0f;
    std::vector<StageRequest> rs(prompts.size());
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      auto& q = rs[i].request;
      rs[i].id = std::to_string(i);
      q.prompt = prompts[i], q.width = width, q.height = height, q.num_timesteps = steps, q.seed = seed + i;
      q.guidance.text_scale = cfg_text, q.guidance.img_scale = cfg_img, q.progress = false;
      if (!image.empty()) q.image = &input;
    }
    TwoStageReport rep;
#if defined(PDIFF_WITH_MPI)
    if (MpiComm::launched_by_mpirun()) {
      MpiComm world = MpiComm::world({.timeout = std::chrono::minutes(30)});  // stage 0 waits while stage 1 denoises
      try {
        rep = bagel_two_stage_rank<L0, L1>(world, model, rs);
      } catch (const std::exception& e) {
        world.abort(e.what());
        throw;
      }
      if (world.rank() != L0::world_size) return 0;  // stage 1's root reports
    } else
#endif
      rep = run_bagel_two_stage<L0, L1>(model, rs);
    std::printf("bagel_two_stage: %zu requests, stage 0 tp %d (%d ranks), stage 1 tp %d x cfg %d (%d ranks), %.2f s in all\n",
                rs.size(), L0::tp, L0::world_size, L1::tp, L1::cfg, L1::world_size, rep.total_s);
    for (const auto& id : rep.completion_order) {
      const auto& r = rep.results.at(id);
      const auto& t = rep.timing.at(id);
      const std::string path = out + "_" + id + ".png";
      Tensor<float> s(r.image.shape());
      for (std::int64_t k = 0; k < s.numel(); ++k) s(k) = r.image(k) * 2.0f - 1.0f;
      write_png(path, tensor_to_image(s));
      std::printf("  request %s: %lldx%lld | prefill %.3f s | waited %.3f s | denoise+decode %.2f s | KV %.2f MiB | wrote %s\n",
                  id.c_str(), (long long)r.width, (long long)r.height, t.prefill_s, t.wait_s, t.denoise_s,
                  double(t.kv_bytes) / 1048576.0, path.c_str());
    }
    for (const auto& [id, why] : rep.failures) std::fprintf(stderr, "  request %s failed: %s\n", id.c_str(), why.c_str());
    return rep.failures.empty() ? 0 : 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bagel_two_stage: %s\n", e.what());
    return 2;
  }
}
