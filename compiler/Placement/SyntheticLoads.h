//===- SyntheticLoads.h - Uniform and Zipf-skewed expert loads --*- C++ -*-===//
//
// Loads for placing experts when no measured loads file is at hand. Zipf: in
// each layer the expert of popularity rank i (1-based) gets tokens in
// proportion to i^-s; which expert has which rank is a random permutation,
// drawn anew for every layer from one seeded generator (std::mt19937_64 and a
// Fisher-Yates shuffle written out here, so a seed gives the same loads with
// every standard library). Each layer's loads sum to exactly `tokens`
// (largest-remainder rounding).
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_COMPILER_PLACEMENT_SYNTHETICLOADS_H
#define DSFLOW_COMPILER_PLACEMENT_SYNTHETICLOADS_H

#include "io/ExpertLoads.h"

#include <cstdint>
#include <vector>

namespace dsflow::placement {

/// `tokens` split evenly over `experts` in each of `layers` (the first
/// tokens % experts experts get one more).
std::vector<io::LayerLoads> uniformLoads(const std::vector<int64_t> &layers,
                                         int64_t experts, int64_t tokens);

/// Zipf loads with exponent `s` >= 0 (0 is uniform up to rounding).
/// Requires experts > 0, tokens >= 0.
std::vector<io::LayerLoads> zipfLoads(const std::vector<int64_t> &layers,
                                      int64_t experts, double s, int64_t tokens,
                                      uint64_t seed);

} // namespace dsflow::placement

#endif // DSFLOW_COMPILER_PLACEMENT_SYNTHETICLOADS_H
