//===- StagePartition.cpp - Decoder layers onto pipeline stages -----------===//
#include "Stages/StagePartition.h"

#include <algorithm>
#include <limits>

namespace dsflow::stages {

io::Expected<std::vector<Stage>> partitionStages(const ModelCosts &costs,
                                                 int64_t stages) {
  const int64_t layers = int64_t(costs.layers.size());
  if (stages < 1 || layers < stages)
    return io::makeError("pipeline", std::to_string(layers) +
                                         " layers cannot fill " +
                                         std::to_string(stages) + " stages");
  // prefix[i]: cost of layers [0, i).
  std::vector<double> prefix(layers + 1, 0.0);
  for (int64_t l = 0; l < layers; ++l)
    prefix[l + 1] = prefix[l] + costs.layers[l];
  auto stageCost = [&](int64_t s, int64_t first, int64_t end) {
    double c = prefix[end] - prefix[first];
    if (s == 0)
      c += costs.embedding;
    if (s == stages - 1)
      c += costs.head + costs.mtp;
    return c;
  };
  // best[s][i]: the least possible max cost of stages [0, s] over layers
  // [0, i); cut[s][i]: where stage s starts in that split. Ties keep the
  // earliest cut, so the result is a pure function of the costs.
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<std::vector<double>> best(stages,
                                        std::vector<double>(layers + 1, inf));
  std::vector<std::vector<int64_t>> cut(stages,
                                        std::vector<int64_t>(layers + 1, 0));
  for (int64_t i = 1; i <= layers; ++i)
    best[0][i] = stageCost(0, 0, i);
  for (int64_t s = 1; s < stages; ++s)
    for (int64_t i = s + 1; i <= layers; ++i)
      for (int64_t j = s; j < i; ++j) {
        double c = std::max(best[s - 1][j], stageCost(s, j, i));
        if (c < best[s][i]) {
          best[s][i] = c;
          cut[s][i] = j;
        }
      }
  std::vector<Stage> out(stages);
  int64_t end = layers;
  for (int64_t s = stages - 1; s >= 0; --s) {
    int64_t first = s == 0 ? 0 : cut[s][end];
    out[s].firstLayer = first;
    out[s].endLayer = end;
    out[s].cost = stageCost(s, first, end);
    end = first;
  }
  out.front().embedding = true;
  out.back().head = true;
  out.back().mtp = costs.mtp > 0;
  return out;
}

double imbalance(const std::vector<Stage> &stages) {
  double most = 0, total = 0;
  for (const Stage &s : stages) {
    most = std::max(most, s.cost);
    total += s.cost;
  }
  return total > 0 ? most / (total / double(stages.size())) : 1.0;
}

} // namespace dsflow::stages
