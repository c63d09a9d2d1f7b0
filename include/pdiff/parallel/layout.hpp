// pdiff/parallel/layout.hpp — Layout<Ps...>: the normalised set of policies of a model.
//
// `Layout<Ps...>` is an alias for one canonical type,
//   NormalLayout<TP<t>, Ulysses<u>, Ring<r>, CFG<c>, DP<d>, EP<e>, VaePatch<v>, Backend>,
// so the order of Ps does not matter and degree-1 policies vanish:
//   Layout<TP<2>, Ulysses<2>> is Layout<Ulysses<2>, TP<2>> is Layout<Ulysses<2>, TP<2>, DP<1>>.
// Rules, each a static_assert naming the rule (cross-policy rules live only here, STYLE.md §4):
//   every parameter is a policy (the offender is named by show_name_of_invalid_policy<T>),
//   at most one policy per kind, degree >= 1, EP and VaePatch degrees divide the mesh.
// The rank geometry (coordinates and axis groups) is in NormalLayout (parallel/geometry.hpp).
#pragma once

#include <type_traits>

#include "pdiff/core/backend_tag.hpp"
#include "pdiff/parallel/cfg.hpp"
#include "pdiff/parallel/dp.hpp"
#include "pdiff/parallel/ep.hpp"
#include "pdiff/parallel/geometry.hpp"
#include "pdiff/parallel/policy.hpp"
#include "pdiff/parallel/ring.hpp"
#include "pdiff/parallel/tp.hpp"
#include "pdiff/parallel/ulysses.hpp"
#include "pdiff/parallel/vae_patch.hpp"

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
  static_assert(unique_kind<kind::tensor, Ps...>, "Layout: duplicate kind tensor (TP<N> given twice)");
  static_assert(unique_kind<kind::seq_ulysses, Ps...>, "Layout: duplicate kind seq_ulysses (Ulysses<N> given twice)");
  static_assert(unique_kind<kind::seq_ring, Ps...>, "Layout: duplicate kind seq_ring (Ring<N> given twice)");
  static_assert(unique_kind<kind::cfg, Ps...>, "Layout: duplicate kind cfg (CFG<N> given twice)");
  static_assert(unique_kind<kind::data, Ps...>, "Layout: duplicate kind data (DP<N> given twice)");
  static_assert(unique_kind<kind::expert, Ps...>, "Layout: duplicate kind expert (EP<N> given twice)");
  static_assert(unique_kind<kind::vae_patch, Ps...>, "Layout: duplicate kind vae_patch (VaePatch<N> given twice)");
  static_assert(unique_kind<kind::backend, Ps...>, "Layout: duplicate kind backend (OnCpu/OnCuda given twice)");
  static_assert((true && ... && (degree_or_one<Ps>() >= 1)), "Layout: every degree must be >= 1");

  static constexpr int tp = degree_of_kind_v<kind::tensor, Ps...>;
  static constexpr int ulysses = degree_of_kind_v<kind::seq_ulysses, Ps...>;
  static constexpr int ring = degree_of_kind_v<kind::seq_ring, Ps...>;
  static constexpr int cfg = degree_of_kind_v<kind::cfg, Ps...>;
  static constexpr int dp = degree_of_kind_v<kind::data, Ps...>;
  static constexpr int ep = degree_of_kind_v<kind::expert, Ps...>;
  static constexpr int vae_patch = degree_of_kind_v<kind::vae_patch, Ps...>;
  static constexpr int mesh = tp * ulysses * ring * cfg * dp;
  static_assert(ep < 1 || mesh % ep == 0,
                "Layout: EP<N> must divide the mesh size tp*ulysses*ring*cfg*dp (experts spread over ranks of the mesh)");
  static_assert(vae_patch < 1 || mesh % vae_patch == 0,
                "Layout: VaePatch<N> must divide the mesh size tp*ulysses*ring*cfg*dp (VAE tiles spread over ranks of "
                "the mesh)");

  template <class B, class... Rest> struct first_backend { using type = B; };
  template <class B, class P, class... Rest>
  struct first_backend<B, P, Rest...>
      : std::conditional_t<std::is_same_v<kind_of_t<P>, kind::backend>, first_backend<P>, first_backend<B, Rest...>> {};
  using backend = typename first_backend<DefaultBackend, Ps...>::type;

  using type = NormalLayout<TP<tp>, Ulysses<ulysses>, Ring<ring>, CFG<cfg>, DP<dp>, EP<(ep < 1 ? 1 : ep)>,
                            VaePatch<(vae_patch < 1 ? 1 : vae_patch)>, backend>;
};

}  // namespace detail

template <class... Ps>
using Layout = typename detail::make_layout<Ps...>::type;

}  // namespace pdiff
