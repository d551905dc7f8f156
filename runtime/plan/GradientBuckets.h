//===- GradientBuckets.h - Gradient sums overlapping backward ---*- C++ -*-===//
//
// Data parallelism sums every gradient over the ranks after a step's last
// micro-batch. Summing the gradient region in contiguous buckets, each
// started as soon as the backward has written its last byte, overlaps the
// sums with the rest of the backward (as PyTorch's DDP does). A bucket is a
// byte range of the gradient region made of whole gradient buffers (padding
// included: one collective per bucket), of about a target size, ready after
// the last kernel of the train program that writes into it (or reads it: the
// sum changes the bytes).
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_PLAN_GRADIENTBUCKETS_H
#define DSFLOW_RUNTIME_PLAN_GRADIENTBUCKETS_H

#include "schemas/plan.pb.h"

#include <cstdint>
#include <vector>

namespace dsflow {

struct GradientBucket {
  /// Bytes [begin, end) of the gradient region.
  int64_t begin = 0, end = 0;
  /// The last kernel of the program writing or reading one of its
  /// gradients; -1 when none does (ready from the start).
  int32_t readyAfter = -1;
};

/// The gradient region [0, plan.memory().gradient_bytes()) split at gradient
/// buffers' starts into buckets of at least `targetBytes` (the last one may
/// be smaller; a buffer is never split), in region order, for the kernels of
/// program `program`.
std::vector<GradientBucket> gradientBuckets(const Plan &plan, int program,
                                            int64_t targetBytes);

} // namespace dsflow

#endif // DSFLOW_RUNTIME_PLAN_GRADIENTBUCKETS_H
