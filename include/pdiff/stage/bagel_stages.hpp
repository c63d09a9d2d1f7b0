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
// Threads in one process today; across processes (MPI) the channel is the part to replace.
#pragma once

#include <atomic>
#include <chrono>
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

struct BagelKvMessage {
  std::string request_id;
  std::int64_t width = 0, height = 0;
  bool img_is_gen = true;  // text-to-image: cfg_img's context is gen's (not sent)
  KvContext contexts[3];   // gen, cfg_text, cfg_img
  double prefill_s = 0;
  std::chrono::steady_clock::time_point posted_at;
  std::size_t kv_bytes() const { return contexts[0].bytes() + contexts[1].bytes() + contexts[2].bytes(); }
};

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

// Runs `requests` through stage 0 on L0 and stage 1 on L1 (both thread ranks of this process).
template <class L0, class L1>
TwoStageReport run_bagel_two_stage(const std::filesystem::path& dir, const std::vector<StageRequest>& requests,
                                   const TwoStageOptions& opts = {}) {
  static_assert(L0::cfg == 1 && L0::vae_patch == 1, "BAGEL stage 0 prefills every context itself: TP only");
  using clock = std::chrono::steady_clock;
  auto secs = [](clock::time_point a, clock::time_point b) { return std::chrono::duration<double>(b - a).count(); };
  const auto t_start = clock::now();
  std::map<std::string, const BagelRequest*> by_id;
  for (auto& r : requests) PDIFF_CHECK(by_id.emplace(r.id, &r.request).second, "two-stage: request id '", r.id, "' given twice");
  std::vector<std::size_t> order = opts.stage0_order;
  if (order.empty())
    for (std::size_t i = 0; i < requests.size(); ++i) order.push_back(i);
  PDIFF_CHECK(order.size() == requests.size(), "two-stage: stage0_order names ", order.size(), " of ", requests.size(),
              " requests");
  KeyedChannel<BagelKvMessage> channel;
  TwoStageReport report;
  std::mutex mu;
  const LaunchOptions lo{.mode = Launch::threads, .comm = opts.comm};

  std::thread stage0([&] {
    try {
      launch<L0>(lo, [&](auto& rank) {
        const auto pipe = BagelPipeline<L0>::load(rank, dir);
        const std::int64_t kvh = pipe.cfg.num_key_value_heads;
        for (std::size_t idx : order) {
          PDIFF_CHECK(idx < requests.size(), "two-stage: stage0_order names request ", idx, " of ", requests.size());
          const auto& r = requests[idx];
          const auto t0 = clock::now();
          try {
            auto prep = pipe.prepare(rank, r.request);
            BagelKvMessage m;
            m.request_id = r.id, m.width = prep.width, m.height = prep.height, m.img_is_gen = prep.img_is_gen;
            for (int b = 0; b < 3; ++b) {
              if (b == 2 && prep.img_is_gen) continue;
              const auto& c = prep.ctx[b];
              auto& kc = m.contexts[b];
              kc.length = c.length, kc.rope = c.rope;
              for (auto& layer : c.layers) {
                kc.k.push_back(gather_kv<L0>(rank, layer.k, kvh));
                kc.v.push_back(gather_kv<L0>(rank, layer.v, kvh));
              }
            }
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
            typename BagelPipeline<L1>::Prepared prep;
            prep.width = m.width, prep.height = m.height, prep.img_is_gen = m.img_is_gen;
            pipe.adopt_contexts(rank, m.contexts, m.img_is_gen, prep.ctx);
            auto res = pipe.denoise(rank, *by_id.at(m.request_id), prep);
            if (rank.is_root()) {
              std::lock_guard lock(mu);
              auto& t = report.timing[m.request_id];
              t.prefill_s = m.prefill_s, t.wait_s = secs(m.posted_at, t0), t.denoise_s = secs(t0, clock::now());
              t.kv_bytes = m.kv_bytes();
              res.prefill_s = m.prefill_s;
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

}  // namespace pdiff
