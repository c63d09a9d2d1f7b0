// MpiComm under `mpirun -np 4`: every collective against a serial computation, uneven
// all_to_all_v, axis groups by split, statistics, and — last, because MPI is unusable after it —
// a rank that aborts: the other ranks' pending collective throws within a few seconds.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <numeric>
#include <thread>

#include "pdiff/comm/mpi_comm.hpp"

using namespace pdiff;

TEST_CASE("MpiComm collectives equal serial computations") {
  auto c = MpiComm::world();
  REQUIRE(c.size() == 4);
  const int me = c.rank(), P = c.size();
  const std::size_t n = 5;
  std::vector<float> x(n);
  for (std::size_t i = 0; i < n; ++i) x[i] = float(me) + 0.25f * float(i);
  c.all_reduce(x.data(), n, ReduceOp::sum);
  CHECK(x[2] == 6.0f + 4 * 0.5f);
  float mx = float(me);
  c.all_reduce(&mx, 1, ReduceOp::max);
  CHECK(mx == 3.0f);
  std::vector<std::int64_t> all(static_cast<std::size_t>(P));
  std::int64_t mine = me * 7;
  c.all_gather(&mine, all.data(), 1);
  for (int r = 0; r < P; ++r) CHECK(all[std::size_t(r)] == r * 7);
  std::vector<double> big(n * std::size_t(P), double(me)), part(n);
  c.reduce_scatter(big.data(), part.data(), n, ReduceOp::sum);
  CHECK(part[0] == 6.0);
  std::vector<int> a(static_cast<std::size_t>(P)), b(static_cast<std::size_t>(P));
  for (int d = 0; d < P; ++d) a[std::size_t(d)] = me * 10 + d;
  c.all_to_all(a.data(), b.data(), 1);
  for (int s = 0; s < P; ++s) CHECK(b[std::size_t(s)] == s * 10 + me);
  std::vector<std::size_t> sc(static_cast<std::size_t>(P)), rc(static_cast<std::size_t>(P));
  std::vector<float> send;
  for (int d = 0; d < P; ++d) {
    sc[std::size_t(d)] = std::size_t((me + d) % 3);
    rc[std::size_t(d)] = std::size_t((d + me) % 3);
    for (std::size_t k = 0; k < sc[std::size_t(d)]; ++k) send.push_back(float(me * 100 + d * 10 + int(k)));
  }
  std::vector<float> recv(std::accumulate(rc.begin(), rc.end(), std::size_t(0)));
  c.all_to_all_v(send.data(), sc, recv.data(), rc);
  std::size_t at = 0;
  for (int s = 0; s < P; ++s)
    for (std::size_t k = 0; k < rc[std::size_t(s)]; ++k) CHECK(recv[at++] == float(s * 100 + me * 10 + int(k)));
  double v = me == 2 ? 9.5 : 0.0;
  c.broadcast(&v, 1, 2);
  CHECK(v == 9.5);
  if (me == 0) {
    float s = 42;
    c.send(&s, 1, 3);
  } else if (me == 3) {
    float s = 0;
    c.recv(&s, 1, 0);
    CHECK(s == 42);
  }
  c.barrier();
  CHECK(c.stats().all_gather == 3 * 8);
}

TEST_CASE("MpiComm reductions at every n (also n < size): rank order, float/bf16/int64, sum and max") {
  auto c = MpiComm::world();
  const int me = c.rank(), P = c.size();
  auto val = [](int r, std::size_t i) { return float(int((r * 7 + int(i) * 3) % 11) - 5) * 0.375f; };
  for (std::size_t n : {0, 1, 3, 4, 5, 1000, 4099}) {
    CAPTURE(n);
    std::vector<float> f(n), fmax(n);
    std::vector<bf16> h(n);
    std::vector<std::int64_t> l(n);
    for (std::size_t i = 0; i < n; ++i) {
      f[i] = fmax[i] = val(me, i);
      h[i] = bf16(val(me, i));
      l[i] = std::int64_t(me) << 40 | std::int64_t(i);
    }
    c.all_reduce(f.data(), n, ReduceOp::sum);
    c.all_reduce(fmax.data(), n, ReduceOp::max);
    c.all_reduce(h.data(), n, ReduceOp::sum);
    c.all_reduce(l.data(), n, ReduceOp::sum);
    bool ok = true;
    for (std::size_t i = 0; i < n; ++i) {
      float s = val(0, i), mx = val(0, i), hs = float(bf16(val(0, i)));
      std::int64_t ls = std::int64_t(i);
      for (int r = 1; r < P; ++r) {
        s += val(r, i), mx = std::max(mx, val(r, i)), hs += float(bf16(val(r, i)));
        ls += std::int64_t(r) << 40 | std::int64_t(i);
      }
      ok = ok && f[i] == s && fmax[i] == mx && h[i].bits == bf16(hs).bits && l[i] == ls;
    }
    CHECK(ok);
    std::vector<float> blocks(n * std::size_t(P)), mine(n);
    for (std::size_t i = 0; i < blocks.size(); ++i) blocks[i] = val(me, i);
    c.reduce_scatter(blocks.data(), mine.data(), n, ReduceOp::sum);
    for (std::size_t i = 0; i < n; ++i) {
      float s = val(0, std::size_t(me) * n + i);
      for (int r = 1; r < P; ++r) s += val(r, std::size_t(me) * n + i);
      ok = ok && mine[i] == s;
    }
    CHECK(ok);
  }
  std::uint64_t ar = 0, rs = 0;
  for (std::size_t n : {0, 1, 3, 4, 5, 1000, 4099}) {
    for (std::size_t elem : {4, 4, 2, 8}) ar += detail::ring_all_reduce_bytes(n, elem, P);
    rs += std::uint64_t(P - 1) * n * 4;
  }
  CHECK(c.stats().all_reduce == ar);
  CHECK(c.stats().reduce_scatter == rs);
}

TEST_CASE("MpiComm axis groups of a 2x2 mesh") {
  auto c = MpiComm::world();
  const int me = c.rank(), a = me % 2, b = me / 2;
  auto row = c.split(b, a), col = c.split(a, b);
  CHECK(row.size() == 2);
  CHECK(row.rank() == a);
  CHECK(col.rank() == b);
  int v = me;
  row.all_reduce(&v, 1, ReduceOp::sum);
  CHECK(v == 4 * b + 1);
}

TEST_CASE("zz: a rank that aborts makes the others' collective throw, never hang") {
  auto c = MpiComm::world(CommOptions{std::chrono::milliseconds(20000)});
  c.barrier();
  const auto t0 = std::chrono::steady_clock::now();
  if (c.rank() == 2) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the others are waiting in all_reduce
    c.abort("rank 2 failed on purpose");
    return;
  }
  float x = 1;
  CHECK_THROWS_WITH_AS(c.all_reduce(&x, 1, ReduceOp::sum), doctest::Contains("aborted: rank 2 failed: rank 2 failed on purpose"),
                       Error);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
}

int main(int argc, char** argv) {
  (void)MpiComm::world();  // initialises MPI (finalised at exit)
  doctest::Context ctx(argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank != 0) ctx.setOption("minimal", true);
  return ctx.run();
}
