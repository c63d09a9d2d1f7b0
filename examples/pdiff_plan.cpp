// pdiff-plan — memory per rank, and the layout advisor.
//   pdiff-plan                       Mistral-Small-3.1-24B (FLUX.2-dev's text encoder) per TP degree, bf16
//   pdiff-plan --config DIR          the text encoder whose config.json is in DIR
//   pdiff-plan --dtype f32           bytes per parameter of another dtype
// Layout advisor (include/pdiff/models/flux2/advisor.hpp): every layout of N devices ranked by predicted
// step time, with memory per rank; the ones that cannot run say why.
//   pdiff-plan --model flux2-dev|flux2-klein-4b|flux2-klein-9b|DIR --gpus N --gpu-mem GIB [--link nvlink|pcie]
//              [--width W --height H] [--images B] [--text-tokens T] [--dtype bf16|f32]
//              [--tflops T --efficiency E --link-gbps G] [--all]
//   pdiff-plan --model ... --cpu [--cpu-weights bf16|f32] [--mem GIB]   CPU memory per rank and for all thread
//              ranks of serial, TP<2>, TP<4>: weights bf16 (a bf16 checkpoint, PDIFF_CPU_WEIGHTS=auto) or fp32,
//              activations fp32, against the machine's memory (default: MemTotal of /proc/meminfo)
// DIR is a diffusers FLUX.2 folder (transformer/ and text_encoder/ config.json; model_index.json says
// klein base → two guidance branches). Defaults: H100 SXM (989 TFLOP/s bf16 at efficiency 0.5), NVLink
// 450 GB/s (pcie: 50), 1024x1024, 1 image.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "pdiff/io/config.hpp"
#include "pdiff/models/flux2/advisor.hpp"
#include "pdiff/models/mistral/plan.hpp"

using namespace pdiff;

namespace {
Flux2ModelSpec model_from(const std::string& m) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(m)) return flux2_model_spec(m);
  PDIFF_CHECK(fs::is_regular_file(fs::path(m) / "transformer" / "config.json"), "pdiff-plan: '", m,
              "' is neither a known model (flux2-dev, flux2-klein-4b, flux2-klein-9b) nor a diffusers FLUX.2 folder "
              "(no transformer/config.json)");
  Flux2ModelSpec s;
  s.transformer = Flux2Config::load(fs::path(m) / "transformer");
  s.encoder = fs::is_regular_file(fs::path(m) / "text_encoder" / "config.json")
                  ? MistralConfig::load(fs::path(m) / "text_encoder")
                  : mistral_small_3_1_24b();
  if (fs::is_regular_file(fs::path(m) / "model_index.json")) {
    const auto index = JsonConfig::load(fs::path(m) / "model_index.json");
    s.branches = index.get<std::string>("_class_name") == "Flux2KleinPipeline" && !index.get_or<bool>("is_distilled", false)
                     ? 2 : 1;
  }
  return s;
}
}  // namespace

double machine_gib() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  double kib = 0;
  while (f >> key >> kib)
    if (key == "MemTotal:") return kib / 1024.0 / 1024.0;
  return 0;
}

// Memory of FLUX.2 on CPU thread ranks: TP 1, 2, 4 (one process: every rank's share adds up).
int print_cpu_plan(const std::string& model, const Flux2ModelSpec& s, const Flux2Workload& w, int weight_bytes,
                   double mem_gib) {
  const double gib = 1024.0 * 1024.0 * 1024.0;
  std::printf("%s on the CPU, weights %s, activations fp32, %lldx%lld, machine %.1f GiB:\n", model.c_str(),
              weight_bytes == 2 ? "bf16 (a bf16 checkpoint, PDIFF_CPU_WEIGHTS=auto)" : "fp32", (long long)w.width,
              (long long)w.height, mem_gib);
  std::printf("  %-7s %13s %10s %13s %12s %12s  %s\n", "layout", "transformer", "encoder", "activations", "per rank",
              "all ranks", "fits");
  int fitting = 0;
  for (int tp : {1, 2, 4}) {
    const double t = double(flux2_param_plan(s.transformer, tp).bytes(weight_bytes)) / gib;
    const double e = double(mistral_param_plan(s.encoder, tp).bytes(weight_bytes)) / gib;
    const double a = double(flux2_activation_bytes(s.transformer, w.width, w.height, w.text_tokens, tp, 1, 4)) / gib;
    const double all = (t + e + a) * tp;
    fitting += all <= 0.9 * mem_gib;
    std::printf("  %-7s %9.2f GiB %6.2f GiB %9.2f GiB %8.2f GiB %8.2f GiB  %s\n",
                tp == 1 ? "serial" : ("TP<" + std::to_string(tp) + ">").c_str(), t, e, a, t + e + a, all,
                all <= 0.9 * mem_gib ? "yes" : "no (more than 90% of the machine)");
  }
  std::printf("  (the VAE, ~0.3 GiB in fp32, and the OS come on top)\n");
  return fitting > 0 ? 0 : 1;
}

int main(int argc, char** argv) {
  CLI::App app{"pdiff-plan: parameter memory per rank, and the layout advisor"};
  std::string config, dtype = "bf16", model, link = "nvlink";
  bool lm_head = false, all = false, cpu = false;
  std::string cpu_weights = "bf16";
  double mem = 0;
  DeviceSpec dev;
  Flux2Workload w;
  double link_gbps = 0;
  app.add_option("--config", config, "folder with a Mistral/Mistral3 config.json (default: Mistral-Small-3.1-24B)");
  app.add_option("--dtype", dtype, "bf16, f16 or f32")->check(CLI::IsMember({"bf16", "f16", "f32"}));
  app.add_flag("--lm-head", lm_head, "include the LM head (needed for caption upsampling with generate())");
  app.add_option("--model", model, "advisor: flux2-dev, flux2-klein-4b, flux2-klein-9b or a diffusers FLUX.2 folder");
  app.add_option("--gpus", dev.count, "advisor: devices (ranks)");
  app.add_option("--gpu-mem", dev.mem_gib, "advisor: GiB of memory per device");
  app.add_option("--link", link, "advisor: nvlink (450 GB/s) or pcie (50 GB/s)")->check(CLI::IsMember({"nvlink", "pcie"}));
  app.add_option("--link-gbps", link_gbps, "advisor: link bandwidth in GB/s per direction (overrides --link)");
  app.add_option("--tflops", dev.tflops, "advisor: dense peak per device, TFLOP/s (default 989: H100 SXM bf16)");
  app.add_option("--efficiency", dev.efficiency, "advisor: fraction of the peak reached (default 0.5)");
  app.add_option("--width", w.width, "advisor: image width");
  app.add_option("--height", w.height, "advisor: image height");
  app.add_option("--images", w.images, "advisor: images generated together (DP divides them)");
  app.add_option("--text-tokens", w.text_tokens, "advisor: text tokens per image (default 512, as the pipelines pad)");
  app.add_flag("--all", all, "advisor: list every layout, not only the top 10 and the dropped ones");
  app.add_flag("--cpu", cpu, "CPU memory per rank and in all of serial, TP<2>, TP<4> (thread ranks)");
  app.add_option("--cpu-weights", cpu_weights, "--cpu: bf16 (a bf16 checkpoint kept bf16) or f32")
      ->check(CLI::IsMember({"bf16", "f32"}));
  app.add_option("--mem", mem, "--cpu: the machine's memory in GiB (default: MemTotal)");
  CLI11_PARSE(app, argc, argv);
  try {
    const double gib = 1024.0 * 1024.0 * 1024.0;
    if (!model.empty() && cpu) {
      PDIFF_CHECK(mem >= 0, "--mem ", mem, " GiB must be > 0");
      const auto spec = model_from(model);
      return print_cpu_plan(model, spec, w, cpu_weights == "f32" ? 4 : 2, mem > 0 ? mem : machine_gib());
    }
    if (!model.empty()) {
      PDIFF_CHECK(dev.count >= 1, "--gpus ", dev.count, " must be >= 1");
      PDIFF_CHECK(dev.mem_gib > 0, "--gpu-mem ", dev.mem_gib, " GiB must be > 0");
      PDIFF_CHECK(w.images >= 1, "--images ", w.images, " must be >= 1");
      PDIFF_CHECK(w.text_tokens >= 1, "--text-tokens ", w.text_tokens, " must be >= 1");
      dev.link_gbps = link_gbps > 0 ? link_gbps : link == "pcie" ? 50 : 450;
      w.bytes_per_element = dtype == "f32" ? 4 : 2;
      const auto spec = model_from(model);
      w.branches = spec.branches;
      const auto ranked = flux2_advise(spec.transformer, spec.encoder, w, dev);
      std::printf("%s on %d x %.0f GiB (%.3g TFLOP/s at %.2f, link %.3g GB/s), %lldx%lld, %d image%s, %d guidance "
                  "branch%s:\n", model.c_str(), dev.count, dev.mem_gib, dev.tflops, dev.efficiency, dev.link_gbps,
                  (long long)w.width, (long long)w.height, w.images, w.images > 1 ? "s" : "", w.branches,
                  w.branches > 1 ? "es" : "");
      std::printf("  %-4s %-36s %11s %11s %11s %13s %10s\n", "rank", "layout", "step s", "compute s", "comm s",
                  "batch step s", "GiB/rank");
      int shown = 0, runnable = 0;
      for (const auto& p : ranked) {
        if (!p.dropped.empty()) continue;
        ++runnable;
        if (!all && shown >= 10) continue;
        ++shown;
        std::printf("  %-4d %-36s %11.4f %11.4f %11.4f %13.4f %10.2f\n", runnable, p.name().c_str(), p.step_s,
                    p.compute_s, p.comm_s, p.batch_step_s, p.mem_gib);
      }
      if (runnable == 0) std::printf("  no layout fits: every one is dropped below\n");
      else if (shown < runnable) std::printf("  ... %d more (--all lists them)\n", runnable - shown);
      for (const auto& p : ranked)
        if (!p.dropped.empty()) std::printf("  dropped %-36s %s\n", p.name().c_str(), p.dropped.c_str());
      return runnable == 0 ? 1 : 0;
    }
    MistralConfig cfg = config.empty() ? mistral_small_3_1_24b() : MistralConfig::load(config);
    const int bytes = dtype == "f32" ? 4 : 2;
    std::printf("Mistral text encoder: %lld layers, hidden %lld, %lld heads / %lld kv heads, vocab %lld (%s)\n",
                (long long)cfg.num_hidden_layers, (long long)cfg.hidden_size, (long long)cfg.num_attention_heads,
                (long long)cfg.num_key_value_heads, (long long)cfg.vocab_size, dtype.c_str());
    const double full = double(mistral_param_plan(cfg, 1, lm_head).bytes(bytes));
    for (int tp : {1, 2, 4, 8}) {
      try {
        const double b = double(mistral_param_plan(cfg, tp, lm_head).bytes(bytes));
        std::printf("  TP<%d>: %8.3f GiB per rank (%.3f of replicated)\n", tp, b / gib, b / full);
      } catch (const Error& e) {
        std::printf("  TP<%d>: not possible: %s\n", tp, e.what());
      }
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pdiff-plan: %s\n", e.what());
    return 2;
  }
}
