// MoE<C> and EP<N>: serial equals HunyuanImage-3.0's own MoE layer (tests/golden/hunyuan_moe_tiny,
// made by tools/make_hunyuan_moe_goldens.py from the official code); every TP / EP layout equals
// serial — experts spread inside a TP group (replicated tokens, one all_reduce) and EP groups that
// span Ulysses chunks and CFG branches (dispatch/combine by all-to-all); the all-to-all bytes equal
// the routing's count; a router that sends every token to one expert; clear errors.
#include <doctest/doctest.h>

#include "harness.hpp"
#include "pdiff/io/checkpoint.hpp"
#include "pdiff/io/safetensors_write.hpp"
#include "pdiff/models/hunyuan_image3/config.hpp"

using namespace pdiff;
using namespace pdiff::test;
namespace fs = std::filesystem;

namespace {
struct At {
  int index;
};
const fs::path dir = fs::path(PDIFF_SOURCE_DIR) / "tests/golden/hunyuan_moe_tiny";
const std::string prefix = "model.layers.0.mlp.";

MoeConfig config() { return HunyuanImage3Config::load_moe(dir).moe(0); }
SafeTensors goldens() { return SafeTensors::open((dir / "goldens.safetensors").string()); }

// Every rank's input: branch b = cfg + CFG·dp coordinate takes x[b] (B = 1 each) — or the whole x
// when the layout has one branch — cut to the rank's sequence chunk.
template <class L>
Tensor<float> rank_input(const Tensor<float>& x, int index) {
  constexpr int branches = L::cfg * L::dp;
  const auto c = L::coords(index);
  Tensor<float> mine = branches == 1 ? x : narrow(x, 0, c.cfg + L::cfg * c.dp, 1);
  const SpChunk ch = sp_chunk<L>(At{index}, x.size(1));
  return narrow(mine, 1, ch.begin, ch.size());
}

template <class L>
std::vector<Tensor<float>> run(const Tensor<float>& x, std::vector<MoeLoad>* loads = nullptr,
                               std::vector<CommStats>* ep_stats = nullptr) {
  const auto ck = Checkpoint::open(dir);
  const auto cfg = config();
  if (loads) loads->resize(L::world_size);
  if (ep_stats) ep_stats->resize(L::world_size);
  return run_ranks<L>([&](auto& rank) {
    const auto moe = MoE<Ctx<L>>::load(ck, cfg, rank, prefix);
    const auto i = std::size_t(rank.index);
    auto y = moe.forward(rank, rank_input<L>(x, rank.index), loads ? &(*loads)[i] : nullptr);
    if constexpr (L::ep > 1)
      if (ep_stats) (*ep_stats)[i] = rank.ep.stats();
    return y;
  });
}
}  // namespace

TEST_CASE("the HunyuanImage-3.0 config gives the MoE layer; unsupported options are clear errors") {
  const auto m = config();
  CHECK(m.hidden == 64);
  CHECK(m.experts == 8);
  CHECK(m.top_k == 2);
  CHECK(m.intermediate == 32);
  CHECK(m.shared_intermediate == 32);
  CHECK(m.gate_up == GateUp::up_first);
  auto j = JsonConfig::load(dir / "config.json").json();
  j["moe_drop_tokens"] = true;
  CHECK_THROWS_WITH_AS(HunyuanImage3Config::from_moe(JsonConfig(j, "c")), doctest::Contains("moe_drop_tokens"), Error);
  j["moe_drop_tokens"] = false;
  j["moe_topk"] = 9;
  CHECK_THROWS_WITH_AS(HunyuanImage3Config::from_moe(JsonConfig(j, "c")), doctest::Contains("top_k (9) must be in [1, experts = 8]"),
                       Error);
}

TEST_CASE("serial MoE equals HunyuanImage-3.0's MoE layer: routing, load and output") {
  const auto g = goldens();
  for (std::string c : {"", "_skew"}) {
    CAPTURE(c);
    const auto x = g.read("x" + c);
    std::vector<MoeLoad> loads;
    const auto y = run<Layout<OnCpu>>(x, &loads)[0];
    CHECK(rel_err(y, g.read("out" + c)) < 1e-5);
    // the routing: experts and weights per token as the reference's top-k (column 0 = top-1)
    const auto logits = g.read("router_logits" + c);
    const auto r = moe_route(logits, 2, true);
    const auto idx = g.read("topk_idx" + c);
    const auto w = g.read("topk_weight" + c);
    int wrong = 0;
    for (std::int64_t i = 0; i < idx.numel(); ++i)
      wrong += r.expert[std::size_t(i)] != std::int32_t(idx(i)) || std::abs(r.weight[std::size_t(i)] - w(i)) > 1e-6f;
    CHECK(wrong == 0);
    const auto want = g.read("tokens_per_expert" + c);
    for (std::int64_t e = 0; e < 8; ++e) CHECK(loads[0].tokens[std::size_t(e)] == std::int64_t(want(e)));
  }
  // the skewed router sends every token to expert 3 first: 48 of 96 choices on one expert of 8
  std::vector<MoeLoad> loads;
  run<Layout<OnCpu>>(g.read("x_skew"), &loads);
  CHECK(loads[0].tokens[3] == 48);
  CHECK(loads[0].max_over_mean() == doctest::Approx(4.0));
}

TEST_CASE("moe_group: the routing of a token range grouped by expert, stable; experts() narrows it") {
  const auto logits = goldens().read("router_logits");  // (48, 8)
  const auto r = moe_route(logits, 2, true);
  for (auto [t0, t1] : {std::pair<std::int64_t, std::int64_t>{0, 48}, {10, 31}, {5, 5}}) {
    CAPTURE(t0);
    const auto g = moe_group(logits, 2, true, 1.0f, t0, t1);
    REQUIRE(g.rows() == (t1 - t0) * 2);
    REQUIRE(g.count.size() == 8);
    std::int64_t j = 0;
    for (std::int32_t e = 0; e < 8; ++e) {
      // expert e's rows: exactly the tokens in [t0, t1) that chose e, in order, with their weights
      for (std::int64_t i = t0 * 2; i < t1 * 2; ++i) {
        if (r.expert[std::size_t(i)] != e) continue;
        REQUIRE(j < g.rows());
        CHECK(g.token(j) == std::int32_t(i / 2));
        CHECK(g.weight(j) == r.weight[std::size_t(i)]);
        ++j;
      }
      CHECK(g.offset(e + 1) == j);
    }
    CHECK(j == g.rows());
    const auto mid = g.experts(2, 5);
    CHECK(mid.count == std::vector<std::int64_t>(g.count.begin() + 2, g.count.begin() + 5));
    CHECK(mid.rows() == g.offset(5) - g.offset(2));
    if (mid.rows() > 0) CHECK(mid.token(0) == g.token(g.offset(2)));
  }
  CHECK_THROWS_WITH_AS(moe_group(logits, 2, true, 1.0f, 40, 49), doctest::Contains("tokens [40, 49)"), Error);
  auto nan = logits.clone();
  nan.data()[17 * 8 + 2] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH_AS(moe_group(nan, 2, true, 1.0f, 10, 30), doctest::Contains("token 17 are not finite"), Error);
  CHECK_THROWS_WITH_AS(moe_group(logits, 2, true, 1.0f, 0, 48).experts(3, 9), doctest::Contains("experts [3, 9)"),
                       Error);
}

TEST_CASE("grouped_matmul: each group of rows times its layer's weight, empty groups and bf16-held weights") {
  using C = Ctx<Layout<OnCpu>>;
  std::vector<detail::LinearCore<C>> layers(4);
  for (std::size_t i = 0; i < layers.size(); ++i) {
    auto w = random({6, 5}, 100 + std::uint64_t(i));
    if (i == 2) w = convert<float>(convert<bf16>(w));  // exactly bf16 values: held as bf16
    layers[i].set(w);
  }
  CHECK(layers[2].holds_bf16());
  std::vector<const detail::LinearCore<C>*> p;
  for (auto& l : layers) p.push_back(&l);
  const std::vector<std::int64_t> rows = {3, 0, 4, 2};
  const auto x = random({9, 5}, 7);
  const auto y = detail::grouped_matmul<C>(p, x, rows);
  REQUIRE(y.shape() == Shape{9, 6});
  std::int64_t at = 0;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    if (rows[i] > 0) CHECK(max_abs(y.slice(at, at + rows[i]), layers[i].matmul(x.slice(at, at + rows[i]))) == 0.0f);
    at += rows[i];
  }
  const std::vector<std::int64_t> short_rows = {3, 0, 4, 1};
  CHECK_THROWS_WITH_AS(detail::grouped_matmul<C>(p, x, short_rows), doctest::Contains("rows are not x's 9"), Error);
}

// EP inside a TP group (tokens replicated), with and without splitting the experts further; EP groups
// spanning Ulysses chunks, Ring chunks and CFG branches (dispatch/combine); EP over the whole mesh.
TEST_CASE_TEMPLATE("every TP / EP layout equals serial, balanced and skewed routing", L, Layout<TP<2>, OnCpu>,
                   Layout<TP<2>, EP<2>, OnCpu>, Layout<TP<4>, EP<2>, OnCpu>, Layout<TP<4>, EP<4>, OnCpu>,
                   Layout<Ulysses<2>, EP<2>, OnCpu>, Layout<Ring<4>, EP<4>, OnCpu>, Layout<TP<2>, CFG<2>, EP<4>, OnCpu>,
                   Layout<TP<4>, CFG<2>, EP<8>, OnCpu>, Layout<TP<2>, Ulysses<2>, CFG<2>, EP<8>, OnCpu>) {
  const auto g = goldens();
  for (std::string c : {"", "_skew"}) {
    CAPTURE(c);
    const auto x = g.read("x" + c);
    constexpr int branches = L::cfg * L::dp;
    // serial on each branch's input
    std::vector<Tensor<float>> serial;
    for (int b = 0; b < branches; ++b)
      serial.push_back(run<Layout<OnCpu>>(branches == 1 ? x : narrow(x, 0, b, 1))[0]);
    std::vector<MoeLoad> loads;
    const auto ys = run<L>(x, &loads);
    for (int i = 0; i < L::world_size; ++i) {
      CAPTURE(i);
      const auto cd = L::coords(i);
      const auto& s = serial[std::size_t(branches == 1 ? 0 : cd.cfg + L::cfg * cd.dp)];
      const SpChunk ch = sp_chunk<L>(At{i}, x.size(1));
      CHECK(rel_err(ys[std::size_t(i)], narrow(s, 1, ch.begin, ch.size())) < 1e-5);
    }
    // the load over the EP group's tokens: all tokens of the branches the group holds
    std::int64_t total = 0;
    for (auto t : loads[0].tokens) total += t;
    const std::int64_t group_tokens = L::ep <= L::tp ? x.numel() / 64 / (branches * L::ulysses * L::ring)
                                                     : x.numel() / 64 / (branches * L::ulysses * L::ring) * (L::ep / L::tp);
    CHECK(total == group_tokens * 2);
  }
}

TEST_CASE("dispatch/combine all-to-all bytes equal the routing's count (EP<4> over Ring<4>)") {
  using L = Layout<Ring<4>, EP<4>, OnCpu>;
  const auto g = goldens();
  const auto x = g.read("x");
  std::vector<CommStats> stats;
  run<L>(x, nullptr, &stats);
  // rank r sends each of its (token, expert) choices whose expert lives on another rank, D fp32 values,
  // and gets them back; plus one int64 count per expert of the other ranks
  const auto r = moe_route(g.read("router_logits"), 2, true);  // tokens b·S + s, S = 24
  std::uint64_t want = 0, got = 0;
  for (int rank = 0; rank < 4; ++rank) {
    std::uint64_t remote = 0;
    for (std::int64_t b = 0; b < 2; ++b)
      for (std::int64_t s = rank * 6; s < rank * 6 + 6; ++s)
        for (int j = 0; j < 2; ++j) remote += r.expert[std::size_t((b * 24 + s) * 2 + j)] / 2 != rank;
    want += 2 * remote * 64 * sizeof(float) + 3 * 2 * sizeof(std::int64_t);
    got += stats[std::size_t(rank)].all_to_all;
  }
  CHECK(got == want);
  MESSAGE("EP<4> over Ring<4>: ", got, " bytes of all-to-all for 96 token choices of hidden 64");
}

TEST_CASE("MoE: bad layouts and checkpoints are clear errors") {
  const auto g = goldens();
  const auto x = g.read("x");
  const auto ck = Checkpoint::open(dir);
  auto cfg = config();
  using L3 = Layout<TP<3>, EP<3>, OnCpu>;
  CHECK_THROWS_WITH_AS(run<L3>(x), doctest::Contains("8 experts cannot be divided over EP<3>"), Error);
  // a checkpoint whose expert 5 is missing: named, on the rank that holds it (EP<2>: rank 1)
  const fs::path broken = fs::temp_directory_path() / "pdiff_moe_missing_expert";
  fs::create_directories(broken);
  {
    const auto st = SafeTensors::open((dir / "model.safetensors").string());
    std::map<std::string, Tensor<float>> w;
    for (const auto& n : st.names())
      if (n.find("experts.5.") == std::string::npos) w[n] = st.read(n);
    write_safetensors((broken / "model.safetensors").string(), w);
  }
  const auto bad = Checkpoint::open(broken);
  using E2 = Layout<TP<2>, EP<2>, OnCpu>;
  CHECK_THROWS_WITH_AS(run_ranks<E2>([&](auto& rank) { return MoE<Ctx<E2>>::load(bad, cfg, rank, prefix), Tensor<float>(); }),
                       doctest::Contains("model.layers.0.mlp.experts.5.gate_and_up_proj.weight"), Error);
  cfg.experts = 8;
  CHECK_THROWS_WITH_AS(run_ranks<Layout<OnCpu>>([&](auto& rank) {
                         auto m = MoE<Ctx<Layout<OnCpu>>>::load(ck, cfg, rank, prefix);
                         return m.forward(rank, Tensor<float>::zeros({2, 5, 32}));
                       }),
                       doctest::Contains("MoE: input(2, 5, 32) must be (..., 64)"), Error);
}
