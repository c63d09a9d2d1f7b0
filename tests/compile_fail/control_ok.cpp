// Must compile: the control case of the compile-fail tests (the harness itself works).
#include "pdiff/parallel/layout.hpp"
pdiff::Layout<pdiff::TP<2>, pdiff::CFG<3>, pdiff::EP<6>, pdiff::VaePatch<3>> good;
int main() {}
