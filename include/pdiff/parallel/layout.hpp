// pdiff/parallel/layout.hpp — Layout<Ps...>: the normalised set of policies of a model.
//
// `Layout<Ps...>` is an alias for one canonical type, one parameter per registered policy
// (parallel/policies.hpp) and the backend:
//   NormalLayout<TP<t>, Ulysses<u>, Ring<r>, CFG<c>, DP<d>, EP<e>, VaePatch<v>, Backend>,
// so the order of Ps does not matter and degree-1 policies vanish:
//   Layout<TP<2>, Ulysses<2>> is Layout<Ulysses<2>, TP<2>> is Layout<Ulysses<2>, TP<2>, DP<1>>.
// Rules, each a static_assert naming the rule (cross-policy rules live only here, STYLE.md §4):
//   every parameter is a policy (the offender is named by show_name_of_invalid_policy<T>),
//   at most one policy per kind, degree >= 1, overlay degrees (EP, VaePatch) divide the mesh.
// The rank geometry (coordinates and axis groups) is in NormalLayout (parallel/geometry.hpp).
#pragma once

#include <type_traits>

#include "pdiff/core/backend_tag.hpp"
#include "pdiff/parallel/geometry.hpp"
#include "pdiff/parallel/policies.hpp"
#include "pdiff/parallel/policy.hpp"

namespace pdiff {

// Instantiated (and, being incomplete, printed by the compiler) for a parameter that is not a policy.
template <class T> struct show_name_of_invalid_policy;

namespace detail {

template <class T, bool = Policy<T>>
struct require_policy {
  static constexpr bool value = true;
};
template <class T>
struct require_policy<T, false> {
  static_assert(Policy<T>, "Layout: every parameter must be a policy type (TP<N>, Ulysses<N>, Ring<N>, CFG<N>, DP<N>, "
                           "EP<N>, VaePatch<N>, OnCpu, OnCuda); the offending type is named below");
  using show = decltype(sizeof(show_name_of_invalid_policy<T>));
  static constexpr bool value = false;
};

template <class K, class... Ps>
constexpr bool unique_kind = count_kind_v<K, Ps...> <= 1;

template <class P>
constexpr int degree_or_one() {
  if constexpr (Policy<P>) return P::degree;
  else return 1;
}

template <class... Ps>
struct make_layout {
  static_assert((true && ... && require_policy<Ps>::value), "Layout: a parameter is not a policy");
#define PDIFF_LAYOUT_UNIQUE(axis, Policy, kind_) \
  static_assert(unique_kind<kind::kind_, Ps...>, "Layout: duplicate kind " #kind_ " (" #Policy "<N> given twice)");
  PDIFF_POLICIES(PDIFF_LAYOUT_UNIQUE)
#undef PDIFF_LAYOUT_UNIQUE
  static_assert(unique_kind<kind::backend, Ps...>, "Layout: duplicate kind backend (OnCpu/OnCuda given twice)");
  static_assert((true && ... && (degree_or_one<Ps>() >= 1)), "Layout: every degree must be >= 1");

#define PDIFF_LAYOUT_DEGREE_OF(axis, Policy, kind_) static constexpr int axis = degree_of_kind_v<kind::kind_, Ps...>;
  PDIFF_POLICIES(PDIFF_LAYOUT_DEGREE_OF)
#undef PDIFF_LAYOUT_DEGREE_OF
#define PDIFF_LAYOUT_MESH_SIZE(axis, Policy, kind_) *axis
  static constexpr int mesh = 1 PDIFF_MESH_POLICIES(PDIFF_LAYOUT_MESH_SIZE);
#undef PDIFF_LAYOUT_MESH_SIZE
// Expanded through PDIFF_OVERLAY_POLICIES only: it expands PDIFF_MESH_POLICIES inside itself, which the
// preprocessor refuses inside an expansion of the mesh list (PDIFF_POLICIES).
#define PDIFF_LAYOUT_MESH_NAME(axis, Policy, kind_) " " #axis
#define PDIFF_LAYOUT_OVERLAY_DIVIDES(axis, Policy, kind_)                                                   \
  static_assert(axis < 1 || mesh % axis == 0,                                                              \
                "Layout: " #Policy "<N> must divide the mesh size (the product of the degrees of" PDIFF_MESH_POLICIES( \
                    PDIFF_LAYOUT_MESH_NAME) "): an overlay spreads over ranks of the mesh");
  PDIFF_OVERLAY_POLICIES(PDIFF_LAYOUT_OVERLAY_DIVIDES)
#undef PDIFF_LAYOUT_OVERLAY_DIVIDES
#undef PDIFF_LAYOUT_MESH_NAME

  template <class B, class... Rest> struct first_backend { using type = B; };
  template <class B, class P, class... Rest>
  struct first_backend<B, P, Rest...>
      : std::conditional_t<std::is_same_v<kind_of_t<P>, kind::backend>, first_backend<P>, first_backend<B, Rest...>> {};
  using backend = typename first_backend<DefaultBackend, Ps...>::type;

#define PDIFF_LAYOUT_NORMAL(axis, Policy, kind_) Policy<(axis < 1 ? 1 : axis)>,
  using type = NormalLayout<PDIFF_POLICIES(PDIFF_LAYOUT_NORMAL) backend>;
#undef PDIFF_LAYOUT_NORMAL
};

}  // namespace detail

template <class... Ps>
using Layout = typename detail::make_layout<Ps...>::type;

}  // namespace pdiff
