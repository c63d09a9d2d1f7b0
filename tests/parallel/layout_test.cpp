// Layout: order independence, defaults, degree-1 policies vanish, and the rank geometry.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <string_view>
#include <type_traits>

#include "pdiff/parallel/backend.hpp"
#include "pdiff/parallel/layout.hpp"

using namespace pdiff;

// Order independence and defaults are properties of types: checked by the compiler.
static_assert(std::is_same_v<Layout<TP<2>, Ulysses<2>>, Layout<Ulysses<2>, TP<2>>>);
static_assert(std::is_same_v<Layout<TP<4>, CFG<2>, Ring<2>>, Layout<Ring<2>, TP<4>, CFG<2>>>);
static_assert(std::is_same_v<Layout<TP<2>, DP<1>, EP<1>>, Layout<TP<2>>>);
static_assert(std::is_same_v<Layout<>, Layout<TP<1>, Ulysses<1>, Ring<1>, CFG<1>, DP<1>>>);
static_assert(std::is_same_v<Layout<OnCpu, TP<2>>, Layout<TP<2>, OnCpu>>);
static_assert(!std::is_same_v<Layout<OnCpu>, Layout<OnCuda>>);
static_assert(std::is_same_v<Layout<>::backend, DefaultBackend>);
static_assert(std::is_same_v<Layout<OnCpu, EP<8>, TP<2>, Ulysses<2>, Ring<2>>::backend, OnCpu>);

// Every policy is an empty type.
static_assert(std::is_empty_v<TP<4>> && std::is_empty_v<Ulysses<2>> && std::is_empty_v<Ring<2>> &&
              std::is_empty_v<CFG<2>> && std::is_empty_v<DP<2>> && std::is_empty_v<EP<8>> &&
              std::is_empty_v<VaePatch<2>> && std::is_empty_v<OnCpu> && std::is_empty_v<Layout<TP<2>, CFG<2>>>);

using L8 = Layout<TP<2>, Ulysses<2>, CFG<2>, EP<8>, VaePatch<4>>;
static_assert(L8::world_size == 8 && L8::tp == 2 && L8::ulysses == 2 && L8::ring == 1 && L8::cfg == 2 &&
              L8::dp == 1 && L8::ep == 8 && L8::vae_patch == 4);
// rank = tp + TP·(u + U·(r + R·(c + C·d))): rank 5 = tp 1, u 0, cfg 1
static_assert(L8::coords(5) == Coords{1, 0, 0, 1, 0, 5, 1});
static_assert(L8::group<Axis::tp>(5) == std::array{4, 5});
static_assert(L8::group<Axis::ulysses>(5) == std::array{5, 7});
static_assert(L8::group<Axis::cfg>(5) == std::array{1, 5});
static_assert(L8::group<Axis::ep>(5) == std::array{0, 1, 2, 3, 4, 5, 6, 7});
static_assert(L8::group<Axis::vae_patch>(5) == std::array{4, 5, 6, 7});

using Usp = Layout<TP<2>, Ulysses<2>, Ring<2>>;
static_assert(Usp::group<Axis::sp>(1) == std::array{1, 3, 5, 7});
static_assert(Usp::group<Axis::ring>(3) == std::array{3, 7});

// Walks every rank of a layout: each rank is in exactly one group per axis, at the position its
// coordinate says, and the group's members agree on the group.
template <class L, Axis A>
void check_axis() {
  std::set<int> seen_groups;
  for (int r = 0; r < L::world_size; ++r) {
    auto g = L::template group<A>(r);
    CHECK(g[std::size_t(L::coord(A, r))] == r);
    for (int m : g) {
      CHECK(L::group_id(A, m) == L::group_id(A, r));
      CHECK(L::template group<A>(m) == g);
    }
    seen_groups.insert(L::group_id(A, r));
  }
  CHECK(int(seen_groups.size()) * L::degree(A) == L::world_size);
}

template <class L>
void check_layout() {
  check_axis<L, Axis::tp>();
  check_axis<L, Axis::ulysses>();
  check_axis<L, Axis::ring>();
  check_axis<L, Axis::sp>();
  check_axis<L, Axis::cfg>();
  check_axis<L, Axis::dp>();
  check_axis<L, Axis::ep>();
  check_axis<L, Axis::vae_patch>();
  for (int r = 0; r < L::world_size; ++r) {
    Coords c = L::coords(r);
    CHECK(r == c.tp + L::tp * (c.ulysses + L::ulysses * (c.ring + L::ring * (c.cfg + L::cfg * c.dp))));
  }
}

TEST_CASE("geometry: every axis partitions the mesh, TP fastest") {
  check_layout<Layout<>>();
  check_layout<Layout<TP<2>, Ulysses<2>, Ring<2>>>();
  check_layout<Layout<TP<3>, CFG<2>, DP<2>, EP<4>, VaePatch<3>>>();
  check_layout<Layout<Ulysses<2>, Ring<3>, CFG<2>, EP<12>>>();
  check_layout<L8>();
}

// Every registered policy (parallel/policies.hpp) gets, from its one line: its kind checked once in a
// Layout, a degree member and an Axis, a name, a coordinate in Coords, and its place in the rank order
// (mesh policies) or a block of consecutive ranks (overlays).
#define PDIFF_TEST_POLICY(axis, Policy, kind_)                                                                  \
  static_assert(std::is_same_v<kind_of_t<Policy<3>>, kind::kind_>);                                           \
  static_assert(Layout<Policy<2>, std::conditional_t<std::is_same_v<Policy<1>, DP<1>>, CFG<2>, DP<2>>>::axis == 2); \
  static_assert(Layout<Policy<2>, std::conditional_t<std::is_same_v<Policy<1>, DP<1>>, CFG<2>, DP<2>>>::degree(   \
                    Axis::axis) == 2);                                                                        \
  static_assert(std::string_view(axis_name(Axis::axis)) == #axis);
PDIFF_POLICIES(PDIFF_TEST_POLICY)
#undef PDIFF_TEST_POLICY

TEST_CASE("the registry: mesh policies in rank order, overlays in blocks, sp from Ulysses × Ring") {
  constexpr int n = sizeof(all_axes) / sizeof(all_axes[0]);
  static_assert(n == 8);  // 7 registered policies + sp
  int overlays = 0;
  for (Axis a : all_axes) overlays += is_overlay(a) ? 1 : 0;
  CHECK(overlays == 2);
  using L = Layout<TP<2>, Ulysses<3>, Ring<2>, CFG<2>, DP<2>, EP<4>, VaePatch<8>>;
  static_assert(L::world_size == 2 * 3 * 2 * 2 * 2);
  static_assert(L::stride(Axis::tp) == 1 && L::stride(Axis::ulysses) == 2 && L::stride(Axis::ring) == 6 &&
                L::stride(Axis::cfg) == 12 && L::stride(Axis::dp) == 24);
  for (int r = 0; r < L::world_size; ++r) {
    const Coords c = L::coords(r);
    CHECK(r == c.tp + 2 * (c.ulysses + 3 * (c.ring + 2 * (c.cfg + 2 * c.dp))));
    CHECK(c.ep == r % 4);
    CHECK(c.vae_patch == r % 8);
    CHECK(L::coord(Axis::sp, r) == c.ulysses + 3 * c.ring);
  }
}
