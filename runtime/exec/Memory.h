//===- Memory.h - The regions a plan's buffers live in ----------*- C++ -*-===//
//
// One allocation per region (parameters, gradients, inputs, activation arena),
// sized and laid out by the compiler; a buffer is its region's base plus its
// offset. A rank may leave out parameters (with their gradients) it never
// uses, e.g. the routed experts other EP ranks hold: the parameter and gradient
// regions are then packed without them and data() of one is null. The arena
// records the highest byte any kernel touched, so that the runtime measures the
// peak the compiler predicted.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_EXEC_MEMORY_H
#define DSFLOW_RUNTIME_EXEC_MEMORY_H

#include "schemas/plan.pb.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace dsflow::exec {

class Memory {
public:
  /// `absent(parameter buffer)`: leave that parameter and its gradient out.
  explicit Memory(const Plan &plan,
                  const std::function<bool(int32_t)> &absent = nullptr);
  /// Another copy of the inputs and activations, sharing `other`'s parameters
  /// and gradients (a pipeline stage keeps one per micro-batch in flight).
  static std::unique_ptr<Memory> sharingParameters(const Memory &other);

  /// The first byte of buffer `index`; null for a buffer left out.
  std::byte *data(int32_t index) const;
  bool present(int32_t index) const { return data(index) != nullptr; }
  /// Bytes allocated for parameters and gradients (the plan's sizes unless
  /// some were left out).
  int64_t parameterBytes() const { return parameters.size; }
  int64_t gradientBytes() const { return gradients.size; }

  /// Records that a kernel touched buffer `index` (activations only).
  void touch(int32_t index);
  /// The highest activation-arena byte touched so far.
  int64_t activationHighWater() const { return highWater; }

  /// Zeroes every gradient (the start of an optimizer step).
  void zeroGradients();

  const Plan &plan() const { return planRef; }

private:
  /// Shares `other`'s parameter and gradient regions and layout.
  Memory(const Plan &plan, const Memory &other)
      : planRef(plan), parameters(other.parameters), gradients(other.gradients),
        packedOffset(other.packedOffset) {}
  struct Region {
    std::shared_ptr<std::byte[]> bytes;
    int64_t size = 0;
  };
  Region &regionOf(BufferKind kind);
  const Region &regionOf(BufferKind kind) const;

  /// Packs the parameters and gradients that are not absent; fills offsets.
  void packParameters(const std::function<bool(int32_t)> &absent);

  const Plan &planRef;
  Region parameters, gradients, inputs, activations;
  /// Per buffer its offset in its region (-1: left out); empty when the
  /// plan's offsets hold.
  std::vector<int64_t> packedOffset;
  int64_t highWater = 0;
};

} // namespace dsflow::exec

#endif // DSFLOW_RUNTIME_EXEC_MEMORY_H
