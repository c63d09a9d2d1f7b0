// pdiff/stage/bagel_stages.hpp — BAGEL in two stages on disjoint rank groups, as vllm-omni serves it:
// stage 0 (the "thinker") prefills each request's contexts (gen, cfg_text, and cfg_img when it differs)
// into KV caches on layout L0; stage 1 (the DiT) denoises against the transferred caches and decodes on
// layout L1. Each stage is its own group of thread ranks with its own communicators; requests overlap
// (stage 0 prefills the next while stage 1 denoises the last).
//
//   stage 0 (L0 ranks)                          KeyedChannel<BagelKvMessage>        stage 1 (L1 ranks)
//   prepare(request) → gather_kv over tp  ──►   post(id, {contexts, metadata})  ──►  at(i): shard_kv for
//   (root posts; an error is posted as          keyed by request id; every           its tp rank and CFG
//    fail(id, why))                             stage-1 rank walks the same log       branches → denoise
// | guarantee                   | how                                                                |
// |-----------------------------|--------------------------------------------------------------------|
// | metadata with its cache     | one message per request: id, contexts (length, RoPE, K/V), size    |
// | out-of-order arrival        | results are keyed by id; stage 0 may run requests in any order      |
// | TP degrees differ           | caches travel with all KV heads; each stage-1 rank takes its own    |
// | a failed request            | reported with its id; a stage-1 failure relaunches stage 1 for the  |
// |                             | requests after it (fresh communicators), never a hang               |
// Two forms:
// | call                                        | ranks                        | hand-off                          |
// |---------------------------------------------|------------------------------|-----------------------------------|
// | run_bagel_two_stage<L0, L1>(dir, rs)        | two thread groups, one process | KeyedChannel (shared memory); a stage-1 failure relaunches stage 1 |
// | bagel_two_stage_rank<L0, L1>(world, dir, rs)| one world of L0 + L1 ranks: threads (ThreadComm) or processes (mpirun, MpiComm); ranks [0, W0) are stage 0 | world.send / recv of one serialised message per request, from stage 0's root to every stage-1 rank, in request order; a failure ends the run with an error naming the request |
#pragma once

#include <atomic>
#include <chrono>
#include <cstring>
#include <optional>
#include <span>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pdiff/models/bagel/pipeline.hpp"
#include "pdiff/parallel/launch.hpp"
#include "pdiff/stage/channel.hpp"
#include "pdiff/stage/kv_transfer.hpp"

namespace pdiff {

namespace detail {
// A message as bytes: [kind u8][id][width, height, img_is_gen][prefill_s][3 × (length, rope, layers, then
// per layer k and v as (dims, floats))]; kind 0 = failure: [0][id][why].
struct ByteWriter {
  std::vector<std::uint8_t> b;
  template <class T>
  void put(const T& v) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
    b.insert(b.end(), p, p + sizeof(T));
  }
  void put_str(const std::string& s) {
    put(std::uint64_t(s.size()));
    b.insert(b.end(), s.begin(), s.end());
  }
  void put_tensor(const Tensor<float, OnCpu>& t) {
    put(std::int64_t(t.rank()));
    for (int i = 0; i < t.rank(); ++i) put(t.size(i));
    const auto* p = reinterpret_cast<const std::uint8_t*>(t.data());
    b.insert(b.end(), p, p + t.numel() * std::int64_t(sizeof(float)));
  }
};
struct ByteReader {
  std::span<const std::uint8_t> b;
  std::size_t at = 0;
  template <class T>
  T get() {
    PDIFF_CHECK(at + sizeof(T) <= b.size(), "two-stage: a truncated message (", b.size(), " bytes)");
    T v;
    std::memcpy(&v, b.data() + at, sizeof(T));
    at += sizeof(T);
    return v;
  }
  std::string get_str() {
    const auto n = get<std::uint64_t>();
    PDIFF_CHECK(at + n <= b.size(), "two-stage: a truncated message (", b.size(), " bytes)");
    std::string s(reinterpret_cast<const char*>(b.data() + at), n);
    at += n;
    return s;
  }
  Tensor<float, OnCpu> get_tensor() {
    const auto r = get<std::int64_t>();
    PDIFF_CHECK(r >= 1 && r <= Shape::max_rank, "two-stage: a message names a tensor of rank ", r);
    std::vector<std::int64_t> d(static_cast<std::size_t>(r));
    for (auto& x : d) x = get<std::int64_t>();
    Tensor<float, OnCpu> t(Shape::from(d.begin(), d.end()));
    const std::size_t n = std::size_t(t.numel()) * sizeof(float);
    PDIFF_CHECK(at + n <= b.size(), "two-stage: a truncated message (", b.size(), " bytes)");
    std::memcpy(t.data(), b.data() + at, n);
    at += n;
    return t;
  }
};
}  // namespace detail



struct BagelKvMessage {
  std::string request_id;
  std::int64_t width = 0, height = 0;
  bool img_is_gen = true;  // text-to-image: cfg_img's context is gen's (not sent)
  KvContext contexts[3];   // gen, cfg_text, cfg_img
  double prefill_s = 0;
  std::chrono::steady_clock::time_point posted_at;
  std::size_t kv_bytes() const { return contexts[0].bytes() + contexts[1].bytes() + contexts[2].bytes(); }
};

inline std::vector<std::uint8_t> serialize(const BagelKvMessage& m) {
  detail::ByteWriter w;
  w.put(std::uint8_t(1));
  w.put_str(m.request_id);
  w.put(m.width), w.put(m.height), w.put(std::uint8_t(m.img_is_gen)), w.put(m.prefill_s);
  for (const auto& c : m.contexts) {
    w.put(c.length), w.put(c.rope), w.put(std::uint64_t(c.k.size()));
    for (std::size_t i = 0; i < c.k.size(); ++i) w.put_tensor(c.k[i]), w.put_tensor(c.v[i]);
  }
  return std::move(w.b);
}
inline std::vector<std::uint8_t> serialize_failure(const std::string& id, const std::string& why) {
  detail::ByteWriter w;
  w.put(std::uint8_t(0));
  w.put_str(id);
  w.put_str(why);
  return std::move(w.b);
}
// A message, or (nullopt, why) for a failed request; `id` gets the request id either way.
inline std::optional<BagelKvMessage> deserialize(std::span<const std::uint8_t> bytes, std::string& id, std::string& why) {
  detail::ByteReader r{bytes};
  const auto kind = r.get<std::uint8_t>();
  id = r.get_str();
  if (kind == 0) {
    why = r.get_str();
    return std::nullopt;
  }
  PDIFF_CHECK(kind == 1, "two-stage: a message of unknown kind ", int(kind));
  BagelKvMessage m;
  m.request_id = id;
  m.width = r.get<std::int64_t>(), m.height = r.get<std::int64_t>(), m.img_is_gen = r.get<std::uint8_t>() != 0;
  m.prefill_s = r.get<double>();
  for (auto& c : m.contexts) {
    c.length = r.get<std::int64_t>(), c.rope = r.get<std::int64_t>();
    const auto n = r.get<std::uint64_t>();
    for (std::uint64_t i = 0; i < n; ++i) {
      c.k.push_back(r.get_tensor());
      c.v.push_back(r.get_tensor());
    }
  }
  PDIFF_CHECK(r.at == bytes.size(), "two-stage: ", bytes.size() - r.at, " bytes left over in request '", id, "'");
  return m;
}

struct StageRequest {
  std::string id;
  BagelRequest request;  // pointers in it (noise, image) must stay valid during the run
};

struct TwoStageOptions {
  std::vector<std::size_t> stage0_order;  // the order stage 0 takes the requests (default: as given)
  CommOptions comm{};
  std::chrono::milliseconds channel_timeout{120000};
};

struct TwoStageReport {
  struct Timing {
    double prefill_s = 0, wait_s = 0, denoise_s = 0;  // stage 0, in the channel, stage 1 (denoise + decode)
    std::size_t kv_bytes = 0;
  };
  std::map<std::string, BagelResult> results;
  std::map<std::string, std::string> failures;  // request id → why
  std::map<std::string, Timing> timing;
  std::vector<std::string> completion_order;
  int stage1_launches = 0;
  double total_s = 0;
};

namespace detail {
// The requests by id (an id given twice is an error) and the order stage 0 takes them in.
inline std::pair<std::map<std::string, const BagelRequest*>, std::vector<std::size_t>> stage_plan(
    const std::vector<StageRequest>& requests, const TwoStageOptions& opts) {
  std::map<std::string, const BagelRequest*> by_id;
  for (auto& r : requests) PDIFF_CHECK(by_id.emplace(r.id, &r.request).second, "two-stage: request id '", r.id, "' given twice");
  std::vector<std::size_t> order = opts.stage0_order;
  if (order.empty())
    for (std::size_t i = 0; i < requests.size(); ++i) order.push_back(i);
  PDIFF_CHECK(order.size() == requests.size(), "two-stage: stage0_order names ", order.size(), " of ", requests.size(),
              " requests");
  for (std::size_t i : order)
    PDIFF_CHECK(i < requests.size(), "two-stage: stage0_order names request ", i, " of ", requests.size());
  return {std::move(by_id), std::move(order)};
}
}  // namespace detail

// Stage 0's work for one request on one of its ranks: prefill the contexts, gather their KV heads over tp
// (a collective: every stage-0 rank calls it). cfg_img is sent only when it differs from gen (editing).
template <class L0, class R>
BagelKvMessage bagel_stage0_message(R& rank, const BagelPipeline<L0>& pipe, const StageRequest& r) {
  auto prep = pipe.prepare(rank, r.request);
  BagelKvMessage m;
  m.request_id = r.id, m.width = prep.width, m.height = prep.height, m.img_is_gen = prep.img_is_gen;
  for (int b = 0; b < 3; ++b) {
    if (b == 2 && prep.img_is_gen) continue;
    const auto& c = prep.ctx[b];
    auto& kc = m.contexts[b];
    kc.length = c.length, kc.rope = c.rope;
    for (auto& layer : c.layers) {
      kc.k.push_back(gather_kv<L0>(rank, layer.k, pipe.cfg.num_key_value_heads));
      kc.v.push_back(gather_kv<L0>(rank, layer.v, pipe.cfg.num_key_value_heads));
    }
  }
  return m;
}

// Stage 1's work for one request on one of its ranks: this rank's heads and branches, denoise, decode.
template <class L1, class R>
BagelResult bagel_stage1_run(R& rank, const BagelPipeline<L1>& pipe, const BagelKvMessage& m, const BagelRequest& q) {
  typename BagelPipeline<L1>::Prepared prep;
  prep.width = m.width, prep.height = m.height, prep.img_is_gen = m.img_is_gen;
  pipe.adopt_contexts(rank, m.contexts, m.img_is_gen, prep.ctx);
  auto res = pipe.denoise(rank, q, prep);
  res.prefill_s = m.prefill_s;
  return res;
}

// Runs `requests` through stage 0 on L0 and stage 1 on L1 (both thread ranks of this process).
template <class L0, class L1>
TwoStageReport run_bagel_two_stage(const std::filesystem::path& dir, const std::vector<StageRequest>& requests,
                                   const TwoStageOptions& opts = {}) {
  static_assert(L0::cfg == 1 && L0::vae_patch == 1, "BAGEL stage 0 prefills every context itself: TP only");
  using clock = std::chrono::steady_clock;
  auto secs = [](clock::time_point a, clock::time_point b) { return std::chrono::duration<double>(b - a).count(); };
  const auto t_start = clock::now();
  const auto [by_id, order] = detail::stage_plan(requests, opts);
  KeyedChannel<BagelKvMessage> channel;
  TwoStageReport report;
  std::mutex mu;
  const LaunchOptions lo{.mode = Launch::threads, .comm = opts.comm};

  std::thread stage0([&] {
    try {
      launch<L0>(lo, [&](auto& rank) {
        const auto pipe = BagelPipeline<L0>::load(rank, dir);
        for (std::size_t idx : order) {
          const auto& r = requests[idx];
          const auto t0 = clock::now();
          try {
            auto m = bagel_stage0_message(rank, pipe, r);
            m.prefill_s = secs(t0, clock::now());
            m.posted_at = clock::now();
            if (rank.is_root()) channel.post(r.id, std::move(m));
          } catch (const std::exception& e) {
            if (rank.is_root()) channel.fail(r.id, e.what());
          }
        }
      });
    } catch (const std::exception& e) {
      std::lock_guard lock(mu);
      report.failures["<stage 0>"] = e.what();
    }
    channel.close();
  });

  std::size_t next = 0;  // the first arrival stage 1 has not taken
  for (;;) {
    std::atomic<std::size_t> current{next};
    std::atomic<bool> took{false};
    bool done = false;
    ++report.stage1_launches;
    try {
      launch<L1>(lo, [&](auto& rank) {
        const auto pipe = BagelPipeline<L1>::load(rank, dir);
        for (std::size_t i = next;; ++i) {
          const auto a = channel.at(i, opts.channel_timeout);
          if (!a) break;
          current = i;
          took = true;
          if (!a->msg) {
            if (rank.is_root()) {
              std::lock_guard lock(mu);
              report.failures[a->id] = "stage 0: " + a->error;
            }
            continue;
          }
          const auto& m = *a->msg;
          const auto t0 = clock::now();
          try {
            auto res = bagel_stage1_run(rank, pipe, m, *by_id.at(m.request_id));
            if (rank.is_root()) {
              std::lock_guard lock(mu);
              auto& t = report.timing[m.request_id];
              t.prefill_s = m.prefill_s, t.wait_s = secs(m.posted_at, t0), t.denoise_s = secs(t0, clock::now());
              t.kv_bytes = m.kv_bytes();
              report.results[m.request_id] = std::move(res);
              report.completion_order.push_back(m.request_id);
            }
          } catch (const std::exception& e) {
            throw Error(detail::cat("request '", m.request_id, "' failed on stage 1 rank ", rank.index, ": ", e.what()));
          }
        }
        done = true;
      });
    } catch (const std::exception& e) {
      if (!took) {  // stage 1 could not start (e.g. loading failed): every request left fails with the cause
        report.failures["<stage 1>"] = e.what();
        for (std::size_t i = next;; ++i) {
          const auto a = channel.at(i, opts.channel_timeout);
          if (!a) break;
          report.failures[a->id] = std::string("stage 1 did not start: ") + e.what();
        }
        break;
      }
      const auto a = channel.at(current, opts.channel_timeout);
      report.failures[a ? a->id : "<stage 1>"] = e.what();
      next = current + 1;  // go on with the requests after the failed one, on fresh ranks
      continue;
    }
    if (done) break;
  }
  stage0.join();
  report.total_s = secs(t_start, clock::now());
  return report;
}

// One rank of a two-stage run over a world of L0::world_size + L1::world_size ranks (threads sharing a
// ThreadComm world, or processes under mpirun with MpiComm::world()): ranks [0, W0) form stage 0, the rest
// stage 1, each with its own communicators (world.split). Stage 0's root sends each request's message —
// or its failure — to every stage-1 rank in request order (world.send; stage 1 receives in the same
// order, so all its ranks agree). A stage-1 failure throws an Error naming the request (the caller aborts
// the world: no hang). Returns the report on stage-1 ranks (results, failures, timing); empty on stage 0.
// The world's communicator timeout bounds how long stage 0 may wait for stage 1 to take a message: set
// it above the longest request's denoising.
template <class L0, class L1, class Comm>
TwoStageReport bagel_two_stage_rank(Comm& world, const std::filesystem::path& dir, const std::vector<StageRequest>& requests,
                                    const TwoStageOptions& opts = {}) {
  static_assert(L0::cfg == 1 && L0::vae_patch == 1, "BAGEL stage 0 prefills every context itself: TP only");
  using clock = std::chrono::steady_clock;
  auto secs = [](clock::time_point a, clock::time_point b) { return std::chrono::duration<double>(b - a).count(); };
  constexpr int W0 = L0::world_size, W1 = L1::world_size;
  PDIFF_CHECK(world.size() == W0 + W1, "two-stage: ", world.size(), " ranks, but stage 0 needs ", W0, " and stage 1 ", W1,
              " (mpirun -np ", W0 + W1, ")");
  const auto [by_id, order] = detail::stage_plan(requests, opts);
  const auto t_start = clock::now();
  const int me = world.rank();
  Comm sub = world.split(me < W0 ? 0 : 1, me);
  TwoStageReport rep;
  if (me < W0) {
    auto rank = make_rank<L0>(sub);
    const auto pipe = BagelPipeline<L0>::load(rank, dir);
    for (std::size_t idx : order) {
      const auto t0 = clock::now();
      std::vector<std::uint8_t> bytes;
      try {
        auto m = bagel_stage0_message(rank, pipe, requests[idx]);
        m.prefill_s = secs(t0, clock::now());
        bytes = serialize(m);
      } catch (const std::exception& e) {
        bytes = serialize_failure(requests[idx].id, e.what());
      }
      if (me == 0)
        for (int j = W0; j < W0 + W1; ++j) {
          const std::uint64_t n = bytes.size();
          world.send(&n, 1, j);
          world.send(bytes.data(), bytes.size(), j);
        }
    }
  } else {
    auto rank = make_rank<L1>(sub);
    const auto pipe = BagelPipeline<L1>::load(rank, dir);
    for (std::size_t k = 0; k < requests.size(); ++k) {
      const auto t0 = clock::now();
      std::uint64_t n = 0;
      world.recv(&n, 1, 0);
      std::vector<std::uint8_t> bytes(n);
      world.recv(bytes.data(), n, 0);
      const auto t1 = clock::now();
      std::string id, why;
      const auto m = deserialize(bytes, id, why);
      if (!m) {
        rep.failures[id] = "stage 0: " + why;
        continue;
      }
      const auto it = by_id.find(id);
      PDIFF_CHECK(it != by_id.end(), "two-stage: stage 1 received request '", id, "', which was not submitted");
      try {
        rep.results[id] = bagel_stage1_run(rank, pipe, *m, *it->second);
      } catch (const std::exception& e) {
        throw Error(detail::cat("request '", id, "' failed on stage 1 rank ", me - W0, ": ", e.what()));
      }
      auto& t = rep.timing[id];
      t.prefill_s = m->prefill_s, t.wait_s = secs(t0, t1), t.denoise_s = secs(t1, clock::now()), t.kv_bytes = m->kv_bytes();
      rep.completion_order.push_back(id);
    }
    rep.stage1_launches = 1;
  }
  rep.total_s = secs(t_start, clock::now());
  return rep;
}

// bagel_two_stage_rank on W0 + W1 thread ranks of this process sharing one ThreadComm world; returns
// stage 1's root's report; the first failure is rethrown after every rank has stopped (the world aborted).
template <class L0, class L1>
TwoStageReport run_bagel_two_stage_world(const std::filesystem::path& dir, const std::vector<StageRequest>& requests,
                                         const TwoStageOptions& opts = {}) {
  constexpr int W = L0::world_size + L1::world_size;
  auto worlds = ThreadComm::create_world(W, opts.comm);
  std::mutex mu;
  std::exception_ptr first;
  TwoStageReport out;
  auto body = [&](int r) {
    try {
      auto rep = bagel_two_stage_rank<L0, L1>(worlds[std::size_t(r)], dir, requests, opts);
      if (r == L0::world_size) out = std::move(rep);
    } catch (...) {
      {
        std::lock_guard lock(mu);
        if (!first) first = std::current_exception();
      }
      worlds[std::size_t(r)].abort("rank " + std::to_string(r) + ": " + detail::what_of(std::current_exception()));
    }
  };
  std::vector<std::thread> threads;
  for (int r = 1; r < W; ++r) threads.emplace_back(body, r);
  body(0);
  for (auto& t : threads) t.join();
  if (first) std::rethrow_exception(first);
  return out;
}

}  // namespace pdiff
