//===- MemoryPlanner.cpp - Static offsets for the activation arena --------===//
#include "Plan/MemoryPlanner.h"

#include <algorithm>
#include <numeric>

namespace dsflow {

static int64_t alignUp(int64_t n, int64_t alignment) {
  return (n + alignment - 1) / alignment * alignment;
}

int64_t planArena(std::vector<Lifetime> &lifetimes, int64_t alignment) {
  std::vector<size_t> order(lifetimes.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return lifetimes[a].bytes > lifetimes[b].bytes;
  });
  std::vector<size_t> placed;
  int64_t arena = 0;
  for (size_t i : order) {
    Lifetime &buffer = lifetimes[i];
    // The placed buffers live at the same time, by offset.
    std::vector<const Lifetime *> conflicts;
    for (size_t j : placed) {
      const Lifetime &other = lifetimes[j];
      if (other.first <= buffer.last && buffer.first <= other.last)
        conflicts.push_back(&other);
    }
    std::sort(conflicts.begin(), conflicts.end(),
              [](const Lifetime *a, const Lifetime *b) {
                return a->offset < b->offset;
              });
    int64_t offset = 0;
    for (const Lifetime *other : conflicts) {
      if (offset + buffer.bytes <= other->offset)
        break;
      offset = std::max(offset, alignUp(other->offset + other->bytes, alignment));
    }
    buffer.offset = offset;
    arena = std::max(arena, offset + buffer.bytes);
    placed.push_back(i);
  }
  return arena;
}

int64_t peakLiveBytes(const std::vector<Lifetime> &lifetimes) {
  int64_t end = 0;
  for (const Lifetime &l : lifetimes)
    end = std::max(end, l.last + 1);
  std::vector<int64_t> delta(end + 1, 0);
  for (const Lifetime &l : lifetimes) {
    delta[l.first] += l.bytes;
    delta[l.last + 1] -= l.bytes;
  }
  int64_t live = 0, peak = 0;
  for (int64_t d : delta)
    peak = std::max(peak, live += d);
  return peak;
}

} // namespace dsflow
