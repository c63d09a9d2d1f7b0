// src/cuda/attention_cudnn.cpp — cuDNN's fused attention (SDPA, through the header-only cudnn-frontend)
// for bf16 q/k/v in pdiff's (B, S, H, D) layout, with the log-sum-exp Ring attention merges. Host code
// only (compiled by the C++ compiler into pdiff_cuda_ops); built with cuDNN when CMake finds cudnn.h,
// libcudnn and the frontend headers (PDIFF_WITH_CUDNN), else every entry point says "not built".
//
// Why: on an H200 (2026-12-04, docs/gpu-results.md) pdiff's mma.sync flash kernel ran at 181–236 TFLOP/s at
// D = 128 while PyTorch's SDPA, which takes cuDNN's kernel, ran at 426–668 on the same shapes.
//
// | piece          | what                                                                                   |
// |----------------|----------------------------------------------------------------------------------------|
// | graph per case | (device, B, H, Hkv, Sq, Sk, D, causal, LSE wanted, scale): built once per thread, kept   |
// | layout         | q/o (B, Sq, H, D) as strides (Sq·H·D, D, H·D, 1) of cuDNN's (b, h, s, d); k/v likewise    |
// | causal         | top-left diagonal: key j ≤ query i, pdiff's rule when q_offset = k_offset                |
// | LSE            | cuDNN's stats (B, H, Sq, 1) fp32, natural log: pdiff's lse (B, H, Sq)                      |
// | handle         | one cudnnHandle_t per thread and device, bound to the thread's current stream per call   |
// A case cuDNN refuses (its support check) is remembered and answered false at once: the caller runs the
// flash kernel instead. `attention` takes this path by default where pdiff was built with cuDNN (an H200
// run of 2026-12-04 checked it against the CPU and the flash kernel: 653–695 TFLOP/s at D = 128 against the
// flash kernel's 225–237); PDIFF_ATTENTION=flash or set_cudnn_attention(false) keeps the flash kernel.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <unordered_map>

#include "pdiff/backend/cuda/device.hpp"
#include "pdiff/backend/cuda/memory.hpp"
#include "pdiff/backend/cuda/ops.hpp"
#include "pdiff/backend/cuda/stream.hpp"

#if defined(PDIFF_WITH_CUDNN)
#include <cudnn.h>
#include <cudnn_frontend.h>
#endif

namespace pdiff {

bool cudnn_attention_built() {
#if defined(PDIFF_WITH_CUDNN)
  return true;
#else
  return false;
#endif
}

namespace {
std::atomic<int> cudnn_choice{-1};  // -1: PDIFF_ATTENTION decides; 0 / 1: set_cudnn_attention
}  // namespace

void set_cudnn_attention(bool on) { cudnn_choice.store(on ? 1 : 0); }

bool cudnn_attention_requested() {
  // PDIFF_ATTENTION: unset or "cudnn" takes cuDNN where built, "flash" the flash kernel; anything else is an
  // error naming the choices (read once)
  static const bool env = [] {
    const char* e = std::getenv("PDIFF_ATTENTION");
    if (!e || !*e || std::strcmp(e, "cudnn") == 0) return true;
    if (std::strcmp(e, "flash") == 0) return false;
    throw Error(std::string("PDIFF_ATTENTION='") + e + "': expected 'cudnn' (the default where built) or 'flash'");
  }();
  const int c = cudnn_choice.load();
  return (c < 0 ? env : c == 1) && cudnn_attention_built();
}

#if defined(PDIFF_WITH_CUDNN)
namespace {
namespace fe = cudnn_frontend;

enum : std::int64_t { kQ = 1, kK, kV, kO, kStats };

struct Case {
  int device;
  std::int64_t b, h, hk, sq, sk, d;
  bool causal, stats;
  float scale;
  auto tie() const { return std::tie(device, b, h, hk, sq, sk, d, causal, stats, scale); }
  bool operator<(const Case& o) const { return tie() < o.tie(); }
};

struct Plan {
  std::shared_ptr<fe::graph::Graph> graph;  // null: cuDNN refused this case (why says how)
  std::int64_t workspace = 0;
  std::string why;
};

struct Handles {
  std::map<int, cudnnHandle_t> by_device;
  ~Handles() {
    for (auto& [dev, h] : by_device) cudnnDestroy(h);  // at thread exit; errors are of no use then
  }
};

cudnnHandle_t handle_for(int device, std::string& why) {
  thread_local Handles hs;
  auto it = hs.by_device.find(device);
  if (it != hs.by_device.end()) return it->second;
  cudnnHandle_t h = nullptr;
  const cudnnStatus_t st = cudnnCreate(&h);
  if (st != CUDNN_STATUS_SUCCESS) {
    why = std::string("cudnnCreate failed: ") + cudnnGetErrorString(st);
    return nullptr;
  }
  hs.by_device.emplace(device, h);
  return h;
}

Plan build(cudnnHandle_t handle, const Case& c) {
  auto g = std::make_shared<fe::graph::Graph>();
  g->set_io_data_type(fe::DataType_t::BFLOAT16)
      .set_intermediate_data_type(fe::DataType_t::FLOAT)
      .set_compute_data_type(fe::DataType_t::FLOAT);
  // (b, h, s, d) views of pdiff's (B, S, H, D) memory
  auto bshd = [](std::int64_t b, std::int64_t h, std::int64_t s, std::int64_t d) {
    return std::pair{std::vector<std::int64_t>{b, h, s, d}, std::vector<std::int64_t>{s * h * d, d, h * d, 1}};
  };
  const auto [qd, qs] = bshd(c.b, c.h, c.sq, c.d);
  const auto [kd, ks] = bshd(c.b, c.hk, c.sk, c.d);
  auto q = g->tensor(fe::graph::Tensor_attributes().set_name("Q").set_uid(kQ).set_dim(qd).set_stride(qs));
  auto k = g->tensor(fe::graph::Tensor_attributes().set_name("K").set_uid(kK).set_dim(kd).set_stride(ks));
  auto v = g->tensor(fe::graph::Tensor_attributes().set_name("V").set_uid(kV).set_dim(kd).set_stride(ks));
  auto opt = fe::graph::SDPA_attributes().set_name("sdpa").set_generate_stats(c.stats).set_attn_scale(c.scale);
  if (c.causal) opt.set_causal_mask(true);
  auto [o, stats] = g->sdpa(q, k, v, opt);
  o->set_output(true).set_dim(qd).set_stride(qs).set_uid(kO);
  if (c.stats && stats) stats->set_output(true).set_data_type(fe::DataType_t::FLOAT).set_uid(kStats);
  Plan p;
  if (auto e = g->build(handle, {fe::HeurMode_t::A}); !e.is_good()) {
    p.why = e.get_message();
    return p;
  }
  if (auto e = g->get_workspace_size(p.workspace); !e.is_good()) {
    p.why = e.get_message();
    return p;
  }
  p.graph = std::move(g);
  return p;
}
}  // namespace

bool attention_cudnn(const CudaTensor<bf16>& q, const CudaTensor<bf16>& k, const CudaTensor<bf16>& v,
                     CudaTensor<bf16>& out, float* lse, float scale, bool causal, std::string* why_not) {
  auto refuse = [&](std::string why) {
    if (why_not) *why_not = std::move(why);
    return false;
  };
  PDIFF_CHECK(q.rank() == 4 && k.rank() == 4 && v.rank() == 4 && k.shape() == v.shape() && out.shape() == q.shape(),
              "attention_cudnn: q", q.shape(), ", k", k.shape(), ", v", v.shape(), ", out", out.shape(),
              " must be (B, S, H, D) with k = v in shape and out = q");
  const Case c{cuda_device(), q.size(0), q.size(2), k.size(2), q.size(1), k.size(1), q.size(3), causal, lse != nullptr,
               scale};
  if (c.b == 0 || c.sq == 0) return true;  // nothing to compute
  if (c.sk == 0) return refuse("no keys");
  std::string why;
  const cudnnHandle_t h = handle_for(c.device, why);
  if (!h) return refuse(why);
  thread_local std::map<Case, Plan> plans;
  auto it = plans.find(c);
  if (it == plans.end()) it = plans.emplace(c, build(h, c)).first;
  const Plan& p = it->second;
  if (!p.graph) return refuse("cuDNN cannot take this case: " + p.why);
  if (const cudnnStatus_t st = cudnnSetStream(h, current_cuda_stream()); st != CUDNN_STATUS_SUCCESS)
    return refuse(std::string("cudnnSetStream failed: ") + cudnnGetErrorString(st));
  std::unordered_map<std::int64_t, void*> pack{{kQ, const_cast<bf16*>(q.data())},
                                               {kK, const_cast<bf16*>(k.data())},
                                               {kV, const_cast<bf16*>(v.data())},
                                               {kO, out.data()}};
  if (lse) pack[kStats] = lse;
  CudaTensor<std::uint8_t> workspace({std::max<std::int64_t>(p.workspace, 1)});
  auto e = p.graph->execute(h, pack, workspace.data());
  PDIFF_CHECK(e.is_good(), "attention_cudnn: cuDNN's SDPA failed on B ", c.b, ", H ", c.h, "/", c.hk, ", Sq ", c.sq,
              ", Sk ", c.sk, ", D ", c.d, ": ", e.get_message());
  return true;
}
#else
bool attention_cudnn(const CudaTensor<bf16>&, const CudaTensor<bf16>&, const CudaTensor<bf16>&, CudaTensor<bf16>&,
                     float*, float, bool, std::string* why_not) {
  if (why_not) *why_not = "pdiff was built without cuDNN (cudnn.h, libcudnn and cudnn-frontend not all found)";
  return false;
}
#endif

}  // namespace pdiff
