//===- ExpertSharding.h - Which ranks own each routed expert ----*- C++ -*-===//
//
// Under expert parallelism (the plan's cluster has ep > 1) the ranks form
// dp groups of ep consecutive ranks: world rank = dpIndex * ep + epRank, so an
// EP group stays within a node. A rank allocates only the routed experts its
// EP rank holds a slot of (exec/ExpertParallel.h); their tensors are
// - sharded: the expert has slots on one EP rank only. Its gradients are
//   reduced (and, with ZeRO-1, its optimizer state sharded) over the ranks
//   with that EP rank, one per EP group;
// - replicated: slots on several EP ranks. Its gradients are summed over the
//   whole world, ranks without it adding zeros, and every holder updates its
//   copy (the same sum, the same update), so the copies stay equal.
// Everything else is dense: reduced over the world like data parallelism.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_TRAIN_EXPERTSHARDING_H
#define DSFLOW_TRAIN_EXPERTSHARDING_H

#include "dist/Communicator.h"
#include "exec/Memory.h"

#include <map>
#include <vector>

namespace dsflow::train {

class ExpertSharding {
public:
  /// For `worldRank` of a job running `plan`; errors name a placement that
  /// does not fit the plan's experts.
  static io::Expected<ExpertSharding> create(const Plan &plan, int worldRank);

  int epRanks() const { return ep; }
  int epRank() const { return rank % ep; }
  /// The EP group (and data-parallel index) of this rank.
  int dpIndex() const { return rank / ep; }

  /// Whether the tensor of gradient buffer `grad` is a routed expert's held
  /// by one EP rank, or by several.
  bool sharded(int32_t grad) const { return kindOf(grad) == Kind::Sharded; }
  bool replicated(int32_t grad) const {
    return kindOf(grad) == Kind::Replicated;
  }
  /// Whether this rank holds that tensor (dense ones: always).
  bool holds(int32_t grad) const;
  /// Whether this rank counts a replicated tensor in the gradient norm: the
  /// first holder in EP group 0.
  bool countsReplicated(int32_t grad) const;

  /// The first EP rank holding the routed-expert tensor of `grad` (0 for a
  /// dense tensor).
  int firstHolder(int32_t grad) const;

private:
  enum class Kind { Dense, Sharded, Replicated };
  Kind kindOf(int32_t grad) const;

  int ep = 1, rank = 0;
  /// Routed-expert tensors' gradient buffer -> their holders' EP ranks.
  std::map<int32_t, std::vector<int>> holders;
};

} // namespace dsflow::train

#endif // DSFLOW_TRAIN_EXPERTSHARDING_H
