// libFuzzer target: the safetensors header parser (SafeTensors::parse_buffer) on arbitrary bytes, then
// every tensor's info and (when small) its values as f32, and a row slice. A pdiff::Error is the
// expected answer to a malformed file; any other exception or a sanitizer report is a finding.
#include <cstdint>
#include <string>

#include "pdiff/io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    auto st = pdiff::SafeTensors::parse_buffer(data, size, "fuzz.safetensors");
    for (const auto& n : st.names()) {
      const auto& info = st.info(n);
      if (info.numel() > (1 << 16)) continue;
      auto t = st.read(n);
      if (!info.shape.empty() && info.shape[0] > 0) st.read_slice(n, 0, 0, 1);
      (void)t;
    }
  } catch (const pdiff::Error&) {
  }
  return 0;
}
