// Must not compile: EP<4> does not divide a mesh of 6 ranks.
#include "pdiff/parallel/layout.hpp"
pdiff::Layout<pdiff::TP<2>, pdiff::CFG<3>, pdiff::EP<4>> bad;
int main() {}
