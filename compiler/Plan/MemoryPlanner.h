//===- MemoryPlanner.h - Static offsets for the activation arena -*- C++ -*-===//
//
// Buffers live from the kernel that writes them first to the kernel that reads
// them last. Two buffers may share bytes when their lifetimes do not overlap.
// Offsets are assigned greedily, largest buffer first, each at the lowest
// aligned offset that does not collide with an already placed buffer live at
// the same time (the "greedy by size" policy of TFLite's arena planner).
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_COMPILER_PLAN_MEMORYPLANNER_H
#define DSFLOW_COMPILER_PLAN_MEMORYPLANNER_H

#include <cstdint>
#include <vector>

namespace dsflow {

struct Lifetime {
  int64_t bytes = 0;
  /// First and last kernel (inclusive) during which the buffer is live.
  int64_t first = 0, last = 0;
  /// Assigned by planArena.
  int64_t offset = -1;
};

/// Assigns every lifetime an offset; returns the arena size (the peak).
int64_t planArena(std::vector<Lifetime> &lifetimes, int64_t alignment = 64);

/// The largest sum of bytes live at any one kernel: a lower bound on any arena.
int64_t peakLiveBytes(const std::vector<Lifetime> &lifetimes);

} // namespace dsflow

#endif // DSFLOW_COMPILER_PLAN_MEMORYPLANNER_H
