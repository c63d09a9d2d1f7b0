// Mistral text encoder on CPU thread ranks: forward time per TP degree, and load time and bytes
// read per rank from a sharded-by-TP load (each rank should read ~1/tp of the weights).
// A synthetic checkpoint (hidden 512, 4 layers, 8 heads / 2 kv, intermediate 1536, vocab 8192)
// is written once to a temporary folder in the real transformers layout.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <fstream>

#include "pdiff/io/safetensors_write.hpp"
#include "pdiff/models/mistral/text_encoder.hpp"
#include "pdiff/pdiff.hpp"

using namespace pdiff;
namespace fs = std::filesystem;

namespace {
const fs::path& checkpoint_dir() {
  static const fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("pdiff_bench_mistral_" + std::to_string(::getpid()));
    fs::create_directories(d);
    const std::int64_t V = 8192, D = 512, I = 1536, H = 8, Hk = 2, hd = 64, L = 4;
    std::map<std::string, Tensor<float>> w;
    std::uint64_t seed = 1;
    auto rnd = [&](Shape s, float scale) {
      Tensor<float> t(s);
      Philox{seed++, 0}.fill_normal(t.span());
      for (auto& v : t.span()) v *= scale;
      return t;
    };
    const std::string p = "language_model.model.";
    w[p + "embed_tokens.weight"] = rnd({V, D}, 1.0f);
    w[p + "norm.weight"] = rnd({D}, 0.1f);
    for (int i = 0; i < L; ++i) {
      const std::string l = p + "layers." + std::to_string(i) + ".";
      w[l + "input_layernorm.weight"] = rnd({D}, 0.1f);
      w[l + "post_attention_layernorm.weight"] = rnd({D}, 0.1f);
      w[l + "self_attn.q_proj.weight"] = rnd({H * hd, D}, 0.04f);
      w[l + "self_attn.k_proj.weight"] = rnd({Hk * hd, D}, 0.04f);
      w[l + "self_attn.v_proj.weight"] = rnd({Hk * hd, D}, 0.04f);
      w[l + "self_attn.o_proj.weight"] = rnd({D, H * hd}, 0.04f);
      w[l + "mlp.gate_proj.weight"] = rnd({I, D}, 0.04f);
      w[l + "mlp.up_proj.weight"] = rnd({I, D}, 0.04f);
      w[l + "mlp.down_proj.weight"] = rnd({D, I}, 0.03f);
    }
    write_safetensors((d / "model.safetensors").string(), w, DType::bf16);
    std::ofstream(d / "config.json") << R"({"model_type": "mistral3", "text_config": {"vocab_size": 8192,
      "hidden_size": 512, "intermediate_size": 1536, "num_hidden_layers": 4, "num_attention_heads": 8,
      "num_key_value_heads": 2, "head_dim": 64, "rms_norm_eps": 1e-5, "rope_theta": 1000000.0}})";
    return d;
  }();
  return dir;
}

template <int TPd>
void BM_encoder_forward(benchmark::State& st) {
  using L = Layout<TP<TPd>, OnCpu>;
  auto ck = Checkpoint::open(checkpoint_dir());
  auto cfg = MistralConfig::load(checkpoint_dir());
  const std::int64_t S = 256;
  Tensor<std::int64_t> ids({1, S});
  Tensor<std::uint8_t> mask({1, S});
  for (std::int64_t i = 0; i < S; ++i) ids(i) = (i * 31 + 7) % 8192, mask(i) = 1;
  const int which[] = {2, 4};
  double secs = 0;
  std::size_t bytes0 = 0;
  for (auto _ : st) {
    launch<L>({.mode = Launch::threads}, [&](auto& rank) {
      auto mine = Checkpoint::open(checkpoint_dir());  // per rank, to count its own reads
      auto enc = MistralTextEncoder<Ctx<L>>::load(mine, cfg, rank.coords.tp);
      rank.world.barrier();
      auto t0 = std::chrono::steady_clock::now();
      auto y = enc.encode(rank, ids, mask, which);
      rank.world.barrier();
      if (rank.index == 0) {
        secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        bytes0 = mine.bytes_read();
      }
      benchmark::DoNotOptimize(y.data());
    });
    st.SetIterationTime(secs);
  }
  std::size_t file = fs::file_size(checkpoint_dir() / "model.safetensors");
  st.counters["bytes_read_rank0"] = double(bytes0);
  st.counters["fraction_of_file"] = double(bytes0) / double(file);
  st.counters["tp"] = TPd;
}

template <int TPd>
void BM_encoder_load(benchmark::State& st) {
  using L = Layout<TP<TPd>, OnCpu>;
  auto cfg = MistralConfig::load(checkpoint_dir());
  for (auto _ : st) {
    launch<L>({.mode = Launch::threads}, [&](auto& rank) {
      auto ck = Checkpoint::open(checkpoint_dir());
      auto enc = MistralTextEncoder<Ctx<L>>::load(ck, cfg, rank.coords.tp);
      benchmark::DoNotOptimize(enc.layers.data());
    });
  }
  st.counters["tp"] = TPd;
}
}  // namespace

BENCHMARK_TEMPLATE(BM_encoder_forward, 1)->Unit(benchmark::kMillisecond)->UseManualTime();
BENCHMARK_TEMPLATE(BM_encoder_forward, 2)->Unit(benchmark::kMillisecond)->UseManualTime();
BENCHMARK_TEMPLATE(BM_encoder_forward, 4)->Unit(benchmark::kMillisecond)->UseManualTime();
BENCHMARK_TEMPLATE(BM_encoder_load, 1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_TEMPLATE(BM_encoder_load, 2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_TEMPLATE(BM_encoder_load, 4)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_MAIN();
