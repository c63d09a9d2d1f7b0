// safetensors: round trips in every dtype, slices, sharded folders, and one case per reader rule of
// docs/safetensors-rules.md (a file the reference accepts is accepted, one it refuses is refused with
// a message naming the file, the tensor and the rule).
#include <doctest/doctest.h>

#include <cmath>
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
                  std::int64_t declared = -1, const std::string& data = "") {
  auto p = scratch(name);
  std::ofstream o(p, std::ios::binary);
  std::uint64_t n = declared < 0 ? header.size() : std::uint64_t(declared);
  for (int i = 0; i < 8; ++i) o.put(char((n >> (8 * i)) & 0xff));
  o << header;
  o << (data.empty() ? std::string(data_bytes, '\0') : data);
  return p;
}
// One tensor entry of a header.
std::string entry(const std::string& dtype, const std::string& shape, std::uint64_t b, std::uint64_t e) {
  return R"({"dtype":")" + dtype + R"(","shape":)" + shape + R"(,"data_offsets":[)" + std::to_string(b) + "," +
         std::to_string(e) + "]}";
}
SafeTensors open_raw(const std::string& name, const std::string& header, std::size_t data_bytes) {
  return SafeTensors::open(raw_file(name, header, data_bytes).string());
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

TEST_CASE("bf16 shards: BF16 bytes as stored, other dtypes rounded; = convert<bf16> of the f32 read, bit for bit") {
  auto a = randn({6, 10}, 11), b = randn({5, 10}, 12);
  for (DType dt : {DType::bf16, DType::f32}) {
    CAPTURE(dtype_name(dt));
    auto p = scratch(std::string("b16_") + std::string(dtype_name(dt)) + "/model.safetensors");
    write_safetensors(p.string(), {{"a", a}, {"b", b}}, dt);
    auto st = SafeTensors::open(p.string());
    auto same = [](const Tensor<bf16>& x, const Tensor<bf16>& y) {
      if (!(x.shape() == y.shape())) return false;
      for (std::int64_t i = 0; i < x.numel(); ++i)
        if (x(i).bits != y(i).bits) return false;
      return true;
    };
    for (int dim : {0, 1}) {
      CAPTURE(dim);
      CHECK(same(st.read_slice_bf16("a", dim, 1, 4), convert<bf16>(st.read_slice("a", dim, 1, 4))));
    }
    auto ck = Checkpoint::open(p.parent_path());
    CHECK(ck.all_bf16(TensorNames{"a", "b"}) == (dt == DType::bf16));
    // a fused plan of rows of a and b, a column plan, and vocabulary padding past a's 6 rows
    const ShardPlan rows{Shape{5, 10}, 0, {{0, 0, 1, 3}, {1, 0, 2, 5}}}, cols{Shape{6, 4}, 1, {{0, 1, 6, 10}}},
        padded{Shape{4, 10}, 0, {{0, 0, 4, 8}}};
    const TensorNames ab{"a", "b"}, a_only{"a"};
    CHECK(same(ck.read_plan_bf16(rows, ab), convert<bf16>(ck.read_plan(rows, ab))));
    CHECK(same(ck.read_plan_bf16(cols, a_only), convert<bf16>(ck.read_plan(cols, a_only))));
    const auto pad = ck.read_plan_bf16(padded, a_only);
    CHECK(same(pad, convert<bf16>(ck.read_plan(padded, a_only))));
    CHECK(float(pad(3 * 10 + 9)) == 0.0f);
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

TEST_CASE("file framing: length prefix, header size limit, truncation") {
  using doctest::Contains;
  CHECK_THROWS_WITH_AS(SafeTensors::open(raw_file("short", "", 0, 0).string() + "x"), Contains("cannot open"), Error);
  {
    auto p = scratch("tiny");
    std::ofstream(p) << "abc";
    CHECK_THROWS_WITH_AS(SafeTensors::open(p.string()), Contains("shorter than its 8-byte header length"), Error);
  }
  CHECK_THROWS_WITH_AS(SafeTensors::open(raw_file("huge", "{}", 0, 100'000'001).string()),
                       Contains("declares a header of 100000001 bytes, above the limit of 100000000"), Error);
  // exactly the limit is accepted, as by the reference (a space-padded "{}")
  CHECK(open_raw("limit", "{}" + std::string(100'000'000 - 2, ' '), 0).names().empty());
  CHECK_THROWS_WITH_AS(SafeTensors::open(raw_file("trunc", "{}", 0, 50).string()), Contains("truncated"), Error);
  CHECK_THROWS_WITH_AS(open_raw("nohdr", "", 0), Contains("header is not valid JSON"), Error);
}

TEST_CASE("header text: JSON exactly as serde_json reads it") {
  using doctest::Contains;
  // space/tab/newline padding before and after is fine (writers pad the header to 8 bytes with spaces)
  CHECK(open_raw("pad", "  {}   \t\r\n", 0).names().empty());
  CHECK_THROWS_WITH_AS(open_raw("json", "{not json", 0), Contains("/json' header is not valid JSON"), Error);
  CHECK_THROWS_WITH_AS(open_raw("arr", "[1,2]", 0), Contains("header must be a JSON object"), Error);
  CHECK_THROWS_WITH_AS(open_raw("garbage", "{}x", 0), Contains("not valid JSON"), Error);
  CHECK_THROWS_WITH_AS(open_raw("comment", "{} /* c */", 0), Contains("not valid JSON"), Error);
  // nlohmann stops at a NUL and skips a BOM; the reference refuses both
  CHECK_THROWS_WITH_AS(open_raw("nul", std::string("{}\0\0", 4), 0), Contains("has a NUL byte at offset 2"), Error);
  CHECK_THROWS_WITH_AS(open_raw("nul_mid", std::string("{}\0{\"a\":1}", 10), 0), Contains("NUL byte"), Error);
  CHECK_THROWS_WITH_AS(open_raw("bom", "\xEF\xBB\xBF{}", 0), Contains("byte-order mark"), Error);
  CHECK_THROWS_WITH_AS(open_raw("utf8", "{\"__metadata__\":{\"x\":\"\xff\"}}", 0), Contains("not valid JSON"), Error);
  CHECK_THROWS_WITH_AS(open_raw("surrogate", "{\"__metadata__\":{\"x\":\"\xED\xA0\x80\"}}", 0),
                       Contains("not valid JSON"), Error);
  CHECK_THROWS_WITH_AS(open_raw("lone", R"({"__metadata__":{"x":"\ud800"}})", 0), Contains("not valid JSON"), Error);
  // an unknown field may hold any JSON, but not a number beyond a double (nlohmann refuses it too) nor
  // nesting deeper than 127
  CHECK(open_raw("extra", R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":{"y":[1.5,null]}}})", 1)
            .contains("w"));
  CHECK_THROWS_WITH_AS(open_raw("inf", R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1e400}})", 1),
                       Contains("number overflow parsing '1e400'"), Error);
  auto nested = [](int d) {
    return R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":)" + std::string(d, '[') + std::string(d, ']') +
           "}}";
  };
  CHECK(open_raw("deep125", nested(125), 1).contains("w"));  // 127 levels: the reference's deepest
  CHECK_THROWS_WITH_AS(open_raw("deep126", nested(126), 1), Contains("header, in 'w'.'x'.[].[]... (126 steps): nesting is deeper than 127 levels"), Error);
  CHECK_THROWS_WITH_AS(open_raw("deep100k", "{\"x\":" + std::string(100'000, '[') + std::string(100'000, ']') + "}", 0),
                       Contains("nesting is deeper than 127"), Error);
}

TEST_CASE("names and keys: each appears once") {
  using doctest::Contains;
  const std::string a1 = entry("F32", "[1]", 0, 4), a2 = entry("F32", "[2]", 0, 8);
  // the reference keeps the last "a" ([2], which tiles the 8 bytes); pdiff refuses
  CHECK_THROWS_WITH_AS(open_raw("dup", "{\"a\":" + a1 + ",\"a\":" + a2 + "}", 8),
                       Contains("/dup' tensor 'a' is named twice in the header: tensor names must be unique"), Error);
  // keys are compared after unescaping: "\u0061" is "a"
  CHECK_THROWS_WITH_AS(open_raw("dup_esc", "{\"a\":" + a1 + ",\"\\u0061\":" + entry("F32", "[1]", 4, 8) + "}", 8),
                       Contains("tensor 'a' is named twice"), Error);
  CHECK_THROWS_WITH_AS(open_raw("dup_field", R"({"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4),
                       Contains("tensor 'a' has the field 'dtype' twice"), Error);
  CHECK_THROWS_WITH_AS(open_raw("dup_meta", R"({"__metadata__":{},"__metadata__":{}})", 0),
                       Contains("header has '__metadata__' twice"), Error);
  CHECK_THROWS_WITH_AS(open_raw("dup_meta_key", R"({"__metadata__":{"x":"1","x":"2"}})", 0),
                       Contains("in '__metadata__': key 'x' appears twice: each __metadata__ key appears once"), Error);
  // an empty name is a name
  CHECK(open_raw("empty_name", "{\"\":" + a1 + "}", 4).contains(""));
}

TEST_CASE("__metadata__: an object of strings, or null") {
  using doctest::Contains;
  CHECK(open_raw("meta_null", R"({"__metadata__":null})", 0).metadata().empty());
  CHECK(open_raw("meta_ok", R"({"__metadata__":{"format":"pt","":""}})", 0).metadata().at("format") == "pt");
  CHECK_THROWS_WITH_AS(open_raw("meta_int", R"({"__metadata__":{"x":1}})", 0),
                       Contains("/meta_int' __metadata__ value of 'x' is number, not a string"), Error);
  CHECK_THROWS_WITH_AS(open_raw("meta_nullv", R"({"__metadata__":{"x":null}})", 0), Contains("is null, not a string"),
                       Error);
  CHECK_THROWS_WITH_AS(open_raw("meta_arr", R"({"__metadata__":[]})", 0),
                       Contains("__metadata__ must be an object of strings (or null)"), Error);
  // a tensor entry under the name __metadata__ is metadata with non-string values
  CHECK_THROWS_WITH_AS(open_raw("meta_tensor", "{\"__metadata__\":" + entry("F32", "[1]", 0, 4) + "}", 4),
                       Contains("value of 'data_offsets' is array, not a string"), Error);
}

TEST_CASE("tensor entries: fields, dtypes, shapes, offsets") {
  using doctest::Contains;
  CHECK_THROWS_WITH_AS(open_raw("keys", R"({"a":{"dtype":"F32","shape":[1]}})", 4),
                       Contains("tensor 'a' needs an object with dtype (a string), shape (an array) and data_offsets"),
                       Error);
  CHECK_THROWS_WITH_AS(open_raw("as_array", R"({"a":["F32",[1],[0,4]]})", 4), Contains("tensor 'a' needs an object"),
                       Error);
  CHECK_THROWS_WITH_AS(open_raw("three", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,4]}})", 4),
                       Contains("data_offsets [begin, end]"), Error);
  CHECK_THROWS_WITH_AS(open_raw("dtype_num", R"({"a":{"dtype":1,"shape":[1],"data_offsets":[0,4]}})", 4),
                       Contains("dtype (a string)"), Error);
  for (std::string bad : {"F7", "f32", ">f4", "float32"})
    CHECK_THROWS_WITH_AS(open_raw("dtype", "{\"w\":" + entry(bad, "[1]", 0, 4) + "}", 4),
                         Contains(("/dtype' tensor 'w' has unknown dtype '" + bad + "'").c_str()), Error);
  // every dtype of the reference is accepted, sub-byte ones when they fill whole bytes
  for (auto [dt, bytes] : std::initializer_list<std::pair<const char*, int>>{
           {"F8_E8M0", 2}, {"F8_E4M3FNUZ", 2}, {"F8_E5M2FNUZ", 2}, {"C64", 16}, {"F4", 1}, {"F6_E2M3", 0}, {"U64", 16}}) {
    CAPTURE(dt);
    const std::string shape = std::string(dt) == "F6_E2M3" ? "[0]" : "[2]";
    CHECK(open_raw("dt", "{\"w\":" + entry(dt, shape, 0, std::uint64_t(bytes)) + "}", std::size_t(bytes)).contains("w"));
  }
  CHECK(open_raw("f6", "{\"w\":" + entry("F6_E3M2", "[4]", 0, 3) + "}", 3).contains("w"));
  CHECK_THROWS_WITH_AS(open_raw("f4_odd", "{\"w\":" + entry("F4", "[3]", 0, 2) + "}", 2),
                       Contains("tensor 'w' has 3 F4 elements = 12 bits: a tensor must fill whole bytes"), Error);
  for (std::string bad : {"-1", "-0", "1.0", "1e0", "null"})
    CHECK_THROWS_WITH_AS(
        open_raw("shape", R"({"a":{"dtype":"F32","shape":[)" + bad + R"(],"data_offsets":[0,4]}})", 4),
        Contains(("tensor 'a' has shape entry " + (bad == "1e0" ? std::string("1.0") : bad) +
                  ": extents are non-negative integers")
                     .c_str()),
        Error);
  for (std::string bad : {"-0", "0.0", "4e0", "18446744073709551616"})
    CHECK_THROWS_WITH_AS(
        open_raw("offs", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[)" + bad + R"(,4]}})", 4),
        Contains("tensor 'a' has data offset"), Error);
  CHECK_THROWS_WITH_AS(open_raw("size", "{\"w\":" + entry("F32", "[3]", 0, 8) + "}", 8),
                       Contains("tensor 'w' shape x dtype is 12 bytes but data_offsets span 8"), Error);
  CHECK_THROWS_WITH_AS(open_raw("order", "{\"w\":" + entry("F32", "[0]", 8, 4) + "}", 8),
                       Contains("tensor 'w' has data_offsets [8, 4] with begin after end"), Error);
  // shape products are checked in order, like the reference: overflow before a 0 is refused
  CHECK_THROWS_WITH_AS(open_raw("ovf", "{\"w\":" + entry("F32", "[4294967296,4294967296,0]", 0, 0) + "}", 0),
                       Contains("tensor 'w' has shape [4294967296,4294967296,0] x F32, which overflows 64 bits"), Error);
  CHECK_THROWS_WITH_AS(open_raw("ovf_bits", "{\"w\":" + entry("U8", "[2305843009213693952]", 0, 0) + "}", 0),
                       Contains("overflows 64 bits"), Error);
  CHECK(open_raw("zero_big", "{\"w\":" + entry("F32", "[0,4294967296,4294967296]", 0, 0) + "}", 0).contains("w"));
  CHECK_THROWS_WITH_AS(open_raw("ext", "{\"w\":" + entry("F32", "[9223372036854775808,0]", 0, 0) + "}", 0),
                       Contains("tensor 'w' has extent 9223372036854775808, above pdiff's limit of 2^63 - 1"), Error);
  // offsets are exact 64-bit integers (not doubles): 2^53 + 1 is reported as itself
  CHECK_THROWS_WITH_AS(open_raw("2p53", "{\"w\":" + entry("U8", "[1]", 9007199254740993ull, 9007199254740994ull) + "}", 1),
                       Contains("ends at byte 9007199254740994 beyond the data section of 1 bytes"), Error);
  // unknown fields in an entry are ignored, as by the reference
  CHECK(open_raw("extra_field", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}})", 4).contains("a"));
}

TEST_CASE("data section: the tensors tile it exactly") {
  using doctest::Contains;
  CHECK_THROWS_WITH_AS(open_raw("oob", "{\"w\":" + entry("F32", "[4]", 0, 16) + "}", 8),
                       Contains("tensor 'w' ends at byte 16 beyond the data section of 8 bytes"), Error);
  CHECK_THROWS_WITH_AS(
      open_raw("overlap", "{\"a\":" + entry("F32", "[2]", 0, 8) + ",\"b\":" + entry("F32", "[2]", 4, 12) + "}", 12),
      Contains("tensor 'b' starts at byte 4 but the previous tensor ends at 8: tensors must be contiguous and must not "
               "overlap"),
      Error);
  CHECK_THROWS_WITH_AS(open_raw("gap", "{\"a\":" + entry("F32", "[1]", 4, 8) + "}", 8),
                       Contains("tensor 'a' starts at byte 4 but the previous tensor ends at 0"), Error);
  CHECK_THROWS_WITH_AS(open_raw("tail", "{\"a\":" + entry("F32", "[1]", 0, 4) + "}", 8),
                       Contains("tensors cover 4 bytes of a 8-byte data section"), Error);
  // the header's order does not matter, only the offsets'
  CHECK(open_raw("unsorted", "{\"a\":" + entry("F32", "[1]", 4, 8) + ",\"b\":" + entry("F32", "[1]", 0, 4) + "}", 8)
            .names()
            .size() == 2);
}

TEST_CASE("zero-size tensors are valid and read as empty tensors") {
  auto st = open_raw("zero",
                     "{\"e\":" + entry("F32", "[0,3]", 0, 0) + ",\"f\":" + entry("F32", "[3,0]", 0, 0) +
                         ",\"g\":" + entry("BF16", "[0]", 0, 0) + ",\"h\":" + entry("I64", "[0]", 0, 0) +
                         ",\"s\":" + entry("F32", "[]", 0, 4) + "}",
                     4);
  CHECK(st.read("e").shape() == Shape{0, 3});
  CHECK(st.read("f").shape() == Shape{3, 0});
  CHECK(st.read_slice("f", 1, 0, 0).shape() == Shape{3, 0});
  CHECK(st.read("g").numel() == 0);
  CHECK(st.read_i64("h").numel() == 0);
  CHECK(st.read("s").shape() == Shape{1});  // a scalar reads as one element
  // found by fuzzing: the row stride 2^32 · 2^32 of a 0-row tensor overflowed
  auto big = open_raw("zero_big_read", "{\"w\":" + entry("F32", "[0,4294967296,4294967296]", 0, 0) + "}", 0);
  CHECK(big.read("w").numel() == 0);
  // and (2^32 - 2) · 2^32 fits u64 (the reference's check) but not int64
  auto big2 = open_raw("zero_big2", "{\"w\":" + entry("F32", "[4294967294,4294967296,0]", 0, 0) + "}", 0);
  CHECK(big2.info("w").numel() == 0);
  CHECK(big2.read("w").numel() == 0);
}

TEST_CASE("F8 reads exactly; dtypes pdiff does not convert are errors naming the dtype") {
  using doctest::Contains;
  // e4m3fn: 0x38 = 1, 0xC4 = -3, 0x7E = 448 (max), 0x01 = 2^-9 (min subnormal), 0x7F = NaN
  // e5m2:   0x3C = 1, 0xC2 = -3, 0x7B = 57344 (max), 0x01 = 2^-16, 0x7C = inf
  const std::string data = "\x38\xC4\x7E\x01\x7F\x3C\xC2\x7B\x01\x7C";
  auto p = raw_file("f8", "{\"a\":" + entry("F8_E4M3", "[5]", 0, 5) + ",\"b\":" + entry("F8_E5M2", "[5]", 5, 10) +
                              ",\"c\":" + entry("F8_E8M0", "[1]", 10, 11) + ",\"d\":" + entry("F4", "[2]", 11, 12) +
                              ",\"i\":" + entry("U64", "[1]", 12, 20) + "}",
                    0, -1, data + std::string("\x01\x02", 2) + std::string(8, '\xff'));
  auto st = SafeTensors::open(p.string());
  auto a = st.read("a"), b = st.read("b");
  CHECK(a(0) == 1.0f);
  CHECK(a(1) == -3.0f);
  CHECK(a(2) == 448.0f);
  CHECK(a(3) == 0x1p-9f);
  CHECK(std::isnan(a(4)));
  CHECK(b(0) == 1.0f);
  CHECK(b(1) == -3.0f);
  CHECK(b(2) == 57344.0f);
  CHECK(b(3) == 0x1p-16f);
  CHECK(std::isinf(b(4)));
  CHECK_THROWS_WITH_AS(st.read("c"), Contains("/f8' tensor 'c' has dtype F8_E8M0, which pdiff does not convert"), Error);
  CHECK_THROWS_WITH_AS(st.read("d"), Contains("tensor 'd' has dtype F4, which pdiff does not convert"), Error);
  CHECK_THROWS_WITH_AS(st.read_i64("a"), Contains("tensor 'a' has dtype F8_E4M3; read_i64 reads integer"), Error);
  CHECK_THROWS_WITH_AS(st.read_i64("i"), Contains("tensor 'i' element 0 is above 2^63 - 1"), Error);
}

TEST_CASE("read_i64 is exact beyond float precision") {
  auto p = raw_file("i32", "{\"i\":" + entry("I32", "[1]", 0, 4) + "}", 0, -1, std::string("\x01\x00\x00\x01", 4));
  CHECK(SafeTensors::open(p.string()).read_i64("i")(0) == 16777217);  // 2^24 + 1: not a float
}

TEST_CASE("checkpoint folder errors") {
  CHECK_THROWS_WITH_AS(Checkpoint::open(scratch("nothing_here")), doctest::Contains("is not a folder"), Error);
}
