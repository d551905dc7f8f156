//===- Memory.h - The regions a plan's buffers live in ----------*- C++ -*-===//
//
// One allocation per region (parameters, gradients, inputs, activation arena),
// sized and laid out by the compiler; a buffer is its region's base plus its
// offset. The arena records the highest byte any kernel touched, so that the
// runtime measures the peak the compiler predicted.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_EXEC_MEMORY_H
#define DSFLOW_RUNTIME_EXEC_MEMORY_H

#include "schemas/plan.pb.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace dsflow::exec {

class Memory {
public:
  explicit Memory(const Plan &plan);

  /// The first byte of buffer `index`.
  std::byte *data(int32_t index) const;

  /// Records that a kernel touched buffer `index` (activations only).
  void touch(int32_t index);
  /// The highest activation-arena byte touched so far.
  int64_t activationHighWater() const { return highWater; }

  /// Zeroes every gradient (the start of an optimizer step).
  void zeroGradients();

  const Plan &plan() const { return planRef; }

private:
  struct Region {
    std::unique_ptr<std::byte[]> bytes;
    int64_t size = 0;
  };
  Region &regionOf(BufferKind kind);
  const Region &regionOf(BufferKind kind) const;

  const Plan &planRef;
  Region parameters, gradients, inputs, activations;
  int64_t highWater = 0;
};

} // namespace dsflow::exec

#endif // DSFLOW_RUNTIME_EXEC_MEMORY_H
