// ThreadComm: every collective at world sizes 1, 2, 3, 4, 8 against a serial computation, uneven
// all_to_all_v, axis groups of a 2x2x2 mesh, byte statistics, send/recv order, and failures
// (abort, timeout, mismatched calls) that end in errors, never hangs. DirectComm<OnCpu> (the shared-GPU
// communicator's logic — address exchange, direct copies, rank-ordered row reduction — on host memory)
// passes the collective, all_to_all_v and reduction cases too, with ThreadComm's bits.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "pdiff/comm/direct_comm.hpp"
#include "pdiff/comm/thread_comm.hpp"
#include "pdiff/core/dtype.hpp"

using namespace pdiff;

namespace {
// Runs fn(comm) on `size` threads; rethrows the first exception.
template <class Comm = ThreadComm, class Fn>
void on_threads(int size, Fn fn, CommOptions opts = {}) {
  auto comms = Comm::create_world(size, opts);
  std::vector<std::thread> ts;
  std::exception_ptr first;
  std::mutex mu;
  for (int r = 0; r < size; ++r)
    ts.emplace_back([&, r] {
      try {
        fn(comms[std::size_t(r)]);
      } catch (...) {
        std::lock_guard lk(mu);
        if (!first) first = std::current_exception();
        comms[std::size_t(r)].abort("rank " + std::to_string(r) + " threw");
      }
    });
  for (auto& t : ts) t.join();
  if (first) std::rethrow_exception(first);
}
float val(int rank, std::size_t i) { return float(rank * 100) + float(i) * 0.5f; }
}  // namespace

TEST_CASE_TEMPLATE("collectives equal serial computations at sizes 1, 2, 3, 4, 8", Comm, ThreadComm, DirectComm<OnCpu>) {
  for (int P : {1, 2, 3, 4, 8}) {
    CAPTURE(P);
    const std::size_t n = 7;
    on_threads<Comm>(P, [&](Comm& c) {
      const int me = c.rank();
      std::vector<float> buf(n);
      for (std::size_t i = 0; i < n; ++i) buf[i] = val(me, i);
      c.all_reduce(buf.data(), n, ReduceOp::sum);
      for (std::size_t i = 0; i < n; ++i) {
        float want = 0;
        for (int r = 0; r < P; ++r) want += val(r, i);
        CHECK(buf[i] == want);
      }
      for (std::size_t i = 0; i < n; ++i) buf[i] = val(me, i) * (me % 2 ? -1.0f : 1.0f);
      c.all_reduce(buf.data(), n, ReduceOp::max);
      CHECK(buf[1] == val(P > 2 ? (P - 1) / 2 * 2 : 0, 1));

      std::vector<std::int64_t> mine(n), all(n * std::size_t(P));
      for (std::size_t i = 0; i < n; ++i) mine[i] = me * 1000 + std::int64_t(i);
      c.all_gather(mine.data(), all.data(), n);
      for (int r = 0; r < P; ++r) CHECK(all[std::size_t(r) * n + 3] == r * 1000 + 3);

      std::vector<float> big(n * std::size_t(P)), part(n);
      for (std::size_t i = 0; i < big.size(); ++i) big[i] = float(me) + float(i);
      c.reduce_scatter(big.data(), part.data(), n, ReduceOp::sum);
      for (std::size_t i = 0; i < n; ++i) {
        float want = 0;
        for (int r = 0; r < P; ++r) want += float(r) + float(std::size_t(me) * n + i);
        CHECK(part[i] == want);
      }

      std::vector<float> a2a(n * std::size_t(P)), got(n * std::size_t(P));
      for (int d = 0; d < P; ++d)
        for (std::size_t i = 0; i < n; ++i) a2a[std::size_t(d) * n + i] = float(me * 10 + d) + float(i) / 10;
      c.all_to_all(a2a.data(), got.data(), n);
      for (int s = 0; s < P; ++s) CHECK(got[std::size_t(s) * n + 2] == float(s * 10 + me) + 0.2f);

      std::vector<bf16> h(n);
      for (std::size_t i = 0; i < n; ++i) h[i] = bf16(float(me + 1));
      c.all_reduce(h.data(), n, ReduceOp::sum);
      CHECK(float(h[0]) == float(P * (P + 1) / 2));

      std::vector<double> root(n, me == P - 1 ? 3.25 : 0.0);
      c.broadcast(root.data(), n, P - 1);
      CHECK(root[n - 1] == 3.25);
      c.barrier();
    });
  }
}

TEST_CASE_TEMPLATE("uneven all_to_all_v, including zero counts", Comm, ThreadComm, DirectComm<OnCpu>) {
  const int P = 4;
  on_threads<Comm>(P, [&](Comm& c) {
    const int me = c.rank();
    // rank s sends (s + d) % 3 elements to rank d, valued s*100 + d*10 + k
    std::vector<std::size_t> sc(P), rc(P);
    std::vector<float> send;
    for (int d = 0; d < P; ++d) {
      sc[std::size_t(d)] = std::size_t((me + d) % 3);
      for (std::size_t k = 0; k < sc[std::size_t(d)]; ++k) send.push_back(float(me * 100 + d * 10) + float(k));
      rc[std::size_t(d)] = std::size_t((d + me) % 3);
    }
    std::vector<float> recv(std::accumulate(rc.begin(), rc.end(), std::size_t(0)));
    c.all_to_all_v(send.data(), sc, recv.data(), rc);
    std::size_t at = 0;
    for (int s = 0; s < P; ++s)
      for (std::size_t k = 0; k < rc[std::size_t(s)]; ++k) CHECK(recv[at++] == float(s * 100 + me * 10) + float(k));
    std::uint64_t want = 0;
    for (int d = 0; d < P; ++d)
      if (d != me) want += sc[std::size_t(d)] * 4;
    CHECK(c.stats().all_to_all == want);
  });
}

TEST_CASE("axis groups of a 2x2x2 mesh via split") {
  on_threads(8, [&](ThreadComm& c) {
    const int me = c.rank(), a = me % 2, b = me / 2 % 2, z = me / 4;
    // one axis at a time: colour = the other coordinates, key = this coordinate
    ThreadComm ax = c.split(b + 2 * z, a), bx = c.split(a + 2 * z, b), zx = c.split(a + 2 * b, z);
    CHECK(ax.size() == 2);
    CHECK(ax.rank() == a);
    CHECK(bx.rank() == b);
    CHECK(zx.rank() == z);
    int v = me;
    ax.all_reduce(&v, 1, ReduceOp::sum);
    CHECK(v == (me - a) * 2 + 1);  // me − a + me − a + 1
    int m[2];
    zx.all_gather(&me, m, 1);
    CHECK(m[0] == me - 4 * z);
    CHECK(m[1] == me - 4 * z + 4);
    ThreadComm sub = ax.split(0, -ax.rank());  // keys reverse the order
    CHECK(sub.rank() == 1 - a);
  });
}

TEST_CASE("statistics follow the formulas; send/recv match in order") {
  on_threads(3, [&](ThreadComm& c) {
    std::vector<float> x(12), y(36);
    c.all_reduce(x.data(), 12, ReduceOp::sum);
    c.all_gather(x.data(), y.data(), 12);
    CHECK(c.stats().all_reduce == 2 * 2 * 12 * 4 / 3);
    CHECK(c.stats().all_gather == 2 * 12 * 4);
    if (c.rank() == 0) {
      for (int k = 0; k < 3; ++k) {
        float v = float(k);
        c.send(&v, 1, 2);
      }
      CHECK(c.stats().send == 12);
    } else if (c.rank() == 2) {
      for (int k = 0; k < 3; ++k) {
        float v = -1;
        c.recv(&v, 1, 0);
        CHECK(v == float(k));
      }
    }
  });
}

TEST_CASE("a failing rank makes the others' collectives throw quickly, never hang") {
  auto t0 = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH_AS(on_threads(4,
                                  [&](ThreadComm& c) {
                                    if (c.rank() == 2) throw Error("rank 2 failed on purpose");
                                    float v = 1;
                                    c.all_reduce(&v, 1, ReduceOp::sum);
                                  }),
                       doctest::Contains("failed on purpose"), Error);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));

  std::atomic<int> aborted{0};
  on_threads(3, [&](ThreadComm& c) {
    if (c.rank() == 0) {
      c.abort("rank 0 gave up");
      return;
    }
    try {
      float v = 1;
      c.all_reduce(&v, 1, ReduceOp::sum);
    } catch (const Error& e) {
      CHECK(std::string(e.what()).find("aborted: rank 0 gave up") != std::string::npos);
      ++aborted;
    }
  });
  CHECK(aborted == 2);
}

TEST_CASE("a rank that never arrives ends in a timeout error naming it") {
  auto t0 = std::chrono::steady_clock::now();
  std::atomic<int> timed_out{0};
  on_threads(
      3,
      [&](ThreadComm& c) {
        if (c.rank() == 1) return;  // never joins
        try {
          c.barrier();
        } catch (const Error& e) {
          if (std::string(e.what()).find("waiting for rank(s) 1") != std::string::npos ||
              std::string(e.what()).find("timed out") != std::string::npos)
            ++timed_out;
        }
      },
      CommOptions{std::chrono::milliseconds(200)});
  CHECK(timed_out == 2);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(3));
}

TEST_CASE("mismatched collectives are errors, not corruption") {
  CHECK_THROWS_WITH_AS(on_threads(2,
                                  [&](ThreadComm& c) {
                                    std::vector<float> x(8);
                                    c.all_reduce(x.data(), c.rank() == 0 ? 8 : 4, ReduceOp::sum);
                                  }),
                       doctest::Contains("different collective or count"), Error);
  CHECK_THROWS_AS(on_threads(2,
                             [&](ThreadComm& c) {
                               float x[4] = {}, y[8];
                               if (c.rank() == 0) c.all_gather(x, y, 4);
                               else c.all_reduce(x, 4, ReduceOp::sum);
                             }),
                  Error);
}

TEST_CASE_TEMPLATE("reductions at every n (also n < size) are rank-ordered and bit-identical, float/bf16/f16/int64", Comm, ThreadComm, DirectComm<OnCpu>) {
  auto v = [](int r, std::size_t i) { return float(int((r * 7 + int(i) * 3) % 11) - 5) * 0.375f; };
  for (int P : {2, 3, 8})
    for (std::size_t n : {0, 1, 5, 3001}) {
      CAPTURE(P);
      CAPTURE(n);
      on_threads<Comm>(P, [&](Comm& c) {
        const int me = c.rank();
        std::vector<float> f(n), fm(n);
        std::vector<bf16> h(n);
        std::vector<f16> g(n);
        std::vector<std::int64_t> l(n);
        for (std::size_t i = 0; i < n; ++i) {
          f[i] = fm[i] = v(me, i);
          h[i] = bf16(v(me, i)), g[i] = f16(v(me, i));
          l[i] = std::int64_t(me) << 40 | std::int64_t(i);
        }
        c.all_reduce(f.data(), n, ReduceOp::sum);
        c.all_reduce(fm.data(), n, ReduceOp::max);
        c.all_reduce(h.data(), n, ReduceOp::sum);
        c.all_reduce(g.data(), n, ReduceOp::max);
        c.all_reduce(l.data(), n, ReduceOp::sum);
        bool ok = true;
        for (std::size_t i = 0; i < n; ++i) {
          float s = v(0, i), mx = v(0, i), hs = float(bf16(v(0, i))), gm = float(f16(v(0, i)));
          std::int64_t ls = std::int64_t(i);
          for (int r = 1; r < P; ++r) {
            s += v(r, i), mx = std::max(mx, v(r, i)), hs += float(bf16(v(r, i))), gm = std::max(gm, float(f16(v(r, i))));
            ls += std::int64_t(r) << 40 | std::int64_t(i);
          }
          ok = ok && f[i] == s && fm[i] == mx && h[i].bits == bf16(hs).bits && g[i].bits == f16(gm).bits && l[i] == ls;
        }
        CHECK(ok);
        std::uint64_t want = 0;
        for (std::size_t e : {4, 4, 2, 2, 8}) want += std::uint64_t(2) * std::uint64_t(P - 1) * n * e / std::uint64_t(P);
        CHECK(c.stats().all_reduce == want);
      });
    }
}

TEST_CASE("all_to_all_v whose send and receive counts disagree is an error on every rank") {
  std::atomic<int> errors{0};
  on_threads(3, [&](ThreadComm& c) {
    std::vector<std::size_t> sc(3, 1), rc(3, 1);
    if (c.rank() == 1) sc[2] = 2;  // rank 2 still expects 1 from rank 1
    std::vector<float> s(4), r(3);
    try {
      c.all_to_all_v(s.data(), sc, r.data(), rc);
    } catch (const Error& e) {
      if (std::string(e.what()).find("rank 1 sends 2 elements to rank 2 which expects 1") != std::string::npos) ++errors;
    }
  });
  CHECK(errors == 3);
}
