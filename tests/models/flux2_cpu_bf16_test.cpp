// bf16 weights kept bf16 on the CPU (backend/cpu/bf16_weights.hpp): the panelled GEMM equals the fp32
// GEMM bit for bit, a LinearCore keeps exactly-bf16 weights in half the memory and gives the same
// outputs, non-bf16 weights stay fp32; and the FLUX.2-klein pipeline from a bf16 copy of the tiny folder
// makes the same image with PDIFF_CPU_WEIGHTS auto and f32 while holding less memory.
#include <doctest/doctest.h>

#include <cstring>

#include "../layers/harness.hpp"
#include "pdiff/io/safetensors_write.hpp"
#include "pdiff/models/flux2/pipeline.hpp"

using namespace pdiff;
using namespace pdiff::test;
namespace fs = std::filesystem;

namespace {
bool same_bits(const Tensor<float>& a, const Tensor<float>& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.bytes()) == 0;
}
Tensor<float> rounded(Shape s, std::uint64_t seed) {  // random values that are exactly bf16
  Tensor<float> t(s);
  Philox{seed, 0}.fill_normal(t.span());
  for (std::int64_t i = 0; i < t.numel(); ++i) t(i) = float(bf16(t(i)));
  return t;
}
struct Restore {
  CpuWeights was = cpu_weights();
  ~Restore() { set_cpu_weights(was); }
};
}  // namespace

TEST_CASE("gemm_bf16_weight equals the fp32 GEMM bit for bit (a GEMV to the last bit), across panels") {
  for (auto [m, k, n] : {std::array<std::int64_t, 3>{5, 64, 33}, {300, 8192, 700}, {1, 1536, 4608}}) {
    CAPTURE(m);
    CAPTURE(k);
    CAPTURE(n);
    Tensor<float> a({m, k});
    Philox{1, 0}.fill_normal(a.span());
    const auto w = rounded({n, k}, 2);
    Tensor<float> want({m, n}), got({m, n});
    gemm(a, w, want, {.trans_b = true});
    gemm_bf16_weight(a, convert<bf16>(w), got);
    // one row is a GEMV, where OpenBLAS picks its kernel by size: the last bit may differ
    if (m > 1) CHECK(same_bits(got, want));
    else CHECK(rel_err(got, want) < 1e-6);
  }
}

TEST_CASE("LinearCore keeps exactly-bf16 weights bf16 (half the bytes, the same outputs); others stay fp32") {
  Restore restore;
  using C = Ctx<Layout<OnCpu>>;
  const auto w = rounded({96, 80}, 3);
  Tensor<float> x({7, 80});
  Philox{4, 0}.fill_normal(x.span());
  set_cpu_weights(CpuWeights::automatic);
  detail::LinearCore<C> half;
  const auto before = memory<OnCpu>::thread_live_bytes();
  half.set(w.clone());
  const auto half_bytes = memory<OnCpu>::thread_live_bytes() - before;
  CHECK(half.holds_bf16());
  CHECK(half_bytes == std::size_t(96 * 80 * 2));
  set_cpu_weights(CpuWeights::f32);
  detail::LinearCore<C> full;
  full.set(w.clone());
  CHECK_FALSE(full.holds_bf16());
  CHECK(same_bits(half.matmul(x), full.matmul(x)));
  CHECK(half.out_features() == 96);
  CHECK(half.in_features() == 80);
  // a value that is not a bf16 keeps the weight fp32 even in auto mode (no silent rounding)
  set_cpu_weights(CpuWeights::automatic);
  auto odd = w.clone();
  odd(5) = 1.0f + 1.0f / 1024.0f / 1024.0f;
  detail::LinearCore<C> exact;
  exact.set(odd);
  CHECK_FALSE(exact.holds_bf16());
}

TEST_CASE("FLUX.2-klein from a bf16 folder: the same image with bf16 and fp32 weights in memory, less memory") {
  Restore restore;
  const fs::path src = fs::path(PDIFF_SOURCE_DIR) / "tests/golden/flux2_tiny/klein/e2e";
  const fs::path dir = fs::temp_directory_path() / "pdiff_flux2_klein_bf16";
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::copy(src, dir, fs::copy_options::recursive);  // symlinks are followed: real files
  std::size_t files = 0;
  for (const char* part : {"transformer", "text_encoder"})
    for (auto& e : fs::directory_iterator(dir / part))
      if (e.path().extension() == ".safetensors") {
        const auto st = SafeTensors::open(e.path().string());
        std::map<std::string, Tensor<float>> all;
        for (auto& n : st.names()) all[n] = st.read(n);
        fs::remove(e.path());
        write_safetensors(e.path().string(), all, DType::bf16);
        ++files;
      }
  REQUIRE(files == 2);
  using L = Layout<OnCpu>;
  auto run = [&](CpuWeights mode, double& loaded_mib) {
    set_cpu_weights(mode);
    Tensor<float> image;
    launch<L>({.mode = Launch::threads}, [&](auto& rank) {
      const auto before = double(memory<OnCpu>::thread_live_bytes());
      const auto pipe = Flux2Pipeline<L>::load(rank, dir);
      loaded_mib = (double(memory<OnCpu>::thread_live_bytes()) - before) / 1048576.0;
      image = pipe.generate(rank, {.prompt = "a red fox", .width = 64, .height = 48, .steps = 2, .guidance = 3.0f,
                                   .seed = 7, .progress = false}).image;
    });
    return image;
  };
  double half_mib = 0, full_mib = 0;
  const auto half = run(CpuWeights::automatic, half_mib);
  const auto full = run(CpuWeights::f32, full_mib);
  CHECK(same_bits(half, full));
  MESSAGE("loaded: ", half_mib, " MiB with bf16 weights, ", full_mib, " MiB with fp32");
  // the linear and embedding weights halve; norms, biases, the VAE's convolutions stay fp32
  CHECK(half_mib < 0.75 * full_mib);
}
