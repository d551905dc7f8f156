//===- ExpertBalance.h - Auxiliary-loss-free load balancing -----*- C++ -*-===//
//
// DeepSeek-V3's balancing: after every step, each MoE layer's router bias moves
// by gamma * sign(mean load - expert load), where an expert's load is the number
// of tokens routed to it during the step. The bias only steers selection (the
// moe_gate kernel adds it to the scores it ranks, not to the combine weights).
// The layers are found in the plan: each dispatch kernel's counts output, and
// the bias input of the moe_gate kernel producing that dispatch's indices.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_TRAIN_EXPERTBALANCE_H
#define DSFLOW_RUNTIME_TRAIN_EXPERTBALANCE_H

#include "dist/Communicator.h"
#include "exec/Memory.h"
#include "io/Status.h"

#include <vector>

namespace dsflow::train {

class ExpertBalance {
public:
  explicit ExpertBalance(const Plan &plan);

  int numLayers() const { return static_cast<int>(layers.size()); }

  /// Adds the expert counts of the micro-batch just run. They must add up to
  /// tokens * k in every layer; anything else means the counts were not what
  /// dispatch wrote (a plan or runtime bug), and is reported.
  io::Status accumulate(exec::Memory &memory);
  /// Sums the step's loads over the ranks that train on different data, so
  /// that every rank moves its biases identically (call before updateBiases).
  io::Status sumOver(dist::Communicator &ranks);
  /// Moves the biases by gamma * sign(mean - load) and starts a new step.
  void updateBiases(exec::Memory &memory, double gamma);
  /// max/mean expert load of the last completed step, worst layer (1 = even).
  double imbalance() const { return lastImbalance; }
  /// Per layer, per expert token counts of the last completed step.
  const std::vector<std::vector<int64_t>> &lastLoads() const { return last; }
  /// The router-bias buffer of layer `l`.
  int32_t biasBuffer(size_t l) const { return layers[l].bias; }

private:
  struct Layer {
    int32_t counts, bias;
    std::vector<int64_t> load;
    /// tokens * k: the rows dispatch writes each micro-batch.
    int64_t rows;
  };
  std::vector<Layer> layers;
  std::vector<std::vector<int64_t>> last;
  double lastImbalance = 1.0;
};

} // namespace dsflow::train

#endif // DSFLOW_RUNTIME_TRAIN_EXPERTBALANCE_H
