// pdiff/parallel/policy.hpp — what a policy is: a type with a `kind` tag and an int `degree`.
//
// | trait                      | meaning                                                       |
// |----------------------------|---------------------------------------------------------------|
// | Policy<T>                  | concept: T::kind and T::degree exist                          |
// | kind_of_t<T>               | T::kind for a policy, void for anything else                  |
// | count_kind_v<K, Ps...>     | how many of Ps have kind K                                    |
// | degree_of_kind_v<K, Ps...> | the degree of the policy of kind K among Ps, 1 when absent    |
#pragma once

#include <concepts>
#include <type_traits>

#include "pdiff/core/kinds.hpp"

namespace pdiff {

template <class T>
concept Policy = requires {
  typename T::kind;
  { T::degree } -> std::convertible_to<int>;
};

namespace detail {
template <class T> struct kind_of { using type = void; };
template <Policy T> struct kind_of<T> { using type = typename T::kind; };
}  // namespace detail

template <class T> using kind_of_t = typename detail::kind_of<T>::type;

template <class K, class... Ps>
inline constexpr int count_kind_v = (0 + ... + int(std::is_same_v<kind_of_t<Ps>, K>));

namespace detail {
template <class K, class P>
constexpr int degree_if_kind() {
  if constexpr (std::is_same_v<kind_of_t<P>, K>) return P::degree;
  else return 1;
}
}  // namespace detail

// Product over the matching policies: with at most one of each kind (checked by Layout) it is that
// policy's degree, or 1 when the kind is absent.
template <class K, class... Ps>
inline constexpr int degree_of_kind_v = (1 * ... * detail::degree_if_kind<K, Ps>());

}  // namespace pdiff
