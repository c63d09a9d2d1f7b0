// Must not compile: VaePatch<3> does not divide a mesh of 4 ranks.
#include "pdiff/parallel/layout.hpp"
pdiff::Layout<pdiff::TP<4>, pdiff::VaePatch<3>> bad;
int main() {}
