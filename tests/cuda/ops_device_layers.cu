// The CUDA side of the layer-op tests: uploads, launches one kernel of
// include/pdiff/backend/cuda/kernels, downloads. Every function synchronises and turns CUDA errors
// into pdiff::Error.
#include "ops_device_util.cuh"
#include "pdiff/backend/cuda/kernels/activation.cuh"
#include "pdiff/backend/cuda/kernels/gated_add.cuh"
#include "pdiff/backend/cuda/kernels/group_norm.cuh"
#include "pdiff/backend/cuda/kernels/layer_norm.cuh"
#include "pdiff/backend/cuda/kernels/rms_norm.cuh"
#include "pdiff/backend/cuda/kernels/rope.cuh"
#include "pdiff/backend/cuda/kernels/softmax.cuh"
#include "pdiff/backend/cuda/kernels/swiglu.cuh"

namespace pdiff::test {

std::vector<float> dev_rms_norm(Dt dt, const std::vector<float>& x, const std::vector<float>* w, std::int64_t rows,
                                int d, float eps) {
  return by_type(dt, [&](auto tag) {
    using T = decltype(tag);
    auto bx = upload<T>(x), bw = upload_opt<T>(w);
    Buf<T> out(x.size());
    cuda::launch_rms_norm<T>(bx.p, bw.p, out.p, rows, d, eps, nullptr);
    return download(out);
  });
}

std::vector<float> dev_layer_norm_modulate(Dt dt, const std::vector<float>& x, const std::vector<float>* w,
                                           const std::vector<float>* b, const std::vector<float>* shift,
                                           const std::vector<float>* scale, std::int64_t batch, std::int64_t seq,
                                           int d, float eps) {
  return by_type(dt, [&](auto tag) {
    using T = decltype(tag);
    auto bx = upload<T>(x), bw = upload_opt<T>(w), bb = upload_opt<T>(b), bsh = upload_opt<T>(shift),
         bsc = upload_opt<T>(scale);
    Buf<T> out(x.size());
    cuda::launch_layer_norm_modulate<T>(bx.p, bw.p, bb.p, bsh.p, bsc.p, out.p, batch, seq, d, eps, nullptr);
    return download(out);
  });
}

std::vector<float> dev_group_norm(Dt dt, const std::vector<float>& x, const std::vector<float>* w,
                                  const std::vector<float>* b, std::int64_t batch, std::int64_t channels,
                                  std::int64_t rest, int groups, float eps) {
  return by_type(dt, [&](auto tag) {
    using T = decltype(tag);
    auto bx = upload<T>(x), bw = upload_opt<T>(w), bb = upload_opt<T>(b);
    Buf<T> out(x.size());
    cuda::launch_group_norm<T>(bx.p, bw.p, bb.p, out.p, batch, channels, rest, groups, eps, nullptr);
    return download(out);
  });
}

std::vector<float> dev_rope(Dt dt, const std::vector<float>& x, const std::vector<float>& cos,
                            const std::vector<float>& sin, std::int64_t batch, std::int64_t seq, std::int64_t heads,
                            int d, bool batched, bool interleaved) {
  return by_type(dt, [&](auto tag) {
    using T = decltype(tag);
    auto bx = upload<T>(x);
    auto bc = upload<float>(cos), bs = upload<float>(sin);
    cuda::launch_rope<T>(bx.p, bc.p, bs.p, batch, seq, heads, d, batched,
                         interleaved ? cuda::RopePairs::interleaved : cuda::RopePairs::half, nullptr);
    return download(bx);
  });
}

std::vector<float> dev_activation(Dt dt, const std::vector<float>& x, bool gelu) {
  return by_type(dt, [&](auto tag) {
    using T = decltype(tag);
    auto bx = upload<T>(x);
    Buf<T> out(x.size());
    if (gelu) cuda::launch_gelu_tanh<T>(bx.p, out.p, std::int64_t(x.size()), nullptr);
    else cuda::launch_silu<T>(bx.p, out.p, std::int64_t(x.size()), nullptr);
    return download(out);
  });
}

std::vector<float> dev_swiglu(Dt dt, const std::vector<float>& x, std::int64_t rows, std::int64_t f) {
  return by_type(dt, [&](auto tag) {
    using T = decltype(tag);
    auto bx = upload<T>(x);
    Buf<T> out(std::size_t(rows * f));
    cuda::launch_swiglu<T>(bx.p, out.p, rows, f, nullptr);
    return download(out);
  });
}

std::vector<float> dev_gated_add(Dt dt, const std::vector<float>& x, const std::vector<float>* gate,
                                 const std::vector<float>& y, std::int64_t batch, std::int64_t seq, std::int64_t d) {
  return by_type(dt, [&](auto tag) {
    using T = decltype(tag);
    auto bx = upload<T>(x), bg = upload_opt<T>(gate), by = upload<T>(y);
    cuda::launch_gated_add<T>(bx.p, bg.p, by.p, batch, seq, d, nullptr);
    return download(bx);
  });
}

std::vector<float> dev_softmax(Dt dt, const std::vector<float>& x, std::int64_t rows, int n, float scale) {
  return by_type(dt, [&](auto tag) {
    using T = decltype(tag);
    auto bx = upload<T>(x);
    Buf<T> out(x.size());
    cuda::launch_softmax<T>(bx.p, out.p, rows, n, scale, nullptr);
    return download(out);
  });
}

}  // namespace pdiff::test
