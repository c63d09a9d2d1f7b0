// Must not compile: `int` is not a policy; the compiler names it through show_name_of_invalid_policy.
#include "pdiff/parallel/layout.hpp"
pdiff::Layout<pdiff::TP<2>, int> bad;
int main() {}
