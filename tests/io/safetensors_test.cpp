// safetensors: round trips in every dtype, slices, sharded folders, and every malformed-file rule.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "pdiff/core/philox.hpp"
#include "pdiff/io/checkpoint.hpp"
#include "pdiff/io/safetensors_write.hpp"

using namespace pdiff;
namespace fs = std::filesystem;

namespace {
Tensor<float> randn(Shape s, std::uint64_t seed) {
  Tensor<float> t(s);
  Philox{seed, 0}.fill_normal(t.span());
  return t;
}
fs::path scratch(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("pdiff_st_" + std::to_string(::getpid())) / name;
  fs::create_directories(p.parent_path());
  return p;
}
// Writes a raw safetensors file from a header string and a data size.
fs::path raw_file(const std::string& name, const std::string& header, std::size_t data_bytes,
                  std::int64_t declared = -1) {
  auto p = scratch(name);
  std::ofstream o(p, std::ios::binary);
  std::uint64_t n = declared < 0 ? header.size() : std::uint64_t(declared);
  for (int i = 0; i < 8; ++i) o.put(char((n >> (8 * i)) & 0xff));
  o << header;
  o << std::string(data_bytes, '\0');
  return p;
}
}  // namespace

TEST_CASE("write and read back: f32 exact, bf16/f16 rounded, rows and columns") {
  auto a = randn({6, 5}, 1), b = randn({7}, 2);
  for (DType dt : {DType::f32, DType::bf16, DType::f16}) {
    CAPTURE(dtype_name(dt));
    auto p = scratch(std::string("rt_") + std::string(dtype_name(dt)) + ".safetensors");
    write_safetensors(p.string(), {{"a", a}, {"b.weight", b}}, dt, {{"format", "pt"}});
    auto st = SafeTensors::open(p.string());
    CHECK(st.names() == std::vector<std::string>{"a", "b.weight"});
    CHECK(st.metadata().at("format") == "pt");
    auto ra = st.read("a");
    for (std::int64_t i = 0; i < a.numel(); ++i) {
      float want = dt == DType::f32 ? a(i) : dt == DType::bf16 ? float(bf16(a(i))) : float(f16(a(i)));
      CHECK(ra(i) == want);
    }
    auto rows = st.read_slice("a", 0, 2, 4), cols = st.read_slice("a", 1, 1, 3);
    CHECK(rows.shape() == Shape{2, 5});
    CHECK(cols.shape() == Shape{6, 2});
    CHECK(rows(0) == ra(10));
    CHECK(cols(2 * 2 + 1) == ra(2 * 5 + 2));
  }
}

TEST_CASE("a rank reads only its slice: bytes_read counts it") {
  auto w = randn({64, 32}, 3);
  auto p = scratch("bytes.safetensors");
  write_safetensors(p.string(), {{"w", w}});
  auto st = SafeTensors::open(p.string());
  (void)st.read_slice("w", 0, 16, 32);
  CHECK(st.bytes_read() == 16 * 32 * 4);
  (void)st.read_slice("w", 1, 0, 8);
  CHECK(st.bytes_read() == 16 * 32 * 4 + 64 * 8 * 4);
}

TEST_CASE("sharded folder with an index equals the single file") {
  auto a = randn({4, 3}, 4), b = randn({3}, 5), c = randn({2, 2}, 6);
  auto one = scratch("single/model.safetensors");
  write_safetensors(one.string(), {{"a", a}, {"b", b}, {"c", c}});
  auto dir = scratch("sharded/x").parent_path();
  write_safetensors((dir / "model-00001-of-00002.safetensors").string(), {{"a", a}, {"c", c}});
  write_safetensors((dir / "model-00002-of-00002.safetensors").string(), {{"b", b}});
  std::ofstream(dir / "model.safetensors.index.json")
      << R"({"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors", "c": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}})";
  auto s1 = Checkpoint::open(one.parent_path()), s2 = Checkpoint::open(dir);
  for (auto n : {"a", "b", "c"}) {
    auto x = s1.read(n), y = s2.read(n);
    REQUIRE(x.numel() == y.numel());
    for (std::int64_t i = 0; i < x.numel(); ++i) CHECK(x(i) == y(i));
  }
  CHECK_THROWS_WITH_AS(s2.read("missing.weight"), doctest::Contains("has no tensor 'missing.weight'"), Error);
  // a shape differing from the config is reported with both shapes
  ShardPlan plan{Shape{4, 3}, 0, {{0, 0, 0, 4}}};
  std::string names[] = {"a"};
  std::vector<std::int64_t> want[] = {{4, 4}};
  CHECK_THROWS_WITH_AS(s2.read_plan(plan, names, want), doctest::Contains("'a' has shape (4, 3) but the config implies (4, 4)"),
                       Error);
}

TEST_CASE("malformed files are clear errors naming the rule") {
  using doctest::Contains;
  CHECK_THROWS_WITH_AS(SafeTensors::open(raw_file("short", "", 0, 0).string() + "x"), Contains("cannot open"), Error);
  {
    auto p = scratch("tiny");
    std::ofstream(p) << "abc";
    CHECK_THROWS_WITH_AS(SafeTensors::open(p.string()), Contains("shorter than its 8-byte header length"), Error);
  }
  CHECK_THROWS_WITH_AS(SafeTensors::open(raw_file("huge", "{}", 0, 200'000'000).string()), Contains("above the limit"),
                       Error);
  CHECK_THROWS_WITH_AS(SafeTensors::open(raw_file("trunc", "{}", 0, 50).string()), Contains("truncated"), Error);
  CHECK_THROWS_WITH_AS(SafeTensors::open(raw_file("json", "{not json", 0).string()), Contains("not valid JSON"), Error);
  CHECK_THROWS_WITH_AS(SafeTensors::open(raw_file("arr", "[1,2]", 0).string()), Contains("must be a JSON object"), Error);
  CHECK_THROWS_WITH_AS(
      SafeTensors::open(raw_file("dtype", R"({"w":{"dtype":"F7","shape":[2],"data_offsets":[0,8]}})", 8).string()),
      Contains("tensor 'w' has unknown dtype 'F7'"), Error);
  CHECK_THROWS_WITH_AS(
      SafeTensors::open(raw_file("size", R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8).string()),
      Contains("shape x dtype is 12 bytes but data_offsets span 8"), Error);
  CHECK_THROWS_WITH_AS(
      SafeTensors::open(raw_file("oob", R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8).string()),
      Contains("beyond the data section"), Error);
  CHECK_THROWS_WITH_AS(SafeTensors::open(raw_file("overlap",
                                                  R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},
                                                      "b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                                  12)
                                             .string()),
                       Contains("contiguous and must not overlap"), Error);
  CHECK_THROWS_WITH_AS(
      SafeTensors::open(raw_file("gap", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8).string()),
      Contains("contiguous"), Error);
  CHECK_THROWS_WITH_AS(
      SafeTensors::open(raw_file("tail", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 8).string()),
      Contains("cover 4 bytes of a 8-byte data section"), Error);
  CHECK_THROWS_WITH_AS(
      SafeTensors::open(raw_file("neg", R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4).string()),
      Contains("negative"), Error);
  CHECK_THROWS_WITH_AS(SafeTensors::open(raw_file("keys", R"({"a":{"dtype":"F32","shape":[1]}})", 4).string()),
                       Contains("needs dtype, shape and data_offsets"), Error);
  CHECK_THROWS_WITH_AS(Checkpoint::open(scratch("nothing_here")), Contains("is not a folder"), Error);
}
