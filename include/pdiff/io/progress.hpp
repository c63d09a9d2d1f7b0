// pdiff/io/progress.hpp — ProgressBar: a one-line terminal progress bar on stderr,
//   denoise [##########----------]  4/8  0.52 s/step  ETA 2.1 s
// (the unit, "step" by default, names what is counted: "image" for a batch).
// redrawn in place on a terminal, one line per update when stderr is not a terminal (logs).
// Disabled instances print nothing (non-root ranks).
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace pdiff {

class ProgressBar {
 public:
  ProgressBar(std::string label, int total, bool enabled = true, std::string unit = "step")
      : label_(std::move(label)), unit_(std::move(unit)), total_(total), enabled_(enabled), tty_(::isatty(2)),
        start_(std::chrono::steady_clock::now()) {
    if (enabled_) draw(0);
  }
  void update(int done) {
    if (enabled_) draw(done);
  }
  void finish() {
    if (enabled_ && tty_) std::fputc('\n', stderr);
    enabled_ = false;
  }
  ~ProgressBar() { finish(); }
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  void draw(int done) {
    const int width = 24, fill = total_ > 0 ? done * width / total_ : width;
    std::string bar(std::size_t(fill), '#');
    bar += std::string(std::size_t(width - fill), '-');
    const double s = seconds(), per = done > 0 ? s / done : 0.0;
    std::fprintf(stderr, "%s%s [%s] %d/%d  %.2f s/%s  ETA %.1f s%s", tty_ ? "\r" : "", label_.c_str(), bar.c_str(),
                 done, total_, per, unit_.c_str(), per * (total_ - done), tty_ ? "" : "\n");
    std::fflush(stderr);
  }
  std::string label_, unit_;
  int total_;
  bool enabled_, tty_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace pdiff
