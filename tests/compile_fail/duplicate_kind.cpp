// Must not compile: two policies of kind tensor.
#include "pdiff/parallel/layout.hpp"
pdiff::Layout<pdiff::TP<2>, pdiff::Ulysses<2>, pdiff::TP<4>> bad;
int main() {}
