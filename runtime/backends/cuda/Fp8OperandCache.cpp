//===- Fp8OperandCache.cpp - FP8 operands written beside outputs ----------===//
#include "runtime/backends/cuda/Fp8OperandCache.h"

#include <algorithm>

namespace dsflow::cuda {

namespace {
int64_t aligned(int64_t bytes) { return (bytes + 255) / 256 * 256; }
} // namespace

Fp8OperandCache::Fp8OperandCache(uint64_t base, int slots, int64_t codeBytes,
                                 int64_t scaleBytes)
    : base(base), codeBytes(aligned(codeBytes)),
      scaleBytes(aligned(scaleBytes)), holder(size_t(slots), -1),
      filledAt(size_t(slots), -1) {}

int64_t Fp8OperandCache::bytes(int slots, int64_t codeBytes,
                               int64_t scaleBytes) {
  return slots * (aligned(codeBytes) + aligned(scaleBytes));
}

Fp8OperandCache::Slot Fp8OperandCache::slotAt(int i) const {
  uint64_t at = base + uint64_t(i * (codeBytes + scaleBytes));
  return {at, at + uint64_t(codeBytes)};
}

std::optional<Fp8OperandCache::Slot>
Fp8OperandCache::find(int32_t buffer) const {
  auto it = std::find(holder.begin(), holder.end(), buffer);
  if (buffer < 0 || it == holder.end())
    return std::nullopt;
  return slotAt(int(it - holder.begin()));
}

Fp8OperandCache::Slot Fp8OperandCache::fill(int32_t buffer) {
  auto own = std::find(holder.begin(), holder.end(), buffer);
  int i = own != holder.end()
              ? int(own - holder.begin())
              : int(std::min_element(filledAt.begin(), filledAt.end()) -
                    filledAt.begin());
  holder[size_t(i)] = buffer;
  filledAt[size_t(i)] = fills++;
  return slotAt(i);
}

void Fp8OperandCache::forget(int32_t buffer) {
  for (size_t i = 0; i < holder.size(); ++i)
    if (holder[i] == buffer) {
      holder[i] = -1;
      filledAt[i] = -1;
    }
}

} // namespace dsflow::cuda
