//===- SyntheticLoads.cpp - Uniform and Zipf-skewed expert loads ----------===//
#include "Placement/SyntheticLoads.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

namespace dsflow::placement {

std::vector<io::LayerLoads> uniformLoads(const std::vector<int64_t> &layers,
                                         int64_t experts, int64_t tokens) {
  std::vector<io::LayerLoads> out;
  for (int64_t layer : layers) {
    io::LayerLoads l{layer, std::vector<int64_t>(experts, tokens / experts)};
    for (int64_t e = 0; e < tokens % experts; ++e)
      ++l.loads[e];
    out.push_back(std::move(l));
  }
  return out;
}

/// A uniform integer in [0, bound): rejection sampling on the raw 64-bit
/// output, whose sequence the standard fixes (distributions it does not).
static uint64_t below(std::mt19937_64 &rng, uint64_t bound) {
  uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  uint64_t x;
  do
    x = rng();
  while (x >= limit);
  return x % bound;
}

/// Token counts by popularity rank: proportional to (i + 1)^-s, summing to
/// `tokens`; leftover tokens go to the largest remainders (ties: lower rank).
static std::vector<int64_t> zipfCounts(int64_t experts, double s,
                                       int64_t tokens) {
  std::vector<double> weight(experts);
  double total = 0;
  for (int64_t i = 0; i < experts; ++i)
    total += weight[i] = std::pow(static_cast<double>(i + 1), -s);
  std::vector<int64_t> counts(experts);
  std::vector<double> remainder(experts);
  int64_t assigned = 0;
  for (int64_t i = 0; i < experts; ++i) {
    double exact = static_cast<double>(tokens) * weight[i] / total;
    counts[i] = std::min<int64_t>(static_cast<int64_t>(std::floor(exact)),
                                  tokens - assigned);
    remainder[i] = exact - static_cast<double>(counts[i]);
    assigned += counts[i];
  }
  std::vector<int64_t> order(experts);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return remainder[a] > remainder[b];
  });
  for (int64_t i = 0; assigned < tokens; i = (i + 1) % experts, ++assigned)
    ++counts[order[i]];
  return counts;
}

std::vector<io::LayerLoads> zipfLoads(const std::vector<int64_t> &layers,
                                      int64_t experts, double s, int64_t tokens,
                                      uint64_t seed) {
  std::vector<int64_t> byRank = zipfCounts(experts, s, tokens);
  std::mt19937_64 rng(seed);
  std::vector<io::LayerLoads> out;
  for (int64_t layer : layers) {
    std::vector<int64_t> expertOfRank(experts);
    std::iota(expertOfRank.begin(), expertOfRank.end(), 0);
    for (int64_t i = experts - 1; i > 0; --i)
      std::swap(expertOfRank[i],
                expertOfRank[below(rng, static_cast<uint64_t>(i + 1))]);
    io::LayerLoads l{layer, std::vector<int64_t>(experts)};
    for (int64_t rank = 0; rank < experts; ++rank)
      l.loads[expertOfRank[rank]] = byRank[rank];
    out.push_back(std::move(l));
  }
  return out;
}

} // namespace dsflow::placement
