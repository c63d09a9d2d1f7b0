// hunyuan_image3 — HunyuanImage-3.0 text-to-image from the official model folder (config.json,
// model*.safetensors, tokenizer.json), with the parallel layout fixed at compile time
// (PDIFF_HUNYUAN_LAYOUT; one binary per layout: hunyuan_image3_tp2_ep2, hunyuan_image3_ulysses2_ep2;
// add "hunyuan_image3|OnCpu" to examples/CMakeLists.txt for a serial one). Ranks are threads on the
// CPU (one process per rank under mpirun). Prints a progress bar over the denoising steps and a
// summary: time per phase and each rank's peak memory.
//   hunyuan_image3_tp2_ep2 --model DIR --prompt "a red fox in the snow" -o fox.png [--width W --height H]
//                  [--steps N] [--guidance G] [--shift S] [--seed S] [--vae whole|patch] [--no-kv-cache]
//   (--vae patch: the VAE decode split into haloed blocks over the layout's VaePatch ranks, e.g.
//    hunyuan_image3_tp2_ep2_vae2; --no-kv-cache recomputes the prompt every step instead of caching its K/V)
//   hunyuan_image3_tp2_ep2 --plan     per-rank parameter memory of the released model (80B, 64 experts top-8)
//                             for the common layouts, bf16
// The size is snapped to the nearest of the model's 33 aspect ratios (as the reference does). Every
// argument is checked before anything is loaded.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "cli_common.hpp"
#include "pdiff/io/image.hpp"
#include "pdiff/models/hunyuan_image3/pipeline.hpp"
#include "pdiff/models/hunyuan_image3/plan.hpp"
#include "pdiff/parallel/launch.hpp"

using namespace pdiff;

#ifndef PDIFF_HUNYUAN_LAYOUT
#define PDIFF_HUNYUAN_LAYOUT OnCpu
#endif
using L = Layout<PDIFF_HUNYUAN_LAYOUT>;

namespace {
void print_plan() {
  const auto c = hunyuan_image3_released();
  std::printf("HunyuanImage-3.0 (released: %lld layers, %lld experts top-%lld, hidden %lld), bf16 parameters per rank:\n",
              (long long)c.num_hidden_layers, (long long)c.num_experts, (long long)c.moe_topk[0], (long long)c.hidden_size);
  const double total = double(hunyuan_image3_param_plan(c, 1, 1).sharded + hunyuan_image3_param_plan(c, 1, 1).replicated);
  std::printf("  %.1fB parameters in all; 'fits': weights + activations within 90%% of an 80 GiB GPU\n", total / 1e9);
  struct Row {
    const char* layout;
    int tp, ep, seq, cfg, gpus;
  };
  // activations of one denoising step at 1024x1024 (64x64 latent tokens) with a 512-token prompt, guided
  const std::int64_t prompt = 512 + 4, sequence = prompt + 64 * 64 + 2;
  const double gib = 1024.0 * 1024.0 * 1024.0;
  std::printf("  %-24s %14s %22s\n", "layout", "weights/rank", "+ activations (1024^2)");
  for (auto r : {Row{"serial", 1, 1, 1, 1, 1}, Row{"TP<2> x EP<2>", 2, 2, 1, 1, 2}, Row{"TP<4> x EP<4>", 4, 4, 1, 1, 4},
                 Row{"TP<8> x EP<8>", 8, 8, 1, 1, 8}, Row{"TP<4> x CFG<2>, EP<8>", 4, 8, 1, 2, 8},
                 Row{"Ulysses<2> x EP<2>", 1, 2, 2, 1, 2}}) {
    const double g = hunyuan_image3_param_plan(c, r.tp, r.ep).gib(2);
    const double a = double(hunyuan_image3_activation_bytes(c, sequence, prompt, r.tp, r.ep, r.seq, 2 / r.cfg, 2)) / gib;
    std::printf("  %-24s %10.1f GiB %14.2f GiB  %s on %d x 80 GiB\n", r.layout, g, a,
                g + a < 80.0 * 0.9 ? "fits" : "does not fit", r.gpus);
  }
  std::printf("  (this binary: tp %d, ep %d: %.1f GiB per rank)\n", L::tp, L::ep,
              hunyuan_image3_param_plan(c, L::tp, L::ep).gib(2));
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"hunyuan_image3: HunyuanImage-3.0 text-to-image on a compile-time parallel layout"};
  std::string model, prompt, out = "hunyuan_image3.png", vae_mode = "whole";
  bool no_kv_cache = false;
  std::int64_t width = 1024, height = 1024;
  int steps = 50;
  float guidance = 5.0f, shift = 3.0f;
  std::uint64_t seed = 0;
  bool plan = false;
  app.add_option("--model", model, "HunyuanImage-3.0 folder (config.json, model*.safetensors, tokenizer.json)");
  app.add_option("--prompt", prompt, "text prompt");
  app.add_option("--width", width, "image width (snapped to the nearest supported aspect ratio)");
  app.add_option("--height", height, "image height");
  app.add_option("--steps", steps, "denoising steps (1..10000)");
  app.add_option("--guidance", guidance, "CFG scale (> 1: CFG with the <cfg> branch; the CFG<2> binaries need it)");
  app.add_option("--shift", shift, "flow shift of the sigma schedule");
  app.add_option("--seed", seed, "noise seed, >= 0 (Philox: the same image on every layout)")
      ->check(cli::non_negative);
  app.add_option("-o,--output", out, "output PNG");
  app.add_option("--vae", vae_mode, "VAE decode: whole, or patch (haloed blocks over the VaePatch ranks)")
      ->check(CLI::IsMember({"whole", "patch"}));
  app.add_flag("--no-kv-cache", no_kv_cache, "recompute the prompt at every step (default: its K/V cached after step 1)");
  app.add_flag("--plan", plan, "print per-rank parameter memory of the released model and exit");
  CLI11_PARSE(app, argc, argv);

  try {
    if (plan) {
      print_plan();
      return 0;
    }
    PDIFF_CHECK(!model.empty(), "--model DIR is required (a HunyuanImage-3.0 folder)");
    PDIFF_CHECK(!prompt.empty(), "--prompt TEXT is required");
    PDIFF_CHECK(width >= 16 && width <= 8192 && height >= 16 && height <= 8192, "--width ", width, " / --height ", height,
                " must be between 16 and 8192");
    PDIFF_CHECK(steps >= 1 && steps <= 10000, "--steps ", steps, " must be between 1 and 10000");
    PDIFF_CHECK(shift > 0.0f, "--shift ", shift, " must be positive");
    PDIFF_CHECK(L::cfg == 1 || guidance > 1.0f, "this binary runs CFG<", L::cfg, ">: --guidance must be > 1 (got ",
                guidance, ")");
    cli::check_output(out);
    const HunyuanRequest q{.prompt = prompt, .width = width, .height = height, .steps = steps, .guidance = guidance,
                           .flow_shift = shift, .seed = seed,
                           .vae = vae_mode == "patch" ? VaeRunOptions::patch() : VaeRunOptions::whole(),
                           .kv_cache = !no_kv_cache};
    const auto t0 = std::chrono::steady_clock::now();
    const auto m = cli::run_measured<L, HunyuanResult>(
        [&](auto& rank) { return HunyuanImage3Pipeline<L>::load(rank, model); },
        [&](const auto& pipe, auto& rank) { return pipe.generate(rank, q); });
    if (!m.has_result) return 0;  // not the root process (mpirun)
    const auto& result = m.result;
    Tensor<float> signed_img(result.image.shape());
    for (std::int64_t i = 0; i < signed_img.numel(); ++i) signed_img(i) = result.image(i) * 2.0f - 1.0f;
    write_png(out, tensor_to_image(signed_img));
    const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("hunyuan_image3: %lldx%lld, %d steps, layout %s, %d rank%s\n", (long long)result.width,
                (long long)result.height, steps, layout_text<L>().c_str(), L::world_size, L::world_size > 1 ? "s" : "");
    std::printf("  load %.2f s | denoise %.2f s (%.3f s/step) | decode %.2f s | total %.2f s\n", m.load_s,
                result.denoise_s, result.denoise_s / steps, result.decode_s, total);
    for (int r = 0; r < L::world_size; ++r)
      std::printf("  rank %d: peak memory %.1f MiB (%.1f MiB while loading)\n", r, m.run_peak[std::size_t(r)] / 1048576.0,
                  m.load_peak[std::size_t(r)] / 1048576.0);
    std::printf("wrote %s\n", out.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hunyuan_image3: %s\n", e.what());
    return 2;
  }
}
