// Must not compile: two backends.
#include "pdiff/parallel/backend.hpp"
#include "pdiff/parallel/layout.hpp"
pdiff::Layout<pdiff::OnCpu, pdiff::TP<2>, pdiff::OnCuda> bad;
int main() {}
