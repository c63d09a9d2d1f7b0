// pdiff/io/safetensors.hpp — memory-mapped safetensors files, accepted exactly when the reference
// reader (huggingface safetensors, Rust crate) accepts them, or refused where pdiff is deliberately
// stricter. docs/safetensors-rules.md lists every rule beside the reference's behaviour, as measured
// by tools/safetensors_reference_check.py. Each refusal is a pdiff::Error naming the file, the tensor
// and the rule.
// File: u64 little-endian header length N (≤ 100,000,000), N bytes of JSON {name: {dtype, shape,
// data_offsets: [begin, end]}, "__metadata__": {string: string} or null} (padded with spaces), then
// the data, which the tensors must tile exactly: sorted by offsets, each begins where the previous
// ends, the last ends at the end of the file. Stricter than the reference: a name (or any key) given
// twice, an extent above 2^63 − 1, a tensor entry written as an array.
// | member                        | result                                                         |
// |-------------------------------|----------------------------------------------------------------|
// | SafeTensors::open(path)       | the mapped, validated file                                     |
// | names(), contains(n), info(n) | tensor names (sorted), dtype/shape/offsets                     |
// | read(n)                       | the whole tensor as f32 (see safetensors_dtype.hpp for which dtypes) |
// | read_slice(n, dim, b, e)      | rows (dim 0) or columns (dim 1) [b, e) only: touches only their bytes |
// | read_slice_bf16(n, dim, b, e) | the same slice in bf16: a BF16 tensor's bytes as they are (no f32 round trip) |
// | read_i64(n)                   | integer tensors (ids, positions), exactly                      |
// | bytes(n)                      | the tensor's stored bytes in the mapping, as they are (no copy, not counted) |
// | bytes_read()                  | bytes copied out of the map so far (the per-rank load figure)  |
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <span>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pdiff/backend/cpu/convert.hpp"
#include "pdiff/backend/cpu/memory.hpp"
#include "pdiff/core/tensor.hpp"
#include "pdiff/io/json_guard.hpp"
#include "pdiff/io/safetensors_dtype.hpp"

namespace pdiff {

struct TensorInfo {
  std::string dtype;  // "F32", "BF16", ...
  StDtype code = StDtype::unknown;
  std::size_t elem = 0;  // bytes per element; 0 for the sub-byte F4 / F6 types
  std::vector<std::int64_t> shape;
  std::size_t begin = 0, end = 0;  // offsets into the data section
  std::int64_t numel() const {
    // open checked numel x bits < 2^64, so a product without a 0 fits; one with a 0 is 0 even when the
    // extents before the 0 multiply beyond int64 (the reference accepts [2^32 - 2, 2^32, 0])
    if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
};

namespace detail {
struct Mapping {
  void* addr = nullptr;
  std::size_t size = 0;
  ~Mapping() {
    if (addr && addr != MAP_FAILED) ::munmap(addr, size);
  }
};
}  // namespace detail

class SafeTensors {
 public:
  static constexpr std::size_t max_header = 100'000'000;  // the reference's MAX_HEADER_SIZE
  static constexpr JsonRules header_rules{127, true};

  static SafeTensors open(const std::string& path) {
    SafeTensors st;
    st.path_ = path;
    int fd = ::open(path.c_str(), O_RDONLY);
    PDIFF_CHECK(fd >= 0, "safetensors: cannot open '", path, "': ", std::strerror(errno));
    struct stat sb {};
    ::fstat(fd, &sb);
    const std::size_t size = std::size_t(sb.st_size);
    st.map_ = std::make_shared<detail::Mapping>();
    if (size > 0) {
      st.map_->addr = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
      st.map_->size = size;
    }
    ::close(fd);
    PDIFF_CHECK(size == 0 || st.map_->addr != MAP_FAILED, "safetensors: cannot map '", path, "'");
    st.parse(static_cast<const std::uint8_t*>(st.map_->addr), size);
    return st;
  }
  // Validates a buffer that is already in memory (the fuzz target uses it).
  static SafeTensors parse_buffer(const std::uint8_t* data, std::size_t size, std::string name = "<buffer>") {
    SafeTensors st;
    st.path_ = std::move(name);
    st.parse(data, size);
    return st;
  }

  const std::string& path() const { return path_; }
  std::vector<std::string> names() const {
    std::vector<std::string> n;
    for (auto& [k, v] : infos_) n.push_back(k);
    return n;
  }
  bool contains(const std::string& n) const { return infos_.count(n) != 0; }
  const TensorInfo& info(const std::string& n) const {
    auto it = infos_.find(n);
    PDIFF_CHECK(it != infos_.end(), "safetensors: '", path_, "' has no tensor '", n, "'");
    return it->second;
  }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  std::size_t bytes_read() const { return *bytes_read_; }
  std::span<const std::uint8_t> bytes(const std::string& n) const {
    const TensorInfo& t = info(n);
    return {data_ + t.begin, t.end - t.begin};
  }

  Tensor<float, OnCpu> read(const std::string& n) const {
    const TensorInfo& t = info(n);
    return read_slice(n, 0, 0, t.shape.empty() ? 1 : t.shape[0]);
  }
  // [b, e) along dim 0 (rows) or dim 1 (columns of a rank-2 tensor).
  Tensor<float, OnCpu> read_slice(const std::string& n, int dim, std::int64_t b, std::int64_t e) const {
    const TensorInfo& t = info(n);
    PDIFF_CHECK(st_reads_as_float(t.code), "safetensors: '", path_, "' tensor '", n, "' has dtype ", t.dtype,
                ", which pdiff does not convert to f32 (it reads F64, F32, F16, BF16, F8_E4M3, F8_E5M2, integers, BOOL)");
    const Shape full = checked_slice(n, t, dim, b, e);
    const std::uint8_t* base = data_ + t.begin;
    Shape out_shape = full;
    out_shape[dim] = e - b;
    Tensor<float, OnCpu> out(out_shape);
    if (out.numel() == 0) return out;
    float* o = out.data();
    if (dim == 0) {
      const std::int64_t row = full.stride(0);  // not numel / rows: a tensor may have 0 rows
      st_load_floats(t.code, base, std::size_t(b * row), std::size_t((e - b) * row), o);
      *bytes_read_ += std::size_t((e - b) * row) * t.elem;
    } else {
      const std::int64_t rows = full[0], cols = full[1], w = e - b;
      for (std::int64_t r = 0; r < rows; ++r) st_load_floats(t.code, base, std::size_t(r * cols + b), std::size_t(w), o + r * w);
      *bytes_read_ += std::size_t(rows * w) * t.elem;
    }
    return out;
  }
  // The same slice in bf16. A BF16 tensor's bytes are copied as they are — what a bf16 model on the device
  // (or a CPU model keeping bf16 weights) loads, without widening to f32 and rounding back; any other dtype
  // is read as f32 and rounded to the nearest bf16 (ties to even), as convert<bf16> does.
  Tensor<bf16, OnCpu> read_slice_bf16(const std::string& n, int dim, std::int64_t b, std::int64_t e) const {
    const TensorInfo& t = info(n);
    if (t.code != StDtype::BF16) return convert<bf16>(read_slice(n, dim, b, e));
    const Shape full = checked_slice(n, t, dim, b, e);
    Shape out_shape = full;
    out_shape[dim] = e - b;
    Tensor<bf16, OnCpu> out(out_shape);
    if (out.numel() == 0) return out;
    const auto* base = reinterpret_cast<const bf16*>(data_ + t.begin);
    if (dim == 0) {
      const std::int64_t row = full.stride(0);
      std::memcpy(out.data(), base + b * row, std::size_t((e - b) * row) * sizeof(bf16));
    } else {
      const std::int64_t rows = full[0], cols = full[1], w = e - b;
      for (std::int64_t r = 0; r < rows; ++r)
        std::memcpy(out.data() + r * w, base + r * cols + b, std::size_t(w) * sizeof(bf16));
    }
    *bytes_read_ += std::size_t(out.numel()) * sizeof(bf16);
    return out;
  }
  Tensor<std::int64_t, OnCpu> read_i64(const std::string& n) const {
    const TensorInfo& t = info(n);
    PDIFF_CHECK(st_is_integer(t.code), "safetensors: '", path_, "' tensor '", n, "' has dtype ", t.dtype,
                "; read_i64 reads integer or BOOL tensors only");
    Tensor<std::int64_t, OnCpu> out(shape_of(n, t));
    const std::uint8_t* base = data_ + t.begin;
    for (std::int64_t i = 0; i < out.numel(); ++i) {
      out(i) = st_load_int(t.code, base, std::size_t(i));
      PDIFF_CHECK(t.code != StDtype::U64 || out(i) >= 0, "safetensors: '", path_, "' tensor '", n, "' element ", i,
                  " is above 2^63 - 1 and does not fit int64");
    }
    *bytes_read_ += std::size_t(out.numel()) * t.elem;
    return out;
  }

 private:
  // The full shape after checking that [b, e) of dimension dim can be sliced.
  Shape checked_slice(const std::string& n, const TensorInfo& t, int dim, std::int64_t b, std::int64_t e) const {
    const Shape full = shape_of(n, t);
    PDIFF_CHECK(dim == 0 || (dim == 1 && full.rank == 2), "safetensors: '", path_, "' tensor '", n, "' ", full,
                ": only rows or the columns of a matrix can be sliced, asked dim ", dim);
    PDIFF_CHECK(0 <= b && b <= e && e <= full[dim], "safetensors: '", path_, "' tensor '", n, "' ", full, ": slice [",
                b, ", ", e, ") of dimension ", dim, " is out of range");
    return full;
  }
  // The tensor's shape as a pdiff Shape (a scalar reads as one element).
  Shape shape_of(const std::string& n, const TensorInfo& t) const {
    PDIFF_CHECK(int(t.shape.size()) <= Shape::max_rank, "safetensors: '", path_, "' tensor '", n, "' has rank ",
                t.shape.size(), "; pdiff tensors have rank ", Shape::max_rank, " at most");
    Shape s = Shape::from(t.shape.begin(), t.shape.end());
    return s.rank ? s : Shape{1};
  }

  template <class... A>
  [[noreturn]] void fail(const std::string& tensor, A&&... why) const {
    throw Error(detail::cat("safetensors: '", path_, "' tensor '", tensor, "' ", std::forward<A>(why)...));
  }
  template <class... A>
  [[noreturn]] void fail_file(A&&... why) const {
    throw Error(detail::cat("safetensors: '", path_, "' ", std::forward<A>(why)...));
  }
  // A json_guard fault in the header, said in safetensors' terms.
  [[noreturn]] void fail_guard(const JsonFault& f) const {
    const bool twice = f.message.rfind("key '", 0) == 0 && f.message.ends_with("' appears twice");
    const std::string key = twice ? f.message.substr(5, f.message.size() - 5 - 15) : "";
    if (twice && f.path.empty() && key != "__metadata__")
      fail(key, "is named twice in the header: tensor names must be unique (the reference keeps the last entry; pdiff "
                "refuses a file that readers could see differently)");
    if (twice && f.path.size() == 1 && f.path[0] != "__metadata__")
      fail(f.path[0], "has the field '", key, "' twice: each field of a tensor entry appears once");
    if (twice && f.path.empty()) fail_file("header has '__metadata__' twice: it appears once");
    if (f.path.empty()) fail_file("header ", f.message);
    fail_file("header, in ", json_path(f.path), ": ", f.message,
              twice && f.path.size() == 1 ? ": each __metadata__ key appears once" : "");
  }

  void parse(const std::uint8_t* p, std::size_t size) {
    if (size < 8) fail_file("is ", size, " bytes, shorter than its 8-byte header length");
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | p[i];
    if (n > max_header) fail_file("declares a header of ", n, " bytes, above the limit of ", max_header);
    if (n > size - 8) fail_file("declares a header of ", n, " bytes but only ", size - 8, " follow (truncated file)");
    const std::string_view text(reinterpret_cast<const char*>(p + 8), std::size_t(n));
    if (auto fault = json_guard(text, header_rules)) fail_guard(*fault);
    nlohmann::json h;
    try {
      h = nlohmann::json::parse(text);
    } catch (const std::exception& e) {
      fail_file("header is not valid JSON: ", e.what());
    }
    if (!h.is_object()) fail_file("header must be a JSON object");
    data_ = p + 8 + n;
    const std::size_t data_size = size - 8 - std::size_t(n);
    for (auto& [name, v] : h.items()) {
      if (name == "__metadata__") {
        if (v.is_null()) continue;  // the reference reads null as "no metadata"
        if (!v.is_object()) fail_file("__metadata__ must be an object of strings (or null)");
        for (auto& [k, s] : v.items()) {
          if (!s.is_string()) fail_file("__metadata__ value of '", k, "' is ", s.type_name(), ", not a string");
          metadata_[k] = s.get<std::string>();
        }
        continue;
      }
      infos_[name] = parse_entry(name, v, data_size);
    }
    // the reference's rule: sorted by (begin, end), the tensors tile [0, data_size) exactly
    std::vector<std::pair<std::pair<std::size_t, std::size_t>, std::string>> order;
    for (auto& [name, t] : infos_) order.push_back({{t.begin, t.end}, name});
    std::sort(order.begin(), order.end());
    std::size_t at = 0;
    for (auto& [span, name] : order) {
      if (span.first != at)
        fail(name, "starts at byte ", span.first, " but the previous tensor ends at ", at,
             ": tensors must be contiguous and must not overlap");
      at = span.second;
    }
    if (at != data_size) fail_file("tensors cover ", at, " bytes of a ", data_size, "-byte data section");
  }

  // nlohmann reads -0 as the signed integer 0; say -0
  static std::string signed_dump(const nlohmann::json& x) {
    return x.is_number_integer() && !x.is_number_unsigned() && x.get<std::int64_t>() == 0 ? "-0" : x.dump();
  }
  TensorInfo parse_entry(const std::string& name, const nlohmann::json& v, std::size_t data_size) const {
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets") ||
        !v["dtype"].is_string() || !v["shape"].is_array() || !v["data_offsets"].is_array() ||
        v["data_offsets"].size() != 2)
      fail(name, "needs an object with dtype (a string), shape (an array) and data_offsets [begin, end]");
    TensorInfo t;
    t.dtype = v["dtype"].get<std::string>();
    t.code = st_dtype(t.dtype);
    if (t.code == StDtype::unknown)
      fail(name, "has unknown dtype '", t.dtype, "' (safetensors names: F64 F32 F16 BF16 F8_E4M3 F8_E5M2 F8_E8M0 ",
           "F8_E4M3FNUZ F8_E5M2FNUZ F6_E2M3 F6_E3M2 F4 C64 I64 I32 I16 I8 U64 U32 U16 U8 BOOL)");
    const int bits = st_dtype_bits(t.code);
    t.elem = std::size_t(bits / 8);
    // shape entries and offsets: JSON integers without a sign (serde's usize refuses -0, 1.0, 1e0)
    std::uint64_t numel = 1;
    bool overflow = false;
    for (auto& d : v["shape"]) {
      if (!d.is_number_unsigned()) fail(name, "has shape entry ", signed_dump(d), ": extents are non-negative integers");
      const std::uint64_t x = d.get<std::uint64_t>();
      if (x > std::uint64_t(INT64_MAX)) fail(name, "has extent ", x, ", above pdiff's limit of 2^63 - 1");
      overflow = overflow || __builtin_mul_overflow(numel, x, &numel);  // in order, like the reference's fold
      t.shape.push_back(std::int64_t(x));
    }
    std::uint64_t nbits = 0;
    if (overflow || __builtin_mul_overflow(numel, std::uint64_t(bits), &nbits))
      fail(name, "has shape ", v["shape"].dump(), " x ", t.dtype, ", which overflows 64 bits");
    if (nbits % 8 != 0)
      fail(name, "has ", numel, " ", t.dtype, " elements = ", nbits, " bits: a tensor must fill whole bytes");
    for (auto& o : v["data_offsets"])
      if (!o.is_number_unsigned()) fail(name, "has data offset ", signed_dump(o), ": offsets are non-negative integers");
    t.begin = v["data_offsets"][0].get<std::size_t>();
    t.end = v["data_offsets"][1].get<std::size_t>();
    if (t.begin > t.end) fail(name, "has data_offsets [", t.begin, ", ", t.end, "] with begin after end");
    if (t.end - t.begin != nbits / 8)
      fail(name, "shape x dtype is ", nbits / 8, " bytes but data_offsets span ", t.end - t.begin);
    if (t.end > data_size)
      fail(name, "ends at byte ", t.end, " beyond the data section of ", data_size, " bytes (truncated file?)");
    return t;
  }

  std::string path_;
  std::shared_ptr<detail::Mapping> map_;
  const std::uint8_t* data_ = nullptr;
  std::map<std::string, TensorInfo> infos_;
  std::map<std::string, std::string> metadata_;
  std::shared_ptr<std::size_t> bytes_read_ = std::make_shared<std::size_t>(0);
};

}  // namespace pdiff
