//===- DataParallel.h - Gradients and parameters across ranks ---*- C++ -*-===//
//
// The ranks of a data-parallel group train on different data with identical
// parameters. The parameter tensors are partitioned into contiguous runs, one
// per rank, balanced by size. After the backward the gradients are summed over
// the group:
// - with ZeRO-1, each rank receives only its own run's sums (reduce-scatter),
//   keeps optimizer state and updates only those tensors, and the updated
//   tensors are all-gathered so that every rank holds every parameter again;
// - without, the sums are all-reduced and every rank updates everything.
// Either way a tensor's squared gradient norm is counted by its owner only, so
// the sum over ranks is the global norm. The communicator sums in rank order:
// every rank computes identical bits. A tensor a rank left out of its memory
// (a routed expert it does not hold) contributes zeros and receives nothing;
// only replicated experts, reduced without ZeRO-1, are grouped so.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_TRAIN_DATAPARALLEL_H
#define DSFLOW_TRAIN_DATAPARALLEL_H

#include "dist/Communicator.h"
#include "exec/Memory.h"

#include <functional>
#include <vector>

namespace dsflow::train {

class DataParallel {
public:
  /// Over the gradient buffers of `plan` for which `member(grad)` holds.
  DataParallel(const Plan &plan, dist::Communicator &group, bool zero1,
               const std::function<bool(int32_t)> &member);

  int ranks() const { return group.size(); }
  bool sharded() const { return zero1 && group.size() > 1; }
  /// Whether this rank owns the tensor whose gradient buffer is `grad` (it
  /// counts its norm and, under ZeRO-1, is the only one to update it).
  bool owns(int32_t grad) const;
  /// Whether this rank updates that tensor.
  bool updates(int32_t grad) const { return !sharded() || owns(grad); }

  /// Sums the gradients over the group (see the file comment).
  io::Status reduceGradients(exec::Memory &memory);
  /// Under ZeRO-1, brings every rank the updated tensors of their owners.
  io::Status gatherParameters(exec::Memory &memory);

private:
  struct Tensor {
    int32_t param, grad;
    int64_t elements;
  };
  void partition();
  /// Copies the gradients (or parameters) of tensors [first, end) to `to`, one
  /// after the other, and back from `from`.
  void pack(exec::Memory &memory, bool gradients, size_t first, size_t end,
            float *to) const;
  void unpack(exec::Memory &memory, bool gradients, size_t first, size_t end,
              const float *from) const;
  int64_t totalElements() const;

  dist::Communicator &group;
  bool zero1;
  std::vector<Tensor> tensors;
  /// Tensors [runStart[r], runStart[r + 1]) belong to rank r.
  std::vector<size_t> runStart;
  std::vector<int64_t> runElements;
  std::vector<float> staging;
};

} // namespace dsflow::train

#endif // DSFLOW_TRAIN_DATAPARALLEL_H
