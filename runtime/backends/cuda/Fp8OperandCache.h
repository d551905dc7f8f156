//===- Fp8OperandCache.h - FP8 operands written beside outputs --*- C++ -*-===//
//
// RMSNorm with the FP8 quantization fused (CudaLaunch.quantizing_function)
// writes, beside its output, that output as the FP8 operand of the linear
// layers that read it: E4M3 codes and 1x128 tile scales. They are kept here,
// in a few device slots, until the buffer is written again or its slot is
// taken for another buffer (the least recently filled goes first); a linear
// layer whose activation has a slot reads it instead of quantizing the
// buffer. Bookkeeping only (device addresses as integers), so that it is
// tested without a GPU.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_BACKENDS_CUDA_FP8OPERANDCACHE_H
#define DSFLOW_RUNTIME_BACKENDS_CUDA_FP8OPERANDCACHE_H

#include <cstdint>
#include <optional>
#include <vector>

namespace dsflow::cuda {

class Fp8OperandCache {
public:
  struct Slot {
    uint64_t codes = 0, scales = 0;
  };
  /// `slots` slots of `codeBytes` and `scaleBytes` (each rounded up to 256)
  /// from device address `base`; bytes() says how many that takes.
  Fp8OperandCache(uint64_t base, int slots, int64_t codeBytes,
                  int64_t scaleBytes);
  static int64_t bytes(int slots, int64_t codeBytes, int64_t scaleBytes);

  /// The slot holding buffer b's operand, if one does.
  std::optional<Slot> find(int32_t buffer) const;
  /// A slot for buffer b's operand: its own if it has one, else the least
  /// recently filled (what it held is dropped).
  Slot fill(int32_t buffer);
  /// Buffer b was written: its operand is stale.
  void forget(int32_t buffer);

private:
  Slot slotAt(int i) const;
  uint64_t base;
  int64_t codeBytes, scaleBytes;
  /// Per slot: the buffer it holds (-1: none) and when it was filled.
  std::vector<int32_t> holder;
  std::vector<int64_t> filledAt;
  int64_t fills = 0;
};

} // namespace dsflow::cuda

#endif // DSFLOW_RUNTIME_BACKENDS_CUDA_FP8OPERANDCACHE_H
