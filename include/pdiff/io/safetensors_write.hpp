// pdiff/io/safetensors_write.hpp — write_safetensors(path, tensors, dtype): saves CPU tensors in
// the safetensors format (F32, or BF16/F16 converted), tensors laid out in name order. Used to save
// latents and by tests that build checkpoints; files open in the reference `safetensors` library.
#pragma once

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pdiff/backend/cpu/memory.hpp"
#include "pdiff/core/dtype.hpp"
#include "pdiff/core/tensor.hpp"

namespace pdiff {

inline void write_safetensors(const std::string& path, const std::map<std::string, Tensor<float, OnCpu>>& tensors,
                              DType dtype = DType::f32, const std::map<std::string, std::string>& metadata = {}) {
  PDIFF_CHECK(dtype == DType::f32 || dtype == DType::bf16 || dtype == DType::f16, "write_safetensors: dtype ",
              dtype_name(dtype), " is not supported (f32, bf16, f16)");
  const char* tag = dtype == DType::f32 ? "F32" : dtype == DType::bf16 ? "BF16" : "F16";
  const std::size_t es = dtype_size(dtype);
  nlohmann::json h = nlohmann::json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  std::size_t at = 0;
  for (auto& [name, t] : tensors) {
    std::vector<std::int64_t> shape(t.shape().dims.begin(), t.shape().dims.begin() + t.rank());
    const std::size_t bytes = std::size_t(t.numel()) * es;
    h[name] = {{"dtype", tag}, {"shape", shape}, {"data_offsets", {at, at + bytes}}};
    at += bytes;
  }
  std::string header = h.dump();
  while ((8 + header.size()) % 8) header += ' ';  // the reference pads the header to 8 bytes
  std::ofstream out(path, std::ios::binary);
  PDIFF_CHECK(out, "write_safetensors: cannot create '", path, "'");
  std::uint64_t n = header.size();
  char len[8];
  for (int i = 0; i < 8; ++i) len[i] = char((n >> (8 * i)) & 0xff);
  out.write(len, 8);
  out.write(header.data(), std::streamsize(header.size()));
  for (auto& [name, t] : tensors) {
    for (std::int64_t i = 0; i < t.numel(); ++i) {
      if (dtype == DType::f32) {
        out.write(reinterpret_cast<const char*>(t.data() + i), 4);
      } else {
        std::uint16_t b = dtype == DType::bf16 ? bf16(t(i)).bits : f16(t(i)).bits;
        out.write(reinterpret_cast<const char*>(&b), 2);
      }
    }
  }
  PDIFF_CHECK(out.good(), "write_safetensors: writing '", path, "' failed");
}

}  // namespace pdiff
