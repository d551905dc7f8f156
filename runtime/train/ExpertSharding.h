//===- ExpertSharding.h - Which ranks own each routed expert ----*- C++ -*-===//
//
// Under expert parallelism (the plan's cluster has ep > 1) the ranks form
// dp groups of ep consecutive ranks: world rank = dpIndex * ep + epRank, so an
// EP group stays within a node. A routed expert with one slot lives on one EP
// rank: only the ranks with that EP rank (one per EP group, the expert's
// data-parallel replicas) compute, reduce and update its tensors; elsewhere
// they are never read nor written. An expert with several slots (replicas on
// different EP ranks) is reduced over the whole world like a dense tensor,
// with zeros from the ranks that do not hold it, so every copy stays equal.
// Every rank holds every tensor's buffer: the memory saving of EP (only local
// experts allocated) needs per-rank plans and is not done yet.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_TRAIN_EXPERTSHARDING_H
#define DSFLOW_TRAIN_EXPERTSHARDING_H

#include "dist/Communicator.h"
#include "exec/Memory.h"

#include <map>

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
  /// Whether the tensor of gradient buffer `grad` lives on one EP rank.
  bool sharded(int32_t grad) const { return holder.count(grad) != 0; }
  /// Whether this rank computes and updates that sharded tensor.
  bool local(int32_t grad) const;

  /// Brings world rank 0 the sharded tensors of other EP ranks (from the
  /// holders in EP group 0), e.g. before it saves every parameter. Collective
  /// over `world`.
  io::Status gatherToRankZero(exec::Memory &memory,
                              dist::Communicator &world) const;

private:
  int ep = 1, rank = 0;
  /// Sharded tensors' gradient buffer -> the EP rank holding them.
  std::map<int32_t, int> holder;
};

} // namespace dsflow::train

#endif // DSFLOW_TRAIN_EXPERTSHARDING_H
