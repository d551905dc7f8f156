//===- KeptActivations.cpp - What the forward keeps for the backward ------===//
#include "KeptActivations.h"

#include "plan/KeptActivations.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace dsflow {
namespace {

constexpr size_t kShortListing = 12;

/// "expert_ffn.412.gate_preact" -> "expert_ffn.gate_preact": the kernel index
/// is dropped so that every layer's copy falls in one group.
std::string groupOf(const std::string &bufferName) {
  size_t first = bufferName.find('.');
  size_t second = bufferName.find('.', first + 1);
  if (first == std::string::npos || second == std::string::npos)
    return bufferName;
  return bufferName.substr(0, first) + bufferName.substr(second);
}

} // namespace

void printKeptActivations(const Plan &plan, bool all) {
  std::vector<bool> kept = keptForBackward(plan);
  std::map<std::string, std::pair<int, int64_t>> groups;
  int64_t total = 0;
  for (int32_t b = 0; b < plan.buffers_size(); ++b) {
    const Buffer &buffer = plan.buffers(b);
    if (!kept[b])
      continue;
    auto &[count, bytes] = groups[groupOf(buffer.name())];
    count++;
    bytes += buffer.bytes();
    total += buffer.bytes();
  }
  std::vector<std::pair<std::string, std::pair<int, int64_t>>> sorted(
      groups.begin(), groups.end());
  std::stable_sort(sorted.begin(), sorted.end(), [](auto &a, auto &b) {
    return a.second.second > b.second.second;
  });
  std::printf(
      "\nkept for the backward, by producer (%.2f MiB in %zu groups):\n",
      total / 1048576.0, sorted.size());
  size_t shown = all ? sorted.size() : std::min(sorted.size(), kShortListing);
  for (size_t i = 0; i < shown; ++i) {
    const auto &[name, stats] = sorted[i];
    std::printf("  %-32s %5d buffers %12.2f MiB  %5.1f%%\n", name.c_str(),
                stats.first, stats.second / 1048576.0,
                total ? 100.0 * stats.second / total : 0.0);
  }
  if (shown < sorted.size())
    std::printf("  ... %zu more (--all)\n", sorted.size() - shown);
}

} // namespace dsflow
