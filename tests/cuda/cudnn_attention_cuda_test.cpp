// cuDNN's fused attention (attention_cudnn; `attention` takes it by default where built) against the
// CPU attention and pdiff's flash kernel: bf16, head dims 64 and 128, GQA, Sq ≠ Sk, lengths that are no
// multiple of any tile, causal (top-left) and not, with the log-sum-exp. Where pdiff was built without
// cuDNN, attention_cudnn must refuse with its reason (the flash kernel serves). Skipped (77) without a GPU.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "../layers/harness.hpp"
#include "pdiff/backend/cpu/attention.hpp"
#include "pdiff/layers/ctx.hpp"

using namespace pdiff;
using namespace pdiff::test;

TEST_CASE("cuDNN attention = the CPU attention (bf16: out 2e-2, LSE 1e-2) and = pdiff's flash kernel") {
  const auto bf = [](const Tensor<float>& t) { return to<OnCuda>(convert<bf16>(t)); };
  if (!cudnn_attention_built()) {
    const auto q = bf(random({1, 8, 2, 64}, 1));
    Tensor<bf16, OnCuda> out(q.shape());
    std::string why;
    CHECK_FALSE(attention_cudnn(q, q, q, out, nullptr, 0.125f, false, &why));
    CHECK(why.find("without cuDNN") != std::string::npos);
    MESSAGE("pdiff was built without cuDNN: ", why);
    return;
  }
  struct Case {
    std::int64_t B, Sq, Sk, H, Hkv, D;
    bool causal;
  };
  for (const Case c : {Case{2, 300, 300, 4, 2, 128, false}, Case{2, 300, 300, 4, 2, 128, true},
                       Case{1, 257, 513, 8, 8, 64, false}, Case{1, 1024, 1024, 24, 24, 128, true},
                       Case{1, 4608, 4608, 2, 2, 128, false}}) {
    CAPTURE(c.Sq);
    CAPTURE(c.Sk);
    CAPTURE(c.H);
    CAPTURE(c.D);
    CAPTURE(c.causal);
    // bf16-exact inputs: the CPU reads the same numbers as the GPU
    const auto round = [](const Tensor<float>& t) { return convert<float>(convert<bf16>(t)); };
    const auto q = round(random({c.B, c.Sq, c.H, c.D}, 11)), k = round(random({c.B, c.Sk, c.Hkv, c.D}, 12)),
               v = round(random({c.B, c.Sk, c.Hkv, c.D}, 13));
    Tensor<float> lse_ref;
    const auto want = attention(q, k, v, AttnArgs{.causal = c.causal}, &lse_ref);
    const auto dq = bf(q), dk = bf(k), dv = bf(v);
    Tensor<bf16, OnCuda> out(dq.shape());
    Tensor<float, OnCuda> lse({c.B, c.H, c.Sq});
    std::string why;
    REQUIRE_MESSAGE(attention_cudnn(dq, dk, dv, out, lse.data(), 1.0f / std::sqrt(float(c.D)), c.causal, &why), why);
    const auto got = to_host_f32(out);
    CHECK(rel_err(got, want) < 2e-2);
    CHECK(rel_err(to<OnCpu>(lse), lse_ref) < 1e-2);
    set_cudnn_attention(false);  // `attention` = the flash kernel here
    const auto flash = to_host_f32(attention(dq, dk, dv, BasicAttnArgs<OnCuda>{.causal = c.causal}));
    set_cudnn_attention(true);
    CHECK(rel_err(got, flash) < 2e-2);
    // and `attention` itself takes cuDNN by default: the same bits as the direct call
    CHECK(rel_err(got, to_host_f32(attention(dq, dk, dv, BasicAttnArgs<OnCuda>{.causal = c.causal}))) == 0.0);
  }
}
