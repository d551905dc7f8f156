//===- MemoryPlannerTest.cpp - The activation arena planner ---------------===//
#include "Plan/MemoryPlanner.h"

#include <gtest/gtest.h>

#include <random>

namespace dsflow {
namespace {

/// No two buffers live at the same time share a byte, and the arena is at least
/// the largest set of simultaneously live bytes.
void expectValid(const std::vector<Lifetime> &lifetimes, int64_t arena) {
  for (size_t i = 0; i < lifetimes.size(); ++i) {
    const Lifetime &a = lifetimes[i];
    EXPECT_GE(a.offset, 0);
    EXPECT_EQ(a.offset % 64, 0);
    EXPECT_LE(a.offset + a.bytes, arena);
    for (size_t j = i + 1; j < lifetimes.size(); ++j) {
      const Lifetime &b = lifetimes[j];
      bool together = a.first <= b.last && b.first <= a.last;
      bool overlap = a.offset < b.offset + b.bytes && b.offset < a.offset + a.bytes;
      EXPECT_FALSE(together && overlap) << "buffers " << i << " and " << j;
    }
  }
  EXPECT_GE(arena, peakLiveBytes(lifetimes));
}

TEST(MemoryPlanner, DisjointLifetimesShareBytes) {
  std::vector<Lifetime> l = {{1000, 0, 1}, {1000, 2, 3}, {1000, 4, 5}};
  int64_t arena = planArena(l);
  expectValid(l, arena);
  EXPECT_EQ(arena, 1000);
}

TEST(MemoryPlanner, OverlappingLifetimesDoNot) {
  std::vector<Lifetime> l = {{100, 0, 5}, {200, 1, 2}, {300, 2, 4}};
  int64_t arena = planArena(l);
  expectValid(l, arena);
  EXPECT_EQ(peakLiveBytes(l), 600);
}

TEST(MemoryPlanner, RandomProgramsAreValidAndTight) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<Lifetime> l;
    for (int i = 0; i < 60; ++i) {
      int64_t first = rng() % 100;
      l.push_back({64 * int64_t(1 + rng() % 50), first, first + int64_t(rng() % 20)});
    }
    int64_t arena = planArena(l);
    expectValid(l, arena);
    // Greedy-by-size stays within a small factor of the lower bound.
    EXPECT_LE(arena, 2 * peakLiveBytes(l));
  }
}

} // namespace
} // namespace dsflow
