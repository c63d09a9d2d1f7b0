// A downstream program: a TP<2> x CFG<2> layout over 4 thread ranks, one all_reduce per TP group.
#include <pdiff/pdiff.hpp>

#include <cstdio>

int main() {
  using L = pdiff::Layout<pdiff::CFG<2>, pdiff::TP<2>, pdiff::OnCpu>;
  static_assert(L::world_size == 4);
  float out[4] = {};
  pdiff::launch<L>({.mode = pdiff::Launch::threads}, [&](auto& rank) {
    float v = float(rank.index);
    rank.tp.all_reduce(&v, 1, pdiff::ReduceOp::sum);
    out[rank.index] = v;
  });
  // TP groups {0,1} and {2,3}: sums 1 and 5
  bool ok = out[0] == 1 && out[1] == 1 && out[2] == 5 && out[3] == 5;
  std::printf("downstream_user: world %d, tp sums %g %g %g %g: %s\n", L::world_size, out[0], out[1], out[2], out[3],
              ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
