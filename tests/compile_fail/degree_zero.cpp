// Must not compile: degree < 1.
#include "pdiff/parallel/layout.hpp"
pdiff::Layout<pdiff::Ulysses<0>> bad;
int main() {}
