// pdiff/stage/channel.hpp — KeyedChannel<Msg>: the hand-off between two stages of a multistage
// pipeline, keyed by request id, never by arrival order (vllm-omni's review of its BAGEL stages caught
// a FIFO queue that handed one request's metadata to another).
//
// | call                         | what                                                                  |
// |------------------------------|-----------------------------------------------------------------------|
// | post(id, msg)                | the producer delivers a request's message (an id posted twice is an error) |
// | fail(id, why)                | the producer reports that a request will never arrive, and why        |
// | at(i, timeout)               | the i-th arrival (id, message shared read-only, or the failure); every |
// |                              | consumer rank walks the same log with its own i, so all agree on the order |
// | close()                      | no more posts; at(i) past the end then returns nullopt               |
// Waiting longer than the timeout is an error naming what was waited for: never a hang.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "pdiff/core/error.hpp"

namespace pdiff {

template <class Msg>
class KeyedChannel {
 public:
  struct Arrival {
    std::string id;
    std::shared_ptr<const Msg> msg;  // null: the producer failed this request
    std::string error;
  };

  void post(const std::string& id, Msg msg) { push(id, std::make_shared<const Msg>(std::move(msg)), {}); }
  void fail(const std::string& id, std::string why) { push(id, nullptr, std::move(why)); }

  void close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    cv_.notify_all();
  }

  // The i-th arrival; nullopt once closed with fewer than i + 1.
  std::optional<Arrival> at(std::size_t i, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mu_);
    const bool ready = cv_.wait_for(lock, timeout, [&] { return log_.size() > i || closed_; });
    PDIFF_CHECK(ready, "stage channel: no request arrived within ", timeout.count(), " ms (the producing stage is stuck)");
    if (log_.size() <= i) return std::nullopt;
    return log_[i];
  }

  std::size_t posted() const {
    std::lock_guard lock(mu_);
    return log_.size();
  }

 private:
  void push(const std::string& id, std::shared_ptr<const Msg> msg, std::string error) {
    std::lock_guard lock(mu_);
    PDIFF_CHECK(!closed_, "stage channel: request '", id, "' posted after close()");
    PDIFF_CHECK(seen_.emplace(id, true).second, "stage channel: request '", id, "' posted twice");
    log_.push_back({id, std::move(msg), std::move(error)});
    cv_.notify_all();
  }

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::vector<Arrival> log_;
  std::map<std::string, bool> seen_;
  bool closed_ = false;
};

}  // namespace pdiff
