// Must not compile: FLUX.2 has no experts, so EP<N> on it is a mistake the type names.
#include "pdiff/models/flux2/flux2.hpp"
pdiff::Flux2<pdiff::TP<2>, pdiff::EP<2>, pdiff::OnCpu> bad;
int main() {}
