// pdiff/core/rank_note.hpp — what an out-of-memory error says beside the sizes: the calling thread's rank
// (launch<L> notes it in every rank thread or process) and the bytes a planner predicted that rank needs
// (a pipeline notes it around a forward, from the same plan as `--plan` and the layout advisor).
//
// | call                                   | what                                                           |
// |----------------------------------------|----------------------------------------------------------------|
// | this_rank_note()                       | the calling thread's {rank, world, predicted}; rank −1 outside a launch |
// | RankNoteScope scope(note)              | replaces the thread's note for a scope, restoring the previous |
// | RankScope scope(r, world)              | that, noting the thread's rank (launch<L>)                     |
// | PredictedBytes guard(bytes, what)      | that, noting a prediction and keeping the rank                 |
// | out_of_memory_message(where, asked, …) | the message both backends' allocators throw                   |
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>

#include "pdiff/core/error.hpp"

namespace pdiff {

struct RankNote {
  int rank = -1, world = 0;
  std::int64_t predicted = 0;  // bytes per rank the planner predicted (0: no prediction)
  std::string predicted_what;  // what the prediction covers
};

inline RankNote& this_rank_note() {
  thread_local RankNote n;
  return n;
}

// Replaces the calling thread's note for a scope, restoring the previous one.
class RankNoteScope {
 public:
  explicit RankNoteScope(RankNote n) : saved_(std::exchange(this_rank_note(), std::move(n))) {}
  ~RankNoteScope() { this_rank_note() = std::move(saved_); }
  RankNoteScope(const RankNoteScope&) = delete;
  RankNoteScope& operator=(const RankNoteScope&) = delete;

 private:
  RankNote saved_;
};

// launch<L>: the calling thread is rank r of w (no prediction yet).
struct RankScope : RankNoteScope {
  RankScope(int r, int w) : RankNoteScope({r, w, 0, ""}) {}
};

// A pipeline's prediction for a scope; the rank stays as noted.
struct PredictedBytes : RankNoteScope {
  PredictedBytes(std::int64_t bytes, std::string what)
      : RankNoteScope({this_rank_note().rank, this_rank_note().world, bytes, std::move(what)}) {}
};

namespace detail {
inline std::string gib_text(std::int64_t bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f GiB", double(bytes) / (1024.0 * 1024.0 * 1024.0));
  return b;
}
}  // namespace detail

// "<where>: rank r of W asked for X (n bytes): <why>; this rank holds Y, <held>; the planner predicted Z
// per rank for <what>" and what to try. where: "memory<OnCuda> on device 0"; held: the allocator's totals.
inline std::string out_of_memory_message(const std::string& where, std::int64_t asked, const std::string& why,
                                         std::int64_t rank_live, const std::string& held) {
  const RankNote& n = this_rank_note();
  std::string m = where + ": ";
  if (n.rank >= 0) m += detail::cat("rank ", n.rank, " of ", n.world, " ");
  m += detail::cat("asked for ", detail::gib_text(asked), " (", asked, " bytes): ", why, "; ",
                   n.rank >= 0 ? "this rank holds " : "this thread holds ", detail::gib_text(rank_live));
  if (!held.empty()) m += ", " + held;
  if (n.predicted > 0)
    m += detail::cat("; the planner predicted ", detail::gib_text(n.predicted), " per rank for ", n.predicted_what);
  m += " (try a layout with more ranks, a smaller image, fewer images per forward)";
  return m;
}

}  // namespace pdiff
