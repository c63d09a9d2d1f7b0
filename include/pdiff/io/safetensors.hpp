// pdiff/io/safetensors.hpp — memory-mapped safetensors files, validated like the reference reader.
//
// File: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets:
// [begin, end]}, "__metadata__": {...}}, then the data. Checks (each a pdiff::Error naming the
// file and the tensor): file shorter than 8 bytes or than 8 + N; N above 100 MB; header not a JSON
// object; unknown dtype; shape × dtype size ≠ end − begin; offsets not contiguous from 0 (sorted),
// overlapping, or not ending at the data's end; duplicate names are rejected by the JSON parser.
// | member                        | result                                                         |
// |-------------------------------|----------------------------------------------------------------|
// | SafeTensors::open(path)       | the mapped, validated file                                     |
// | names(), contains(n), info(n) | tensor names (sorted), dtype/shape/offsets                     |
// | read(n)                       | the whole tensor as f32 (F32/F16/BF16/F64/I*/U8/BOOL converted)|
// | read_slice(n, dim, b, e)      | rows (dim 0) or columns (dim 1) [b, e) only: touches only their bytes |
// | read_i64(n)                   | integer tensors (ids, positions)                               |
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
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pdiff/backend/cpu/memory.hpp"
#include "pdiff/core/dtype.hpp"
#include "pdiff/core/tensor.hpp"

namespace pdiff {

struct TensorInfo {
  std::string dtype;  // "F32", "BF16", ...
  std::size_t elem = 0;
  std::vector<std::int64_t> shape;
  std::size_t begin = 0, end = 0;  // offsets into the data section
  std::int64_t numel() const {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
};

namespace detail {
inline std::size_t safetensors_dtype_size(const std::string& d) {
  static const std::map<std::string, std::size_t> sizes = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2},
      {"I8", 1},  {"U8", 1},  {"BOOL", 1}, {"U16", 2}, {"U32", 4}, {"U64", 8}, {"F8_E4M3", 1}, {"F8_E5M2", 1}};
  auto it = sizes.find(d);
  return it == sizes.end() ? 0 : it->second;
}

// Element i of a tensor stored as `dtype`, as float.
inline float load_as_float(const std::string& dtype, const std::uint8_t* p, std::size_t i) {
  auto rd = [&](auto tag) {
    decltype(tag) v;
    std::memcpy(&v, p + i * sizeof(v), sizeof(v));
    return v;
  };
  switch (dtype[0]) {
    case 'F':
      if (dtype == "F32") return rd(float{});
      if (dtype == "F16") return f16::to_float(rd(std::uint16_t{}));
      if (dtype == "F64") return float(rd(double{}));
      break;
    case 'B':
      if (dtype == "BF16") return float(bf16::from_bits(rd(std::uint16_t{})));
      if (dtype == "BOOL") return float(p[i] != 0);
      break;
    case 'I':
      if (dtype == "I64") return float(rd(std::int64_t{}));
      if (dtype == "I32") return float(rd(std::int32_t{}));
      if (dtype == "I16") return float(rd(std::int16_t{}));
      if (dtype == "I8") return float(rd(std::int8_t{}));
      break;
    case 'U':
      if (dtype == "U8") return float(p[i]);
      if (dtype == "U16") return float(rd(std::uint16_t{}));
      if (dtype == "U32") return float(rd(std::uint32_t{}));
      if (dtype == "U64") return float(rd(std::uint64_t{}));
      break;
  }
  throw Error("safetensors: dtype " + dtype + " cannot be converted to f32");
}

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
  static constexpr std::size_t max_header = 100'000'000;

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

  Tensor<float, OnCpu> read(const std::string& n) const {
    const TensorInfo& t = info(n);
    return read_slice(n, 0, 0, t.shape.empty() ? 1 : t.shape[0]);
  }
  // [b, e) along dim 0 (rows) or dim 1 (columns of a rank-2 tensor).
  Tensor<float, OnCpu> read_slice(const std::string& n, int dim, std::int64_t b, std::int64_t e) const {
    const TensorInfo& t = info(n);
    Shape full = Shape::from(t.shape.begin(), t.shape.end());
    if (full.rank == 0) full = Shape{1};
    PDIFF_CHECK(dim == 0 || (dim == 1 && full.rank == 2), "safetensors: '", n, "' ", full,
                ": only rows or the columns of a matrix can be sliced, asked dim ", dim);
    PDIFF_CHECK(0 <= b && b <= e && e <= full[dim], "safetensors: '", n, "' ", full, ": slice [", b, ", ", e,
                ") of dimension ", dim, " is out of range");
    const std::uint8_t* base = data_ + t.begin;
    Shape out_shape = full;
    out_shape[dim] = e - b;
    Tensor<float, OnCpu> out(out_shape);
    float* o = out.data();
    if (dim == 0) {
      const std::int64_t row = full.numel() / full[0];
      for (std::int64_t i = 0; i < (e - b) * row; ++i) o[i] = detail::load_as_float(t.dtype, base, std::size_t(b * row + i));
      *bytes_read_ += std::size_t((e - b) * row) * t.elem;
    } else {
      const std::int64_t rows = full[0], cols = full[1], w = e - b;
      for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t c = 0; c < w; ++c) o[r * w + c] = detail::load_as_float(t.dtype, base, std::size_t(r * cols + b + c));
      *bytes_read_ += std::size_t(rows * w) * t.elem;
    }
    return out;
  }
  Tensor<std::int64_t, OnCpu> read_i64(const std::string& n) const {
    const TensorInfo& t = info(n);
    Shape s = Shape::from(t.shape.begin(), t.shape.end());
    Tensor<std::int64_t, OnCpu> out(s.rank ? s : Shape{1});
    const std::uint8_t* base = data_ + t.begin;
    for (std::int64_t i = 0; i < out.numel(); ++i) {
      if (t.dtype == "I64") std::memcpy(&out(i), base + i * 8, 8);
      else out(i) = std::int64_t(detail::load_as_float(t.dtype, base, std::size_t(i)));
    }
    *bytes_read_ += std::size_t(out.numel()) * t.elem;
    return out;
  }

 private:
  void parse(const std::uint8_t* p, std::size_t size) {
    PDIFF_CHECK(size >= 8, "safetensors: '", path_, "' is ", size, " bytes, shorter than its 8-byte header length");
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | p[i];
    PDIFF_CHECK(n <= max_header, "safetensors: '", path_, "' declares a header of ", n, " bytes, above the limit of ",
                max_header);
    PDIFF_CHECK(n <= size - 8, "safetensors: '", path_, "' declares a header of ", n, " bytes but only ", size - 8,
                " follow (truncated file)");
    nlohmann::json h;
    try {
      h = nlohmann::json::parse(p + 8, p + 8 + n);
    } catch (const std::exception& e) {
      throw Error(detail::cat("safetensors: '", path_, "' header is not valid JSON: ", e.what()));
    }
    PDIFF_CHECK(h.is_object(), "safetensors: '", path_, "' header must be a JSON object");
    data_ = p + 8 + n;
    const std::size_t data_size = size - 8 - std::size_t(n);
    std::vector<std::pair<std::size_t, std::string>> order;
    for (auto& [name, v] : h.items()) {
      if (name == "__metadata__") {
        PDIFF_CHECK(v.is_object(), "safetensors: '", path_, "' __metadata__ must be an object of strings");
        for (auto& [k, s] : v.items()) {
          PDIFF_CHECK(s.is_string(), "safetensors: '", path_, "' __metadata__ value of '", k, "' is not a string");
          metadata_[k] = s.get<std::string>();
        }
        continue;
      }
      PDIFF_CHECK(v.is_object() && v.contains("dtype") && v.contains("shape") && v.contains("data_offsets") &&
                      v["dtype"].is_string() && v["shape"].is_array() && v["data_offsets"].is_array() &&
                      v["data_offsets"].size() == 2,
                  "safetensors: '", path_, "' tensor '", name, "' needs dtype, shape and data_offsets [begin, end]");
      TensorInfo t;
      t.dtype = v["dtype"].get<std::string>();
      t.elem = detail::safetensors_dtype_size(t.dtype);
      PDIFF_CHECK(t.elem != 0, "safetensors: '", path_, "' tensor '", name, "' has unknown dtype '", t.dtype, "'");
      std::size_t numel = 1;
      for (auto& d : v["shape"]) {
        PDIFF_CHECK(d.is_number_unsigned() || (d.is_number_integer() && d.get<std::int64_t>() >= 0),
                    "safetensors: '", path_, "' tensor '", name, "' has a negative or non-integer extent");
        std::uint64_t x = d.get<std::uint64_t>();
        PDIFF_CHECK(x < (std::uint64_t(1) << 40) && (x == 0 || numel <= (std::size_t(1) << 48) / x),
                    "safetensors: '", path_, "' tensor '", name, "' shape overflows");
        numel *= std::size_t(x);
        t.shape.push_back(std::int64_t(x));
      }
      for (auto& o : v["data_offsets"])
        PDIFF_CHECK(o.is_number_unsigned() || (o.is_number_integer() && o.get<std::int64_t>() >= 0), "safetensors: '",
                    path_, "' tensor '", name, "' has a negative or non-integer data offset");
      t.begin = v["data_offsets"][0].get<std::size_t>();
      t.end = v["data_offsets"][1].get<std::size_t>();
      PDIFF_CHECK(t.begin <= t.end, "safetensors: '", path_, "' tensor '", name, "' has data_offsets [", t.begin, ", ",
                  t.end, ") with begin after end");
      PDIFF_CHECK(t.end - t.begin == numel * t.elem, "safetensors: '", path_, "' tensor '", name, "': shape x dtype is ",
                  numel * t.elem, " bytes but data_offsets span ", t.end - t.begin);
      PDIFF_CHECK(t.end <= data_size, "safetensors: '", path_, "' tensor '", name, "' ends at byte ", t.end,
                  " beyond the data section of ", data_size, " bytes (truncated file?)");
      order.push_back({t.begin, name});
      infos_[name] = std::move(t);
    }
    std::sort(order.begin(), order.end(), [&](auto& a, auto& b) {
      return a.first != b.first ? a.first < b.first : infos_[a.second].end < infos_[b.second].end;
    });
    std::size_t at = 0;
    for (auto& [begin, name] : order) {
      PDIFF_CHECK(begin == at, "safetensors: '", path_, "' tensor '", name, "' starts at byte ", begin, " but the ",
                  "previous tensor ends at ", at, ": tensors must be contiguous and must not overlap");
      at = infos_[name].end;
    }
    PDIFF_CHECK(at == data_size, "safetensors: '", path_, "' tensors cover ", at, " bytes of a ", data_size,
                "-byte data section");
  }

  std::string path_;
  std::shared_ptr<detail::Mapping> map_;
  const std::uint8_t* data_ = nullptr;
  std::map<std::string, TensorInfo> infos_;
  std::map<std::string, std::string> metadata_;
  std::shared_ptr<std::size_t> bytes_read_ = std::make_shared<std::size_t>(0);
};

}  // namespace pdiff
