//===- ExpertSlots.h - Where a MoE layer's routed experts live --*- C++ -*-===//
//
// Reads the plan's expert placement (plan.proto ExpertPlacement) for one MoE
// layer as untrusted input. Without a placement, expert e sits in the only slot
// for it on EP rank e / (experts / ranks), as a contiguous split.
//
// Also names the routed-expert tensors of a plan (which model layer and
// expert each expert gradient belongs to), which the trainer needs to reduce
// them over the right ranks.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_EXEC_EXPERTSLOTS_H
#define DSFLOW_RUNTIME_EXEC_EXPERTSLOTS_H

#include "io/Status.h"
#include "plan/KernelStages.h"
#include "plan/PlanFile.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace dsflow::exec {

/// One MoE layer's physical expert slots: slot s of EP rank r is
/// r * slotsPerRank + s.
struct ExpertSlots {
  int ranks = 1;
  int64_t slotsPerRank = 0;
  /// The logical expert in each slot.
  std::vector<int32_t> slotExpert;
  /// Each expert's slots, ascending (never empty).
  std::vector<std::vector<int32_t>> replicas;

  int32_t expertOf(int rank, int64_t slot) const {
    return slotExpert[rank * slotsPerRank + slot];
  }
  /// Whether EP rank `rank` holds a slot of `expert`.
  bool holds(int rank, int32_t expert) const;
};

/// The slots of model layer `layer` (its index in the model, MTP modules after
/// the layers) over `ranks` EP ranks; an error names what does not fit.
io::Expected<ExpertSlots> expertSlots(const Plan &plan, int64_t layer,
                                      int64_t experts, int ranks);

/// A routed expert's parameter tensor, found through the plan's expert
/// weight-gradient kernels.
struct RoutedExpertTensor {
  int32_t grad;
  int64_t layer;
  int32_t expert;
};
std::vector<RoutedExpertTensor> routedExpertTensors(const Plan &plan);

/// A routed expert's tensor and the EP ranks holding a slot of its expert
/// (ascending, each once).
struct ExpertTensorHolders {
  int32_t param, grad;
  std::vector<int> ranks;
};
/// Every routed-expert tensor of `plan` with its holders among `epRanks`.
io::Expected<std::vector<ExpertTensorHolders>>
expertTensorHolders(const Plan &plan, int epRanks);

} // namespace dsflow::exec

#endif // DSFLOW_RUNTIME_EXEC_EXPERTSLOTS_H
