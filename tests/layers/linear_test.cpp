// The linear family, vocab-parallel embedding/LM head and the MLP blocks equal their serial
// computation on every layout (relative error ≤ 1e-5, fp32, CPU thread ranks).
#include <filesystem>
#include <map>
#include <span>
#include <string>

#include <unistd.h>

#include "harness.hpp"
#include "pdiff/io/checkpoint.hpp"
#include "pdiff/io/safetensors_write.hpp"

using namespace pdiff;
using namespace pdiff::test;

namespace {
// Serial reference y = x·Wᵀ + b.
Tensor<float> linear_ref(const Tensor<float>& x, const Tensor<float>& w, const Tensor<float>* b) {
  Replicated<Ctx<Layout<OnCpu>>> lin(w.size(1), w.size(0), b != nullptr);
  lin.load(w, b);
  SelfComm none;
  return lin.forward(none, x);
}
}  // namespace

TEST_CASE_TEMPLATE("ColumnParallel (gathered) and RowParallel equal serial", L, PDIFF_TEST_LAYOUTS) {
  using C = Ctx<L>;
  const std::int64_t B = 2, S = 8, in = 16, out = 24;
  auto x = random({B, S, in}, 1), w1 = random({out, in}, 2), b1 = random({out}, 3), w2 = random({in, out}, 4),
       b2 = random({in}, 5);
  auto ref = linear_ref(linear_ref(x, w1, &b1), w2, &b2);
  auto got = run_ranks<L>([&](auto& rank) {
    const int r = rank.coords.tp;
    ColumnParallel<C> up(in, out, true, /*gather=*/true);
    up.load(r, w1, &b1);
    auto h = up.forward(rank, x);  // full (B, S, out) on every rank
    // now shard the columns again by hand and use RowParallel
    ColumnParallel<C> up_local(in, out, true);
    up_local.load(r, w1, &b1);
    RowParallel<C> down(out, in, true);
    down.load(r, w2, &b2);
    auto y = down.forward(rank, up_local.forward(rank, x));
    CHECK(rel_err(linear_ref(h, w2, &b2), ref) < 1e-5);
    return y;
  });
  for (auto& y : got) CHECK(rel_err(y, ref) < 1e-5);
}

TEST_CASE_TEMPLATE("RowParallel with reduce_scatter over the sequence equals serial", L, PDIFF_TEST_LAYOUTS) {
  using C = Ctx<L>;
  const std::int64_t B = 2, S = 8, in = 16, out = 12;
  auto x = random({B, S, in}, 11), w = random({out, in}, 12), b = random({out}, 13);
  auto ref = linear_ref(x, w, &b);
  auto got = run_ranks<L>([&](auto& rank) {
    const int r = rank.coords.tp;
    RowParallel<C> lin(in, out, true, Reduce::scatter_seq);
    lin.load(r, w, &b);
    auto xs = narrow(x, 2, r * (in / L::tp), in / L::tp);
    auto y = lin.forward(rank, xs);  // (B, S/tp, out)
    return all_gather(rank.tp, y, 1);
  });
  for (auto& y : got) CHECK(rel_err(y, ref) < 1e-5);
}

TEST_CASE_TEMPLATE("QKVParallel splits heads (MHA, GQA and replicated kv heads)", L, PDIFF_TEST_LAYOUTS) {
  using C = Ctx<L>;
  for (std::int64_t kv : {8, 4, 2, 1}) {
    CAPTURE(kv);
    const std::int64_t B = 1, S = 4, hidden = 32, D = 4, H = 8;
    auto x = random({B, S, hidden}, 21), wq = random({H * D, hidden}, 22), wk = random({kv * D, hidden}, 23),
         wv = random({kv * D, hidden}, 24), bq = random({H * D}, 25), bk = random({kv * D}, 26),
         bv = random({kv * D}, 27);
    auto q_ref = linear_ref(x, wq, &bq), k_ref = linear_ref(x, wk, &bk), v_ref = linear_ref(x, wv, &bv);
    run_ranks<L>([&](auto& rank) {
      const int r = rank.coords.tp;
      QKVParallel<C> qkv(hidden, D, H, kv, true);
      qkv.load(r, wq, wk, wv, &bq, &bk, &bv);
      auto t = qkv.forward(rank, x);
      const std::int64_t hq = qkv.heads_local(), hk = qkv.kv_local();
      auto [kb, ke] = qkv.kv_range(r);
      CHECK(ke - kb == hk);
      CHECK(rel_err(t.q.view({B, S, hq * D}), narrow(q_ref, 2, r * hq * D, hq * D)) < 1e-5);
      CHECK(rel_err(t.k.view({B, S, hk * D}), narrow(k_ref, 2, kb * D, hk * D)) < 1e-5);
      CHECK(rel_err(t.v.view({B, S, hk * D}), narrow(v_ref, 2, kb * D, hk * D)) < 1e-5);
      return Tensor<float>();
    });
  }
}

TEST_CASE_TEMPLATE("MergedColumnParallel: unequal parts, separate and fused sources", L, PDIFF_TEST_LAYOUTS) {
  using C = Ctx<L>;
  const std::int64_t in = 12, a = 8, b = 16;
  auto x = random({3, in}, 31), wa = random({a, in}, 32), wb = random({b, in}, 33);
  auto fused = cat(wa, wb, 0);
  auto ra = linear_ref(x, wa, nullptr), rb = linear_ref(x, wb, nullptr);
  run_ranks<L>([&](auto& rank) {
    const int r = rank.coords.tp, P = L::tp;
    MergedColumnParallel<C> sep(in, {a, b}, false, Sources::separate);
    const Tensor<float>* ws[] = {&wa, &wb};
    sep.load(r, ws);
    MergedColumnParallel<C> fus(in, {a, b}, false, Sources::fused);
    fus.load(r, fused);
    auto ys = sep.forward(rank, x), yf = fus.forward(rank, x);
    CHECK(rel_err(yf, ys) == 0.0);
    CHECK(rel_err(sep.part(ys, 0), narrow(ra, 1, r * a / P, a / P)) < 1e-5);
    CHECK(rel_err(sep.part(ys, 1), narrow(rb, 1, r * b / P, b / P)) < 1e-5);
    return Tensor<float>();
  });
}

TEST_CASE_TEMPLATE("forward_parts = part(forward): one GEMM on some parts' weight rows (bias; fp32 and bf16 weights)", L,
                   PDIFF_TEST_LAYOUTS) {
  using C = Ctx<L>;
  const std::int64_t in = 12, a = 8, b = 4, c = 16;
  auto x = random({2, 3, in}, 51), w = random({a + b + c, in}, 52), bias = random({a + b + c}, 53);
  const auto w16 = convert<float>(convert<bf16>(w));  // bf16-exact: the CPU keeps it bf16 (weight16)
  const Tensor<float>* weights[] = {&w, &w16};
  for (const Tensor<float>* wt : weights) {
    run_ranks<L>([&](auto& rank) {
      const int r = rank.coords.tp;
      MergedColumnParallel<C> m(in, {a, b, c}, true, Sources::fused);
      const Tensor<float>* ws[] = {wt};
      const Tensor<float>* bs[] = {&bias};
      m.load(r, ws, bs);
      CHECK(m.core.holds_bf16() == (wt == &w16));
      const auto y = m.forward(rank, x);
      for (std::size_t i = 0; i < 3; ++i) CHECK(rel_err(m.forward_parts(rank, x, i, i + 1), m.part(y, i)) < 1e-6);
      const auto bc = m.forward_parts(rank, x, 1, 3);  // parts 1 and 2 together: [b | c] of this rank
      CHECK(bc.shape() == Shape{2, 3, (b + c) / L::tp});
      CHECK(rel_err(bc, narrow(y, -1, m.part_offset(1), (b + c) / L::tp)) < 1e-6);
      CHECK_THROWS_WITH_AS(m.forward_parts(rank, x, 2, 4), doctest::Contains("parts [2, 4) of 3"), Error);
      return Tensor<float>();
    });
  }
}

TEST_CASE_TEMPLATE("VocabParallelEmbedding and LM head equal serial, vocab not divisible", L, PDIFF_TEST_LAYOUTS) {
  using C = Ctx<L>;
  const std::int64_t V = 37, D = 8;
  auto E = random({V, D}, 41);
  Tensor<std::int64_t> ids({2, 5});
  for (std::int64_t i = 0; i < ids.numel(); ++i) ids(i) = (i * 7 + 3) % V;
  ids(0) = 0;
  ids(9) = V - 1;
  Tensor<float> ref({2, 5, D});
  for (std::int64_t i = 0; i < ids.numel(); ++i) std::copy_n(E.data() + ids(i) * D, D, ref.data() + i * D);
  auto h = random({2, 5, D}, 42);
  auto logits_ref = linear_ref(h, E, nullptr);
  auto got = run_ranks<L>([&](auto& rank) {
    const int r = rank.coords.tp;
    VocabParallelEmbedding<C> emb(V, D);
    emb.load(r, E);
    VocabParallelLMHead<C> head(V, D);
    head.load(r, E);
    CHECK(rel_err(head.forward(rank, h), logits_ref) < 1e-5);
    Tensor<std::int64_t> bad({1});
    bad(0) = V;
    CHECK_THROWS_WITH_AS(emb.forward(rank, bad), doctest::Contains("outside the vocabulary [0, 37)"), Error);
    return emb.forward(rank, ids);
  });
  for (auto& y : got) CHECK(rel_err(y, ref) == 0.0);
}

TEST_CASE_TEMPLATE("SwiGLU and GELU MLP blocks equal serial", L, PDIFF_TEST_LAYOUTS) {
  using C = Ctx<L>;
  const std::int64_t D = 16, I = 32;
  auto x = random({2, 6, D}, 51), wg = random({I, D}, 52, 0.3f), wu = random({I, D}, 53, 0.3f),
       wd = random({D, I}, 54, 0.3f), b1 = random({I}, 55), b2 = random({D}, 56);
  // serial references written out with the ops
  auto g = linear_ref(x, wg, nullptr), u = linear_ref(x, wu, nullptr);
  Tensor<float> act(g.shape());
  for (std::int64_t i = 0; i < g.numel(); ++i) act(i) = silu(g(i)) * u(i);
  auto swiglu_ref = linear_ref(act, wd, nullptr);
  auto gelu_ref = linear_ref(gelu_tanh(linear_ref(x, wg, &b1)), wd, &b2);
  auto got = run_ranks<L>([&](auto& rank) {
    const int r = rank.coords.tp;
    SwiGLUMLP<C> mlp(D, I, false);
    const Tensor<float>* ws[] = {&wg, &wu};
    mlp.gate_up.load(r, ws);
    mlp.down.load(r, wd);
    GeluMLP<C> gm(D, I, true);
    gm.fc1.load(r, wg, &b1);
    gm.fc2.load(r, wd, &b2);
    CHECK(rel_err(gm.forward(rank, x), gelu_ref) < 1e-5);
    return mlp.forward(rank, x);
  });
  for (auto& y : got) CHECK(rel_err(y, swiglu_ref) < 1e-5);
}

TEST_CASE("layer rules give clear errors") {
  using C = Ctx<Layout<TP<4>, OnCpu>>;
  CHECK_THROWS_WITH_AS(ColumnParallel<C>(8, 10, false), doctest::Contains("out_features (10) must be divisible"), Error);
  CHECK_THROWS_WITH_AS(RowParallel<C>(6, 8, false), doctest::Contains("in_features (6) must be divisible"), Error);
  CHECK_THROWS_WITH_AS(QKVParallel<C>(8, 2, 6, 6, false), doctest::Contains("num_heads (6) must be divisible"), Error);
  CHECK_THROWS_WITH_AS(QKVParallel<C>(8, 2, 12, 3, false), doctest::Contains("must divide one another"), Error);
}

// The shard arithmetic is a function of a degree given as a value: plans evaluate it for any TP
// degree at run time, and at compile time it is a constant (no switch over degrees, no layout type).
static_assert(QkvShards(4096, 128, 32, 8, false, 16).kv_local() == 1);
static_assert(QkvShards(4096, 128, 32, 8, true, 4).local_elements() == (8 + 2 * 2) * 128 * 4097);
static_assert(VocabShards(131073, 8, 4).rows_local() == 32769);

TEST_CASE("shard arithmetic at a run-time degree: local_elements is what the plans hold, and the layers use it") {
  for (int d = 1; d <= 8; ++d) {
    CAPTURE(d);
    auto count = [](const auto& g, int r) {
      std::int64_t n = g.weight_plan(r).local.numel();
      if (g.has_bias) n += g.bias_plan(r).local.numel();
      return n;
    };
    const std::int64_t in = 840, heads = 840;  // divisible by 1..8
    for (int r = 0; r < d; ++r) {
      CAPTURE(r);
      const RowShards row({in, 2 * in}, 16, true, d);
      CHECK(count(row, r) == row.local_elements());
      const ColumnShards col(16, in, true, d);
      CHECK(count(col, r) == col.local_elements());
      const MergedColumnShards mc(16, {in, 2 * in}, true, Sources::separate, d);
      CHECK(count(mc, r) == mc.local_elements());
      for (std::int64_t kv : {std::int64_t(1), std::int64_t(d), heads}) {
        if (heads % kv != 0 || (kv % d != 0 && d % kv != 0)) continue;
        const QkvShards qkv(32, 8, heads, kv, true, d);
        CHECK(count(qkv, r) == qkv.local_elements());
      }
      const VocabShards vocab(1001, 8, d);
      CHECK(count(vocab, r) == vocab.local_elements());
    }
  }
  // The layer at TP<4> is its shard arithmetic at degree 4.
  using C = Ctx<Layout<TP<4>, OnCpu>>;
  CHECK(QKVParallel<C>(32, 8, 16, 2, true).local_elements() == QkvShards(32, 8, 16, 2, true, 4).local_elements());
  CHECK(RowParallel<C>(std::vector<std::int64_t>{16, 32}, 8, false).in_local() == 12);
  // the shards holding a std::vector (packed parts) are run-time values only
  CHECK(RowShards({6144, 18432}, 6144, false, 4).local_elements() == 6144 * 6144);
  CHECK(MergedColumnShards(64, {64, 64, 64, 96, 96}, false, Sources::fused, 8).out_local() == 48);
  CHECK_THROWS_WITH_AS(RowShards({16}, 8, false, 0), doctest::Contains("must be at least 1"), Error);
  CHECK_THROWS_WITH_AS(MergedColumnShards(8, {}, false, Sources::fused, 0), doctest::Contains("must be at least 1"),
                       Error);
}

namespace {
// A weight source over full tensors in memory, with Checkpoint's reading interface.
struct MapSource {
  std::map<std::string, Tensor<float>> tensors;
  Tensor<float> read(const std::string& n) const { return tensors.at(n); }
  Tensor<float> read_plan(const ShardPlan& plan, std::span<const std::string> names,
                          std::span<const std::vector<std::int64_t>> full) const {
    std::vector<const Tensor<float>*> src;
    for (std::size_t i = 0; i < names.size(); ++i) {
      const auto& t = tensors.at(names[i]);
      const auto& s = t.shape();
      PDIFF_CHECK(i < full.size() && std::vector<std::int64_t>(s.dims.begin(), s.dims.begin() + s.rank) == full[i],
                  "MapSource: '", names[i], "' does not have the layer's full shape");
      src.push_back(&t);
    }
    return materialize(plan, src);
  }
};
static_assert(WeightSource<MapSource> && WeightSource<Checkpoint>);
static_assert(!WeightSource<Tensor<float>>);
}  // namespace

TEST_CASE("layers load their own shard from a weight source (names only; shapes come from the layer)") {
  using C = Ctx<Layout<TP<2>, OnCpu>>;
  MapSource src;
  src.tensors = {{"q", random({16, 8}, 1)},  {"k", random({8, 8}, 2)},   {"v", random({8, 8}, 3)},
                 {"bq", random({16}, 4)},    {"bk", random({8}, 5)},     {"bv", random({8}, 6)},
                 {"o", random({8, 16}, 7)},  {"gate", random({12, 8}, 8)}, {"up", random({12, 8}, 9)},
                 {"emb", random({11, 8}, 10)}};
  const auto& t = src.tensors;
  for (int r = 0; r < 2; ++r) {
    CAPTURE(r);
    QKVParallel<C> a(8, 4, 4, 2, true), b(8, 4, 4, 2, true);
    a.load(src, r, {"q", "k", "v"}, {"bq", "bk", "bv"});
    b.load(r, t.at("q"), t.at("k"), t.at("v"), &t.at("bq"), &t.at("bk"), &t.at("bv"));
    CHECK(rel_err(a.core.weight, b.core.weight) == 0.0);
    CHECK(rel_err(a.core.bias, b.core.bias) == 0.0);
    RowParallel<C> o1(16, 8, false), o2(16, 8, false);
    o1.load(src, r, {"o"});
    o2.load(r, t.at("o"));
    CHECK(rel_err(o1.core.weight, o2.core.weight) == 0.0);
    MergedColumnParallel<C> m1(8, {12, 12}, false, Sources::separate), m2(8, {12, 12}, false, Sources::separate);
    m1.load(src, r, {"gate", "up"});
    const Tensor<float>* gu[] = {&t.at("gate"), &t.at("up")};
    m2.load(r, gu);
    CHECK(rel_err(m1.core.weight, m2.core.weight) == 0.0);
    VocabParallelEmbedding<C> e1(11, 8), e2(11, 8);
    e1.load(src, r, {"emb"});
    e2.load(r, t.at("emb"));
    CHECK(rel_err(e1.weight, e2.weight) == 0.0);  // random values are not exactly bf16: kept fp32 both ways
    CHECK(e1.weight.size(0) == 6);  // 11 rows padded to 12, 6 per rank
  }
  QKVParallel<C> q(8, 4, 4, 2, true);
  CHECK_THROWS_WITH_AS(q.load(src, 0, {"q", "k"}), doctest::Contains("3 weight tensor(s) expected, 2 named"), Error);
  CHECK_THROWS_WITH_AS(q.load(src, 0, {"q", "k", "v"}), doctest::Contains("has a bias: 3 bias tensor(s) expected, 0"),
                       Error);
  RowParallel<C> o(16, 8, false);
  CHECK_THROWS_WITH_AS(o.load(src, 0, {"o"}, {"bq"}), doctest::Contains("'bq' given but the layer of 'o' has no bias"),
                       Error);
  RowParallel<C> wrong(8, 8, false);  // the config says (8, 8); the source holds (8, 16)
  CHECK_THROWS_WITH_AS(wrong.load(src, 0, {"o"}), doctest::Contains("does not have the layer's full shape"), Error);
}

TEST_CASE_TEMPLATE("a BF16 checkpoint loads its shards in bf16 (no f32 copy) = the same values through f32", L,
                   PDIFF_TEST_LAYOUTS) {
  using C = Ctx<L>;
  const std::int64_t in = 16, out = 8;
  // bf16-exact values: the f32 path keeps them bf16 too (weight16), so both ways must agree bit for bit
  const auto w = convert<float>(convert<bf16>(random({out, in}, 61))),
             wq = convert<float>(convert<bf16>(random({out, in}, 62)));
  const auto dir = std::filesystem::temp_directory_path() / ("pdiff_bf16_load_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  write_safetensors((dir / "model.safetensors").string(), {{"w", w}, {"q", wq}}, DType::bf16);
  const auto ck = Checkpoint::open(dir);
  REQUIRE(ck.all_bf16(TensorNames{"w", "q"}));
  const MapSource mem{{{"w", w}, {"q", wq}}};
  const auto x = random({3, in}, 63);
  run_ranks<L>([&](auto& rank) {
    const int r = rank.coords.tp;
    ColumnParallel<C> c1(in, out, false), c2(in, out, false);
    c1.load(ck, r, {"w"});
    c2.load(mem, r, {"w"});
    RowParallel<C> r1(in, out, false), r2(in, out, false);
    r1.load(ck, r, {"w"});
    r2.load(mem, r, {"w"});
    MergedColumnParallel<C> m1(in, {out, out}, false, Sources::separate), m2(in, {out, out}, false, Sources::separate);
    m1.load(ck, r, {"w", "q"});
    m2.load(mem, r, {"w", "q"});
    CHECK(c1.core.holds_bf16());  // read as bf16 and kept so (the automatic CPU weight mode)
    CHECK(rel_err(c1.forward(rank, x), c2.forward(rank, x)) == 0.0);
    CHECK(rel_err(m1.forward(rank, x), m2.forward(rank, x)) == 0.0);
    const auto xr = narrow(x, -1, r * in / L::tp, in / L::tp);
    CHECK(rel_err(r1.forward(rank, xr), r2.forward(rank, xr)) == 0.0);
    return Tensor<float>();
  });
  std::filesystem::remove_all(dir);
}
