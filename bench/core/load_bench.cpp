// Checkpoint loading from the page cache (issue 13: ≥ 2 GB/s per rank): a safetensors file of 24 tensors
// of 2048 x 2048 (BF16: 192 MiB, F32: 384 MiB), written once, read back whole through Checkpoint::read
// into f32 tensors; the peer is a memcpy of the same bytes from the same mapping (the memory bound).
// Counters: bytes_per_second of the file's bytes; ratio = memcpy time / read time, measured in one run.
// BM_load_shard_bf16: a bf16 model's rank shards (half of each tensor's rows, or columns: TP<2>) from the
// BF16 file, the bf16 way (read_plan_bf16: bytes as stored) against the earlier f32 way (read_plan, then
// convert<bf16>, what a bf16 layer did before), in one run; ratio = f32-way time / bf16-way time.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "pdiff/core/philox.hpp"
#include "pdiff/io/checkpoint.hpp"
#include "pdiff/io/safetensors_write.hpp"

using namespace pdiff;
namespace fs = std::filesystem;

namespace {
constexpr int kTensors = 24;
constexpr std::int64_t kSide = 2048;

fs::path make_file(DType dt) {
  const fs::path dir = fs::temp_directory_path() / (std::string("pdiff_load_bench_") + (dt == DType::bf16 ? "bf16" : "f32"));
  if (fs::exists(dir / "model.safetensors")) return dir;
  fs::create_directories(dir);
  std::map<std::string, Tensor<float, OnCpu>> ts;
  for (int i = 0; i < kTensors; ++i) {
    Tensor<float, OnCpu> t({kSide, kSide});
    Philox{std::uint64_t(i), 0}.fill_normal(t.span());
    ts.emplace("layers." + std::to_string(i) + ".weight", std::move(t));
  }
  write_safetensors((dir / "model.safetensors").string(), ts, dt);
  return dir;
}

void BM_load(benchmark::State& st) {
  const DType dt = st.range(0) ? DType::bf16 : DType::f32;
  const auto dir = make_file(dt);
  const auto ck = Checkpoint::open(dir);
  std::vector<std::string> names;
  for (int i = 0; i < kTensors; ++i) names.push_back("layers." + std::to_string(i) + ".weight");
  const std::size_t elem = dt == DType::bf16 ? 2 : 4, bytes = std::size_t(kTensors * kSide * kSide) * elem;
  for (const auto& n : names) benchmark::DoNotOptimize(ck.read(n).data());  // warm the page cache
  std::vector<std::uint8_t> sink(std::size_t(kSide * kSide) * elem);
  double read_s = 0, copy_s = 0;
  for (auto _ : st) {
    auto t0 = std::chrono::steady_clock::now();
    for (const auto& n : names) benchmark::DoNotOptimize(ck.read(n).data());
    auto t1 = std::chrono::steady_clock::now();
    for (const auto& n : names) {
      const auto& f = ck.file_of(n);
      std::memcpy(sink.data(), f.bytes(n).data(), sink.size());
      benchmark::DoNotOptimize(sink.data());
    }
    auto t2 = std::chrono::steady_clock::now();
    read_s += std::chrono::duration<double>(t1 - t0).count();
    copy_s += std::chrono::duration<double>(t2 - t1).count();
    st.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
  }
  st.counters["GB_per_s"] = double(bytes) * double(st.iterations()) / read_s / 1e9;
  st.counters["memcpy_GB_per_s"] = double(bytes) * double(st.iterations()) / copy_s / 1e9;
  st.counters["memcpy_over_read"] = copy_s / read_s;
  st.SetLabel(dt == DType::bf16 ? "BF16 file -> f32" : "F32 file -> f32");
}
void BM_load_shard_bf16(benchmark::State& st) {
  const int dim = int(st.range(0));
  const auto ck = Checkpoint::open(make_file(DType::bf16));
  const ShardPlan plan{dim == 0 ? Shape{kSide / 2, kSide} : Shape{kSide, kSide / 2}, dim, {{0, dim, 0, kSide / 2}}};
  std::vector<TensorNames> names;
  for (int i = 0; i < kTensors; ++i) names.push_back({"layers." + std::to_string(i) + ".weight"});
  for (const auto& n : names) benchmark::DoNotOptimize(ck.read_plan_bf16(plan, n).data());  // page cache
  double bf16_s = 0, f32_s = 0;
  bool same = true;
  for (auto _ : st) {
    auto t0 = std::chrono::steady_clock::now();
    for (const auto& n : names) benchmark::DoNotOptimize(ck.read_plan_bf16(plan, n).data());
    auto t1 = std::chrono::steady_clock::now();
    for (const auto& n : names) benchmark::DoNotOptimize(convert<bf16>(ck.read_plan(plan, n)).data());
    auto t2 = std::chrono::steady_clock::now();
    bf16_s += std::chrono::duration<double>(t1 - t0).count();
    f32_s += std::chrono::duration<double>(t2 - t1).count();
    st.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
  }
  const auto a = ck.read_plan_bf16(plan, names[0]), b = convert<bf16>(ck.read_plan(plan, names[0]));
  for (std::int64_t i = 0; i < a.numel(); ++i) same = same && a(i).bits == b(i).bits;
  if (!same) st.SkipWithError("the bf16 and f32 ways differ");
  const double bytes = double(kTensors) * double(kSide * kSide / 2) * 2 * double(st.iterations());
  st.counters["GB_per_s"] = bytes / bf16_s / 1e9;
  st.counters["f32_way_GB_per_s"] = bytes / f32_s / 1e9;
  st.counters["ratio"] = f32_s / bf16_s;
  st.SetLabel(dim == 0 ? "rows (ColumnParallel)" : "columns (RowParallel)");
}
}  // namespace

BENCHMARK(BM_load_shard_bf16)->Arg(0)->Arg(1)->UseManualTime()->Iterations(3)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_load)->Arg(1)->Arg(0)->UseManualTime()->Iterations(3)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
